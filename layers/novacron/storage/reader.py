"""Reading the hot tier: matchers → series (through the index) → blocks (one Query per bucket)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from novacron.retention.policy import RetentionPolicy, Tier
from novacron.series import METRIC_NAME, Labels, Matcher, SeriesSamples, matches_all, partition_bucket
from novacron.storage.blocks import (
    Block,
    BlockFormatError,
    block_partition_key,
    compacted_partition_key,
    decode_parsed,
    decode_series_table,
    decode_standalone_block,
    late_partition_key,
    parse_block,
    rollup_partition_key,
    sort_key_range,
    table_partition_key,
    window_settled,
    window_starts,
)
from novacron.storage.compaction import (
    WINDOW_MS,
    keep_rows,
    merge_samples,
    read_manifests,
)
from novacron.storage.rollups import (
    RESOLUTIONS_MS,
    U64,
    Rollup,
    concatenate,
    decode_rollup,
    empty_block,
    roll_up,
    rollup_series,
    select_rows,
)
from novacron.storage.writer import DAY_MS, BlockStore, IndexStore, SeriesEntry, day_of

# Without explicit bounds, label and series lookups look at this much recent history.
DEFAULT_LOOKUP_MS = 2 * DAY_MS
# How far back before the hot tier's raw horizon a query reads the archive: within the archive reader's
# bound on the days one read may list (400), so that a long range is answered, not refused.
ARCHIVE_FALLBACK_DAYS = 365
# How far back the series index is read without a retention policy (with one: its longest hot tier).
MAX_INDEX_DAYS = 62
_LAST_DAY = 2_932_896  # 9999-12-31, the last day a calendar date can name


# Series tables never change once written (their key is a hash of their content), so a
# process-wide cache is always right; bounded so that a long-lived function stays small.
_TABLES: dict[tuple[str, str], npt.NDArray[np.uint64]] = {}
_MAX_CACHED_TABLES = 20_000


class QueryTooLarge(ValueError):
    """A read would touch more of the stored data than allowed (answered as a 4xx)."""


# Buckets (and a day's metrics in the index) are read concurrently: each costs one or more DynamoDB
# round trips, independent of the others.
READ_THREADS = 8
T = TypeVar("T")
R = TypeVar("R")


def _concurrently(fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``fn`` over ``items``, concurrently when there are several; results in their order."""
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(items)), thread_name_prefix="hot-read") as pool:
        return list(pool.map(fn, items))


