"""``/api/v1/incidents``: a tenant's incidents, and what people do to them (acknowledge, resolve, reopen,
comment).

- ``GET /api/v1/incidents`` (read role): ``start``/``end`` (Prometheus times, default the last 7 days)
  bound the opening time; ``status`` (``open``, ``acknowledged``, ``resolved``, or ``active`` for the
  first two) and ``service`` filter; ``limit`` (default 50, at most 500). Newest first, each incident
  without its timeline.
- ``GET /api/v1/incidents/{id}``: one incident, whole (alerts, timeline, origin, priority).
- ``POST /api/v1/incidents/{id}/acknowledge|resolve|reopen|comment`` (admin role): the body is optional
  JSON ``{"comment": "..."}`` (required for ``comment``); ``resolve`` also takes ``"false_positive": true``
  (the alerts were noise: it lowers the priority of their rules' future incidents). 404 for an unknown
  incident, 409 when the incident is not in a state the action applies to. Each action goes on the
  incident's timeline with the API key id that took it, and acknowledge/resolve/reopen put an event on
  the bus and a notification request on the notifications topic, so that notifications update (the
  Slack message in place, PagerDuty's incident by its dedup key).

Answers use the Prometheus envelope and error types, like the rest of the query API.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from novacron.alert.incidents import (
    FALSE_POSITIVE,
    INCIDENT_REOPENED,
    INCIDENT_RESOLVED,
    Incident,
    IncidentConflict,
    IncidentEvent,
    IncidentStatus,
    valid_incident_id,
)
from novacron.alert.notifications import incident_notification
from novacron.alert.state import NotificationRequest
from novacron.notify.model import Action
from novacron.promql import BadData
from novacron.query.prom_api import Params, Response, _param, _run, error, listing_limit, success, window_params

DEFAULT_RANGE_MS = 7 * 86_400_000
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
FILTER_READ_FACTOR = 10  # filters apply after the read: read more so that a filtered page is full
MAX_COMMENT = 2_000
INCIDENT_TTL_DAYS = 400  # incidents and their history outlive the data: postmortems read them
INCIDENT_ACKNOWLEDGED = "IncidentAcknowledged"
ACTIONS = ("acknowledge", "resolve", "reopen", "comment")
_STATUSES = (*(str(s) for s in IncidentStatus), "active")


class IncidentStore(Protocol):
    """Where incidents live (``novacron.adapters.incidents.DynamoIncidentStore``)."""

    def incident(self, tenant: str, incident_id: str) -> Incident | None:
        """The tenant's incident, or None."""
        ...

    def list_incidents(
        self, tenant: str, start_ms: int, end_ms: int, limit: int = 100, newest_first: bool = True
    ) -> list[Incident]:
        """Incidents opened within [start_ms, end_ms]."""
        ...

    def save(self, incident: Incident, expires_at: int) -> Incident:
        """Write if unchanged since read (raises otherwise); the incident at its new revision."""
        ...


class IncidentEvents(Protocol):
    """Where incident events go (the event bus)."""

    def put_events(self, events: Sequence[IncidentEvent]) -> None:
        """Deliver every event, or raise."""
        ...


class NotificationPublisher(Protocol):
    """The notifications topic (``novacron.adapters.notification_topic.NotificationTopic``)."""

    def publish(self, requests: Sequence[NotificationRequest]) -> None:
        """Publish every request, or raise."""
        ...


@dataclass(frozen=True)
class Announcer:
    """What hears of a person's action on an incident: the bus (an ``Incident*`` event) and the receivers
    already told about the incident (a notification request without a receiver), so that a Slack message
    is updated in place and PagerDuty's incident is acknowledged or resolved by its dedup key."""

    events: IncidentEvents
    notifications: NotificationPublisher

    def announce(self, incident: Incident, action: str) -> None:
        """Tell both of ``action`` (acknowledge, resolve or reopen) on the saved ``incident``."""
        detail_type, told = _ANNOUNCED[action]
        self.events.put_events([IncidentEvent(detail_type, incident)])
        self.notifications.publish([NotificationRequest(incident_notification(incident, told))])


_ANNOUNCED = {
    "acknowledge": (INCIDENT_ACKNOWLEDGED, Action.ACKNOWLEDGED),
    "resolve": (INCIDENT_RESOLVED, Action.RESOLVED),
    "reopen": (INCIDENT_REOPENED, Action.REOPENED),
}


def summary(incident: Incident) -> dict[str, Any]:
    """An incident without its timeline, with alert counts."""
    data = incident.to_json()
    del data["timeline"]
    data["alerts_firing"] = len(incident.firing)
    data["alerts_total"] = len(incident.alerts)
    return data


