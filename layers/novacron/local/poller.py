"""Kinesis → function delivery with Lambda event-source-mapping semantics.

One worker thread per shard (one batch in flight per shard, records in shard order), each doing
what Lambda's poller does for a Kinesis mapping: gather up to ``batch_size`` records or until the
batching window closes, invoke, honour ``batchItemFailures`` by checkpointing before the lowest
failed record, retry failed batches with exponential back-off (bisecting them when
``bisect_on_error``), drop records older than ``max_record_age_s``, and send Lambda's on-failure
record to the declared queue when a batch is given up.

Retry accounting (the rule this module implements): every failed invocation counts one attempt
against the records it carried; the two halves of a bisected batch inherit the attempt count of the
batch they came from; a batch is given up once its attempts exceed ``max_retry_attempts``
(``-1`` = never). Records that fail on their own are thus isolated within about
``log2(batch_size)`` attempts, so ``max_retry_attempts`` should exceed that when bisecting.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from novacron.local.handlers import LocalFunction
from novacron.local.moto_server import ACCOUNT_ID, REGION
from novacron.wiring import StreamConsumer

log = logging.getLogger(__name__)

# Lambda's synchronous invocation payload limit; a batch is cut short before exceeding it.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# Per-record JSON overhead in the event besides the base64 data (keys, ARNs, ids); generous.
_RECORD_OVERHEAD_BYTES = 600
_LAMBDA_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/novacron-local"


@dataclass(frozen=True)
class PollerSettings:
    """Timing knobs; tests shorten them, the defaults suit a laptop."""

    poll_interval_s: float = 0.2
    retry_base_delay_s: float = 0.5
    retry_max_delay_s: float = 30.0
    max_payload_bytes: int = MAX_PAYLOAD_BYTES


@dataclass(frozen=True)
class KinesisRecord:
    """One record as read from a shard."""

    sequence_number: str
    partition_key: str
    data: bytes
    arrival: datetime

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> KinesisRecord:
        """From a ``GetRecords`` entry."""
        arrival = raw["ApproximateArrivalTimestamp"]
        if arrival.tzinfo is None:
            arrival = arrival.replace(tzinfo=UTC)
        return cls(raw["SequenceNumber"], raw["PartitionKey"], raw["Data"], arrival)

    @property
    def payload_size(self) -> int:
        """Bytes this record adds to the invocation payload."""
        return 4 * ((len(self.data) + 2) // 3) + _RECORD_OVERHEAD_BYTES


# --- event and message shapes (pure functions, unit-tested) -------------------------------------


def kinesis_event(records: Sequence[KinesisRecord], shard_id: str, stream_arn: str) -> dict[str, Any]:
    """The event Lambda passes to a function for a batch of Kinesis records."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": base64.b64encode(r.data).decode("ascii"),
                    "approximateArrivalTimestamp": r.arrival.timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{r.sequence_number}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": _LAMBDA_ROLE_ARN,
                "awsRegion": REGION,
                "eventSourceARN": stream_arn,
            }
            for r in records
        ]
    }


