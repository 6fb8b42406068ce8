"""Conversion runs: idempotent, restartable, late objects, duplicates, bounded parts."""

from __future__ import annotations

import pytest

from novacron.archive.archiver import Archiver, ArchiverSettings
from novacron.archive.keys import HOUR_MS, manifest_key
from novacron.archive.reader import ArchiveReader
from novacron.series import Matcher
from tests.archive_support import HOUR0, MemoryObjects, put_raw, series_record

LATER = HOUR0 + 2 * HOUR_MS  # the hour HOUR0 is complete and settled by then
UP = [Matcher("__name__", "=", "up")]


def up_record(t0: int, n: int = 4, job: str = "a", received: int = HOUR0 + 60_000) -> bytes:
    return series_record(
        "acme", received, [({"__name__": "up", "job": job}, [(t0 + i * 15_000, float(i)) for i in range(n)])]
    )


@pytest.fixture
def objects() -> MemoryObjects:
    return MemoryObjects()


def archived(objects: MemoryObjects) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
    result = ArchiveReader("acme", objects).select(UP, HOUR0 - HOUR_MS, LATER)
    return {s.labels: list(zip(s.timestamps.tolist(), s.values.tolist(), strict=True)) for s in result}


def parquet_rows(objects: MemoryObjects) -> int:
    import io

    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(io.BytesIO(objects.objects[k])).metadata.num_rows for k in objects.keys("parquet/"))


def test_a_rerun_skips_converted_hours(objects):
    # Given an hour converted once
    put_raw(objects, "acme", HOUR0 + 60_000, [up_record(HOUR0)])
    first = Archiver(objects).run(LATER)
    assert first.parts == 1
    snapshot = dict(objects.objects)
    # When the archiver runs again
    again = Archiver(objects).run(LATER + 15 * 60_000)
    # Then nothing is converted or rewritten
    assert again.parts == 0
    assert objects.objects == snapshot


def test_an_hour_is_converted_only_once_it_is_complete(objects):
    # Given raw objects of the current hour
    put_raw(objects, "acme", HOUR0 + 60_000, [up_record(HOUR0)])
    # When the archiver runs before the hour ended (plus its settling time)
    stats = Archiver(objects).run(HOUR0 + HOUR_MS + 5 * 60_000)
    # Then nothing is converted yet, and raw objects stay
    assert stats.parts == 0
    assert objects.keys("parquet/") == []
    assert len(objects.keys("raw/")) == 1


def test_late_raw_objects_become_an_additional_part_without_duplicates(objects):
    # Given a converted hour
    put_raw(objects, "acme", HOUR0 + 60_000, [up_record(HOUR0)], "1", "1")
    Archiver(objects).run(LATER)
    # When a late raw object arrives for it, holding a re-archived record and a new one
    put_raw(objects, "acme", HOUR0 + 60_000, [up_record(HOUR0), up_record(HOUR0 + 60_000, job="b")], "2", "3")
    stats = Archiver(objects).run(LATER + 15 * 60_000)
    # Then a second part holds only the new record's rows; raw objects are kept
    assert stats.parts == 1
    assert stats.duplicate_records == 1
    assert len(objects.keys("parquet/")) == 2
    assert parquet_rows(objects) == 8
    assert len(objects.keys("raw/")) == 2
    assert sorted(dict(labels)["job"] for labels in archived(objects)) == ["a", "b"]


def test_an_interrupted_run_redoes_only_the_unfinished_part(objects):
    # Given two parts' worth of raw objects (tiny parts) and a run that crashes after writing a Parquet file
    for i in range(3):
        put_raw(objects, "acme", HOUR0 + 60_000, [up_record(HOUR0 + i * HOUR_MS // 4, job=str(i))], str(i), str(i))
    settings = ArchiverSettings(max_part_raw_bytes=1)  # one raw object per part
    objects.fail_puts_after = objects.puts + 5  # pending, file, commit (part 1); pending, file (part 2); crash
    with pytest.raises(RuntimeError, match="simulated crash"):
        Archiver(objects, settings).run(LATER)
    objects.fail_puts_after = None
    written_before = objects.keys("parquet/")
    assert len(written_before) == 2
    # When the archiver runs again
    stats = Archiver(objects, settings).run(LATER)
    # Then the pending part is redone into the same key and the rest is converted: no duplicate rows
    assert stats.redone_pending == 1
    assert stats.parts == 2
    assert set(written_before) <= set(objects.keys("parquet/"))
    assert len(objects.keys("parquet/")) == 3
    assert parquet_rows(objects) == 12
    assert len(archived(objects)) == 3


def test_parts_are_bounded_and_duplicates_across_parts_are_dropped(objects):
    # Given the same record in two raw objects (a retried batch) and a part size of one object
    record = up_record(HOUR0)
    put_raw(objects, "acme", HOUR0 + 60_000, [record], "1", "1")
    put_raw(objects, "acme", HOUR0 + 60_000, [record], "1", "2")
    # When converted
    stats = Archiver(objects, ArchiverSettings(max_part_raw_bytes=1)).run(LATER)
    # Then two parts were made, and the second holds nothing of the duplicate
    assert stats.parts == 2
    assert stats.duplicate_records == 1
    assert parquet_rows(objects) == 4


def test_a_run_out_of_time_stops_before_starting_a_part(objects):
    # Given work to do and no time left
    put_raw(objects, "acme", HOUR0 + 60_000, [up_record(HOUR0)])
    # When run
    stats = Archiver(objects).run(LATER, time_left=lambda: False)
    # Then it stops cleanly without writing anything
    assert stats.stopped_early
    assert objects.keys("parquet") == []


def test_an_unreadable_manifest_leaves_its_hour_alone(objects):
    # Given an hour whose manifest is damaged
    put_raw(objects, "acme", HOUR0 + 60_000, [up_record(HOUR0)])
    objects.put(manifest_key("acme", HOUR0), b"{not json")
    # When run
    stats = Archiver(objects).run(LATER)
    # Then that hour is skipped and counted, not converted twice
    assert stats.unreadable_manifests == 1
    assert objects.keys("parquet/") == []


def test_parquet_files_carry_the_tenants_tags_and_tenants_stay_apart(objects):
    # Given raw objects of two tenants
    put_raw(objects, "acme", HOUR0 + 60_000, [up_record(HOUR0)])
    put_raw(objects, "globex", HOUR0 + 60_000, [series_record("globex", HOUR0, [({"__name__": "up"}, [(HOUR0, 9.0)])])])
    # When converted with a tagging rule
    Archiver(objects, tags_for=lambda tenant: {"novacron-retention": f"{len(tenant)}d"}).run(LATER)
    # Then each tenant's files are in its partition, tagged with its own tags
    acme, globex = objects.keys("parquet/tenant=acme/"), objects.keys("parquet/tenant=globex/")
    assert len(acme) == len(globex) == 1
    assert objects.tags[acme[0]] == {"novacron-retention": "4d"}
    assert objects.tags[globex[0]] == {"novacron-retention": "6d"}
    assert [s.values.tolist() for s in ArchiveReader("globex", objects).select(UP, HOUR0, LATER)] == [[9.0]]
