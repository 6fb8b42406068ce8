"""Dispatcher notifications → notification requests about incidents, for the notifier.

The dispatcher (``novacron.alert.grouping``) decides *when* a receiver is told, per aggregation group;
the notifier tells receivers about *incidents* (``IncidentNotification``). Every alert reaches the
dispatcher with an ``incident=<id>`` label, so:

- a group keyed by incident (``group_by: [incident]``, the default routing) is one incident: one request;
- a group keyed otherwise (a user's own ``group_by``, e.g. by alert name) is told about each incident
  its alerts belong to: one request per incident. Each request is then a self-contained snapshot of one
  incident, which is what receivers updated in place (Slack, PagerDuty's ``dedup_key``) need; the price is
  that such a group's flush can be several messages.

The action says what changed for that receiver since it was last told (``Notified``, kept per incident
and receiver integration with the dispatcher's state): ``opened`` the first time, ``resolved`` once the incident is
resolved, ``reopened`` when it was resolved at the last notification (or reopened since), ``escalated``
when its priority rose, ``updated`` otherwise. The sequence is the incident's stored revision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from novacron.alert.grouping import Alert as DispatchAlert
from novacron.alert.grouping import Notification
from novacron.alert.incidents import AlertSignal, Incident, IncidentAlert, IncidentStatus
from novacron.alert.signals import signal_labels
from novacron.alert.state import NotificationRequest
from novacron.notify.model import Action, AlertSummary, IncidentNotification, Severity, Status

INCIDENT_LABEL = "incident"
MAX_ALERTS = 50  # an SNS message is at most 256 KB: the rest are counted in the summary
_SEVERITY_ORDER = (Severity.CRITICAL, Severity.ERROR, Severity.WARNING, Severity.INFO)


def dispatch_alert(signal: AlertSignal, incident_id: str | None) -> DispatchAlert:
    """The dispatcher's view of a signal (seconds), labelled with its incident."""
    ends = None if signal.firing else (signal.ends_at_ms or signal.starts_at_ms) / 1000
    return DispatchAlert(
        labels=signal_labels(signal, incident_id),
        starts_at=signal.starts_at_ms / 1000,
        ends_at=ends,
        annotations={"summary": signal.summary} if signal.summary else {},
    )


@dataclass(frozen=True)
class Notified:
    """What a receiver was last told about an incident."""

    status: str
    priority_label: str
    at_ms: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-able value."""
        return {"status": self.status, "priority_label": self.priority_label, "at_ms": self.at_ms}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Notified:
        """The inverse of :meth:`to_json`."""
        return Notified(str(data["status"]), str(data["priority_label"]), int(data["at_ms"]))


NotifiedLog = dict[str, dict[str, Notified]]  # incident id → "<receiver>/<integration>" → what it was last told


def notified_to_json(log: NotifiedLog) -> dict[str, dict[str, Any]]:
    """The log as JSON-able data."""
    return {incident: {r: n.to_json() for r, n in by.items()} for incident, by in log.items()}


def notified_from_json(data: Mapping[str, Any] | None) -> NotifiedLog:
    """The log from :func:`notified_to_json`'s data (empty when there is none)."""
    return {i: {r: Notified.from_json(n) for r, n in by.items()} for i, by in (data or {}).items()}


def incidents_of(notification: Notification) -> list[str]:
    """The incidents a notification is about: its group's, or those of its alerts (sorted)."""
    keyed = notification.group_labels.get(INCIDENT_LABEL)
    if keyed:
        return [keyed]
    alerts = (*notification.firing, *notification.resolved)
    return sorted({a.labels[INCIDENT_LABEL] for a in alerts if a.labels.get(INCIDENT_LABEL)})


