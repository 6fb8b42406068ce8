"""Redriving the notifier's dead letters (the ``notify-failures`` queue) once their cause is fixed.

Each message on the queue is one of (novacron.adapters.dead_letters):

- ``kind: delivery``, a DeadLetter. A *retryable* one (the receiver kept failing: an outage, a rotated
  webhook) is redriven: its delivery key is released in the DeliveryLog (else the notifier would drop
  the new request as a duplicate), then a NotificationRequest for that one receiver integration is
  published. A *non-retryable* one (the receiver refused the request) is kept: it needs a human.
- ``kind: malformed``: kept, it would be refused again.
- no ``kind``: Lambda's on-failure record (``RetriesExhausted``) of a notifier invocation whose stores
  failed. The request in its SNS payload is republished as it is; receivers it already reached find
  their keys recorded and are not told twice.

Safety: a key is released only while its recorded outcome is ``dead_lettered``; a key delivered since
(a duplicate letter, an earlier redrive that stopped before deleting) is never released, and its letter
is deleted as done. Every step is idempotent per delivery key: release, publish, then delete, so a
redrive stopped at any point can be run again. Kept and skipped letters stay hidden while the run
lasts (so that one run sees each letter once) and are made visible again when it ends.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from novacron.alert.state import NotificationRequest
from novacron.notify.dispatch import OutcomeStatus, split_notifier_name
from novacron.notify.model import IncidentNotification

RECEIVE_BATCH = 10  # SQS's ReceiveMessage maximum
DEFAULT_LIMIT = 1000
ALREADY_DELIVERED = "already delivered since"  # the letter is done: deleted (dry: would be)
NOT_THIS_TENANT = "another tenant"
NOT_THIS_RECEIVER = "another receiver"


@dataclass(frozen=True)
class QueuedMessage:
    """One message received from the dead-letter queue."""

    message_id: str
    receipt: str  # the receipt handle of this receive: what delete and make_visible take
    body: str


class DeadLetterQueue(Protocol):
    """The dead-letter queue (SQS in AWS)."""

    def receive(self, max_messages: int) -> list[QueuedMessage]:
        """Up to ``max_messages`` (at most 10) messages, hidden from other readers for a while."""
        ...

    def delete(self, receipts: Sequence[str]) -> None:
        """Remove handled messages."""
        ...

    def make_visible(self, receipts: Sequence[str]) -> None:
        """Show received messages to other readers again, now."""
        ...


class ReleasableLog(Protocol):
    """The notifier's DeliveryLog, seen by the redrive."""

    def release(self, key: str) -> bool:
        """Make ``key`` claimable again if its outcome is dead-lettered (True: claimable now)."""
        ...

    def outcome(self, key: str) -> str | None:
        """The recorded outcome status of ``key`` (None: unclaimed, or claimed and not finished)."""
        ...


class RequestPublisher(Protocol):
    """The ``notifications`` topic (novacron.adapters.notification_topic.NotificationTopic)."""

    def publish(self, requests: Sequence[NotificationRequest]) -> None:
        """Publish every request, or raise."""
        ...


@dataclass(frozen=True)
class Letter:
    """What one dead-letter message is, and what a redrive does with it."""

    what: str  # for people: the delivery key, or the kind of message
    requests: tuple[NotificationRequest, ...] = ()  # to publish (empty: kept)
    release_key: str | None = None  # to release first (a failed delivery)
    keep_reason: str | None = None  # why it needs a human instead
    tenants: frozenset[str] = frozenset()  # empty: unknown
    receivers: tuple[frozenset[str], ...] = ()  # per request or letter: the names it answers to


