"""The notifier's state in DynamoDB (pynamodb): the ``notify-state`` table, one item kind per protocol.

Every ``pk`` starts with the tenant (the notify keys all do: ``<tenant>/…``); ``expires_at`` is the TTL.

- delivery claims (DeliveryLog): ``pk`` = ``<tenant>#delivery#<incident>/<sequence>/<receiver>``,
  ``sk`` = ``claim``; ``lease_until``, then ``outcome``, ``detail``, ``attempts``;
- Slack messages (MessageRefs): ``<tenant>#slack#<incident>/<receiver>``, ``ref``; ``channel``, ``ts``,
  ``sequence``;
- rate-limit buckets: ``<tenant>#ratelimit#<receiver>``, ``bucket``; ``tokens``, ``updated_at``;
- receivers told about an incident: ``<tenant>#told#<incident>``, ``receivers``; ``receivers`` (a string set);
- the inbox: ``<tenant>#inbox``, ``<received ms:013d>#<incident>#<sequence:010d>#<receiver>``;
  ``incident_id``, ``entry`` (JSON).

A delivery is claimed with a conditional put: it succeeds if there is no claim yet, or if the claim has
no outcome and its lease ran out (the invocation that held it died). The outcome is recorded with an
update, after which the claim never succeeds again, unless a redrive of its dead letter *releases* it:
a delete conditional on the outcome being ``dead_lettered``, so a delivered key is never released.
Told receivers are added to a string set (``ADD``), so concurrent invocations never lose each other's
receivers. Rate-limit buckets are read and written
without a condition: two instances sending to one receiver at the same instant may both take the last
token, which the receiver's own 429 and the retries then absorb.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import DeleteError, PutError
from pynamodb.models import Model

from novacron.adapters.dynamodb import bind_model
from novacron.notify.dispatch import DeliveryOutcome, OutcomeStatus
from novacron.notify.inbox import InboxEntry
from novacron.notify.ratelimit import BucketState
from novacron.notify.slack import MessageRef

DAY_S = 86_400
MAX_DETAIL = 1_000  # a delivery's detail (an answer's excerpt) kept with its outcome
Clock = Callable[[], float]


class _ClaimItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    lease_until = NumberAttribute()
    outcome = UnicodeAttribute(null=True)
    detail = UnicodeAttribute(null=True)
    attempts = NumberAttribute(null=True)
    expires_at = NumberAttribute()


class _RefItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    channel = UnicodeAttribute()
    ts = UnicodeAttribute()
    sequence = NumberAttribute()
    expires_at = NumberAttribute()


class _BucketItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    tokens = NumberAttribute()
    updated_at = NumberAttribute()
    expires_at = NumberAttribute()


class _ToldItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    receivers = UnicodeSetAttribute(null=True)
    expires_at = NumberAttribute(null=True)


class _InboxItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    incident_id = UnicodeAttribute()
    entry = UnicodeAttribute()
    expires_at = NumberAttribute()


def scoped_pk(kind: str, key: str) -> str:
    """``<tenant>#<kind>#<rest>`` for a notify key ``<tenant>/<rest>`` (tenant ids hold no ``/`` nor ``#``)."""
    tenant, _, rest = key.partition("/")
    return f"{tenant}#{kind}#{rest}"


class DynamoDeliveryLog:
    """DeliveryLog: claims with a lease, then outcomes, as conditional writes."""

    def __init__(self, table_name: str, ttl_days: int = 30, clock: Clock = time.time) -> None:
        self._model = bind_model(_ClaimItem, table_name)
        self._ttl_s = ttl_days * DAY_S
        self._clock = clock

    def claim(self, key: str, now: float, lease_s: float) -> bool:
        """Own ``key`` if it was never claimed, or its claim has no outcome and its lease ran out."""
        m = self._model
        item = m(scoped_pk("delivery", key), "claim", lease_until=now + lease_s, expires_at=self._expiry())
        never_claimed = m.pk.does_not_exist()
        abandoned = m.outcome.does_not_exist() & (m.lease_until < now)
        try:
            item.save(condition=never_claimed | abandoned)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def record(self, key: str, outcome: DeliveryOutcome) -> None:
        """Store the final outcome of ``key``."""
        m = self._model
        m(scoped_pk("delivery", key), "claim").update(
            actions=[
                m.outcome.set(str(outcome.status)),
                m.detail.set(outcome.detail[:MAX_DETAIL]),
                m.attempts.set(outcome.attempts),
                m.expires_at.set(self._expiry()),
            ]
        )

    def release(self, key: str) -> bool:
        """Make ``key`` claimable again if its recorded outcome is dead-lettered (for a redrive).

        True: the key is claimable now (its claim was removed, or there was none: never made, or
        expired). False: it was delivered, or is claimed with no outcome yet (a delivery under way).
        """
        m = self._model
        dead_lettered = m.outcome == str(OutcomeStatus.DEAD_LETTERED)
        try:
            m(scoped_pk("delivery", key), "claim").delete(condition=dead_lettered | m.pk.does_not_exist())
        except DeleteError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def table_exists(self) -> bool:
        """Whether the table exists (the redrive CLI checks its argument before changing anything)."""
        return bool(self._model.exists())

    def outcome(self, key: str) -> str | None:
        """The recorded outcome status of ``key`` (None: unclaimed, or claimed and not finished)."""
        try:
            return self._model.get(scoped_pk("delivery", key), "claim").outcome  # type: ignore[no-any-return]
        except self._model.DoesNotExist:
            return None

    def _expiry(self) -> int:
        return int(self._clock()) + self._ttl_s