@dataclass
class ReadStats:
    """What a reader has fetched: for benchmarks and the query API's stats."""

    index_queries: int = 0
    block_queries: int = 0
    table_reads: int = 0
    blocks: int = 0
    block_bytes: int = 0
    samples: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to the named counters (bucket reads run on several threads)."""
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


class HotTierReader:
    """A SeriesReader over the hot tier, scoped to one tenant."""

    def __init__(
        self,
        tenant: str,
        blocks: BlockStore,
        index: IndexStore,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        retention: RetentionPolicy | None = None,
        archive: Callable[[], ArchiveSelect] | None = None,
    ) -> None:
        self.tenant = tenant
        self.blocks = blocks
        self.index = index
        self.clock_ms = clock_ms
        # The tenant's retention: raw samples older than their series' raw_days are not returned,
        # whether or not DynamoDB's TTL has removed them yet (docs/retention.md).
        self.retention = retention
        # The tenant's Parquet archive, opened on first use: raw samples older than the hot tier keeps.
        self.archive = archive
        self.stats = ReadStats()

    # --- SeriesReader ---------------------------------------------------------------------

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesSamples]:
        """Raw samples from the hot tier, and from the archive for the part of the range older than the
        hot tier keeps for every series (one answer: a sample in both is kept once)."""
        hot = self._select_hot(matchers, start_ms, end_ms)
        cut = self._archive_cut()
        if self.archive is None or cut is None or start_ms >= cut:
            return hot
        old = self.archive().select(matchers, max(start_ms, cut - ARCHIVE_FALLBACK_DAYS * DAY_MS), min(end_ms, cut))
        return merge_series(hot, old)

    def _archive_cut(self) -> int | None:
        """Before this time some series' raw samples may be gone from the hot tier (its shortest raw retention)."""
        if self.retention is None:
            return None
        shortest = min(
            [self.retention.defaults.raw_days, *(o.raw_days for o in self.retention.overrides if o.raw_days)]
        )
        return self.clock_ms() - shortest * DAY_MS

    def _select_hot(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesSamples]:
        entries = self._matching(matchers, start_ms, end_ms)
        horizons = self._raw_horizons(entries)
        if horizons:
            start_ms = max(start_ms, min(horizons.values()))  # nothing older is returned: not read either
        if not entries or start_ms > end_ms:
            return []
        by_bucket: dict[int, list[SeriesEntry]] = {}
        for entry in entries:
            by_bucket.setdefault(partition_bucket(entry.series_id), []).append(entry)
        out = []
        buckets = sorted(by_bucket)
        wanted_ids = {b: np.array(sorted(int(e.series_id, 16) for e in by_bucket[b]), dtype=np.uint64) for b in buckets}
        fetched = _concurrently(lambda b: self._raw_blocks(b, start_ms, end_ms, wanted_ids[b]), buckets)
        for bucket, bucket_blocks in zip(buckets, fetched, strict=True):
            wanted, ids = by_bucket[bucket], wanted_ids[bucket]
            ts_parts, val_parts, owner_parts = [], [], []
            for block in bucket_blocks:
                counts = np.diff(block.offsets)
                row_series = np.repeat(block.series, counts)
                keep = np.isin(row_series, ids) & (block.timestamps >= start_ms) & (block.timestamps <= end_ms)
                if keep.any():
                    owner_parts.append(row_series[keep])
                    ts_parts.append(block.timestamps[keep])
                    val_parts.append(block.values[keep])
            if not ts_parts:
                continue
            owners = np.concatenate(owner_parts)
            stamps = np.concatenate(ts_parts)
            values = np.concatenate(val_parts)
            order = np.lexsort((stamps, owners))
            owners, stamps, values = owners[order], stamps[order], values[order]
            # The same sample can be stored twice when a sender resent it; keep one per timestamp.
            first = np.ones(len(stamps), dtype=bool)
            first[1:] = (owners[1:] != owners[:-1]) | (stamps[1:] != stamps[:-1])
            owners, stamps, values = owners[first], stamps[first], values[first]
            labels_of = {int(e.series_id, 16): e.labels for e in wanted}
            bounds = np.flatnonzero(np.diff(owners)) + 1
            for a, b in zip([0, *bounds.tolist()], [*bounds.tolist(), len(owners)], strict=True):
                if horizons:
                    a += int(np.searchsorted(stamps[a:b], horizons[int(owners[a])]))
                    if a == b:
                        continue
                out.append(SeriesSamples(labels_of[int(owners[a])], stamps[a:b].copy(), values[a:b].copy()))
            self.stats.add(samples=len(stamps))
        out.sort(key=lambda s: s.labels)
        return out

    def _raw_blocks(
        self, bucket: int, start_ms: int, end_ms: int, series: U64 | None = None, late: list[Block] | None = None
    ) -> list[Block]:
        """The bucket's blocks holding its samples in [start_ms, end_ms] (of ``series``, sorted ids; or all).

        Windows the compactor has done (a manifest names their complete generation) come from the
        compacted parts spanning the wanted series; the others from the writer's blocks. Late blocks
        (samples that arrived after their window may have been compacted) are read for every window. A
        sample in several comes first from a compacted block, the one the compactor keeps too. ``late``:
        the late blocks of a wider range, when the caller has read them already.
        """
        compacted, done = self._compacted(compacted_partition_key(self.tenant, bucket), start_ms, end_ms, series)
        blocks = [decode_standalone_block(data) for data in compacted]
        first = int(window_starts(np.array([start_ms]))[0])
        todo = [w for w in range(first, end_ms, WINDOW_MS) if w not in done]
        fresh_pk = block_partition_key(self.tenant, bucket)
        for run in _runs(todo):  # consecutive windows not compacted: one read of writer blocks each
            fresh = self._writer_blocks(fresh_pk, bucket, max(start_ms, run[0] + 1), min(end_ms, run[-1] + WINDOW_MS))
            blocks += [keep_rows(b, np.isin(window_starts(b.timestamps), run)) for b in fresh]
        if late is None:
            late = self._late_blocks(bucket, start_ms, end_ms)
        return blocks + late

    def _compacted(self, pk: str, start_ms: int, end_ms: int, series: U64 | None) -> tuple[list[bytes], set[int]]:
        """The parts (of ``series``) of the windows of [start_ms, end_ms] whose manifest names a complete
        generation, and those windows: one Query for the manifests, then a BatchGetItem of the parts."""
        first = int(window_starts(np.array([start_ms]))[0])
        if not window_settled(first, self.clock_ms()):
            return [], set()  # no window of the range can have been compacted yet
        self.stats.add(block_queries=1)
        manifests = read_manifests(self.blocks, pk, first, end_ms)
        wanted = {w: m.part_keys(w, series) for w, m in manifests.items()}
        keys = [k for ks in wanted.values() for k in ks]
        found = self.blocks.get_items(pk, keys) if keys else {}
        # A derived manifest (a 1-minute rollup left to readers) has no parts: its window is not done.
        done = {w for w, ks in wanted.items() if not manifests[w].derived and all(k in found for k in ks)}
        parts = [found[k] for w in sorted(done) for k in wanted[w]]
        self.stats.add(blocks=len(parts), block_bytes=sum(len(d) for d in parts))
        return parts, done

    def _late_blocks(self, bucket: int, start_ms: int, end_ms: int) -> list[Block]:
        """The bucket's late blocks with samples in [start_ms, end_ms] (none can exist for recent windows)."""
        first = int(window_starts(np.array([start_ms]))[0])
        if not window_settled(first, self.clock_ms()):
            return []
        return self._writer_blocks(late_partition_key(self.tenant, bucket), bucket, start_ms, end_ms)

    def _writer_blocks(self, pk: str, bucket: int, start_ms: int, end_ms: int) -> list[Block]:
        low, high = sort_key_range(start_ms, end_ms)
        payloads = list(self.blocks.query_blocks(pk, low, high))
        self.stats.add(block_queries=1, blocks=len(payloads), block_bytes=sum(len(p) for p in payloads))
        parsed = [parse_block(payload) for payload in payloads]
        tables = self._series_tables(bucket, {p.table_key for p in parsed})
        return [decode_parsed(header, tables.__getitem__) for header in parsed]

    # --- rollups ------------------------------------------------------------------------------

    def select_views(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int, resolution: str, views: Sequence[str]
    ) -> dict[str, list[SeriesSamples]]:
        """Each matching series' rollup at ``resolution`` over [start_ms, end_ms], under each of ``views``
        (see ``rollups.view_samples``); intervals are kept when their last sample is in the range."""
        entries = self._matching(matchers, start_ms, end_ms)
        out: dict[str, list[SeriesSamples]] = {view: [] for view in views}
        by_bucket: dict[int, list[SeriesEntry]] = {}
        for entry in entries:
            by_bucket.setdefault(partition_bucket(entry.series_id), []).append(entry)
        now = self.clock_ms()
        buckets = sorted(by_bucket)
        labels_by_bucket = {b: {int(e.series_id, 16): e.labels for e in by_bucket[b]} for b in buckets}
        rollups = _concurrently(
            lambda b: self._bucket_rollup(
                b, resolution, start_ms, end_ms, np.array(sorted(labels_by_bucket[b]), dtype=np.uint64)
            ),
            buckets,
        )
        for bucket, rollup in zip(buckets, rollups, strict=True):
            labels_of = labels_by_bucket[bucket]
            owner = np.repeat(rollup.series, np.diff(rollup.offsets))
            low: npt.NDArray[np.int64] = np.full(len(owner), start_ms, dtype=np.int64)
            if self.retention is not None:  # each series is cut at its own retention of this tier
                horizon = {
                    sid: self.retention.retention_for(labels).horizon_ms(resolution, now)
                    for sid, labels in labels_of.items()
                }
                cut = np.array([horizon.get(int(s), start_ms) for s in owner.tolist()], dtype=np.int64)
                low = np.maximum(low, cut).astype(np.int64)
            wanted_ids = np.array(sorted(labels_of), dtype=np.uint64)
            keep = np.isin(owner, wanted_ids) & (rollup.timestamps >= low) & (rollup.timestamps <= end_ms)
            selected = select_rows(rollup, keep)
            self.stats.add(samples=len(selected))
            for view in views:
                out[view].extend(rollup_series(selected, view, labels_of))
        for series in out.values():
            series.sort(key=lambda s: s.labels)
        return out

    def _bucket_rollup(self, bucket: int, resolution: str, start_ms: int, end_ms: int, series: U64) -> Rollup:
        """The bucket's rollup (of ``series``) over the windows of [start_ms, end_ms]: stored where a
        window's manifest says it is complete and no late block has arrived for it since; rolled up from
        raw samples elsewhere (windows not compacted yet, late samples, 1-minute rollups left to readers)."""
        resolution_ms = RESOLUTIONS_MS[resolution]
        pk = rollup_partition_key(self.tenant, bucket, resolution)
        late = self._late_blocks(bucket, start_ms, end_ms)
        dirty = {int(w) for b in late for w in np.unique(window_starts(b.timestamps)).tolist()}
        parts, done = self._compacted(pk, start_ms, end_ms, series)
        stored_parts = [decode_rollup(data) for data in parts]
        stored = done - dirty
        first = int(window_starts(np.array([start_ms]))[0])
        missing = [w for w in range(first, end_ms, WINDOW_MS) if w not in stored]
        rollups = [select_rows(r, np.isin(window_starts(r.timestamps), sorted(stored))) for r in stored_parts]
        if missing:
            raw_start, raw_end = max(start_ms, missing[0]), min(end_ms, missing[-1] + WINDOW_MS)
            raw = self._raw_blocks(bucket, raw_start, raw_end, series, late)
            blocks = [b for b in raw if len(b.timestamps)]
            if blocks:
                merged = merge_samples(blocks)
                in_missing = np.isin(window_starts(merged.timestamps), missing)
                in_missing &= (merged.timestamps >= start_ms) & (merged.timestamps <= end_ms)
                rollups.append(roll_up(keep_rows(merged, in_missing), resolution_ms))
        rollups = [r for r in rollups if len(r)]
        return concatenate(rollups) if rollups else roll_up(empty_block(), resolution_ms)

    def _raw_horizons(self, entries: list[SeriesEntry]) -> dict[int, int]:
        """The oldest raw timestamp each series still shows, by numeric id (empty without a policy)."""
        if self.retention is None:
            return {}
        now = self.clock_ms()
        return {int(e.series_id, 16): self.retention.retention_for(e.labels).horizon_ms(Tier.RAW, now) for e in entries}

    def _series_tables(self, bucket: int, keys: set[str]) -> dict[str, npt.NDArray[np.uint64]]:
        """The series tables the blocks refer to: from the process-wide cache, the rest in one read."""
        pk = table_partition_key(self.tenant, bucket)
        found = {k: _TABLES[(pk, k)] for k in keys if (pk, k) in _TABLES}
        missing = sorted(keys - found.keys())
        if missing:
            self.stats.add(table_reads=1)
            fetched = self.blocks.get_items(pk, missing)
            absent = set(missing) - fetched.keys()
            if absent:
                raise BlockFormatError(f"series tables {sorted(absent)} of {pk} are missing")
            if len(_TABLES) > _MAX_CACHED_TABLES:
                _TABLES.clear()
            for key, data in fetched.items():
                found[key] = _TABLES[(pk, key)] = decode_series_table(data)
        return found

    def series(
        self,
        matcher_sets: Sequence[Sequence[Matcher]],
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Labels]:
        start_ms, end_ms = self._bounds(start_ms, end_ms)
        found: dict[str, Labels] = {}
        for matchers in matcher_sets:
            for entry in self._matching(matchers, start_ms, end_ms):
                found[entry.series_id] = entry.labels
        return sorted(found.values())

    def label_names(
        self,
        matcher_sets: Sequence[Sequence[Matcher]],
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[str]:
        start_ms, end_ms = self._bounds(start_ms, end_ms)
        if matcher_sets:
            return sorted({name for labels in self.series(matcher_sets, start_ms, end_ms) for name, _ in labels})
        return sorted({name for day in self._days(start_ms, end_ms) for name, _ in self._pairs(day, None)})

    def label_values(
        self,
        name: str,
        matcher_sets: Sequence[Sequence[Matcher]],
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[str]:
        start_ms, end_ms = self._bounds(start_ms, end_ms)
        if matcher_sets:
            values = {dict(labels).get(name, "") for labels in self.series(matcher_sets, start_ms, end_ms)}
            return sorted(v for v in values if v)
        return sorted({value for day in self._days(start_ms, end_ms) for _, value in self._pairs(day, name)})

    def series_of_day(self, day_ms: int) -> list[Labels]:
        """Every series of the tenant seen on the UTC day containing ``day_ms`` (for cardinality)."""
        day = day_of(day_ms)
        out: list[Labels] = []
        for metric in sorted({value for _, value in self._pairs(day, METRIC_NAME)}):
            self.stats.add(index_queries=1)
            out.extend(entry.labels for entry in self.index.series_of_metric(self.tenant, day, metric))
        return out

    # --- internals ------------------------------------------------------------------------

    def _bounds(self, start_ms: int | None, end_ms: int | None) -> tuple[int, int]:
        end = self.clock_ms() if end_ms is None else end_ms
        start = end - DEFAULT_LOOKUP_MS if start_ms is None else start_ms
        return start, end

    def _days(self, start_ms: int, end_ms: int) -> list[str]:
        # The index holds the days of the tenant's longest hot-tier retention and samples at most a day
        # ahead: a wider range (promtool asks for ±416 days around now) has nothing more to find there.
        today = self.clock_ms() // DAY_MS
        kept = self.retention.longest_hot_days() if self.retention is not None else MAX_INDEX_DAYS
        first = max(start_ms // DAY_MS, today - kept, 0)
        last = min(end_ms // DAY_MS, today + 1, _LAST_DAY)
        if end_ms < start_ms or last < first:
            return []
        return [day_of(d * DAY_MS) for d in range(first, last + 1)]

    def _pairs(self, day: str, name: str | None) -> list[tuple[str, str]]:
        self.stats.add(index_queries=1)
        return self.index.label_pairs(self.tenant, day, name)

    def _series_of_metric(self, day: str, metric: str) -> list[SeriesEntry]:
        return list(self.index.series_of_metric(self.tenant, day, metric))

    def _matching(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesEntry]:
        """Index entries of the series matching all matchers, seen between start and end."""
        days = self._days(start_ms, end_ms)
        name_matchers = [m for m in matchers if m.name == METRIC_NAME]
        found: dict[str, SeriesEntry] = {}
        for day in days:
            exact = [m.value for m in name_matchers if m.op == "="]
            metrics = set(exact[:1]) if exact else {value for _, value in self._pairs(day, METRIC_NAME)}
            metrics = {m for m in metrics if all(nm.matches(m) for nm in name_matchers)}
            names = sorted(metrics)
            self.stats.add(index_queries=len(names))
            for entries in _concurrently(functools.partial(self._series_of_metric, day), names):
                for entry in entries:
                    if entry.series_id not in found and matches_all(entry.labels, matchers):
                        found[entry.series_id] = entry
        return list(found.values())


def _runs(windows: list[int]) -> list[list[int]]:
    """Sorted window starts grouped into runs of consecutive windows."""
    runs: list[list[int]] = []
    for w in windows:
        if runs and w == runs[-1][-1] + WINDOW_MS:
            runs[-1].append(w)
        else:
            runs.append([w])
    return runs


class ArchiveSelect(Protocol):
    """What the reader needs of the archive (``novacron.archive.reader.ArchiveReader``)."""

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesSamples]:
        """Archived samples with ``start_ms <= t <= end_ms`` of the series matching all ``matchers``."""
        ...


def merge_series(first: list[SeriesSamples], second: list[SeriesSamples]) -> list[SeriesSamples]:
    """Two selections as one, sorted by labels; a timestamp in both keeps ``first``'s sample."""
    by_labels: dict[Labels, list[SeriesSamples]] = {}
    for s in [*first, *second]:
        by_labels.setdefault(s.labels, []).append(s)
    out = []
    for labels, parts in sorted(by_labels.items()):
        if len(parts) == 1:
            out.append(parts[0])
            continue
        ts = np.concatenate([p.timestamps for p in parts])
        values = np.concatenate([p.values for p in parts])
        order = np.argsort(ts, kind="stable")  # stable: among equal timestamps, first's comes first
        ts, values = ts[order], values[order]
        keep = np.ones(len(ts), dtype=bool)
        keep[1:] = ts[1:] != ts[:-1]
        out.append(SeriesSamples(labels, ts[keep], values[keep]))
    return out