def list_incidents(store: IncidentStore, tenant: str, params: Params, now_ms: int) -> Response:
    """The answer to ``GET /api/v1/incidents``."""

    def run() -> Response:
        start, end = window_params(params, now_ms, DEFAULT_RANGE_MS)
        limit = listing_limit(params, DEFAULT_LIMIT, MAX_LIMIT, "incidents")
        status = _param(params, "status") or None
        if status is not None and status not in _STATUSES:
            raise BadData(f'invalid parameter "status": one of {", ".join(_STATUSES)}, not {status!r}')
        service = _param(params, "service") or None
        filtered = status is not None or service is not None
        found = store.list_incidents(tenant, start, end, limit * FILTER_READ_FACTOR if filtered else limit)
        kept = [i for i in found if _status_matches(i, status) and (service is None or service in i.services)]
        return success({"incidents": [summary(i) for i in kept[:limit]]})

    return _run(run)


def _status_matches(incident: Incident, status: str | None) -> bool:
    if status is None:
        return True
    if status == "active":
        return incident.status is not IncidentStatus.RESOLVED
    return str(incident.status) == status


def get_incident(store: IncidentStore, tenant: str, incident_id: str) -> Response:
    """The answer to ``GET /api/v1/incidents/{id}``."""
    incident = _find(store, tenant, incident_id)
    if incident is None:
        return _not_found(tenant, incident_id)
    return success(incident.to_json())


def act(
    store: IncidentStore,
    announcer: Announcer | None,
    tenant: str,
    incident_id: str,
    action: str,
    by: str,
    body: bytes,
    now_ms: int,
) -> Response:
    """The answer to ``POST /api/v1/incidents/{id}/{action}``: the incident after the action."""
    if action not in ACTIONS:
        return error("not_found", f"no action {action!r}; one of {', '.join(ACTIONS)}")
    try:
        comment, false_positive = _body(body, required=action == "comment", resolving=action == "resolve")
    except ValueError as exc:
        return error("bad_data", str(exc))
    steps: dict[str, Callable[[Incident], None]] = {
        "acknowledge": lambda i: i.acknowledge(by, now_ms),
        "resolve": lambda i: i.resolve(by, now_ms, comment),
        "reopen": lambda i: i.reopen(by, now_ms, comment),
        "comment": lambda i: i.comment(by, now_ms, comment),
    }
    # Optimistic locking: the alert function may update the same incident; read again and retry once.
    for attempt in range(2):
        incident = _find(store, tenant, incident_id)
        if incident is None:
            return _not_found(tenant, incident_id)
        try:
            steps[action](incident)
            if action == "acknowledge" and comment:
                incident.comment(by, now_ms, comment)
            if false_positive:
                incident.note(now_ms, FALSE_POSITIVE, "marked a false positive", by)
        except ValueError as exc:
            return error("conflict", str(exc))
        try:
            saved = store.save(incident, now_ms // 1000 + INCIDENT_TTL_DAYS * 86_400)
        except IncidentConflict:
            if attempt:
                return error("conflict", f"incident {incident_id} is changing; try again")
            continue
        if announcer is not None and action in _ANNOUNCED:
            announcer.announce(saved, action)
        return success(saved.to_json())
    raise AssertionError("unreachable")


def _body(body: bytes, required: bool, resolving: bool) -> tuple[str, bool]:
    """The comment and the false-positive mark of an action's body; ValueError naming what is wrong."""
    if not body.strip():
        if required:
            raise ValueError('body must be JSON {"comment": "..."} with a non-empty comment')
        return "", False
    try:
        doc = json.loads(body)
    except ValueError:
        raise ValueError('body must be JSON: {"comment": "..."}') from None
    allowed = {"comment", "false_positive"} if resolving else {"comment"}
    if not isinstance(doc, dict) or set(doc) - allowed:
        raise ValueError(f"body must be a JSON object with only {' and '.join(sorted(allowed))}")
    comment = doc.get("comment", "")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise ValueError(f"comment: must be a string of at most {MAX_COMMENT} characters")
    if required and not comment.strip():
        raise ValueError("comment: required, and not empty")
    false_positive = doc.get("false_positive", False)
    if not isinstance(false_positive, bool):
        raise ValueError("false_positive: must be true or false")
    return comment.strip(), false_positive


def _find(store: IncidentStore, tenant: str, incident_id: str) -> Incident | None:
    # Only a well-formed id reaches the table's key.
    return store.incident(tenant, incident_id) if valid_incident_id(incident_id) else None


def _not_found(tenant: str, incident_id: str) -> Response:
    return error("not_found", f"no incident {incident_id!r} in tenant {tenant!r}")
