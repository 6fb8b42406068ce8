"""Compaction: the writer's small blocks merged into per-window blocks, and their rollups.

The writer stores, per tenant and bucket, a block per stream record (one scrape of many series). Once
a 2-hour window has ended (plus a grace period), the compactor merges that window's blocks into
*compacted* blocks (hundreds of samples per series, carrying their own series ids) and computes its
rollups at 1 minute, 5 minutes and 1 hour (``rollups.py``), each under its own partition.

Nothing is ever deleted before what replaces it is written, and every run is a function of what it
reads, so an interrupted run loses and duplicates nothing:

1. the writer's blocks whose samples all lie in ended windows are read, with the window's existing
   compacted blocks (samples that arrived late are merged into what was compacted before);
2. the merged window is written as a new *generation* (named by a hash of the items it came from,
   so a rerun over the same items rewrites the same keys), then its rollups, then one manifest per
   resolution naming the generation whose rollups are complete;
3. only then are the older generations and the merged writer's blocks deleted.

Readers see no gap: compacted and writer's blocks are read together and samples present in both are
kept once; rollups are read only through their manifest's generation.
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
    MAX_BLOCK_SAMPLES,
    Block,
    block_partition_key,
    compacted_partition_key,
    decode_parsed,
    decode_series_table,
    decode_standalone_block,
    encode_standalone_block,
    parse_block,
    rollup_partition_key,
    table_partition_key,
)
from novacron.storage.rollups import RESOLUTIONS_MS, Rollup, encode_rollup, roll_up
from novacron.storage.writer import DAY_MS, BlockItem, BlockStore, StoredItem

WINDOW_MS = 2 * 3_600_000
# Samples may arrive a little after their window ends (scrape delays, batching, retries): a window is
# compacted once it ended this long ago. Later samples are merged in by a later run.
GRACE_MS = 10 * 60_000
# Samples per compacted item: well under DynamoDB's 400 KB even for incompressible values.
MAX_COMPACTED_SAMPLES = 3 * MAX_BLOCK_SAMPLES
# Below this many samples per series and interval on average (scrapes slower than every 10 s), a 1-minute
# rollup (7 numbers) is about as large as the samples it summarises: it is not stored, and readers
# derive it from the compacted blocks.
MIN_SAMPLES_PER_1M_INTERVAL = 6.0
MANIFEST_SK_SUFFIX = "#m"
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
    """Which generation of a window's rollups at one resolution is complete, and how it is stored."""

    generation: str
    parts: int
    derived: bool = False  # not stored: readers roll the compacted blocks up themselves

    def encode(self) -> bytes:
        return json.dumps({"generation": self.generation, "parts": self.parts, "derived": self.derived}).encode()

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        doc = json.loads(data)
        return cls(str(doc["generation"]), int(doc["parts"]), bool(doc.get("derived", False)))


def window_starts(timestamps: npt.NDArray[np.int64], window_ms: int = WINDOW_MS) -> npt.NDArray[np.int64]:
    """The start of the window of each timestamp. Windows, like rollup intervals and PromQL's range
    windows, are left-open: ``(start, start + window_ms]``, so a window of whole intervals is a union
    of them even for samples exactly on a boundary (CloudWatch's, at the start of each minute)."""
    return (timestamps - 1) // window_ms * window_ms


def window_sort_key(window_start_ms: int, generation: str, part: int) -> str:
    """The sort key of a compacted block or rollup part: window start, generation, part."""
    return f"{window_start_ms:013d}#{generation}#{part:04d}"


def manifest_sort_key(window_start_ms: int) -> str:
    """The sort key of a window's manifest (after its parts: ``m`` sorts after hex digits)."""
    return f"{window_start_ms:013d}{MANIFEST_SK_SUFFIX}"


def window_of_sort_key(sk: str) -> int:
    """The window start of a compacted or rollup item's sort key."""
    return int(sk[:13])


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
            stats.add(self.compact_bucket(tenant, bucket))
        return stats

    def compact_bucket(self, tenant: str, bucket: int) -> CompactionStats:
        """Merge the bucket's writer blocks of ended windows into compacted blocks and rollups."""
        stats = CompactionStats(buckets=1)
        cutoff = (self.clock_ms() - self.grace_ms) // self.window_ms * self.window_ms
        fresh_pk = block_partition_key(tenant, bucket)
        # Writer blocks are keyed by their first sample; those ending before the cutoff are final.
        fresh = [i for i in self.blocks.query_items(fresh_pk, "0", f"{cutoff:013d}") if i.max_ts < cutoff]
        if not fresh:
            return stats
        decoded = self._decode_fresh(tenant, bucket, fresh)
        merged_fresh = merge_samples(decoded)
        windows = np.unique(window_starts(merged_fresh.timestamps, self.window_ms)).tolist()
        days = self._days(tenant)
        for window in windows:
            stats.add(self._compact_window(tenant, bucket, int(window), merged_fresh, fresh, days))
        # Every window the merged blocks touched is written: they can go.
        self.blocks.delete_items(fresh_pk, [i.sk for i in fresh])
        stats.source_items += len(fresh)
        stats.source_bytes += sum(len(i.data) for i in fresh)
        stats.deleted_items += len(fresh)
        return stats

    # --- one window -------------------------------------------------------------------------

    def _compact_window(
        self,
        tenant: str,
        bucket: int,
        window: int,
        merged_fresh: Block,
        fresh: Sequence[StoredItem],
        days: dict[Tier, int],
    ) -> CompactionStats:
        stats = CompactionStats(windows=1)
        raw_pk = compacted_partition_key(tenant, bucket)
        existing = list(self.blocks.query_items(raw_pk, f"{window:013d}", f"{window:013d}#~"))
        in_window = window_starts(merged_fresh.timestamps, self.window_ms) == window
        parts = [decode_standalone_block(i.data) for i in existing] + [keep_rows(merged_fresh, in_window)]
        merged = merge_samples(parts)
        stats.samples += len(merged.timestamps)
        generation = _generation([*(f"raw/{i.sk}" for i in existing), *(f"fresh/{i.sk}" for i in fresh)])
        max_ts = int(merged.timestamps.max())
        items: list[BlockItem] = []
        for n, (a, b) in enumerate(split_by_series(len(merged.series), merged.offsets, MAX_COMPACTED_SAMPLES)):
            part = _sub_block(merged, a, b)
            data = encode_standalone_block(part)
            sk = window_sort_key(window, generation, n)
            items.append(
                BlockItem(raw_pk, sk, data, len(part.timestamps), window, max_ts, _expiry(max_ts, days[Tier.RAW]))
            )
        self.blocks.put_blocks(items)
        stats.compacted_items += len(items)
        stats.compacted_bytes += sum(len(i.data) for i in items)
        for name, resolution_ms in RESOLUTIONS_MS.items():
            stats.add(self._write_rollup(tenant, bucket, window, generation, merged, name, resolution_ms, days))
        stale = [i.sk for i in existing if generation_of_sort_key(i.sk) != generation]
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
            ranges = split_by_series(len(rollup.series), rollup.offsets, MAX_BLOCK_SAMPLES)
            for n, (a, b) in enumerate(ranges):
                part = _sub_rollup(rollup, a, b)
                data = encode_rollup(part)
                last = int(part.timestamps.max())
                sk = window_sort_key(window, generation, n)
                items.append(BlockItem(pk, sk, data, len(part), window, last, expires_at))
            manifest = Manifest(generation, len(items))
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

    def _decode_fresh(self, tenant: str, bucket: int, fresh: Iterable[StoredItem]) -> list[Block]:
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
