"""Dispatcher notifications → requests about incidents: which incidents, which action, what snapshot."""

from __future__ import annotations

import pytest

from novacron.alert.grouping import Alert, Notification
from novacron.alert.incidents import AlertSignal, Correlator, Incident, IncidentStatus
from novacron.alert.notifications import (
    Notified,
    action_of,
    incidents_of,
    notified_from_json,
    notified_to_json,
    priority_number,
    requests_for,
    worst_severity,
)
from novacron.alert.topology import Topology
from novacron.notify.model import Action, Severity

MIN = 60_000
T0 = 1_800_000_000_000


def opened(service: str, severity: str = "critical", at_ms: int = T0) -> Incident:
    signal = AlertSignal(f"fp-{service}", "Errors", (("service", service),), severity, True, at_ms, summary="boom")
    (incident,) = Correlator("acme", Topology()).apply([], [signal], at_ms).changed.values()
    incident.revision = 3
    return incident


def notification(group_labels: dict[str, str], *incident_ids: str) -> Notification:
    alerts = tuple(Alert({"alertname": "Errors", "incident": i}, T0 / 1000) for i in incident_ids)
    return Notification("team", "slack[0]", "{}:{}", group_labels, alerts, (), T0 / 1000)


def test_a_group_keyed_by_incident_is_about_that_incident_and_others_about_their_alerts_incidents() -> None:
    # Given a group keyed by incident and one keyed by alert name holding alerts of two incidents
    by_incident = notification({"incident": "i-1"}, "i-1")
    by_name = notification({"alertname": "Errors"}, "i-2", "i-1", "i-2")

    # When asked which incidents they are about / Then
    assert incidents_of(by_incident) == ["i-1"]
    assert incidents_of(by_name) == ["i-1", "i-2"]


def test_requests_are_one_per_incident_and_record_what_each_channel_was_told() -> None:
    # Given two incidents and a notification of a group keyed by alert name holding both
    a, b = opened("payment"), opened("search")
    notified: dict[str, dict[str, Notified]] = {}

    # When turned into requests
    requests = requests_for(notification({"alertname": "Errors"}, a.id, b.id), {a.id: a, b.id: b}, notified, T0)

    # Then each incident is one opened request for the notification's receiver and integration
    assert sorted(r.notification.incident_id for r in requests) == sorted([a.id, b.id])
    assert {(r.receiver, r.integrations, r.notification.action) for r in requests} == {
        ("team", ("slack[0]",), Action.OPENED)
    }
    assert requests[0].notification.sequence == 3
    # And what was told is remembered per incident and channel, and survives JSON
    assert notified[a.id]["team/slack[0]"] == Notified("open", a.priority_label, T0)
    assert notified_from_json(notified_to_json(notified)) == notified


@pytest.mark.parametrize(
    ("status", "priority", "last", "expected"),
    [
        (IncidentStatus.OPEN, "P3", None, Action.OPENED),
        (IncidentStatus.RESOLVED, "P3", None, Action.RESOLVED),
        (IncidentStatus.OPEN, "P3", Notified("open", "P3", T0), Action.UPDATED),
        (IncidentStatus.OPEN, "P1", Notified("open", "P3", T0), Action.ESCALATED),
        (IncidentStatus.OPEN, "P4", Notified("open", "P3", T0), Action.UPDATED),
        (IncidentStatus.RESOLVED, "P3", Notified("open", "P3", T0), Action.RESOLVED),
        (IncidentStatus.OPEN, "P3", Notified("resolved", "P3", T0), Action.REOPENED),
    ],
)
def test_the_action_says_what_changed_since_the_channel_was_last_told(
    status: IncidentStatus, priority: str, last: Notified | None, expected: Action
) -> None:
    # Given an incident in some state / When compared with what was last told / Then the action
    incident = opened("payment")
    incident.status, incident.priority_label = status, priority
    assert action_of(incident, last) is expected


def test_an_incident_reopened_since_the_last_notification_is_reopened() -> None:
    # Given an incident resolved and reopened by hand between two notifications
    incident = opened("payment")
    incident.resolve("key-1", T0 + MIN)
    incident.reopen("key-1", T0 + 2 * MIN)

    # When compared with a notification sent before both / Then it is reopened
    assert action_of(incident, Notified("open", incident.priority_label, T0)) is Action.REOPENED


def test_priority_labels_and_severities_map_to_the_notifiers_vocabulary() -> None:
    # Given labels and severities / When mapped / Then P1..P5 → 1..5, and the worst known severity wins
    assert [priority_number(p) for p in ("P1", "P3", "P5", "P9", "high")] == [1, 3, 5, 5, 5]
    assert worst_severity(["warning", "CRITICAL", "page"]) is Severity.CRITICAL
    assert worst_severity(["page"]) is Severity.INFO
