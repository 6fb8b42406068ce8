"""Compaction: the writer's blocks merged into per-window blocks, and their rollups.

The writer stores, per tenant and bucket, a block per Kinesis batch (a second or so of many series).
Once a 2-hour window has ended (plus a grace period), the compactor merges that window's blocks into
*compacted* blocks (hundreds of samples per series, carrying their own series ids) and computes its
rollups at 1 minute, 5 minutes and 1 hour (``rollups.py``), each under its own partition.

The writer's blocks are not deleted (a delete costs as much as a write): they expire with their TTL,
and readers skip them in windows a manifest says are compacted. Windows are compacted in order, once
each, up to a per-bucket *watermark*. Samples arriving for a window that may be compacted already go
to the bucket's *late* partition instead (``writer.late_partition_key``); each run merges those into
their windows again and deletes them.

Nothing is ever deleted before what replaces it is written, and every run is a function of what it
reads, so an interrupted run loses and duplicates nothing:

1. a window's writer blocks, late blocks and existing compacted blocks are read and merged;
2. the merged window is written as a new *generation* (named by a hash of the items it came from,
   so a rerun over the same items rewrites the same keys), then its rollups, then manifests naming
   the generation that is complete (raw and per resolution);
3. only then are older generations and merged late blocks deleted, and the watermark moved on.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from novacron.retention.hot import RetentionPolicies
from novacron.retention.policy import Tier
from novacron.series import PARTITION_BUCKETS
from novacron.storage.blocks import (
    COMPACTION_GRACE_MS,
    COMPACTION_WINDOW_MS,
    Block,
    block_partition_key,
    compacted_partition_key,
    decode_parsed,
    decode_series_table,
    decode_standalone_block,
    encode_standalone_block,
    late_partition_key,
    parse_block,
    rollup_partition_key,
    table_partition_key,
    window_starts,
)
from novacron.storage.rollups import RESOLUTIONS_MS, Rollup, empty_block, encode_rollup, roll_up
from novacron.storage.writer import DAY_MS, BlockItem, BlockStore, StoredItem

WINDOW_MS = COMPACTION_WINDOW_MS
# Samples may arrive a little after their window ends (scrape delays, batching, retries): a window is
# compacted once it ended this long ago. Later samples go to the late partition, merged by later runs.
GRACE_MS = COMPACTION_GRACE_MS
# Samples per compacted item (about 16 series of a 2-hour window at 15 s): small enough that a query
# fetches little besides the series it wants, large enough that the 1 KB rounding of writes costs little.
MAX_COMPACTED_SAMPLES = 8_000
MAX_ROLLUP_ROWS = 2_048
# Below this many samples per series and interval on average (scrapes slower than every 10 s), a 1-minute
# rollup (7 numbers) is about as large as the samples it summarises: it is not stored, and readers
# derive it from the compacted blocks.
MIN_SAMPLES_PER_1M_INTERVAL = 6.0
MANIFEST_PREFIX = "m#"
WATERMARK_SK = "watermark"  # sorts after every window key: never within a window read
DEFAULT_DAYS = {Tier.RAW: 15, Tier.ROLLUP_1M: 30, Tier.ROLLUP_5M: 90, Tier.ROLLUP_1H: 400}
_TIER_OF = {"1m": Tier.ROLLUP_1M, "5m": Tier.ROLLUP_5M, "1h": Tier.ROLLUP_1H}

U64 = npt.NDArray[np.uint64]


@dataclass
class CompactionStats:
    """What one run did."""

    buckets: int = 0
    windows: int = 0
    source_items: int = 0  # writer's blocks merged
    samples: int = 0
    compacted_items: int = 0
    compacted_bytes: int = 0
    rollup_items: int = 0
    rollup_bytes: int = 0
    deleted_items: int = 0
    source_bytes: int = 0

    def add(self, other: CompactionStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class Manifest:
    """Which generation of a window is complete (raw, or rollups at one resolution), how many parts it
    has and which series ids each part spans (parts are sorted by series id), so that a reader fetches
    only the parts holding the series it wants."""

    generation: str
    parts: int
    derived: bool = False  # not stored: readers roll the compacted blocks up themselves
    ranges: tuple[tuple[int, int], ...] = ()  # (first, last) series id of each part

    def encode(self) -> bytes:
        doc = {"generation": self.generation, "parts": self.parts, "derived": self.derived, "ranges": self.ranges}
        return json.dumps(doc).encode()

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        doc = json.loads(data)
        ranges = tuple((int(a), int(b)) for a, b in doc.get("ranges", ()))
        return cls(str(doc["generation"]), int(doc["parts"]), bool(doc.get("derived", False)), ranges)

    def part_keys(self, window_start_ms: int, series: U64 | None = None) -> list[str]:
        """Sort keys of the parts holding any of ``series`` (sorted ids; all parts when None)."""
        keys = []
        for n in range(self.parts):
            if series is not None and n < len(self.ranges):
                first, last = self.ranges[n]
                lo = int(np.searchsorted(series, np.uint64(first)))
                if lo == len(series) or int(series[lo]) > last:
                    continue
            keys.append(window_sort_key(window_start_ms, self.generation, n))
        return keys


def window_sort_key(window_start_ms: int, generation: str, part: int) -> str:
    """The sort key of a compacted block or rollup part: window start, generation, part."""
    return f"{window_start_ms:013d}#{generation}#{part:04d}"


def manifest_sort_key(window_start_ms: int) -> str:
    """The sort key of a window's manifest: apart from the parts (``m`` sorts after digits), so that
    the manifests of a time range are one Query that reads no part."""
    return f"{MANIFEST_PREFIX}{window_start_ms:013d}"


def window_of_sort_key(sk: str) -> int:
    """The window start of a part's or manifest's sort key (or a writer block's first timestamp)."""
    return int(sk[len(MANIFEST_PREFIX) :][:13]) if sk.startswith(MANIFEST_PREFIX) else int(sk[:13])


def read_manifests(blocks: BlockStore, pk: str, first_window: int, last_window: int) -> dict[int, Manifest]:
    """The manifests of the windows starting in [first_window, last_window] of a partition."""
    low, high = manifest_sort_key(max(first_window, 0)), manifest_sort_key(max(last_window, 0))
    return {window_of_sort_key(i.sk): Manifest.decode(i.data) for i in blocks.query_items(pk, low, high)}


def generation_of_sort_key(sk: str) -> str:
    """The generation of a part's sort key ('' for a manifest)."""
    parts = sk.split("#")
    return parts[1] if len(parts) == 3 else ""


def merge_samples(blocks: Sequence[Block]) -> Block:
    """The samples of ``blocks`` as one block sorted by (series, time), a duplicate kept from the first
    block that has it (readers keep the same one)."""
    series = np.concatenate([np.repeat(b.series, np.diff(b.offsets)) for b in blocks])
    ts = np.concatenate([b.timestamps for b in blocks])
    values = np.concatenate([b.values for b in blocks])
    order = np.lexsort((ts, series))  # stable: among equal keys, earlier blocks first
    series, ts, values = series[order], ts[order], values[order]
    keep = np.ones(len(ts), dtype=bool)
    keep[1:] = (series[1:] != series[:-1]) | (ts[1:] != ts[:-1])
    series, ts, values = series[keep], ts[keep], values[keep]
    ids, first = np.unique(series, return_index=True)
    return Block(ids.astype(np.uint64), np.append(first, len(series)).astype(np.int64), ts, values)


def split_by_series(n_series: int, offsets: npt.NDArray[np.int64], max_rows: int) -> list[tuple[int, int]]:
    """Ranges of whole series ``[a, b)`` holding at most ``max_rows`` rows each (a longer series alone)."""
    ranges: list[tuple[int, int]] = []
    start = 0
    while start < n_series:
        limit = offsets[start] + max_rows
        end = int(np.searchsorted(offsets, limit, side="right")) - 1
        end = min(max(end, start + 1), n_series)
        ranges.append((start, end))
        start = end
    return ranges


def _sub_block(block: Block, a: int, b: int) -> Block:
    lo, hi = int(block.offsets[a]), int(block.offsets[b])
    return Block(block.series[a:b], block.offsets[a : b + 1] - lo, block.timestamps[lo:hi], block.values[lo:hi])


def _sub_rollup(rollup: Rollup, a: int, b: int) -> Rollup:
    lo, hi = int(rollup.offsets[a]), int(rollup.offsets[b])
    columns = {name: values[lo:hi] for name, values in rollup.columns.items()}
    return Rollup(
        rollup.resolution_ms, rollup.series[a:b], rollup.offsets[a : b + 1] - lo, rollup.timestamps[lo:hi], columns
    )


@dataclass
class Compactor:
    """Compacts a tenant's hot tier, bucket by bucket, window by window."""

    blocks: BlockStore
    retention: RetentionPolicies | None = None
    clock_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    window_ms: int = WINDOW_MS
    grace_ms: int = GRACE_MS

    def compact_tenant(self, tenant: str, deadline: Callable[[], bool] = lambda: False) -> CompactionStats:
        """Compact every bucket of ``tenant`` with ended windows; stops early when ``deadline()`` says so."""
        stats = CompactionStats()
        for bucket in range(PARTITION_BUCKETS):
            if deadline():
                break
            stats.add(self.compact_bucket(tenant, bucket, deadline))
        return stats

    def compact_bucket(self, tenant: str, bucket: int, deadline: Callable[[], bool] = lambda: False) -> CompactionStats:
        """Compact the bucket's ended windows past its watermark, and merge its late blocks."""
        stats = CompactionStats(buckets=1)
        # Windows (a, a + W] with a + W <= cutoff have ended, grace included.
        cutoff = (self.clock_ms() - self.grace_ms) // self.window_ms * self.window_ms
        raw_pk, late_pk = compacted_partition_key(tenant, bucket), late_partition_key(tenant, bucket)
        through = self._watermark(raw_pk)
        if through is None:  # never compacted: start at the window of the first writer block
            fresh_pk = block_partition_key(tenant, bucket)
            first = list(self.blocks.query_items(fresh_pk, "0", "~", limit=1, consistent=True))
            first_ts = np.array([window_of_sort_key(first[0].sk) if first else cutoff + 1], dtype=np.int64)
            through = int(window_starts(first_ts, self.window_ms)[0]) - self.window_ms
        late_items = [i for i in self.blocks.query_items(late_pk, "0", "~", consistent=True) if i.max_ts <= cutoff]
        late = merge_samples(self._decode_writer_blocks(tenant, bucket, late_items)) if late_items else empty_block()
        late_windows = {int(w) for w in np.unique(window_starts(late.timestamps, self.window_ms)).tolist()}
        due = sorted(set(range(through + self.window_ms, cutoff - self.window_ms + 1, self.window_ms)) | late_windows)
        days = self._days(tenant)
        done = through
        for window in due:
            if deadline():
                break
            stats.add(self._compact_window(tenant, bucket, window, late, late_items, days))
            done = max(done, window)
        else:  # every late block is merged
            self.blocks.delete_items(late_pk, [i.sk for i in late_items])
            stats.deleted_items += len(late_items)
        if done > through:  # the next run goes on from here (a window redone reads the same items: no-op)
            self.blocks.put_blocks([_watermark_item(raw_pk, done)])
        return stats

    # --- one window -------------------------------------------------------------------------

    def _compact_window(
        self,
        tenant: str,
        bucket: int,
        window: int,
        late: Block,
        late_items: Sequence[StoredItem],
        days: dict[Tier, int],
    ) -> CompactionStats:
        stats = CompactionStats()
        raw_pk = compacted_partition_key(tenant, bucket)
        end = window + self.window_ms
        previous = read_manifests(self.blocks, raw_pk, window, window).get(window)
        existing_keys = previous.part_keys(window) if previous is not None else []
        existing = self.blocks.get_items(raw_pk, existing_keys) if existing_keys else {}
        # Consistent: every writer block of the window was written before it became due.
        fresh_pk = block_partition_key(tenant, bucket)
        fresh = list(self.blocks.query_items(fresh_pk, f"{window:013d}", f"{end:013d}#~", consistent=True))
        in_late = window_starts(late.timestamps, self.window_ms) == window
        if not fresh and not in_late.any():
            return stats
        blocks = [decode_standalone_block(existing[sk]) for sk in existing_keys if sk in existing]
        blocks += [_in_window(b, window, self.window_ms) for b in self._decode_writer_blocks(tenant, bucket, fresh)]
        blocks.append(keep_rows(late, in_late))
        blocks = [b for b in blocks if len(b.timestamps)]
        late_sources = [f"late/{i.sk}" for i in late_items] if in_late.any() else []
        generation = _generation([*(f"raw/{sk}" for sk in existing), *(f"fresh/{i.sk}" for i in fresh), *late_sources])
        if not blocks or (previous is not None and previous.generation == generation):
            return stats  # nothing in the window, or compacted from the very same items already
        merged = merge_samples(blocks)
        stats.windows, stats.samples = 1, len(merged.timestamps)
        stats.source_items, stats.source_bytes = len(fresh), sum(len(i.data) for i in fresh)
        max_ts = int(merged.timestamps.max())
        expires_at = _expiry(max_ts, days[Tier.RAW])
        items: list[BlockItem] = []
        splits = split_by_series(len(merged.series), merged.offsets, MAX_COMPACTED_SAMPLES)
        for n, (a, b) in enumerate(splits):
            part = _sub_block(merged, a, b)
            data = encode_standalone_block(part)
            items.append(
                BlockItem(
                    raw_pk,
                    window_sort_key(window, generation, n),
                    data,
                    len(part.timestamps),
                    window,
                    max_ts,
                    expires_at,
                )
            )
        self.blocks.put_blocks(items)
        stats.compacted_items += len(items)
        stats.compacted_bytes += sum(len(i.data) for i in items)
        for name, resolution_ms in RESOLUTIONS_MS.items():
            stats.add(self._write_rollup(tenant, bucket, window, generation, merged, name, resolution_ms, days))
        # The raw manifest last: readers then skip the window's writer blocks.
        manifest = Manifest(generation, len(items), ranges=_ranges(merged.series, splits))
        self.blocks.put_blocks(
            [BlockItem(raw_pk, manifest_sort_key(window), manifest.encode(), 0, window, end - 1, expires_at)]
        )
        old = self.blocks.query_items(raw_pk, f"{window:013d}", f"{window:013d}#~")
        stale = [i.sk for i in old if generation_of_sort_key(i.sk) != generation]
        self.blocks.delete_items(raw_pk, stale)
        stats.deleted_items += len(stale)
        return stats

    def _write_rollup(
        self,
        tenant: str,
        bucket: int,
        window: int,
        generation: str,
        merged: Block,
        name: str,
        resolution_ms: int,
        days: dict[Tier, int],
    ) -> CompactionStats:
        stats = CompactionStats()
        pk = rollup_partition_key(tenant, bucket, name)
        old = [i.sk for i in self.blocks.query_items(pk, f"{window:013d}", f"{window:013d}#~")]
        expires_at = _expiry(window + self.window_ms, days[_TIER_OF[name]])
        intervals = len(merged.series) * (self.window_ms // resolution_ms)
        items: list[BlockItem] = []
        if name == "1m" and len(merged.timestamps) < MIN_SAMPLES_PER_1M_INTERVAL * intervals:
            manifest = Manifest(generation, 0, derived=True)
        else:
            rollup = roll_up(merged, resolution_ms)
            ranges = split_by_series(len(rollup.series), rollup.offsets, MAX_ROLLUP_ROWS)
            for n, (a, b) in enumerate(ranges):
                part = _sub_rollup(rollup, a, b)
                data = encode_rollup(part)
                last = int(part.timestamps.max())
                sk = window_sort_key(window, generation, n)
                items.append(BlockItem(pk, sk, data, len(part), window, last, expires_at))
            manifest = Manifest(generation, len(items), ranges=_ranges(rollup.series, ranges))
        self.blocks.put_blocks(items)
        # The manifest last: a reader trusts the generation it names to be complete.
        manifest_sk = manifest_sort_key(window)
        max_ts = window + self.window_ms - 1
        self.blocks.put_blocks([BlockItem(pk, manifest_sk, manifest.encode(), 0, window, max_ts, expires_at)])
        stale = [sk for sk in old if sk != manifest_sk and generation_of_sort_key(sk) != generation]
        self.blocks.delete_items(pk, stale)
        stats.rollup_items += len(items)
        stats.rollup_bytes += sum(len(i.data) for i in items)
        stats.deleted_items += len(stale)
        return stats

    # --- helpers ------------------------------------------------------------------------------

    def _watermark(self, raw_pk: str) -> int | None:
        """The start of the last window compacted in order, or None for a bucket never compacted."""
        found = self.blocks.get_items(raw_pk, [WATERMARK_SK])
        return int(json.loads(found[WATERMARK_SK])["through"]) if WATERMARK_SK in found else None

    def _decode_writer_blocks(self, tenant: str, bucket: int, fresh: Iterable[StoredItem]) -> list[Block]:
        parsed = [parse_block(i.data) for i in fresh]
        keys = sorted({p.table_key for p in parsed})
        stored = self.blocks.get_items(table_partition_key(tenant, bucket), keys)
        tables = {key: decode_series_table(data) for key, data in stored.items()}
        return [decode_parsed(p, tables.__getitem__) for p in parsed]

    def _days(self, tenant: str) -> dict[Tier, int]:
        """Days each tier keeps a compacted item: items mix series, so the tenant's longest of the tier
        (readers cut each series at its own retention)."""
        if self.retention is None:
            return dict(DEFAULT_DAYS)
        policy = self.retention.retention(tenant)
        return {tier: policy.longest_days(tier) for tier in DEFAULT_DAYS}


def _ranges(series: U64, splits: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return tuple((int(series[a]), int(series[b - 1])) for a, b in splits)


def _in_window(block: Block, window: int, window_ms: int) -> Block:
    return keep_rows(block, window_starts(block.timestamps, window_ms) == window)


def _watermark_item(raw_pk: str, through: int) -> BlockItem:
    # No TTL worth the name: a watermark that expired would make the compactor start over.
    return BlockItem(raw_pk, WATERMARK_SK, json.dumps({"through": through}).encode(), 0, through, through, 2**40)


def keep_rows(block: Block, mask: npt.NDArray[np.bool_]) -> Block:
    """The samples of ``block`` where ``mask`` holds (series left without samples are dropped)."""
    owner = np.repeat(np.arange(len(block.series)), np.diff(block.offsets))
    counts = np.bincount(owner[mask], minlength=len(block.series))
    keep = counts > 0
    offsets = np.concatenate([[0], np.cumsum(counts[keep])]).astype(np.int64)
    return Block(block.series[keep], offsets, block.timestamps[mask], block.values[mask])


def _generation(sources: Sequence[str]) -> str:
    return hashlib.blake2b("\n".join(sorted(sources)).encode(), digest_size=6).hexdigest()


def _expiry(max_ts_ms: int, days: int) -> int:
    # 0 days: kept forever (no TTL would ever be reached within the age of the universe).
    return (max_ts_ms + (days or 100 * 365) * DAY_MS) // 1000
