"""What the alerting keeps per tenant between runs, and the messages it hands to the notifier.

One store (the ``alerting`` table; ``novacron.adapters.alerting_table``) holds per tenant:

- rule files, as uploaded (``PUT /api/v1/rules/files/{name}``, ``novacron rules push``): their YAML text,
  a version and who changed them last;
- each rule group's evaluation state (``novacron.alert.evaluate.GroupState``), keyed ``<file>/<group>``;
- the Alertmanager-style configuration (routes, receivers, inhibit rules) as YAML text;
- the correlation settings (``novacron.alert.correlation``: window, declared topology, business tiers) as
  YAML or JSON text;
- silences (``novacron.alert.silences.Silence``);
- the dispatcher's state (``novacron.alert.grouping.Dispatcher.to_dict``).

The alert function publishes one :class:`NotificationRequest` per notification on the ``notifications``
topic; the notifier function delivers it. A request without ``receiver`` (an incident acknowledged,
resolved or reopened by hand, through the API) goes to every receiver already told about the incident.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from novacron.alert.rule_state import GroupState
from novacron.alert.silences import Silence
from novacron.notify.model import IncidentNotification

MESSAGE_VERSION = 1


@dataclass(frozen=True)
class StoredText:
    """A document a user uploaded (a rule file, the Alertmanager configuration): text and provenance."""

    text: str
    version: int  # 1 for the first upload; a write names the version it replaces
    updated_at: int  # epoch seconds
    updated_by: str  # the API key id


class AlertingStore(Protocol):
    """Per-tenant alerting state (the ``alerting`` table)."""

    def tenants(self) -> list[str]:
        """Tenants that have rule files or an Alertmanager configuration."""
        ...

    def rule_files(self, tenant: str) -> dict[str, StoredText]:
        """The tenant's rule files by name."""
        ...

    def put_rule_file(self, tenant: str, name: str, text: str, by: str, at: int, expected_version: int) -> bool:
        """Store a rule file if its stored version is ``expected_version`` (0: none yet); False otherwise."""
        ...

    def delete_rule_file(self, tenant: str, name: str) -> bool:
        """Delete a rule file (and its groups' states); False when there was none."""
        ...

    def group_states(self, tenant: str) -> dict[str, GroupState]:
        """Rule groups' evaluation states by ``<file>/<group>``."""
        ...

    def put_group_states(self, tenant: str, states: Mapping[str, GroupState]) -> None:
        """Store (overwrite) these groups' states."""
        ...

    def alertmanager_config(self, tenant: str) -> StoredText | None:
        """The tenant's Alertmanager-style configuration, or None (the default routing applies)."""
        ...

    def put_alertmanager_config(self, tenant: str, text: str, by: str, at: int, expected_version: int) -> bool:
        """Store the configuration if its stored version is ``expected_version`` (0: none yet)."""
        ...

    def correlation_config(self, tenant: str) -> StoredText | None:
        """The tenant's correlation settings document, or None (the defaults apply)."""
        ...

    def put_correlation_config(self, tenant: str, text: str, by: str, at: int, expected_version: int) -> bool:
        """Store the correlation document if its stored version is ``expected_version`` (0: none yet)."""
        ...

    def silences(self, tenant: str) -> list[Silence]:
        """Every silence of the tenant (pending, active and expired ones not yet dropped)."""
        ...

    def put_silence(self, tenant: str, silence: Silence) -> None:
        """Create or replace a silence (by id)."""
        ...

    def dispatcher_state(self, tenant: str) -> dict[str, Any] | None:
        """The dispatcher's saved state, or None."""
        ...

    def put_dispatcher_state(self, tenant: str, state: Mapping[str, Any]) -> None:
        """Save the dispatcher's state."""
        ...


@dataclass(frozen=True)
class NotificationRequest:
    """One message on the notifications topic: tell ``receiver`` (or every receiver already told about the
    incident, when None) about ``notification``."""

    notification: IncidentNotification
    receiver: str | None = None
    integrations: tuple[str, ...] = ()  # "slack[0]", ...: the receiver's integrations to use (all when empty)

    def to_json(self) -> dict[str, Any]:
        """The SNS message body."""
        return {
            "version": MESSAGE_VERSION,
            "receiver": self.receiver,
            "integrations": list(self.integrations),
            "notification": self.notification.to_dict(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NotificationRequest:
        """The inverse of :meth:`to_json`; ValueError (InvalidNotification) naming what is wrong."""
        if data.get("version") != MESSAGE_VERSION:
            raise ValueError(f"version: expected {MESSAGE_VERSION}, got {data.get('version')!r}")
        receiver = data.get("receiver")
        if receiver is not None and not isinstance(receiver, str):
            raise ValueError("receiver: expected a string or null")
        integrations: Sequence[Any] = data.get("integrations") or ()
        if not all(isinstance(i, str) for i in integrations):
            raise ValueError("integrations: expected a list of strings")
        return cls(IncidentNotification.from_dict(data.get("notification")), receiver, tuple(integrations))
