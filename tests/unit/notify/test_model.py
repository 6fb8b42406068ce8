"""The notification model: its JSON form, validation naming the field at fault, delivery keys."""

from __future__ import annotations

import pytest

from novacron.notify.model import Action, IncidentNotification, InvalidNotification
from novacron.notify.text import headline, plain_text
from tests.unit.notify.conftest import incident


def test_json_form_round_trips() -> None:
    # Given a notification with alerts
    original = incident(Action.ESCALATED, sequence=4)
    # When it travels as JSON and is parsed back
    parsed = IncidentNotification.from_dict(original.to_dict())
    # Then nothing is lost
    assert parsed == original


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("action", "exploded", "action: expected one of opened, updated"),
        ("tenant", "Not A Tenant", "tenant: invalid tenant"),
        ("priority", 9, "priority: must be 1-5"),
        ("sequence", "3", "sequence: expected an integer"),
        ("started_at", "yesterday", "started_at: expected an RFC 3339 time"),
        ("started_at", "2026-09-21T10:00:00", "started_at: must carry a time zone"),
        ("incident_id", "x" * 256, "incident_id: must be 1-255"),
        ("services", "checkout", "services: expected a list"),
    ],
)
def test_invalid_fields_are_named(field: str, value: object, message: str) -> None:
    # Given a notification message with one bad field
    data = incident().to_dict() | {field: value}
    # When it is parsed, Then the error names the field
    with pytest.raises(InvalidNotification, match=message):
        IncidentNotification.from_dict(data)


def test_an_invalid_alert_is_named_by_its_index() -> None:
    data = incident().to_dict()
    data["alerts"][1]["value"] = "high"
    with pytest.raises(InvalidNotification, match=r"alerts\[1\]\.value: expected a number"):
        IncidentNotification.from_dict(data)


def test_delivery_keys_differ_by_update_and_receiver_but_not_by_retry() -> None:
    first, second = incident(sequence=1), incident(Action.ACKNOWLEDGED, sequence=2)
    assert first.delivery_key("pd") == incident(sequence=1).delivery_key("pd")
    assert len({first.delivery_key("pd"), second.delivery_key("pd"), first.delivery_key("slack")}) == 3


def test_text_rendering_lists_top_alerts_and_link() -> None:
    # Given an incident with seven alerts
    many = incident(alerts=incident().alerts * 3 + incident().alerts[:1])
    # When rendered as text
    text = plain_text(many)
    # Then the headline leads, five alerts are listed and the rest counted, and the link is there
    assert text.startswith(headline(many))
    assert headline(many).startswith("[P1 critical] Opened: Checkout")
    assert text.count("- HighLatency{") == 5
    assert "… and 5 more" in text
    assert "https://novacron.example.com/incidents/inc-2026-0001" in text