def classify(body: str) -> Letter:
    """What a dead-letter message body is: a letter to redrive (with the key to release) or to keep."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        return Letter("unreadable message", keep_reason=f"not JSON: {exc}")
    if not isinstance(data, dict):
        return Letter("unreadable message", keep_reason="not a JSON object")
    kind = data.get("kind")
    if kind == "delivery":
        return _delivery(data)
    if kind == "malformed":
        return Letter("malformed request", keep_reason=f"refused by the notifier: {data.get('reason', '')}")
    if kind is None and isinstance(data.get("requestPayload"), dict):
        return _on_failure(data)
    return Letter("unreadable message", keep_reason=f"unknown dead letter kind {kind!r}")


def _delivery(data: Mapping[str, Any]) -> Letter:
    key, receiver, tenant = data.get("key"), data.get("receiver"), data.get("tenant")
    if not (isinstance(key, str) and isinstance(receiver, str) and isinstance(tenant, str)):
        return Letter("unreadable delivery", keep_reason="key, receiver and tenant: expected strings")
    # A letter's receiver is the notifier's name, ``<receiver>/<integration>``.
    name, integration = split_notifier_name(receiver)
    tenants, receivers = frozenset({tenant}), (frozenset({receiver, name}),)

    def kept(reason: str) -> Letter:
        return Letter(key, keep_reason=reason, tenants=tenants, receivers=receivers)

    if data.get("retryable") is not True:
        return kept(f"the receiver refused it: {data.get('reason', '')}")
    try:
        notification = IncidentNotification.from_dict(data.get("notification"))
    except ValueError as exc:
        return kept(f"its notification cannot be read: {exc}")
    # The key is recomputed from the notification, so only the letter's own tenant's key is ever released.
    if notification.tenant != tenant or notification.delivery_key(receiver) != key:
        return kept("its key, tenant and receiver do not match its notification")
    request = NotificationRequest(notification, name, (integration,) if integration else ())
    return Letter(key, (request,), release_key=key, tenants=tenants, receivers=receivers)


def _on_failure(data: Mapping[str, Any]) -> Letter:
    condition = _object(data, "requestContext").get("condition", "?")
    what = f"on-failure record ({condition}: {_object(data, 'responsePayload').get('errorType', '?')})"
    records = _object(data, "requestPayload").get("Records")
    if not isinstance(records, list) or not records:
        return Letter(what, keep_reason="its requestPayload has no SNS records")
    requests: list[NotificationRequest] = []
    for i, record in enumerate(records):
        message = (_object(record, "Sns") if isinstance(record, dict) else {}).get("Message")
        try:
            requests.append(NotificationRequest.from_json(json.loads(str(message))))
        except (ValueError, TypeError, AttributeError) as exc:
            return Letter(what, keep_reason=f"record {i} is not a notification request: {exc}")
    of = ", ".join(f"{r.notification.tenant}/{r.notification.incident_id}/{r.notification.sequence}" for r in requests)
    return Letter(
        f"{what} of {of}",
        tuple(requests),
        tenants=frozenset(r.notification.tenant for r in requests),
        receivers=tuple(_request_names(r) for r in requests),
    )


def _object(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """``data[name]`` if it is a JSON object, else an empty one."""
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _request_names(request: NotificationRequest) -> frozenset[str]:
    """The receiver names a request answers to (none: a fan-out to every receiver told before)."""
    if request.receiver is None:
        return frozenset()
    return frozenset({request.receiver, *(f"{request.receiver}/{i}" for i in request.integrations)})


@dataclass(frozen=True)
class Selection:
    """Which letters a redrive handles: one tenant's, one receiver's (``name`` or ``name/integration``)."""

    tenant: str | None = None
    receiver: str | None = None

    def excludes(self, letter: Letter) -> str | None:
        """Why ``letter`` is not selected, or None. Every request of a letter must match."""
        if self.tenant is not None and letter.tenants != {self.tenant}:
            return NOT_THIS_TENANT
        if self.receiver is not None and (
            not letter.receivers or any(self.receiver not in names for names in letter.receivers)
        ):
            return NOT_THIS_RECEIVER
        return None


@dataclass(frozen=True)
class Kept:
    """A letter left on the queue, with why."""

    message_id: str
    what: str
    reason: str


@dataclass
class RedriveReport:
    """What one redrive did (or, dry, would do)."""

    dry_run: bool
    redriven: list[str] = field(default_factory=list)  # what was republished, one entry per letter
    kept: list[Kept] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # by reason

    def summary(self) -> str:
        """One line for people."""
        verb = "would redrive" if self.dry_run else "redriven"
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items())) or "none"
        return f"{verb}: {len(self.redriven)}, kept: {len(self.kept)}, skipped: {skipped}"


Progress = Callable[[str], None]


class _Key(Enum):
    """A letter's delivery key, after the redrive asked the DeliveryLog to release it."""

    FREE = "free"  # claimable: the notifier will deliver the redriven request
    DELIVERED = "delivered"  # delivered since: the letter is done
    BUSY = "busy"  # claimed with no outcome yet: a delivery is under way