def action_of(incident: Incident, last: Notified | None) -> Action:
    """What changed for a receiver since it was last told about ``incident`` (``last``)."""
    resolved = incident.status is IncidentStatus.RESOLVED
    if last is None:
        return Action.RESOLVED if resolved else Action.OPENED
    if resolved:
        return Action.RESOLVED if last.status != IncidentStatus.RESOLVED else Action.UPDATED
    reopened_since = any(e.kind == "reopened" and e.at_ms > last.at_ms for e in incident.timeline)
    if last.status == IncidentStatus.RESOLVED or reopened_since:
        return Action.REOPENED
    if priority_number(incident.priority_label) < priority_number(last.priority_label):
        return Action.ESCALATED
    return Action.UPDATED


def priority_number(label: str) -> int:
    """ "P1".."P5" → 1..5 (anything else: 5)."""
    digits = label[1:] if label[:1] == "P" else ""
    return min(max(int(digits), 1), 5) if digits.isdigit() else 5


def incident_notification(incident: Incident, action: Action, url: str = "") -> IncidentNotification:
    """A snapshot of the incident for receivers (firing alerts first, at most MAX_ALERTS)."""
    alerts = sorted(incident.alerts.values(), key=lambda a: (not a.firing, a.starts_at_ms, a.fingerprint))
    return IncidentNotification(
        action=action,
        tenant=incident.tenant,
        incident_id=incident.id,
        sequence=incident.revision,
        title=incident.title or f"incident {incident.id}",
        summary=summary(incident),
        severity=worst_severity(a.severity for a in incident.alerts.values()),
        priority=priority_number(incident.priority_label),
        status=Status(str(incident.status)),
        started_at=_time(incident.opened_at_ms),
        url=url,
        services=tuple(incident.services),
        alerts=tuple(_summary(a) for a in alerts[:MAX_ALERTS]),
    )


def worst_severity(severities: Iterable[str]) -> Severity:
    """The most severe of the alerts' severities, in the notifier's vocabulary (unknown ones: info)."""
    known = {Severity(s.lower()) for s in severities if s.lower() in {v.value for v in Severity}}
    return next((s for s in _SEVERITY_ORDER if s in known), Severity.INFO)


def summary(incident: Incident) -> str:
    """One paragraph: alerts firing and resolved, services, the suspected origin and why, the priority."""
    firing = len(incident.firing)
    resolved = len(incident.alerts) - firing
    text = f"{firing} alert{'s' if firing != 1 else ''} firing"
    if resolved:
        text += f", {resolved} resolved"
    services = incident.services
    if services:
        text += f" on {len(services)} service{'s' if len(services) != 1 else ''} ({', '.join(services)})"
    if incident.origin:
        text += f". Suspected origin: {incident.origin} ({incident.origin_reason})"
    return text + f". Priority {incident.priority_label} ({incident.priority:g})."


def requests_for(
    notification: Notification,
    incidents: Mapping[str, Incident],
    notified: NotifiedLog,
    now_ms: int,
    url_of: Callable[[str], str] | None = None,
) -> list[NotificationRequest]:
    """The requests of one dispatcher notification (one per incident it is about), recording in
    ``notified`` what the receiver's integration is told; incidents not in ``incidents`` are skipped."""
    requests = []
    for incident_id in incidents_of(notification):
        incident = incidents.get(incident_id)
        if incident is None:
            continue
        told = notified.setdefault(incident_id, {})
        channel = f"{notification.receiver}/{notification.integration}"
        action = action_of(incident, told.get(channel))
        url = url_of(incident_id) if url_of is not None else ""
        requests.append(
            NotificationRequest(
                incident_notification(incident, action, url), notification.receiver, (notification.integration,)
            )
        )
        told[channel] = Notified(str(incident.status), incident.priority_label, now_ms)
    return requests


def _summary(alert: IncidentAlert) -> AlertSummary:
    annotations = {"summary": alert.summary} if alert.summary else {}
    return AlertSummary(alert.name, alert.fingerprint, _time(alert.starts_at_ms), alert.labels, annotations)


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
