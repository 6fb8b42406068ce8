"""Opsgenie Alert API: one alert per incident, its alias the incident id.

Opening (and updating, escalating, reopening) creates an alert with ``alias`` = incident id: Opsgenie
keeps one open alert per alias, so a repeat is deduplicated instead of paging again. Acknowledge and
close address that alert by alias (``identifierType=alias``). Requests are asynchronous: 202 with a
``requestId``. Authentication is ``Authorization: GenieKey <key>`` (an API integration's key).

Atlassian ends Opsgenie's REST API on 2027-04-05 (see docs/notifications.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from novacron.notify.delivery import Channel
from novacron.notify.dispatch import ConfiguredNotifier
from novacron.notify.http_client import HttpRequest
from novacron.notify.model import Action, IncidentNotification
from novacron.notify.ratelimit import RateLimit
from novacron.notify.text import alert_line, plain_text

API_URL = "https://api.opsgenie.com"  # EU accounts: https://api.eu.opsgenie.com
END_OF_SUPPORT = "2027-04-05"
MAX_MESSAGE = 130
MAX_DESCRIPTION = 15000
MAX_TAG = 50
SOURCE = "NovaCron"

OPSGENIE_RATE = RateLimit(per_second=5.0, burst=10)


@dataclass(frozen=True)
class OpsgenieReceiver:
    """An Opsgenie API integration."""

    name: str
    api_key: str  # a secret
    api_url: str = API_URL
    tags: tuple[str, ...] = ()
    rate_limit: RateLimit | None = OPSGENIE_RATE

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError(f"Opsgenie receiver {self.name!r}: api_key is required")

    def __repr__(self) -> str:  # keep the key out of logs
        return f"OpsgenieReceiver(name={self.name!r}, api_url={self.api_url!r})"


def build_request(receiver: OpsgenieReceiver, notification: IncidentNotification) -> HttpRequest:
    """Create, acknowledge or close the incident's alert."""
    n = notification
    auth = {"Authorization": f"GenieKey {receiver.api_key}"}
    base = receiver.api_url.rstrip("/")
    note = f"{n.action.value} in NovaCron (update #{n.sequence})"
    if n.action in (Action.ACKNOWLEDGED, Action.RESOLVED):
        verb = "acknowledge" if n.action is Action.ACKNOWLEDGED else "close"
        url = f"{base}/v2/alerts/{quote(n.incident_id, safe='')}/{verb}?identifierType=alias"
        return HttpRequest.json_post(url, {"source": SOURCE, "user": SOURCE, "note": note}, auth)
    return HttpRequest.json_post(f"{base}/v2/alerts", create_body(receiver, n), auth)


def create_body(receiver: OpsgenieReceiver, notification: IncidentNotification) -> dict[str, Any]:
    """The create-alert body, within Opsgenie's field limits."""
    n = notification
    tags = [*receiver.tags, f"severity:{n.severity.value}", *(f"service:{s}" for s in n.services)]
    return {
        "message": n.title[:MAX_MESSAGE],
        "alias": n.incident_id,
        "description": plain_text(n)[:MAX_DESCRIPTION],
        "priority": f"P{n.priority}",
        "source": SOURCE,
        "entity": n.services[0] if n.services else n.tenant,
        "tags": [tag[:MAX_TAG] for tag in tags][:20],
        "details": {
            "tenant": n.tenant,
            "incident_id": n.incident_id,
            "status": n.status.value,
            "action": n.action.value,
            "url": n.url,
            "alerts": "; ".join(alert_line(a) for a in n.alerts[:10]),
        },
    }


class OpsgenieNotifier(ConfiguredNotifier[OpsgenieReceiver]):
    """Sends each notification as one Alert API request."""

    def deliver(self, notification: IncidentNotification, channel: Channel) -> str:
        """Send; Opsgenie answers 202 with the request id to poll."""
        request = build_request(self.receiver, notification)
        response = channel.send(request)
        answer = response.json()
        request_id = answer.get("requestId", "?") if isinstance(answer, dict) else "?"
        path = request.url.split("/v2/", 1)[1].split("?")[0]
        return f"POST /v2/{path}: HTTP {response.status} requestId={request_id}"
