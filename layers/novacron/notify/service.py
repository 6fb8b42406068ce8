"""The notifier function's logic: one NotificationRequest (the ``notifications`` topic) → its receivers.

For the request's tenant, the Alertmanager-style configuration (the ``alerting`` table; none stored: the
default, everything to the local inbox) names the receivers and their integrations
(novacron.notify.receivers). The receiver the request names is told, and remembered as told about the
incident; a request without a receiver (an incident acknowledged, resolved or reopened by hand) goes
to every receiver told about the incident before. The notify Dispatcher does the rest: at most once
per (notification, receiver integration) through the DeliveryLog, retries and rate limits through the
Sender, and a dead letter with the reason for a delivery that fails for good or keeps failing.

What raises (so that Lambda retries the invocation, then sends it to the subscription's on-failure
queue): the stores themselves failing (configuration, the told record, the delivery log, the dead
letters). A delivery's failure never raises: it is a dead letter, and the other receivers still get
the notification.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from novacron.alert.amconfig import AlertmanagerConfig, ConfigError, parse_config
from novacron.alert.state import NotificationRequest, StoredText
from novacron.notify.dispatch import DeliveryOutcome, Dispatcher, Notifier
from novacron.notify.receivers import DEFAULT_CONFIG, Outlets, UnusableNotifier, notifiers_for

CONFIG_CACHE_SIZE = 256


class ConfigSource(Protocol):
    """Where tenants' Alertmanager configurations are (the AlertingStore of novacron.alert.state)."""

    def alertmanager_config(self, tenant: str) -> StoredText | None:
        """The tenant's configuration text, or None."""
        ...


class ToldReceivers(Protocol):
    """Which receivers were told about an incident (the notify-state table)."""

    def told(self, tenant: str, incident_id: str) -> list[str]:
        """The receivers told about the incident so far, sorted."""
        ...

    def add_told(self, tenant: str, incident_id: str, receiver: str) -> None:
        """Remember that ``receiver`` was told about the incident."""
        ...


@dataclass(frozen=True)
class DeliveryReport:
    """What one request became: an outcome per receiver integration."""

    receivers: tuple[str, ...]
    outcomes: tuple[DeliveryOutcome, ...] = field(default_factory=tuple)

    def counts(self) -> dict[str, int]:
        """Outcomes by status (for logs and metrics)."""
        return dict(Counter(str(o.status) for o in self.outcomes))


class NotificationService:
    """Delivers NotificationRequests to the tenant's configured receivers."""

    def __init__(self, configs: ConfigSource, told: ToldReceivers, dispatcher: Dispatcher, outlets: Outlets) -> None:
        self.configs = configs
        self.told = told
        self.dispatcher = dispatcher
        self.outlets = outlets
        # Parsed configurations by (tenant, version): a warm function parses each version once.
        self._parsed: dict[tuple[str, int], AlertmanagerConfig | str] = {}

    def deliver(self, request: NotificationRequest) -> DeliveryReport:
        """Tell the request's receiver (or every receiver told before) about its notification."""
        n = request.notification
        if request.receiver is not None:
            # Remembered before sending: a later hand-made update reaches it even if this delivery fails.
            self.told.add_told(n.tenant, n.incident_id, request.receiver)
            receivers: Sequence[str] = [request.receiver]
        else:
            receivers = self.told.told(n.tenant, n.incident_id)
        if not receivers:
            return DeliveryReport(())
        config = self._config(n.tenant)
        notifiers: list[Notifier] = []
        for receiver in receivers:
            if isinstance(config, str):
                notifiers.append(UnusableNotifier(receiver, config))
            else:
                # Integrations named by the request are its receiver's; a fan-out tells every integration.
                named = request.integrations if request.receiver is not None else ()
                notifiers += notifiers_for(config, receiver, n, self.outlets, named)
        return DeliveryReport(tuple(receivers), tuple(self.dispatcher.dispatch(n, notifiers)))

    def _config(self, tenant: str) -> AlertmanagerConfig | str:
        """The tenant's parsed configuration, or why it cannot be used."""
        stored = self.configs.alertmanager_config(tenant)
        if stored is None:
            return DEFAULT_CONFIG
        key = (tenant, stored.version)
        if key not in self._parsed:
            if len(self._parsed) >= CONFIG_CACHE_SIZE:
                self._parsed.clear()
            try:
                self._parsed[key] = parse_config(stored.text)
            except ConfigError as exc:  # validated on upload; an older stored version may not pass any more
                self._parsed[key] = f"the tenant's Alertmanager configuration v{stored.version} is invalid: {exc}"
        return self._parsed[key]
