"""Compaction: merged windows read back the same, rollups equal the raw aggregates, reruns are safe."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from novacron.records import encode_record
from novacron.series import PARTITION_BUCKETS, Matcher, partition_bucket
from novacron.storage.blocks import (
    block_partition_key,
    compacted_partition_key,
    decode_standalone_block,
    late_partition_key,
    rollup_partition_key,
)
from novacron.storage.compaction import WINDOW_MS, Compactor, Manifest, manifest_sort_key
from novacron.storage.reader import HotTierReader
from novacron.storage.rollups import COLUMNS, RESOLUTIONS_MS, decode_rollup
from novacron.storage.writer import BlockItem, MetricsWriter
from tests.builders import timeseries
from tests.fakes import MemoryBlockStore, MemoryIndexStore
from tests.unit.storage.conftest import END, HOUR, T0, Clock, series_labels


def _read(store: MemoryBlockStore, index: MemoryIndexStore) -> dict[str, tuple[list[int], list[int]]]:
    reader = HotTierReader("acme", store, index, clock_ms=lambda: END)
    found = reader.select([Matcher("job", "=", "api")], T0, END)
    return {dict(s.labels)["instance"]: (s.timestamps.tolist(), s.values.view(np.uint64).tolist()) for s in found}


def _partition(store: MemoryBlockStore, pk: str) -> list[BlockItem]:
    return [item for (item_pk, _), item in sorted(store.items.items()) if item_pk == pk]


def test_compacted_windows_read_back_exactly_without_the_writer_blocks(store, index, written) -> None:
    # Given five hours written by the writer, read back before compaction
    before = _read(store, index)
    # When the compactor runs 20 minutes into the third window
    stats = Compactor(store, clock_ms=Clock(T0 + 4 * HOUR + 20 * 60_000)).compact_tenant("acme")
    # Then every sample reads back bit for bit, staleness marker included
    assert _read(store, index) == before
    assert len(before["i0"][0]) == len(written["i0"])
    # And the writer's blocks are left to their TTL (a delete costs a write), and reads no longer need
    # those of the two compacted windows
    fresh = {
        k: v
        for k, v in store.items.items()
        if k[0] in {block_partition_key("acme", b) for b in range(PARTITION_BUCKETS)}
    }
    assert fresh
    for key, item in fresh.items():
        if item.max_ts <= T0 + 2 * WINDOW_MS:
            store.delete_items(key[0], [key[1]])
    assert _read(store, index) == before
    assert stats.windows == 2 * len({partition_bucket(_sid(index, i)) for i in range(12)})
    # And the compacted data is far smaller than what it was made from
    assert stats.compacted_bytes < stats.source_bytes * 0.6


def _sid(index: MemoryIndexStore, i: int) -> str:
    """The series id of series ``i``, as the writer indexed it."""
    (sid,) = {e.series_id for e in index.series.values() if dict(e.labels)["instance"] == f"i{i}"}
    return sid


def test_rollups_equal_the_raw_aggregates(store, index, written) -> None:
    # Given the first window compacted
    Compactor(store, clock_ms=Clock(T0 + WINDOW_MS + 20 * 60_000)).compact_tenant("acme")
    for name, resolution in RESOLUTIONS_MS.items():
        rows: dict[tuple[int, int], dict[str, float]] = {}
        for bucket in range(PARTITION_BUCKETS):
            pk = rollup_partition_key("acme", bucket, name)
            items = _partition(store, pk)
            manifest = next((Manifest.decode(i.data) for i in items if i.sk == manifest_sort_key(T0)), None)
            if manifest is None:
                continue
            # 15 s samples: 4 a minute are not worth a stored 1-minute rollup (readers derive it)
            assert manifest.derived == (name == "1m")
            parts = [i for i in items if i.sk.startswith(f"{T0:013d}#")]
            assert len(parts) == manifest.parts
            for part in parts:
                rollup = decode_rollup(part.data)
                for s, sid in enumerate(rollup.series.tolist()):
                    for r in range(int(rollup.offsets[s]), int(rollup.offsets[s + 1])):
                        key = (sid, (int(rollup.timestamps[r]) - 1) // resolution)  # intervals are left-open
                        rows[key] = {c: float(rollup.columns[c][r]) for c in COLUMNS}
        if name == "1m":
            assert rows == {}
            continue
        # Then each interval of each series holds exactly the aggregates of its raw samples
        checked = 0
        for i in range(12):
            sid = int(_sid(index, i), 16)
            samples = [(t, v) for t, v in written[f"i{i}"] if T0 <= t < T0 + WINDOW_MS and not np.isnan(v)]
            by_interval: dict[int, list[float]] = {}
            for t, v in samples:
                by_interval.setdefault((t - 1) // resolution, []).append(v)
            for interval, values in by_interval.items():
                got = rows[(sid, interval)]
                increase = sum(b - a if b >= a else b for a, b in itertools.pairwise(values))
                want = {
                    "count": len(values),
                    "sum": sum(values),
                    "min": min(values),
                    "max": max(values),
                    "first": values[0],
                    "last": values[-1],
                    "inc": increase,
                    "first_ts": min(t for t, _ in samples if (t - 1) // resolution == interval),
                }
                assert got == pytest.approx(want, rel=1e-12), (name, i, interval)
                checked += 1
        assert checked == 12 * WINDOW_MS // resolution


class FailingStore(MemoryBlockStore):
    """A store that fails after a number of writes/deletes, like a function timing out mid-run."""

    def __init__(self, base: MemoryBlockStore, fail_after: int) -> None:
        super().__init__()
        self.items, self.partitions = base.items, base.partitions
        self.left = fail_after

    def _tick(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise TimeoutError("interrupted")

    def put_blocks(self, items):  # type: ignore[no-untyped-def]
        self._tick()
        super().put_blocks(items)

    def delete_items(self, pk, sks):  # type: ignore[no-untyped-def]
        self._tick()
        super().delete_items(pk, sks)


@pytest.mark.parametrize("fail_after", [0, 1, 3, 7, 12, 30])
def test_an_interrupted_run_then_a_rerun_lose_and_duplicate_nothing(store, index, written, fail_after) -> None:
    # Given the data as read before compaction
    before = _read(store, index)
    clock = Clock(T0 + 4 * HOUR + 20 * 60_000)
    # When a run is interrupted after some writes, the data is read, and a full run follows
    with pytest.raises(TimeoutError):
        Compactor(FailingStore(store, fail_after), clock_ms=clock).compact_tenant("acme")
    during = _read(store, index)
    Compactor(store, clock_ms=clock).compact_tenant("acme")
    # Then readers saw every sample exactly once at every point
    assert during == before
    assert _read(store, index) == before
    # And only one generation per window and bucket is left, named by every manifest
    for bucket in range(PARTITION_BUCKETS):
        items = _partition(store, compacted_partition_key("acme", bucket))
        raw = {i.sk.split("#")[1] for i in items if i.sk[:1].isdigit()}
        manifests = {
            Manifest.decode(i.data).generation
            for i in _partition(store, rollup_partition_key("acme", bucket, "5m"))
            if i.sk.startswith("m#")
        }
        assert len(raw) <= 2  # one per window
        assert raw == manifests


def test_late_samples_are_merged_into_a_compacted_window(store, index, written) -> None:
    # Given the first window compacted
    clock = Clock(T0 + WINDOW_MS + 20 * 60_000)
    Compactor(store, clock_ms=clock).compact_tenant("acme")
    # When a sample arrives late for it (a new timestamp of series i1) and the compactor runs again
    writer = MetricsWriter(store, index, now_ms=clock)
    late = timeseries(series_labels(1), [(T0 + 7_000, 12345.0)])
    writer.write_record(encode_record("acme", clock.now_ms, [late.SerializeToString()]), "late")
    seen_before_compaction = _read(store, index)["i1"]
    stats = Compactor(store, clock_ms=clock).compact_tenant("acme")
    # Then it was readable at once (from the late partition) and still is, merged into the window
    after = _read(store, index)["i1"]
    assert T0 + 7_000 in seen_before_compaction[0]
    assert after == seen_before_compaction
    assert stats.windows == 1
    bucket = partition_bucket(_sid(index, 1))
    assert _partition(store, late_partition_key("acme", bucket)) == []
    (part,) = [i for i in _partition(store, compacted_partition_key("acme", bucket)) if i.sk.startswith(f"{T0:013d}#")]
    assert 12345.0 in decode_standalone_block(part.data).values


def test_a_run_with_nothing_new_writes_nothing(store, index, written) -> None:
    # Given a compacted tenant
    clock = Clock(T0 + WINDOW_MS + 20 * 60_000)
    Compactor(store, clock_ms=clock).compact_tenant("acme")
    puts = store.puts
    # When the compactor runs again, then it neither writes nor reads anything into the windows
    stats = Compactor(store, clock_ms=clock).compact_tenant("acme")
    assert store.puts == puts
    assert stats.windows == 0


def test_sparse_series_leave_the_one_minute_rollup_to_readers(store, index) -> None:
    # Given series sampled once a minute (a 1-minute rollup would be larger than the samples)
    writer = MetricsWriter(store, index, now_ms=lambda: T0)
    ts = list(range(T0 + 1_000, T0 + WINDOW_MS, 60_000))
    series = [timeseries(series_labels(i), [(t, float(t % 7)) for t in ts]) for i in range(4)]
    writer.write_record(encode_record("acme", T0, [s.SerializeToString() for s in series]), "1")
    # When compacted
    Compactor(store, clock_ms=Clock(T0 + WINDOW_MS + 20 * 60_000)).compact_tenant("acme")
    # Then the 1-minute manifests say "derived" with no parts, while 5-minute rollups are stored
    for i in range(4):
        bucket = partition_bucket(_sid(index, i))
        one = _partition(store, rollup_partition_key("acme", bucket, "1m"))
        five = _partition(store, rollup_partition_key("acme", bucket, "5m"))
        assert [Manifest.decode(x.data) for x in one] == [Manifest(Manifest.decode(one[0].data).generation, 0, True)]
        assert len(five) == 2  # one part and the manifest


def test_a_narrow_selection_fetches_only_the_parts_holding_its_series(store, index) -> None:
    # Given 2,000 series (about 31 per bucket) over one window, compacted into parts of whole series
    writer = MetricsWriter(store, index, now_ms=lambda: T0)
    ts = list(range(T0 + 3_000, T0 + WINDOW_MS, 15_000))
    labels = [{"__name__": "load", "job": "api", "instance": f"i{i}"} for i in range(2_000)]
    records = [
        (f"{n:056d}", encode_record("acme", T0, [timeseries(lb, [(t, float(n))]).SerializeToString() for lb in labels]))
        for n, t in enumerate(ts)
    ]
    writer.write_batch(records)
    Compactor(store, clock_ms=Clock(T0 + WINDOW_MS + 20 * 60_000)).compact_tenant("acme")
    compacted = sum(len(i.data) for (pk, _), i in store.items.items() if pk.endswith("#raw") and i.samples)
    # When one series and then all of them are read
    one = HotTierReader("acme", store, index, clock_ms=lambda: END)
    (found,) = one.select([Matcher("instance", "=", "i7")], T0, T0 + WINDOW_MS)
    everything = HotTierReader("acme", store, index, clock_ms=lambda: END)
    everything.select([Matcher("job", "=", "api")], T0, T0 + WINDOW_MS)
    # Then the one series is whole, read from a small share of the compacted bytes; all of them need all
    assert found.values.tolist() == [float(n) for n in range(len(ts))]
    assert one.stats.block_bytes < compacted / 20
    assert everything.stats.block_bytes == compacted
