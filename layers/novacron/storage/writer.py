"""The metrics writer: stream records in, hot-tier blocks, series index entries and archive objects out.

Every key written is derived from the record's content and its Kinesis sequence number, so a
retried or replayed record rewrites the same items and leaves exactly one copy of each sample.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

from novacron.ingest.validate import SeriesValidator
from novacron.protocols.wire import DecodedSeries, WireFormatError, decode_series
from novacron.records import RecordFormatError, SeriesRecord, decode_record
from novacron.retention.hot import BatchRetention, RetentionPolicies
from novacron.series import Labels, metric_name
from novacron.storage.blocks import (
    COMPACTION_WINDOW_MS,
    LATE_AFTER_MS,
    MAX_BLOCK_SAMPLES,
    MAX_BLOCK_SPAN_MS,
    Block,
    block_partition_key,
    block_sort_key,
    encode_block,
    encode_series_table,
    late_partition_key,
    table_partition_key,
    window_starts,
)

DAY_MS = 86_400_000


@dataclass(frozen=True)
class BlockItem:
    """One hot-tier item."""

    pk: str
    sk: str
    data: bytes
    samples: int
    min_ts: int
    max_ts: int
    expires_at: int  # epoch seconds, DynamoDB TTL
    is_series_table: bool = False  # a series table (see blocks.py) rather than a block


@dataclass(frozen=True)
class SeriesEntry:
    """A series seen on a day: what the index stores for label and series lookups."""

    tenant: str
    day: str  # YYYY-MM-DD (UTC)
    series_id: str
    labels: Labels

    @property
    def metric(self) -> str:
        return metric_name(self.labels)


class BlockStore(Protocol):
    """The hot tier."""

    def put_blocks(self, items: Sequence[BlockItem]) -> None:
        """Write items (overwriting items with the same keys)."""
        ...

    def query_blocks(self, pk: str, sk_low: str, sk_high: str) -> Iterable[bytes]:
        """Block payloads of ``pk`` with ``sk_low <= sk <= sk_high``."""
        ...

    def get_items(self, pk: str, sks: Sequence[str]) -> dict[str, bytes]:
        """Payloads of the items ``(pk, sk)`` that exist, by sort key."""
        ...

    def query_items(
        self, pk: str, sk_low: str, sk_high: str, limit: int | None = None, consistent: bool = False
    ) -> Iterable[StoredItem]:
        """The items of ``pk`` with ``sk_low <= sk <= sk_high`` (the first ``limit``), in sort-key order;
        ``consistent`` reads see every write that completed before."""
        ...

    def delete_items(self, pk: str, sks: Sequence[str]) -> None:
        """Delete the items ``(pk, sk)`` (those that do not exist are ignored)."""
        ...


@dataclass(frozen=True)
class StoredItem:
    """A hot-tier item as read back: what compaction and rollup reads need beside the payload."""

    sk: str
    data: bytes
    max_ts: int


class IndexStore(Protocol):
    """The series index."""

    def put_series(self, entries: Sequence[SeriesEntry], expires_at: int) -> None:
        """Record series (idempotent)."""
        ...

    def series_of_metric(self, tenant: str, day: str, metric: str) -> list[SeriesEntry]:
        """Series of one metric seen on one day."""
        ...

    def label_pairs(self, tenant: str, day: str, name: str | None = None) -> list[tuple[str, str]]:
        """(name, value) pairs seen on one day, optionally of one label name only."""
        ...


class CardinalityStore(Protocol):
    """The per-tenant, per-day cardinality summary the ingest side's limits read (in the index table)."""

    def count_series(self, tenant: str, day: str, metric: str) -> int:
        """Exact number of distinct series of ``metric`` in the index on ``day``."""
        ...

    def put_cardinality(self, tenant: str, day: str, counts: Mapping[str, int], expires_at: int) -> None:
        """Record series counts per metric (a count never goes down within a day)."""
        ...


@dataclass(frozen=True)
class SeriesSamples:
    """The samples of one series that one stream record stored: what a :class:`SampleSink` receives."""

    tenant: str
    labels: Labels
    timestamps: npt.NDArray[np.int64]  # ms since the epoch, ascending
    values: npt.NDArray[np.float64]
    received_ms: int  # when ingest received the record: a later copy of a sample supersedes an earlier one