class DynamoMessageRefs:
    """MessageRefs: where each incident's Slack message is."""

    def __init__(self, table_name: str, ttl_days: int = 90, clock: Clock = time.time) -> None:
        self._model = bind_model(_RefItem, table_name)
        self._ttl_s = ttl_days * DAY_S
        self._clock = clock

    def get(self, key: str) -> MessageRef | None:
        """The incident's message in one receiver, if posted."""
        try:
            item = self._model.get(scoped_pk("slack", key), "ref", consistent_read=True)
        except self._model.DoesNotExist:
            return None
        return MessageRef(item.channel, item.ts, int(item.sequence))

    def put(self, key: str, ref: MessageRef) -> None:
        """Remember the message and the update it shows."""
        expires_at = int(self._clock()) + self._ttl_s
        self._model(
            scoped_pk("slack", key), "ref", channel=ref.channel, ts=ref.ts, sequence=ref.sequence, expires_at=expires_at
        ).save()


class DynamoRateLimits:
    """RateLimitStore: one bucket item per tenant and receiver, shared by every function instance."""

    def __init__(self, table_name: str, ttl_days: int = 1) -> None:
        self._model = bind_model(_BucketItem, table_name)
        self._ttl_s = ttl_days * DAY_S

    def load(self, key: str) -> BucketState | None:
        """The bucket of ``key``, if it was used."""
        try:
            item = self._model.get(scoped_pk("ratelimit", key), "bucket", consistent_read=True)
        except self._model.DoesNotExist:
            return None
        return BucketState(float(item.tokens), float(item.updated_at))

    def save(self, key: str, state: BucketState) -> None:
        """Store the bucket of ``key`` (an idle bucket is full again within a day: the item expires)."""
        expires_at = math.ceil(state.updated_at) + self._ttl_s
        self._model(
            scoped_pk("ratelimit", key),
            "bucket",
            tokens=state.tokens,
            updated_at=state.updated_at,
            expires_at=expires_at,
        ).save()


class DynamoToldReceivers:
    """ToldReceivers: the receivers told about each incident."""

    def __init__(self, table_name: str, ttl_days: int = 90, clock: Clock = time.time) -> None:
        self._model = bind_model(_ToldItem, table_name)
        self._ttl_s = ttl_days * DAY_S
        self._clock = clock

    def told(self, tenant: str, incident_id: str) -> list[str]:
        """The receivers told about the incident so far, sorted."""
        try:
            item = self._model.get(f"{tenant}#told#{incident_id}", "receivers", consistent_read=True)
        except self._model.DoesNotExist:
            return []
        return sorted(item.receivers or ())

    def add_told(self, tenant: str, incident_id: str, receiver: str) -> None:
        """Add ``receiver`` to the incident's set (an atomic ADD)."""
        m = self._model
        m(f"{tenant}#told#{incident_id}", "receivers").update(
            actions=[m.receivers.add({receiver}), m.expires_at.set(int(self._clock()) + self._ttl_s)]
        )


class DynamoInbox:
    """InboxStore: each tenant's inbox in one partition, sorted by arrival."""

    def __init__(self, table_name: str, ttl_days: int = 30) -> None:
        self._model = bind_model(_InboxItem, table_name)
        self._ttl_s = ttl_days * DAY_S

    def append(self, entry: InboxEntry) -> None:
        """Store one entry (a repeat of the same entry rewrites the same item)."""
        e = entry
        sk = f"{int(e.received_at * 1000):013d}#{e.incident_id}#{e.sequence:010d}#{e.receiver}"
        self._model(
            f"{e.tenant}#inbox",
            sk,
            incident_id=e.incident_id,
            entry=json.dumps(e.to_dict(), separators=(",", ":")),
            expires_at=math.ceil(e.received_at) + self._ttl_s,
        ).save()

    def latest(self, tenant: str, limit: int, incident_id: str | None = None) -> list[InboxEntry]:
        """The tenant's newest ``limit`` entries (of one incident, when given), newest first."""
        m = self._model
        condition = (m.incident_id == incident_id) if incident_id is not None else None
        items = m.query(f"{tenant}#inbox", filter_condition=condition, scan_index_forward=False, page_size=limit)
        return [InboxEntry(**json.loads(item.entry)) for item in itertools.islice(items, limit)]
