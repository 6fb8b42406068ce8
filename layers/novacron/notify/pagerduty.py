"""PagerDuty Events API v2: trigger, acknowledge and resolve one alert per incident.

The incident id is the ``dedup_key`` of every event, so the trigger that opens an incident, its
acknowledgement and its resolution all act on one PagerDuty alert, and a re-sent trigger is folded
into it by PagerDuty rather than paging again. Answers: 202 accepted, 400 invalid (not retried),
429 throttled and 5xx (retried).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from novacron.notify.delivery import Channel
from novacron.notify.dispatch import ConfiguredNotifier
from novacron.notify.http_client import HttpRequest
from novacron.notify.model import Action, IncidentNotification
from novacron.notify.ratelimit import RateLimit
from novacron.notify.text import alert_line, top_alerts

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
MAX_SUMMARY = 1024

_EVENT_ACTIONS = {
    Action.OPENED: "trigger",
    Action.UPDATED: "trigger",
    Action.ESCALATED: "trigger",
    Action.REOPENED: "trigger",
    Action.ACKNOWLEDGED: "acknowledge",
    Action.RESOLVED: "resolve",
}

PAGERDUTY_RATE = RateLimit(per_second=2.0, burst=10)


@dataclass(frozen=True)
class PagerDutyReceiver:
    """A PagerDuty service's Events API v2 integration."""

    name: str
    routing_key: str  # the integration key: a secret
    url: str = EVENTS_URL
    source: str = "novacron"
    # PagerDuty throttles per integration key; stay under it rather than collecting 429s.
    rate_limit: RateLimit | None = PAGERDUTY_RATE

    def __post_init__(self) -> None:
        if not self.routing_key:
            raise ValueError(f"PagerDuty receiver {self.name!r}: routing_key is required")

    def __repr__(self) -> str:  # keep the routing key out of logs
        return f"PagerDutyReceiver(name={self.name!r}, url={self.url!r})"


def event_action(notification: IncidentNotification) -> str:
    """trigger, acknowledge or resolve."""
    return _EVENT_ACTIONS[notification.action]


def build_event(receiver: PagerDutyReceiver, notification: IncidentNotification) -> dict[str, Any]:
    """The Events API v2 body: a full alert for a trigger, the dedup key alone to acknowledge or resolve."""
    n = notification
    action = event_action(n)
    event: dict[str, Any] = {"routing_key": receiver.routing_key, "event_action": action, "dedup_key": n.incident_id}
    if action != "trigger":
        return event
    shown, more = top_alerts(n)
    event["payload"] = {
        "summary": f"[P{n.priority}] {n.title}"[:MAX_SUMMARY],
        "source": receiver.source,
        "severity": n.severity.value,
        "timestamp": n.started_at.isoformat(),
        "component": n.services[0] if n.services else None,
        "group": n.tenant,
        "class": shown[0].name if shown else None,
        "custom_details": {
            "tenant": n.tenant,
            "incident_id": n.incident_id,
            "action": n.action.value,
            "status": n.status.value,
            "priority": f"P{n.priority}",
            "services": list(n.services),
            "summary": n.summary,
            "alerts": [alert_line(alert) for alert in shown] + ([f"… and {more} more"] if more else []),
        },
    }
    event["payload"] = {k: v for k, v in event["payload"].items() if v is not None}
    event["client"] = "NovaCron"
    if n.url:
        event["client_url"] = n.url
        event["links"] = [{"href": n.url, "text": "NovaCron incident"}]
    return event


class PagerDutyNotifier(ConfiguredNotifier[PagerDutyReceiver]):
    """Sends each notification as one Events API v2 event."""

    def deliver(self, notification: IncidentNotification, channel: Channel) -> str:
        """Enqueue the event; PagerDuty answers 202."""
        event = build_event(self.receiver, notification)
        response = channel.send(HttpRequest.json_post(self.receiver.url, event))
        return f"{event['event_action']} dedup_key={notification.incident_id}: HTTP {response.status}"