class SampleSink(Protocol):
    """A further store that every stored sample is copied to (the optional Timestream sink)."""

    def write_samples(self, series: Sequence[SeriesSamples]) -> None:
        """Store the samples idempotently (a retried batch sends them again); raise to fail the batch."""
        ...


class ArchiveStore(Protocol):
    """The raw archive."""

    def put(self, key: str, data: bytes, tags: Mapping[str, str] | None = None) -> None:
        """Store an object (overwriting the same key), with S3 object tags (the retention class)."""
        ...


@dataclass(frozen=True)
class WriterSettings:
    """How long data lives in the hot tier and the index."""

    hot_retention_days: int = 15
    # The writer's own blocks are only read until the compactor has merged their window (2 h and 10 min
    # after it began) and it keeps what it made for the full retention; they expire this long after they
    # were written, which leaves a stalled compactor days to catch up (its errors alarm).
    writer_block_days: int = 3
    # A metric's series count is recounted at most this often per writer instance: new series of a
    # day arrive in bursts (at midnight UTC every series is new), and each recount reads its partition.
    cardinality_recount_s: float = 10.0


@dataclass
class WriteStats:
    """What one record turned into."""

    series: int = 0
    samples: int = 0
    blocks: int = 0
    block_bytes: int = 0
    new_index_entries: int = 0
    invalid_series: list[str] = field(default_factory=list)
    tenant: str = ""  # of the record, and when ingest received it: where the archive files it
    received_ms: int = 0


