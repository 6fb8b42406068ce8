"""``GET /api/v1/notifications``: the tenant's local inbox (novacron.notify.inbox), newest first.

Parameters: ``limit`` (default 50, at most 500) and ``incident`` (only that incident's notifications).
Answers use the Prometheus envelope, like the rest of the query API: ``{"status": "success", "data":
{"notifications": [InboxEntry, ...]}}``; a bad parameter is a 400 ``bad_data`` naming it.
``inbox_lines`` renders entries as ``novacron notifications list`` and ``make demo`` print them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from novacron.notify.inbox import InboxEntry
from novacron.notify.model import MAX_INCIDENT_ID
from novacron.promql import BadData
from novacron.query.prom_api import Params, Response, _param, _run, listing_limit, success

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class InboxReader(Protocol):
    """The inbox's read side (``novacron.adapters.notify_state.DynamoInbox``)."""

    def latest(self, tenant: str, limit: int, incident_id: str | None = None) -> Sequence[InboxEntry]:
        """The tenant's newest ``limit`` entries (of one incident, when given), newest first."""
        ...


def list_notifications(inbox: InboxReader, tenant: str, params: Params) -> Response:
    """The answer to ``GET /api/v1/notifications``."""

    def run() -> Response:
        limit = listing_limit(params, DEFAULT_LIMIT, MAX_LIMIT, "notifications")
        incident = _param(params, "incident") or None
        if incident is not None and len(incident) > MAX_INCIDENT_ID:
            raise BadData(f'invalid parameter "incident": at most {MAX_INCIDENT_ID} characters')
        entries = inbox.latest(tenant, limit, incident)
        return success({"notifications": [entry.to_dict() for entry in entries]})

    return _run(run)


def inbox_lines(entries: Sequence[Mapping[str, Any]], full: bool = False) -> list[str]:
    """One line per entry (time, incident, update number, headline); ``full`` adds each entry's text."""
    lines: list[str] = []
    for entry in entries:
        when = datetime.fromtimestamp(float(entry["received_at"]), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        lines.append(f"{when}  {entry['incident_id']}  #{entry['sequence']:<3} {entry['headline']}")
        if full:
            lines += [f"    {line}".rstrip() for line in str(entry["text"]).splitlines()]
            lines.append("")
    return lines
