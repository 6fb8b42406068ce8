"""The writer and the reader over in-memory stores: idempotency, isolation, ranges."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.records import encode_record
from novacron.series import Matcher, partition_bucket
from novacron.storage.blocks import MAX_BLOCK_SPAN_MS
from novacron.storage.reader import MAX_INDEX_DAYS, HotTierReader
from novacron.storage.writer import DAY_MS, MetricsWriter, WriteStats, archive_stored_records
from tests.builders import timeseries
from tests.fakes import MemoryArchive, MemoryBlockStore, MemoryIndexStore

NOW = 1_790_000_000_000


@pytest.fixture
def blocks() -> MemoryBlockStore:
    return MemoryBlockStore()


@pytest.fixture
def index() -> MemoryIndexStore:
    return MemoryIndexStore()


@pytest.fixture
def writer(blocks: MemoryBlockStore, index: MemoryIndexStore) -> MetricsWriter:
    return MetricsWriter(blocks, index, now_ms=lambda: NOW)


def record(tenant: str, series: list, received: int = NOW) -> bytes:
    return encode_record(tenant, received, [s.SerializeToString() for s in series])


def reader(tenant: str, blocks: MemoryBlockStore, index: MemoryIndexStore) -> HotTierReader:
    return HotTierReader(tenant, blocks, index, clock_ms=lambda: NOW)


def up(instance: str, samples: list[tuple[int, float]]):
    return timeseries({"__name__": "up", "job": "node", "instance": instance}, samples)


def test_replaying_a_record_leaves_each_sample_once(writer, blocks, index) -> None:
    # Given a record with two series
    data = record("acme", [up("a", [(NOW - 15000, 1.0), (NOW, 2.0)]), up("b", [(NOW, 3.0)])])
    # When it is written twice (a retried batch) under the same sequence number
    writer.write_record(data, "49590338271490256608559692538361571095921575989136588898")
    items_after_first = dict(blocks.items)
    writer.write_record(data, "49590338271490256608559692538361571095921575989136588898")
    # Then the same items were rewritten, not added to
    assert blocks.items.keys() == items_after_first.keys()
    stored = sum(item.samples for item in blocks.items.values())
    assert stored == 3
    # And a fresh writer (cold start) rewrites the same keys too
    MetricsWriter(blocks, index, now_ms=lambda: NOW).write_record(
        data, "49590338271490256608559692538361571095921575989136588898"
    )
    assert blocks.items.keys() == items_after_first.keys()


def test_reader_returns_samples_by_matchers(writer, blocks, index) -> None:
    # Given samples of three instances written in two records
    writer.write_record(record("acme", [up("a", [(NOW - 60000, 1.0)]), up("b", [(NOW - 60000, 5.0)])]), "1")
    writer.write_record(record("acme", [up("a", [(NOW, 2.0)]), up("c", [(NOW, 9.0)])]), "2")
    # When selecting instances matching a regex
    got = reader("acme", blocks, index).select(
        [Matcher("__name__", "=", "up"), Matcher("instance", "=~", "a|b")], NOW - 120000, NOW
    )
    # Then both series come back with their samples in time order
    assert [dict(s.labels)["instance"] for s in got] == ["a", "b"]
    assert got[0].timestamps.tolist() == [NOW - 60000, NOW]
    assert got[0].values.tolist() == [1.0, 2.0]
    assert got[1].values.tolist() == [5.0]


def test_resent_samples_are_returned_once(writer, blocks, index) -> None:
    # Given a sender that resent the same sample in a new request (a new record)
    writer.write_record(record("acme", [up("a", [(NOW, 1.0)])]), "1")
    writer.write_record(record("acme", [up("a", [(NOW, 1.0)])]), "2")
    # When read, Then the sample appears once
    (series,) = reader("acme", blocks, index).select([Matcher("__name__", "=", "up")], NOW - 1000, NOW)
    assert series.timestamps.tolist() == [NOW]


def test_tenants_never_see_each_other(writer, blocks, index) -> None:
    # Given the same series written by two tenants with different values
    writer.write_record(record("acme", [up("a", [(NOW, 1.0)])]), "1")
    writer.write_record(record("globex", [up("a", [(NOW, 2.0)])]), "2")
    # When each tenant reads
    acme = reader("acme", blocks, index).select([Matcher("__name__", "=", "up")], NOW - 1000, NOW)
    globex = reader("globex", blocks, index).select([Matcher("__name__", "=", "up")], NOW - 1000, NOW)
    nobody = reader("initech", blocks, index)
    # Then each sees only its own
    assert [s.values.tolist() for s in acme] == [[1.0]]
    assert [s.values.tolist() for s in globex] == [[2.0]]
    assert nobody.select([Matcher("__name__", "=~", ".+")], NOW - 1000, NOW) == []
    assert nobody.label_names([]) == []


def test_a_record_spanning_windows_splits_into_bounded_blocks(writer, blocks, index) -> None:
    # Given one series with an hour of 15 s samples in one record
    samples = [(NOW - 3600_000 + i * 15000, float(i)) for i in range(241)]
    writer.write_record(record("acme", [up("a", samples)]), "7")
    # Then no block spans more than the block span, and all samples read back
    assert all(item.max_ts - item.min_ts < MAX_BLOCK_SPAN_MS for item in blocks.items.values())
    (series,) = reader("acme", blocks, index).select([Matcher("instance", "=", "a")], NOW - 3600_000, NOW)
    assert series.values.tolist() == [float(i) for i in range(241)]
    # And a narrow range returns only its samples
    (narrow,) = reader("acme", blocks, index).select([Matcher("instance", "=", "a")], NOW - 30000, NOW)
    assert narrow.values.tolist() == [238.0, 239.0, 240.0]


def test_duplicate_timestamps_in_one_record_keep_the_last(writer, blocks, index) -> None:
    writer.write_record(record("acme", [up("a", [(NOW, 1.0), (NOW, 2.0)])]), "1")
    (series,) = reader("acme", blocks, index).select([Matcher("instance", "=", "a")], NOW - 1, NOW)
    assert series.values.tolist() == [2.0]


def test_label_lookups(writer, blocks, index) -> None:
    # Given two metrics
    writer.write_record(
        record("acme", [up("a", [(NOW, 1.0)]), timeseries({"__name__": "load", "host": "h1"}, [(NOW, 0.5)])]), "1"
    )
    r = reader("acme", blocks, index)
    # Then names, values and series are found, optionally restricted by matchers
    assert r.label_names([]) == ["__name__", "host", "instance", "job"]
    assert r.label_values("__name__", []) == ["load", "up"]
    assert r.label_values("instance", [[Matcher("__name__", "=", "up")]]) == ["a"]
    assert r.series([[Matcher("host", "!=", "")]]) == [(("__name__", "load"), ("host", "h1"))]


def test_huge_ranges_read_only_the_days_the_index_holds(writer, blocks, index) -> None:
    # Given a sample written now
    writer.write_record(record("acme", [up("a", [(NOW, 1.0)])]), "1")
    r = reader("acme", blocks, index)
    # When a selection and a series lookup span from 1970 to a year ahead (as promtool's defaults do)
    selected = r.select([Matcher("__name__", "=", "up")], 0, NOW + 365 * DAY_MS)
    series = r.series([[Matcher("__name__", "=", "up")]], -(2**62), NOW + 365 * DAY_MS)
    # Then the sample and its series are found, reading no more than the index's 62 days, today and tomorrow
    assert [s.values.tolist() for s in selected] == [[1.0]]
    assert len(series) == 1
    assert r.stats.index_queries <= 2 * (MAX_INDEX_DAYS + 2)


def test_index_is_written_once_per_series_and_day(writer, blocks, index) -> None:
    writer.write_record(record("acme", [up("a", [(NOW, 1.0)])]), "1")
    writer.write_record(record("acme", [up("a", [(NOW + 15000, 1.0)])]), "2")
    assert index.puts == 1


def test_archive_objects_are_keyed_for_idempotency() -> None:
    # Given two stored records of two tenants in one batch
    archive = MemoryArchive()
    stored = [
        ("100", record("acme", [up("a", [(NOW, 1.0)])]), WriteStats(tenant="acme", received_ms=NOW)),
        ("101", record("globex", [up("a", [(NOW, 1.0)])]), WriteStats(tenant="globex", received_ms=NOW)),
    ]
    # When archived twice
    keys = archive_stored_records(archive, "shardId-000000000000", stored)
    archive_stored_records(archive, "shardId-000000000000", stored)
    # Then one object per tenant, partitioned by tenant/date/hour, exists
    assert sorted(archive.objects) == sorted(keys)
    assert keys[0].startswith("raw/tenant=acme/date=2026-09-21/hour=")
    assert keys[0].endswith("shardId-000000000000-100-100.ncr")
    assert len(keys) == 2


def test_values_survive_bit_for_bit(writer, blocks, index) -> None:
    stale = float(np.array([0x7FF0000000000002], dtype=np.uint64).view(np.float64)[0])
    writer.write_record(record("acme", [up("a", [(NOW - 1, stale), (NOW, -0.0)])]), "1")
    (series,) = reader("acme", blocks, index).select([Matcher("instance", "=", "a")], NOW - 10, NOW)
    assert series.values.view(np.uint64).tolist() == [0x7FF0000000000002, 0x8000000000000000]


def test_series_tables_are_written_once_and_before_their_blocks(writer, blocks, index) -> None:
    # Given a store that records the order of its writes
    calls: list[list[str]] = []
    original = blocks.put_blocks

    def recording(items):
        calls.append([item.pk for item in items])
        original(items)

    blocks.put_blocks = recording
    # When two scrapes of the same series are written
    writer.write_record(record("acme", [up("a", [(NOW - 15000, 1.0)]), up("b", [(NOW - 15000, 1.0)])]), "1")
    writer.write_record(record("acme", [up("a", [(NOW, 2.0)]), up("b", [(NOW, 2.0)])]), "2")
    # Then each bucket's table went out in a call before its first block, and only once
    table_calls = [c for c in calls if all(pk.endswith("#series") for pk in c)]
    block_calls = [c for c in calls if not any(pk.endswith("#series") for pk in c)]
    assert calls.index(table_calls[0]) < calls.index(block_calls[0])
    assert sum(len(c) for c in table_calls) == len({pk for c in block_calls for pk in c})


def test_a_block_without_its_table_is_an_error_not_silence(writer, blocks, index) -> None:
    writer.write_record(record("acme", [up("a", [(NOW, 1.0)])]), "1")
    for key in [k for k in blocks.items if k[0].endswith("#series")]:
        del blocks.items[key]
    from novacron.storage import reader as reader_module

    reader_module._TABLES.clear()
    with pytest.raises(ValueError, match="series tables"):
        reader("acme", blocks, index).select([Matcher("instance", "=", "a")], NOW - 10, NOW)


def test_a_batch_isolates_poison_and_malformed_records(writer, blocks, index) -> None:
    # Given a batch with a good record, a record that is not ours, one with broken protobuf, and another good one
    broken = encode_record("acme", NOW, [b"\x0a\xff\xff\xff"])
    batch = [
        ("1", record("acme", [up("a", [(NOW, 1.0)])])),
        ("2", b"not a record"),
        ("3", broken),
        ("4", record("acme", [up("b", [(NOW, 2.0)])])),
    ]
    # When written as one batch
    outcomes = writer.write_batch(batch)
    # Then the two bad ones come back as errors and the good ones are stored
    assert [type(o).__name__ for o in outcomes] == ["WriteStats", "RecordFormatError", "WireFormatError", "WriteStats"]
    got = reader("acme", blocks, index).select([Matcher("__name__", "=", "up")], NOW - 1, NOW)
    assert [dict(s.labels)["instance"] for s in got] == ["a", "b"]


def test_a_series_in_several_records_of_a_batch_is_indexed_once(writer, blocks, index) -> None:
    outcomes = writer.write_batch(
        [("1", record("acme", [up("a", [(NOW - 15000, 1.0)])])), ("2", record("acme", [up("a", [(NOW, 2.0)])]))]
    )
    assert [o.samples for o in outcomes] == [1, 1]
    assert index.puts == 1
    (series,) = reader("acme", blocks, index).select([Matcher("instance", "=", "a")], NOW - 20000, NOW)
    assert series.values.tolist() == [1.0, 2.0]


def test_a_lone_malformed_record_fails_alone(writer) -> None:
    # A batch holding only one decodable record, with broken protobuf inside, reports that record
    (outcome,) = writer.write_batch([("1", encode_record("acme", NOW, [b"\x0a\xff\xff\xff"]))])
    assert type(outcome).__name__ == "WireFormatError"


def test_index_entries_live_until_the_end_of_their_day_plus_retention(blocks) -> None:
    # Given an index store that records expiries, and a sample early in a UTC day
    expiries: list[int] = []

    class RecordingIndex(MemoryIndexStore):
        def put_series(self, entries, expires_at):  # type: ignore[no-untyped-def]
            expiries.append(expires_at)
            super().put_series(entries, expires_at)

    writer = MetricsWriter(blocks, RecordingIndex(), now_ms=lambda: NOW)
    day_start_ms = (NOW // 86_400_000) * 86_400_000
    writer.write_record(record("acme", [up("a", [(day_start_ms + 60_000, 1.0)])]), "1")
    # Then the entry outlives the day's last possible block, not just the first one
    block_expiry_at_day_end = (day_start_ms + 86_400_000 - 1) // 1000 + 15 * 86_400
    assert expiries == [block_expiry_at_day_end]


def test_a_batch_without_any_sample_is_written_as_nothing(writer, blocks) -> None:
    # Given records that hold no samples: one with no series, one whose series has no samples
    empty = record("acme", [])
    sampleless = record("acme", [up("a", [])])
    # When the writer takes them as one batch
    outcomes = writer.write_batch([("1", empty), ("2", sampleless)])
    # Then each record is settled (not a poison record) and no block is stored
    assert [o.samples for o in outcomes if isinstance(o, WriteStats)] == [0, 0]
    assert blocks.items == {}


def test_a_batch_writes_one_block_per_bucket_whatever_its_records(writer, blocks, index) -> None:
    # Given a batch of 20 records, each holding the same 30 series at its own time (one sender request each)
    series = [f"i{i}" for i in range(30)]
    batch = [(f"{n:056d}", record("acme", [up(s, [(NOW + n * 15_000, float(n))]) for s in series])) for n in range(20)]
    # When written as one batch
    writer.write_batch(batch)
    # Then each bucket holds one block (not one per record), and every sample reads back
    data_blocks = [k for k in blocks.items if not k[0].endswith("#series")]
    assert len(data_blocks) == len({k[0] for k in data_blocks})
    found = reader("acme", blocks, index).select([Matcher("job", "=", "node")], NOW, NOW + 20 * 15_000)
    assert sorted(dict(s.labels)["instance"] for s in found) == sorted(series)
    assert all(s.values.tolist() == [float(n) for n in range(20)] for s in found)


def test_a_sample_sent_again_in_a_later_record_of_the_batch_keeps_the_later_value(writer, blocks, index) -> None:
    # Given two records of one batch holding the same sample with different values
    batch = [
        ("1".zfill(56), record("acme", [up("a", [(NOW, 1.0)])])),
        ("2".zfill(56), record("acme", [up("a", [(NOW, 2.0)])])),
    ]
    # When written, then the value received last is stored, once
    writer.write_batch(batch)
    (series,) = reader("acme", blocks, index).select([Matcher("instance", "=", "a")], NOW - 1, NOW)
    assert series.values.tolist() == [2.0]


def test_reads_of_recent_windows_query_only_the_writers_blocks(writer, blocks, index) -> None:
    # Given samples written a minute ago and now
    writer.write_record(record("acme", [up("a", [(NOW - 60000, 1.0), (NOW, 2.0)]), up("b", [(NOW, 3.0)])]), "1")
    # When the last five minutes are read
    hot = reader("acme", blocks, index)
    got = hot.select([Matcher("__name__", "=", "up")], NOW - 300_000, NOW)
    # Then they come back from one query per bucket holding the series: the window cannot have been
    # compacted yet, nor have late blocks, so neither manifests nor the late partition are read
    assert [s.values.tolist() for s in got] == [[1.0, 2.0], [3.0]]
    assert hot.stats.block_queries == len({partition_bucket(e.series_id) for e in index.series.values()})