def day_of(ms: int) -> str:
    """The UTC day of a timestamp, as the index keys it."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


class MetricsWriter:
    """Turns metrics-stream records into stored data."""

    def __init__(
        self,
        blocks: BlockStore,
        index: IndexStore,
        settings: WriterSettings | None = None,
        validator: SeriesValidator | None = None,
        cardinality: CardinalityStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        sink: SampleSink | None = None,
        retention: RetentionPolicies | None = None,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.blocks = blocks
        self._now_ms = now_ms  # wall clock: which blocks are late for compaction
        self.index = index
        self.settings = settings or WriterSettings()
        self.validator = validator or SeriesValidator()
        self.cardinality = cardinality
        self.sink = sink
        # Each tenant's retention policy (cached by the provider); without one, hot_retention_days for all.
        self.retention = retention
        # The raw retention of the series of the batch being written (set by build_batch).
        self._batch_retention = BatchRetention(
            None, self.settings.hot_retention_days, [], np.zeros(0, np.uint64), lambda _: ()
        )
        self._clock = clock
        # Metrics with new index entries whose count is not recorded yet, and when each was last recounted.
        self._uncounted: set[tuple[str, str, str]] = set()
        self._recounted: dict[tuple[str, str, str], float] = {}
        # Series ids known to be in the index, per (tenant, day), sorted for vectorised membership tests.
        self._indexed: dict[tuple[str, str], npt.NDArray[np.uint64]] = {}
        # Series tables written today (pk, key, expiry day): rewritten daily so that their TTL stays
        # beyond that of every block referring to them.
        self._tables: set[tuple[str, str, int]] = set()

    def write_record(self, data: bytes, sequence: str) -> WriteStats:
        """Store one stream record. Raises RecordFormatError/WireFormatError for a poison record."""
        (outcome,) = self.write_batch([(sequence, data)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def write_batch(self, records: Sequence[tuple[str, bytes]]) -> list[WriteStats | Exception]:
        """Store a batch of (sequence number, data) records; one outcome per record, in order.

        Poison records (not NovaCron's format, or invalid protobuf) come back as their exception and
        the rest is stored. Failures to write raise, failing the whole batch: every key is derived
        from the records, so the retried batch rewrites the same items.
        """
        outcomes: list[WriteStats | Exception] = [WriteStats() for _ in records]
        good: list[tuple[int, SeriesRecord]] = []
        for i, (_, data) in enumerate(records):
            try:
                good.append((i, decode_record(data)))
            except RecordFormatError as exc:
                outcomes[i] = exc
        samples: list[SeriesSamples] | None = [] if self.sink is not None else None
        try:
            items, entries, stats = self.build_batch([(records[i][0], rec) for i, rec in good], samples)
        except WireFormatError as exc:
            if len(good) == 1:
                outcomes[good[0][0]] = exc
                return outcomes
            # Some record holds malformed protobuf: find which, one record at a time.
            for i, _ in good:
                try:
                    outcomes[i] = self.write_record(records[i][1], records[i][0])
                except (RecordFormatError, WireFormatError) as exc:
                    outcomes[i] = exc
            return outcomes
        self._store(items, entries)
        if self.sink is not None and samples:
            # After the hot tier: a failure here fails the batch, and its retry rewrites the same items.
            self.sink.write_samples(samples)
        for (i, _), record_stats in zip(good, stats, strict=True):
            outcomes[i] = record_stats
        return outcomes

    def _store(self, items: list[BlockItem], entries: list[SeriesEntry]) -> None:
        # Index and series tables first: a block must never be readable before what it refers to.
        if entries:
            # An entry stands for the whole day, so it lives until the day's last block expires.
            last_day = max(datetime.strptime(e.day, "%Y-%m-%d").replace(tzinfo=UTC) for e in entries)
            days = max(self._batch_retention.longest_days(e.tenant) for e in entries)
            self.index.put_series(entries, self._expiry(int(last_day.timestamp() * 1000) + DAY_MS - 1, days))
            self._remember(entries)
        tables = [item for item in items if item.is_series_table]
        if tables:
            self.blocks.put_blocks(tables)
            self._tables.update((t.pk, t.sk, t.expires_at // 86_400) for t in tables)
        blocks = [item for item in items if not item.is_series_table]
        if blocks:
            self.blocks.put_blocks(blocks)
        self._recount(entries)

    def _recount(self, entries: list[SeriesEntry]) -> None:
        """Record exact series counts of the metrics that got new index entries (see CardinalityStore)."""
        if self.cardinality is None:
            return
        self._uncounted.update((e.tenant, e.day, e.metric) for e in entries)
        if not self._uncounted:
            return
        now = self._clock()
        interval = self.settings.cardinality_recount_s
        due = sorted(k for k in self._uncounted if now - self._recounted.get(k, float("-inf")) >= interval)
        counts: dict[tuple[str, str], dict[str, int]] = {}
        for tenant, day, metric in due:
            counts.setdefault((tenant, day), {})[metric] = self.cardinality.count_series(tenant, day, metric)
        for (tenant, day), by_metric in counts.items():
            day_end = int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000) + DAY_MS - 1
            self.cardinality.put_cardinality(tenant, day, by_metric, self._expiry(day_end))
        if len(self._recounted) > 100_000:
            self._recounted.clear()  # old days' entries; losing them only allows an early recount
        for key in due:
            self._recounted[key] = now
            self._uncounted.discard(key)

    def build_batch(
        self, records: Sequence[tuple[str, SeriesRecord]], samples_out: list[SeriesSamples] | None = None
    ) -> tuple[list[BlockItem], list[SeriesEntry], list[WriteStats]]:
        """Blocks, series tables and new index entries of a batch of records (no I/O).

        All records are decoded and sorted together (numpy over the whole batch, a cached lookup per
        series), then cut into blocks per tenant and bucket, keyed by the batch's first record of the tenant.
        When ``samples_out`` is given, the samples the blocks hold are appended to it, per series and record.
        """
        stats = [WriteStats(tenant=record.tenant, received_ms=record.received_ms) for _, record in records]
        per_record = np.fromiter((len(r.contents) for _, r in records), dtype=np.int64, count=len(records))
        decoded = decode_series([c for _, r in records for c in r.contents])
        n = len(decoded)
        record_of = np.repeat(np.arange(len(records)), per_record)
        buckets = np.fromiter(map(self.validator.bucket_of, decoded.label_bytes), dtype=np.int64, count=n)
        ids = np.fromiter(map(self.validator.series_of, decoded.label_bytes), dtype=np.uint64, count=n)
        valid = buckets >= 0
        for i in np.flatnonzero(~valid).tolist():
            stats[int(record_of[i])].invalid_series.append(self.validator.check(decoded.label_bytes[i]).error)
        counts = np.diff(decoded.offsets)
        present = valid & (counts > 0)
        owner = np.repeat(np.arange(n), counts)
        keep = valid[owner]
        ts, vals, owner = decoded.timestamps[keep], decoded.values[keep], owner[keep]
        # One row per sample, sorted into block order: record, bucket, series, time.
        row_record, row_bucket, row_series = record_of[owner], buckets[owner], ids[owner]
        order = np.lexsort((ts, row_series, row_bucket, row_record))
        ts, vals = ts[order], vals[order]
        row_record, row_bucket, row_series = row_record[order], row_bucket[order], row_series[order]
        # Duplicate timestamps of a series in one record keep the last value received, as Prometheus does.
        last = np.ones(len(ts), dtype=bool)
        last[:-1] = (row_record[1:] != row_record[:-1]) | (row_series[1:] != row_series[:-1]) | (ts[1:] != ts[:-1])
        ts, vals = ts[last], vals[last]
        row_record, row_bucket, row_series = row_record[last], row_bucket[last], row_series[last]
        if samples_out is not None:
            samples_out.extend(self._series_samples(records, decoded, ids, valid, row_record, row_series, ts, vals))

        in_batch = np.flatnonzero(valid)
        self._batch_retention = BatchRetention(
            self.retention,
            self.settings.hot_retention_days,
            [records[r][1].tenant for r in record_of[in_batch].tolist()],
            ids[in_batch],
            lambda i: self.validator.check(decoded.label_bytes[int(in_batch[i])]).labels,
        )
        for r, count in enumerate(np.bincount(row_record, minlength=len(records)).tolist()):
            stats[r].samples = count
        # Blocks hold a tenant's bucket for the whole batch: DynamoDB bills each item by the started KB,
        # so one block per record and bucket (a few dozen samples each) would cost several times more.
        # A sample in several records keeps the last one's value, as within a record.
        tenant_names = sorted({record.tenant for _, record in records})
        tenant_index = np.array([tenant_names.index(record.tenant) for _, record in records], dtype=np.int64)
        row_tenant = tenant_index[row_record]
        order = np.lexsort((row_record, ts, row_series, row_bucket, row_tenant))
        ts, vals, row_record = ts[order], vals[order], row_record[order]
        row_tenant, row_bucket, row_series = row_tenant[order], row_bucket[order], row_series[order]
        last = np.ones(len(ts), dtype=bool)
        last[:-1] = (row_tenant[1:] != row_tenant[:-1]) | (row_series[1:] != row_series[:-1]) | (ts[1:] != ts[:-1])
        ts, vals, row_tenant, row_bucket, row_series = (
            ts[last],
            vals[last],
            row_tenant[last],
            row_bucket[last],
            row_series[last],
        )
        # Keys come from the batch's first record of the tenant: a retried batch rewrites the same items
        # (one retried with other records, after a partial failure, writes some samples twice: readers
        # and the compactor keep one).
        first_record = {t: int(np.flatnonzero(tenant_index == i)[0]) for i, t in enumerate(tenant_names)}
        items: list[BlockItem] = []
        seen_tables: set[tuple[str, str]] = set()
        cuts = np.flatnonzero((np.diff(row_tenant) != 0) | (np.diff(row_bucket) != 0)) + 1
        # A batch whose records hold no samples at all (series without samples) makes no blocks.
        bounds = [0, *cuts.tolist(), len(ts)] if len(ts) else []
        for lo, hi in itertools.pairwise(bounds):
            tenant = tenant_names[int(row_tenant[lo])]
            r = first_record[tenant]
            made = self._bucket_blocks(
                tenant, int(row_bucket[lo]), records[r][0], row_series[lo:hi], ts[lo:hi], vals[lo:hi], seen_tables
            )
            items.extend(made)
            stats[r].blocks += sum(not i.is_series_table for i in made)
            stats[r].block_bytes += sum(len(i.data) for i in made)
        for r, count in enumerate(np.bincount(record_of[present], minlength=len(records)).tolist()):
            stats[r].series = count
        entries: list[SeriesEntry] = []
        tenant_of = [record.tenant for _, record in records]
        for tenant in sorted(set(tenant_of)):
            in_tenant = np.array([t == tenant for t in tenant_of], dtype=bool)[record_of]
            entries.extend(self._new_entries(tenant, decoded, ids, present & in_tenant))
        return items, entries, stats

    def _series_samples(
        self,
        records: Sequence[tuple[str, SeriesRecord]],
        decoded: DecodedSeries,
        ids: npt.NDArray[np.uint64],
        valid: npt.NDArray[np.bool_],
        row_record: npt.NDArray[np.int64],
        row_series: npt.NDArray[np.uint64],
        ts: npt.NDArray[np.int64],
        vals: npt.NDArray[np.float64],
    ) -> list[SeriesSamples]:
        """The batch's sorted rows as runs of one series of one record, with the series' labels."""
        if not len(ts):
            return []
        # Rows are sorted by record, bucket (a function of the series), series and time: runs are contiguous.
        cuts = np.flatnonzero((np.diff(row_record) != 0) | (np.diff(row_series) != 0)) + 1
        valid_idx = np.flatnonzero(valid)
        unique_ids, first = np.unique(ids[valid_idx], return_index=True)
        decoded_of = dict(zip(unique_ids.tolist(), valid_idx[first].tolist(), strict=True))
        runs: list[SeriesSamples] = []
        for lo, hi in itertools.pairwise([0, *cuts.tolist(), len(ts)]):
            _, record = records[int(row_record[lo])]
            labels = self.validator.check(decoded.label_bytes[decoded_of[int(row_series[lo])]]).labels
            runs.append(SeriesSamples(record.tenant, labels, ts[lo:hi], vals[lo:hi], record.received_ms))
        return runs

    def _new_entries(
        self,
        tenant: str,
        decoded: DecodedSeries,
        series_ids: npt.NDArray[np.uint64],
        present: npt.NDArray[np.bool_],
    ) -> list[SeriesEntry]:
        """Index entries (series x UTC day of its first and last sample) not yet known to be stored."""
        idx = np.flatnonzero(present)
        if idx.size == 0:
            return []
        first_days = decoded.timestamps[decoded.offsets[idx]] // DAY_MS
        last_days = decoded.timestamps[decoded.offsets[idx + 1] - 1] // DAY_MS
        ids = series_ids[idx]
        entries: list[SeriesEntry] = []
        for day_number in np.unique(np.concatenate([first_days, last_days])).tolist():
            day = day_of(day_number * DAY_MS)
            on_day = (first_days == day_number) | (last_days == day_number)
            known = self._indexed.get((tenant, day))
            if known is not None and known.size:
                # ``known`` is sorted: a binary search per id, without re-sorting it each batch.
                pos = np.minimum(np.searchsorted(known, ids), known.size - 1)
                on_day &= known[pos] != ids
            # A series present in several records of the batch is entered once (a batch write
            # refuses duplicate keys).
            _, first = np.unique(ids[on_day], return_index=True)
            chosen = idx[on_day][first]
            for i in chosen.tolist():
                verdict = self.validator.check(decoded.label_bytes[i])
                entries.append(SeriesEntry(tenant, day, verdict.series_id, verdict.labels))
        return entries

    def _remember(self, entries: list[SeriesEntry]) -> None:
        """Note index entries as stored, so that later records skip them."""
        by_day: dict[tuple[str, str], list[int]] = {}
        for entry in entries:
            by_day.setdefault((entry.tenant, entry.day), []).append(int(entry.series_id, 16))
        for key, new_ids in by_day.items():
            fresh = np.array(new_ids, dtype=np.uint64)
            known = self._indexed.get(key)
            self._indexed[key] = np.unique(fresh) if known is None else np.union1d(known, fresh)

    def _bucket_blocks(
        self,
        tenant: str,
        bucket: int,
        sequence: str,
        series: npt.NDArray[np.uint64],
        ts: npt.NDArray[np.int64],
        vals: npt.NDArray[np.float64],
        seen_tables: set[tuple[str, str]],
    ) -> list[BlockItem]:
        """Split one bucket's rows of one record into blocks of bounded time span and size."""
        # Aligned span windows bound every block's time range; a record rarely spans more than one.
        window = ts // MAX_BLOCK_SPAN_MS
        items: list[BlockItem] = []
        part, now = 0, self._now_ms()
        for w in np.unique(window).tolist():
            in_window = np.flatnonzero(window == w)
            # Rows arrive in (series, time) order, so they stay in it within a window.
            w_series, w_ts, w_vals = series[in_window], ts[in_window], vals[in_window]
            for start in range(0, len(w_ts), MAX_BLOCK_SAMPLES):
                s_series = w_series[start : start + MAX_BLOCK_SAMPLES]
                s_ts = w_ts[start : start + MAX_BLOCK_SAMPLES]
                s_vals = w_vals[start : start + MAX_BLOCK_SAMPLES]
                uniq, first = np.unique(s_series, return_index=True)
                offsets = np.append(first, len(s_series)).astype(np.int64)
                block = Block(uniq.astype(np.uint64), offsets, s_ts.astype(np.int64), s_vals.astype(np.float64))
                min_ts, max_ts = int(s_ts.min()), int(s_ts.max())
                payload, table_key = encode_block(block)
                # A block mixes series: it lives as long as its longest-kept one (docs/retention.md).
                days = self._batch_retention.block_days(tenant, block.series)
                expires_at = min(self._expiry(max_ts, days), now // 1000 + self.settings.writer_block_days * 86_400)
                table_pk = table_partition_key(tenant, bucket)
                table_expiry = expires_at + 86_400
                if (table_pk, table_key, table_expiry // 86_400) not in self._tables and (
                    table_pk,
                    table_key,
                ) not in seen_tables:
                    seen_tables.add((table_pk, table_key))
                    table = encode_series_table(block.series)
                    items.append(BlockItem(table_pk, table_key, table, 0, min_ts, max_ts, table_expiry, True))
                # A block for a window the compactor may have done already goes where it looks again.
                late = int(window_starts(np.array([min_ts]))[0]) + COMPACTION_WINDOW_MS + LATE_AFTER_MS < now
                items.append(
                    BlockItem(
                        pk=(late_partition_key if late else block_partition_key)(tenant, bucket),
                        sk=block_sort_key(min_ts, sequence, part),
                        data=payload,
                        samples=len(s_ts),
                        min_ts=min_ts,
                        max_ts=max_ts,
                        expires_at=expires_at,
                    )
                )
                part += 1
        return items

    def _expiry(self, max_ts_ms: int, days: int | None = None) -> int:
        return max_ts_ms // 1000 + (days or self.settings.hot_retention_days) * 86_400


def archive_key(tenant: str, received_ms: int, shard_id: str, first_sequence: str, last_sequence: str) -> str:
    """Where a batch of raw records lands in the archive: partitioned by tenant, date and hour."""
    stamp = datetime.fromtimestamp(received_ms / 1000, UTC)
    return f"raw/tenant={tenant}/date={stamp:%Y-%m-%d}/hour={stamp:%H}/{shard_id}-{first_sequence}-{last_sequence}.ncr"


def archive_object(records: Sequence[bytes]) -> bytes:
    """Raw stream records, each prefixed by its length (u32 little-endian)."""
    return b"".join(len(r).to_bytes(4, "little") + r for r in records)


def labels_json(labels: Labels) -> str:
    """Compact JSON of a label set, as the index stores it."""
    return json.dumps(dict(labels), separators=(",", ":"), sort_keys=True)


def archive_stored_records(
    archive: ArchiveStore,
    shard_id: str,
    stored: Sequence[tuple[str, bytes, WriteStats]],
    tags_of: Callable[[str], Mapping[str, str]] | None = None,
) -> list[str]:
    """Archive the (sequence, data, stats) of a batch's stored records, one object per tenant; returns the keys.

    Keys are made of the shard and the first and last sequence numbers, so a retried batch
    rewrites the same objects. ``tags_of(tenant)`` gives the objects' tags (their retention class).
    """
    by_tenant: dict[str, list[tuple[str, bytes, int]]] = {}
    for sequence, data, stats in stored:
        by_tenant.setdefault(stats.tenant, []).append((sequence, data, stats.received_ms))
    keys = []
    for tenant, records in sorted(by_tenant.items()):
        key = archive_key(tenant, records[0][2], shard_id, records[0][0], records[-1][0])
        archive.put(key, archive_object([data for _, data, _ in records]), tags_of(tenant) if tags_of else None)
        keys.append(key)
    return keys