def _quiet(_: str) -> None:
    pass


class Redriver:
    """Reads the dead-letter queue and redrives what can be redriven, up to ``limit`` selected letters."""

    def __init__(
        self,
        queue: DeadLetterQueue,
        log: ReleasableLog,
        publisher: RequestPublisher,
        selection: Selection | None = None,
        limit: int = DEFAULT_LIMIT,
        dry_run: bool = False,
        progress: Progress = _quiet,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit: expected at least 1, got {limit}")
        self.queue = queue
        self.log = log
        self.publisher = publisher
        self.selection = selection or Selection()
        self.limit = limit
        self.dry_run = dry_run
        self.progress = progress

    def run(self) -> RedriveReport:
        """Redrive until the queue has no more visible letters or ``limit`` letters were selected.

        A port failing raises: letters received and not deleted come back after the queue's visibility
        timeout, and running the redrive again is safe.
        """
        report = RedriveReport(self.dry_run)
        held: dict[str, str] = {}  # message id → receipt of the letters left on the queue
        selected = 0
        while selected < self.limit:
            batch = self.queue.receive(min(RECEIVE_BATCH, self.limit - selected))
            fresh = [m for m in batch if m.message_id not in held]
            held.update((m.message_id, m.receipt) for m in batch if m.message_id in held)
            if not fresh:  # empty, or only letters held since the start that came back after their timeout
                break
            selected += self._handle(fresh, report, held)
        if held:
            self.queue.make_visible(list(held.values()))
        return report

    def _handle(self, batch: Iterable[QueuedMessage], report: RedriveReport, held: dict[str, str]) -> int:
        """Handle one received batch; the number of selected letters in it."""
        selected = 0
        publish: list[NotificationRequest] = []
        delete: list[str] = []
        redriven: list[str] = []
        for message in batch:
            letter = classify(message.body)
            excluded = self.selection.excludes(letter)
            if excluded is not None:
                report.skipped[excluded] += 1
                held[message.message_id] = message.receipt
                continue
            selected += 1
            key_state = self._free_key(letter.release_key) if letter.keep_reason is None else None
            if key_state is _Key.DELIVERED:
                report.skipped[ALREADY_DELIVERED] += 1
                self.progress(f"{letter.what}: {ALREADY_DELIVERED}, letter {'kept' if self.dry_run else 'deleted'}")
                if self.dry_run:
                    held[message.message_id] = message.receipt
                else:
                    delete.append(message.receipt)
                continue
            keep = letter.keep_reason
            if key_state is _Key.BUSY:
                keep = f"a delivery of {letter.release_key} is under way (claimed, no outcome yet): redrive it later"
            if keep is not None:
                report.kept.append(Kept(message.message_id, letter.what, keep))
                self.progress(f"kept {letter.what}: {keep}")
                held[message.message_id] = message.receipt
            elif self.dry_run:
                report.redriven.append(letter.what)
                self.progress(f"would redrive {letter.what}")
                held[message.message_id] = message.receipt
            else:
                publish.extend(letter.requests)
                delete.append(message.receipt)
                redriven.append(letter.what)
        # Published before deleted: a stop in between leaves the letter to be redriven again (idempotent).
        if publish:
            self.publisher.publish(publish)
        if delete:
            self.queue.delete(delete)
        for what in redriven:
            self.progress(f"redriven {what}")
        report.redriven.extend(redriven)
        return selected

    def _free_key(self, key: str | None) -> _Key:
        """Release ``key`` (dry: only look at it) and say what state it is in."""
        if key is None:
            return _Key.FREE  # an on-failure record: its requests were never recorded as delivered
        if not self.dry_run and self.log.release(key):
            return _Key.FREE
        outcome = self.log.outcome(key)
        if outcome == OutcomeStatus.DELIVERED:
            return _Key.DELIVERED
        return _Key.FREE if self.dry_run else _Key.BUSY
