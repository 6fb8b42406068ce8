"""Signed webhooks: the documented verification recipe, against a receiver that applies it."""

from __future__ import annotations

import pytest

from novacron.notify.dispatch import Dispatcher, OutcomeStatus
from novacron.notify.model import Action
from novacron.notify.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    WebhookNotifier,
    WebhookReceiver,
    sign,
    verify_signature,
)
from tests.unit.notify.conftest import WEBHOOK_SECRET, incident
from tests.unit.notify.memory import FakeClock, ListDeadLetters
from tests.unit.notify.receivers import Reply, WebhookEndpoint

BODY = b'{"version":"1"}'
NOW = 1_790_000_000


@pytest.fixture
def notifier(webhook_endpoint: WebhookEndpoint) -> WebhookNotifier:
    return WebhookNotifier(WebhookReceiver("hook", webhook_endpoint.endpoint, WEBHOOK_SECRET))


def headers(signature: str, timestamp: int = NOW) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature}


def test_the_receiver_verifies_a_delivered_notification(
    dispatcher: Dispatcher, notifier: WebhookNotifier, webhook_endpoint: WebhookEndpoint
) -> None:
    # When a notification is delivered
    outcome = dispatcher.dispatch(incident(Action.ESCALATED, 5), [notifier])[0]
    # Then the receiver verified its signature and body, and got the notification intact
    assert outcome.status is OutcomeStatus.DELIVERED
    assert webhook_endpoint.problems() == []
    assert webhook_endpoint.notifications == [incident(Action.ESCALATED, 5)]
    assert webhook_endpoint.requests[0].json["event"] == "incident.escalated"
    assert webhook_endpoint.deliveries == ["acme/inc-2026-0001/5/hook"]


def test_the_recipe_by_hand_matches() -> None:
    # The documented recipe, spelled out: HMAC-SHA256(secret, "<timestamp>." + body), hex, prefixed v1=
    import hashlib
    import hmac

    expected = "v1=" + hmac.new(WEBHOOK_SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(WEBHOOK_SECRET, NOW, BODY) == expected


def test_a_tampered_body_fails() -> None:
    signature = sign(WEBHOOK_SECRET, NOW, BODY)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(WEBHOOK_SECRET, headers(signature), BODY.replace(b"1", b"2"), NOW)


def test_another_secret_or_a_moved_timestamp_fails() -> None:
    signature = sign(WEBHOOK_SECRET, NOW, BODY)
    with pytest.raises(SignatureError):
        verify_signature("another-secret-0123", headers(signature), BODY, NOW)
    with pytest.raises(SignatureError):
        verify_signature(WEBHOOK_SECRET, headers(signature, NOW + 1), BODY, NOW)


def test_a_replay_outside_the_window_fails() -> None:
    signature = sign(WEBHOOK_SECRET, NOW, BODY)
    verify_signature(WEBHOOK_SECRET, headers(signature), BODY, NOW + 299)
    with pytest.raises(SignatureError, match="replay window"):
        verify_signature(WEBHOOK_SECRET, headers(signature), BODY, NOW + 301)


def test_any_of_several_signatures_verifies_during_a_secret_rotation() -> None:
    both = f"{sign('old-secret-0123456', NOW, BODY)}, {sign(WEBHOOK_SECRET, NOW, BODY)}"
    verify_signature(WEBHOOK_SECRET, headers(both), BODY, NOW)


def test_a_missing_timestamp_fails() -> None:
    with pytest.raises(SignatureError, match="missing or malformed"):
        verify_signature(WEBHOOK_SECRET, {SIGNATURE_HEADER: "v1=00"}, BODY, NOW)


def test_each_retry_is_signed_anew_and_keeps_its_delivery_id(
    dispatcher: Dispatcher, notifier: WebhookNotifier, webhook_endpoint: WebhookEndpoint, clock: FakeClock
) -> None:
    # Given an endpoint that fails once and asks for a 40 s pause
    webhook_endpoint.script(Reply(503, "maintenance", {"Retry-After": "40"}))
    # When delivering
    assert dispatcher.dispatch(incident(), [notifier])[0].status is OutcomeStatus.DELIVERED
    # Then the retry carries a fresh timestamp (so it passes the replay window) and the same delivery id
    first, second = webhook_endpoint.requests
    assert int(second.headers["x-novacron-timestamp"]) == int(first.headers["x-novacron-timestamp"]) + 40
    assert first.headers["x-novacron-delivery"] == second.headers["x-novacron-delivery"]
    assert second.problems == []


def test_a_refusal_is_dead_lettered(
    dispatcher: Dispatcher, webhook_endpoint: WebhookEndpoint, dead_letters: ListDeadLetters
) -> None:
    # Given a receiver configured with another secret than the endpoint's
    wrong = WebhookNotifier(WebhookReceiver("hook", webhook_endpoint.endpoint, "not-the-shared-secret"))
    # When delivering, Then the endpoint answers 401 once and the reason is on the dead letter
    assert dispatcher.dispatch(incident(), [wrong])[0].status is OutcomeStatus.DEAD_LETTERED
    assert len(webhook_endpoint.requests) == 1
    assert "signature does not match" in dead_letters.letters[0].reason


def test_configuration_is_checked_and_the_secret_kept_out_of_repr() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        WebhookReceiver("hook", "https://x.example", "short")
    with pytest.raises(ValueError, match="http"):
        WebhookReceiver("hook", "file:///etc/passwd", WEBHOOK_SECRET)
    assert WEBHOOK_SECRET not in repr(WebhookReceiver("hook", "https://x.example", WEBHOOK_SECRET))