def _iso_millis(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def on_failure_record(
    records: Sequence[KinesisRecord],
    *,
    shard_id: str,
    stream_arn: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    function_error: str | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Lambda's on-failure destination record for a discarded Kinesis batch.

    It describes the batch (shard and sequence range) rather than carrying the data; a consumer
    of the queue re-reads the records from the stream if it needs them.
    """
    response_context: dict[str, Any] = {}
    if invoke_count > 0:
        response_context = {"statusCode": 200, "executedVersion": "$LATEST"}
        if function_error is not None:
            response_context["functionError"] = function_error
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": response_context,
        "version": "1.0",
        "timestamp": _iso_millis(now or datetime.now(UTC)),
        "KinesisBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0].sequence_number,
            "endSequenceNumber": records[-1].sequence_number,
            "approximateArrivalOfFirstRecord": _iso_millis(records[0].arrival),
            "approximateArrivalOfLastRecord": _iso_millis(records[-1].arrival),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


class BatchFailedError(Exception):
    """The function's response fails the whole batch (as Lambda treats a malformed failure list)."""


def first_failed_index(response: Any, records: Sequence[KinesisRecord]) -> int | None:
    """Index of the lowest failed record named by a partial batch response, or None if all passed.

    Lambda's rules: no ``batchItemFailures`` (or an empty list) means success; an identifier that is
    null, empty or not in the batch fails the whole batch.
    """
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if not failures:
        return None
    if not isinstance(failures, list):
        raise BatchFailedError("batchItemFailures is not a list")
    index_of = {r.sequence_number: i for i, r in enumerate(records)}
    lowest: int | None = None
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in index_of:
            raise BatchFailedError(f"invalid itemIdentifier {identifier!r}")
        index = index_of[identifier]
        lowest = index if lowest is None else min(lowest, index)
    return lowest


def retry_delay(attempts: int, settings: PollerSettings) -> float:
    """Exponential back-off after the ``attempts``-th failure."""
    return float(min(settings.retry_max_delay_s, settings.retry_base_delay_s * 2 ** max(0, attempts - 1)))


# --- the per-shard worker -----------------------------------------------------------------------


@dataclass
class _Segment:
    """A prefix slice of the shard buffer being (re)tried as one batch."""

    size: int
    attempts: int = 0
    last_error: str | None = None


@dataclass
class ShardStats:
    """Counters for one shard, for logs, tests and benchmarks."""

    invocations: int = 0
    records_delivered: int = 0
    failed_invocations: int = 0
    records_discarded: int = 0
    checkpoint: str | None = None


@dataclass
class _ShardState:
    shard_id: str
    iterator: str | None = None
    last_fetched: str | None = None
    buffer: list[KinesisRecord] = field(default_factory=list)
    segments: list[_Segment] = field(default_factory=list)
    # monotonic start time of the latest GetRecords that found the shard drained with nothing pending
    drained_poll_at: float = -1.0
    stats: ShardStats = field(default_factory=ShardStats)


class KinesisPoller:
    """One :class:`StreamConsumer`: a worker thread per shard of its stream."""

    def __init__(
        self,
        consumer: StreamConsumer,
        function: LocalFunction,
        *,
        kinesis: Any,
        stream_name: str,
        stream_arn: str,
        sqs: Any = None,
        on_failure_url: str | None = None,
        settings: PollerSettings | None = None,
    ) -> None:
        self.consumer = consumer
        self.function = function
        self._kinesis = kinesis
        self._sqs = sqs
        self.stream_name = stream_name
        self.stream_arn = stream_arn
        self._on_failure_url = on_failure_url
        self.settings = settings or PollerSettings()
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._shards: list[_ShardState] = []
        self._threads: list[threading.Thread] = []
        if consumer.parallelization_factor != 1:
            log.warning(
                "%s: parallelization_factor %d is not emulated locally; one batch per shard",
                consumer.function,
                consumer.parallelization_factor,
            )

    @property
    def name(self) -> str:
        """``function<-stream`` for logs."""
        return f"{self.consumer.function}<-{self.stream_name}"

    def start(self) -> None:
        """Discover the shards, position iterators and start one worker per shard."""
        shards = self._kinesis.list_shards(StreamName=self.stream_name)["Shards"]
        for shard in sorted(shards, key=lambda s: s["ShardId"]):
            state = _ShardState(shard["ShardId"])
            # Position now, not lazily: LATEST means "records put after the mapping was created".
            state.iterator = self._kinesis.get_shard_iterator(
                StreamName=self.stream_name,
                ShardId=state.shard_id,
                ShardIteratorType=self.consumer.starting_position,
            )["ShardIterator"]
            self._shards.append(state)
        for state in self._shards:
            thread = threading.Thread(
                target=self._run, args=(state,), name=f"poller:{self.name}:{state.shard_id}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        log.info("polling %s (%d shards) for %s", self.stream_name, len(self._shards), self.consumer.function)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers after their current invocation and join them."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not stop within %.1fs", thread.name, timeout)
        self._threads.clear()

    def stats(self) -> dict[str, ShardStats]:
        """Counters per shard id."""
        return {s.shard_id: s.stats for s in self._shards}

    def wait_until_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every shard has been read to its end *after* this call and nothing is pending.

        A read that starts after the call returns everything put before it, so a drained read proves
        the shard caught up to at least its latest sequence number at call time.
        """
        started = time.monotonic()
        deadline = started + timeout
        with self._changed:
            while True:
                if all(s.drained_poll_at >= started for s in self._shards):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    return False
                self._changed.wait(remaining)

    # --- worker internals ---

    def _run(self, state: _ShardState) -> None:
        while not self._stop.is_set():
            try:
                self._step(state)
            except Exception:
                # A poller must outlive transient errors (moto restarting, a bad record); Lambda's does.
                log.exception("%s %s: poller error; retrying", self.name, state.shard_id)
                self._stop.wait(max(self.settings.poll_interval_s, 0.1))

    def _step(self, state: _ShardState) -> None:
        if not state.segments:
            if not self._gather(state):
                return
            state.segments.append(_Segment(self._batch_size(state)))
        segment = state.segments[0]
        if self._discard_expired(state, segment):
            return
        batch = state.buffer[: segment.size]
        self._invoke(state, segment, batch)

    def _gather(self, state: _ShardState) -> bool:
        """Fill the buffer until a batch is due; False if stopping with nothing to deliver."""
        window_ends: float | None = None
        while not self._stop.is_set():
            poll_started = time.monotonic()
            room = self.consumer.batch_size - len(state.buffer)
            got = self._fetch(state, room) if room > 0 else 0
            now = time.monotonic()
            if not state.buffer:
                with self._changed:
                    state.drained_poll_at = poll_started
                    self._changed.notify_all()
                self._stop.wait(self.settings.poll_interval_s)
                continue
            if window_ends is None:
                # The window opens with the first record gathered, as Lambda's "batching window" does.
                window_ends = now + self.consumer.batching_window_s
            full = len(state.buffer) >= self.consumer.batch_size or self._payload_full(state)
            if full or now >= window_ends:
                return True
            if got < room:
                self._stop.wait(min(self.settings.poll_interval_s, max(0.0, window_ends - now)))
        return False

    def _fetch(self, state: _ShardState, limit: int) -> int:
        if state.iterator is None:
            kind, extra = "AFTER_SEQUENCE_NUMBER", {"StartingSequenceNumber": state.last_fetched}
            if state.last_fetched is None:
                kind, extra = self.consumer.starting_position, {}
            state.iterator = self._kinesis.get_shard_iterator(
                StreamName=self.stream_name, ShardId=state.shard_id, ShardIteratorType=kind, **extra
            )["ShardIterator"]
        try:
            response = self._kinesis.get_records(ShardIterator=state.iterator, Limit=min(limit, 10000))
        except Exception:
            state.iterator = None  # e.g. an expired iterator: re-position after the last record read
            raise
        state.iterator = response.get("NextShardIterator")
        records = [KinesisRecord.from_api(r) for r in response["Records"]]
        if records:
            state.buffer.extend(records)
            state.last_fetched = records[-1].sequence_number
        return len(records)

    def _payload_full(self, state: _ShardState) -> bool:
        return sum(r.payload_size for r in state.buffer) >= self.settings.max_payload_bytes

    def _batch_size(self, state: _ShardState) -> int:
        total, size = 0, 0
        for record in state.buffer[: self.consumer.batch_size]:
            total += record.payload_size
            if size and total > self.settings.max_payload_bytes:
                break
            size += 1
        return size

    def _discard_expired(self, state: _ShardState, segment: _Segment) -> bool:
        """Drop the records at the head that exceed ``max_record_age_s``; True if any were dropped."""
        if self.consumer.max_record_age_s < 0:
            return False
        oldest_allowed = datetime.now(UTC) - timedelta(seconds=self.consumer.max_record_age_s)
        expired = 0
        for record in state.buffer[: segment.size]:
            if record.arrival >= oldest_allowed:
                break
            expired += 1
        if not expired:
            return False
        self._give_up(state, state.buffer[:expired], "RecordAgeExceeded", segment)
        self._commit(state, expired)
        segment.size -= expired
        if segment.size == 0:
            state.segments.pop(0)
        return True

    def _invoke(self, state: _ShardState, segment: _Segment, batch: list[KinesisRecord]) -> None:
        event = kinesis_event(batch, state.shard_id, self.stream_arn)
        started = time.perf_counter()
        failed_at: int | None
        try:
            response = self.function.invoke(event)
            failed_at = first_failed_index(response, batch) if self.consumer.report_batch_item_failures else None
            error = None if failed_at is None else "partial batch failure"
        except Exception as exc:
            failed_at, error = None, f"{type(exc).__name__}: {exc}"
            segment.last_error = "Unhandled"
        elapsed_ms = (time.perf_counter() - started) * 1000
        state.stats.invocations += 1
        span = f"{len(batch)} records {batch[0].sequence_number}..{batch[-1].sequence_number}"
        attempt = segment.attempts + 1

        if error is None:
            log.debug("%s %s: %s, attempt %d: ok in %.1f ms", self.name, state.shard_id, span, attempt, elapsed_ms)
            self._commit(state, len(batch))
            state.stats.records_delivered += len(batch)
            state.segments.pop(0)
            return

        state.stats.failed_invocations += 1
        if failed_at is not None:
            # Checkpoint before the lowest failed record: everything before it is done.
            log.warning(
                "%s %s: %s, attempt %d: record %s failed; retrying from it",
                self.name,
                state.shard_id,
                span,
                attempt,
                batch[failed_at].sequence_number,
            )
            if failed_at > 0:
                self._commit(state, failed_at)
                state.stats.records_delivered += failed_at
                segment.size -= failed_at
                segment.attempts = 0  # a new head record: its count starts now
            segment.last_error = None
        else:
            log.warning("%s %s: %s, attempt %d failed: %s", self.name, state.shard_id, span, attempt, error)
        segment.attempts += 1

        limit = self.consumer.max_retry_attempts
        if limit >= 0 and segment.attempts > limit:
            self._give_up(state, state.buffer[: segment.size], "RetryAttemptsExhausted", segment)
            self._commit(state, segment.size)
            state.segments.pop(0)
            return
        if failed_at is None and self.consumer.bisect_on_error and segment.size > 1:
            half = segment.size // 2
            state.segments[0:1] = [
                _Segment(half, segment.attempts, segment.last_error),
                _Segment(segment.size - half, segment.attempts, segment.last_error),
            ]
        self._stop.wait(retry_delay(segment.attempts, self.settings))

    def _commit(self, state: _ShardState, count: int) -> None:
        """Advance the checkpoint past the first ``count`` buffered records."""
        state.stats.checkpoint = state.buffer[count - 1].sequence_number
        del state.buffer[:count]

    def _give_up(self, state: _ShardState, records: list[KinesisRecord], condition: str, segment: _Segment) -> None:
        state.stats.records_discarded += len(records)
        message = on_failure_record(
            records,
            shard_id=state.shard_id,
            stream_arn=self.stream_arn,
            function_arn=self.function.arn,
            condition=condition,
            invoke_count=segment.attempts,
            function_error=segment.last_error,
        )
        span = f"{records[0].sequence_number}..{records[-1].sequence_number}"
        if self._on_failure_url is None or self._sqs is None:
            log.warning(
                "%s %s: %s: discarding %d records %s (no on-failure destination)",
                self.name,
                state.shard_id,
                condition,
                len(records),
                span,
            )
            return
        self._sqs.send_message(QueueUrl=self._on_failure_url, MessageBody=json.dumps(message))
        log.warning(
            "%s %s: %s: %d records %s sent to the on-failure queue",
            self.name,
            state.shard_id,
            condition,
            len(records),
            span,
        )
