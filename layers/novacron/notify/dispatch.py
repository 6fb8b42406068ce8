"""Telling every receiver about one notification, at most once each, with failures dead-lettered.

Idempotency: each (notification, receiver) has a key (``IncidentNotification.delivery_key``). The
DeliveryLog *claims* it before sending and *records* the outcome after; a redelivered SNS message or a
retried invocation finds the key claimed and sends nothing. A claim carries a lease: if the invocation
that claimed it died before recording, the key can be claimed again once the lease has run out, so a
crash delays a notification but never drops it. (In AWS the log is meant to be a DynamoDB conditional put.)

A receiver that refuses for good, or keeps failing until the attempt limit or deadline, gets a
DeadLetter carrying the reason, the attempt count and the notification itself, for an operator to
read and redrive. Only if the dead letter cannot be stored does dispatch raise, so that the
invocation is retried rather than the notification lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from novacron.notify.delivery import Channel, DeliveryFailed, Sender
from novacron.notify.model import IncidentNotification
from novacron.notify.ratelimit import RateLimit


def notifier_name(receiver: str, integration: str) -> str:
    """A notifier's name, ``<receiver>/<integration>`` (``oncall/pagerduty[0]``): delivery keys and dead
    letters carry it."""
    return f"{receiver}/{integration}"


def split_notifier_name(name: str) -> tuple[str, str]:
    """The inverse of :func:`notifier_name`: (receiver, integration); ``(name, "")`` for a bare receiver."""
    receiver, slash, integration = name.rpartition("/")
    return (receiver, integration) if slash else (name, "")


class Notifier(Protocol):
    """One configured receiver of one tenant."""

    @property
    def name(self) -> str:
        """The receiver's name, unique within the tenant."""
        ...

    @property
    def rate_limit(self) -> RateLimit | None:
        """How fast this receiver may be sent to (None: no limit)."""
        ...

    def deliver(self, notification: IncidentNotification, channel: Channel) -> str:
        """Tell the receiver; return a short description of what was done; raise DeliveryFailed."""
        ...


class ReceiverConfig(Protocol):
    """What every receiver configuration has (the dataclasses SlackReceiver, PagerDutyReceiver, …)."""

    @property
    def name(self) -> str: ...

    @property
    def rate_limit(self) -> RateLimit | None: ...


R = TypeVar("R", bound=ReceiverConfig)


class ConfiguredNotifier(Generic[R]):
    """Base of the notifiers: their name and rate limit are their receiver configuration's."""

    def __init__(self, receiver: R) -> None:
        self.receiver = receiver

    @property
    def name(self) -> str:
        """The receiver's name."""
        return self.receiver.name

    @property
    def rate_limit(self) -> RateLimit | None:
        """The receiver's rate limit."""
        return self.receiver.rate_limit


class OutcomeStatus(StrEnum):
    """What became of one notification for one receiver."""

    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"
    DUPLICATE = "duplicate"  # already claimed by an earlier delivery of the same notification


@dataclass(frozen=True)
class DeliveryOutcome:
    """The result of one (notification, receiver) delivery."""

    key: str
    receiver: str
    status: OutcomeStatus
    detail: str = ""
    attempts: int = 0


@dataclass(frozen=True)
class DeadLetter:
    """A notification a receiver did not get, with why."""

    key: str
    tenant: str
    receiver: str
    incident_id: str
    action: str
    sequence: int
    reason: str
    attempts: int
    retryable: bool  # True: the receiver kept failing (worth a redrive); False: it refused the request
    failed_at: float
    notification: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (a dead-letter queue message)."""
        return dict(self.__dict__)


class DeliveryLog(Protocol):
    """Which deliveries were claimed and how they ended."""

    def claim(self, key: str, now: float, lease_s: float) -> bool:
        """Own ``key`` if it was never claimed, or its claim has no outcome and its lease ran out."""
        ...

    def record(self, key: str, outcome: DeliveryOutcome) -> None:
        """Store the final outcome of ``key`` (it is never claimable again)."""
        ...


class DeadLetters(Protocol):
    """Where failed deliveries go (an SQS queue in AWS)."""

    def put(self, letter: DeadLetter) -> None: ...


class Dispatcher:
    """Delivers notifications to receivers through one Sender, a DeliveryLog and DeadLetters."""

    def __init__(self, sender: Sender, log: DeliveryLog, dead_letters: DeadLetters, lease_s: float | None = None):
        self.sender = sender
        self.log = log
        self.dead_letters = dead_letters
        # The lease outlives a delivery's deadline, so a slow but live delivery is never claimed twice.
        self.lease_s = lease_s if lease_s is not None else sender.policy.deadline_s + 60.0

    def dispatch(self, notification: IncidentNotification, notifiers: Sequence[Notifier]) -> list[DeliveryOutcome]:
        """Deliver to each receiver in turn; one receiver's failure does not hold back the others."""
        return [self._deliver_once(notification, notifier) for notifier in notifiers]

    def _deliver_once(self, notification: IncidentNotification, notifier: Notifier) -> DeliveryOutcome:
        key = notification.delivery_key(notifier.name)
        clock = self.sender.clock
        if not self.log.claim(key, clock.now(), self.lease_s):
            return DeliveryOutcome(key, notifier.name, OutcomeStatus.DUPLICATE, "already delivered or in progress")
        channel = self.sender.channel(f"{notification.tenant}/{notifier.name}", notifier.rate_limit)
        try:
            detail = notifier.deliver(notification, channel)
            outcome = DeliveryOutcome(key, notifier.name, OutcomeStatus.DELIVERED, detail, channel.attempts)
        except DeliveryFailed as failure:
            self.dead_letters.put(
                DeadLetter(
                    key=key,
                    tenant=notification.tenant,
                    receiver=notifier.name,
                    incident_id=notification.incident_id,
                    action=notification.action.value,
                    sequence=notification.sequence,
                    reason=failure.reason,
                    attempts=failure.attempts,
                    retryable=failure.retryable,
                    failed_at=clock.now(),
                    notification=notification.to_dict(),
                )
            )
            outcome = DeliveryOutcome(key, notifier.name, OutcomeStatus.DEAD_LETTERED, failure.reason, failure.attempts)
        self.log.record(key, outcome)
        return outcome
