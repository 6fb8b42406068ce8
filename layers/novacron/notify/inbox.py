"""The local inbox: where notifications go when no real endpoint is configured (the local stack, demos).

Each notification becomes an InboxEntry with its rendered text, appended to the tenant's inbox and
read back newest first (``novacron local``, ``make demo`` and the API show it), so the whole alerting
story is visible offline. It is a receiver like the others: idempotent, and listed in dead letters if
its store fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from novacron.auth import validate_tenant
from novacron.notify.delivery import Channel
from novacron.notify.dispatch import ConfiguredNotifier
from novacron.notify.model import IncidentNotification
from novacron.notify.ratelimit import RateLimit
from novacron.notify.text import headline, plain_text

DEFAULT_NAME = "inbox"
MAX_LIST = 500


@dataclass(frozen=True)
class InboxEntry:
    """One notification as the inbox shows it."""

    tenant: str
    receiver: str
    incident_id: str
    action: str
    sequence: int
    severity: str
    headline: str
    text: str
    received_at: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the API's answer)."""
        return dict(self.__dict__)


class InboxStore(Protocol):
    """Keeps each tenant's inbox."""

    def append(self, entry: InboxEntry) -> None: ...

    def latest(self, tenant: str, limit: int) -> Sequence[InboxEntry]:
        """The tenant's newest ``limit`` entries, newest first."""
        ...


@dataclass(frozen=True)
class InboxReceiver:
    """The local inbox as a receiver (no rate limit: nothing external to protect)."""

    name: str = DEFAULT_NAME
    rate_limit: RateLimit | None = None


def read_inbox(store: InboxStore, tenant: str, limit: int = 50) -> list[InboxEntry]:
    """The tenant's latest entries; ValueError (a 400 for the API) on a bad tenant or limit."""
    validate_tenant(tenant)
    if not 1 <= limit <= MAX_LIST:
        raise ValueError(f"limit must be between 1 and {MAX_LIST}, got {limit}")
    return list(store.latest(tenant, limit))


class InboxNotifier(ConfiguredNotifier[InboxReceiver]):
    """Appends each notification to the tenant's inbox."""

    def __init__(self, store: InboxStore, receiver: InboxReceiver | None = None) -> None:
        self.store = store
        super().__init__(receiver or InboxReceiver())

    def deliver(self, notification: IncidentNotification, channel: Channel) -> str:
        """Append the entry (the store may raise AttemptFailed, retried like any receiver)."""
        n = notification
        entry = InboxEntry(
            tenant=n.tenant,
            receiver=self.name,
            incident_id=n.incident_id,
            action=n.action.value,
            sequence=n.sequence,
            severity=n.severity.value,
            headline=headline(n),
            text=plain_text(n),
            received_at=channel.clock.now(),
        )
        channel.run(lambda: self.store.append(entry))
        return f"stored in the {n.tenant} inbox"
