"""Events (anomalies, incidents) onto an EventBridge bus (PutEvents).

PutEvents takes at most 10 entries per call and reports failures per entry (throttling, internal
errors) without raising: failed entries are sent again with a growing pause, and if some never go
through the call raises, failing the batch so that Lambda retries it (consumers deduplicate on the
episode or incident id the event carries).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from novacron import aws

MAX_ENTRIES = 10  # PutEvents' limit per call
ATTEMPTS = 5


class BusEvent(Protocol):
    """An event for the bus (novacron.detect.events.AnomalyEvent, novacron.alert.incidents.IncidentEvent)."""

    @property
    def source(self) -> str:
        """The EventBridge source."""
        ...

    @property
    def detail_type(self) -> str:
        """The EventBridge detail type."""
        ...

    def detail(self) -> dict[str, Any]:
        """The event's JSON detail."""
        ...


class EventDeliveryError(RuntimeError):
    """Some events could not be put on the bus."""


class EventBridgeSink:
    """EventSink over one EventBridge bus (its name or ARN)."""

    client = aws.AdapterClient("events")

    def __init__(
        self,
        bus: str,
        client: Any | None = None,
        attempts: int = ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bus = bus
        self._client = client
        self._attempts = attempts
        self._sleep = sleep

    def entry(self, event: BusEvent) -> dict[str, Any]:
        """The PutEvents entry of ``event``."""
        return {
            "EventBusName": self.bus,
            "Source": event.source,
            "DetailType": event.detail_type,
            "Detail": json.dumps(event.detail(), separators=(",", ":")),
        }

    def put_events(self, events: Sequence[BusEvent]) -> None:
        """Put every event on the bus, 10 per call; EventDeliveryError if some never go through."""
        entries = [self.entry(event) for event in events]
        for start in range(0, len(entries), MAX_ENTRIES):
            self._put_chunk(entries[start : start + MAX_ENTRIES])

    def _put_chunk(self, entries: list[dict[str, Any]]) -> None:
        pending = entries
        errors: set[str] = set()
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(min(0.1 * 2**attempt, 2.0))
            response = self.client.put_events(Entries=pending)
            if not response.get("FailedEntryCount"):
                return
            # Results are in the order of the entries; a failed one carries an ErrorCode.
            failed = [(e, r) for e, r in zip(pending, response["Entries"], strict=True) if r.get("ErrorCode")]
            errors = {f"{r['ErrorCode']}: {r.get('ErrorMessage', '')}" for _, r in failed}
            pending = [e for e, _ in failed]
        raise EventDeliveryError(
            f"{len(pending)} events were not accepted by bus {self.bus!r} after {self._attempts} attempts: "
            + "; ".join(sorted(errors))
        )
