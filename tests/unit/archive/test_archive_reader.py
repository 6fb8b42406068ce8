"""ArchiveReader.select: the same samples as went in, with partition, file and row-group pruning."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.archive.archiver import Archiver, ArchiverSettings
from novacron.archive.keys import DAY_MS, HOUR_MS
from novacron.archive.reader import ArchiveRangeTooLarge, ArchiveReader
from novacron.series import Matcher
from tests.archive_support import HOUR0, MemoryObjects, put_raw, series_record

METRICS, SERIES, SAMPLES, STEP = 100, 10, 240, 15_000  # one hour of 15 s samples


@pytest.fixture(scope="module")
def estate() -> MemoryObjects:
    """One hour of 100 metrics x 10 series, converted with small row groups."""
    objects = MemoryObjects()
    records = [
        series_record(
            "acme",
            HOUR0 + 60_000,
            [
                (
                    {"__name__": f"metric_{m:03d}", "pod": f"p{i}", "env": "prod" if i % 2 else "dev"},
                    [(HOUR0 + t * STEP, float(m * 1000 + i * 10 + t % 7)) for t in range(SAMPLES)],
                )
                for i in range(SERIES)
            ],
        )
        for m in range(METRICS)
    ]
    put_raw(objects, "acme", HOUR0 + 60_000, records)
    Archiver(objects, ArchiverSettings(row_group_rows=4096)).run(HOUR0 + 2 * HOUR_MS)
    return objects


def test_select_returns_the_samples_that_went_in(estate):
    # When one series is selected over the whole hour
    reader = ArchiveReader("acme", estate)
    (series,) = reader.select(
        [Matcher("__name__", "=", "metric_042"), Matcher("pod", "=", "p3")], HOUR0, HOUR0 + HOUR_MS
    )
    # Then all its samples come back, in order, with its labels
    assert dict(series.labels) == {"__name__": "metric_042", "pod": "p3", "env": "prod"}
    assert series.timestamps.tolist() == [HOUR0 + t * STEP for t in range(SAMPLES)]
    assert series.values.tolist() == [float(42_000 + 30 + t % 7) for t in range(SAMPLES)]


def test_matchers_and_the_time_range_are_applied(estate):
    # When selecting by regex on the name and a negative label matcher, over 10 minutes
    reader = ArchiveReader("acme", estate)
    start, end = HOUR0 + 10 * 60_000, HOUR0 + 20 * 60_000
    found = reader.select([Matcher("__name__", "=~", "metric_00[12]"), Matcher("env", "!=", "prod")], start, end)
    # Then only dev series of the two metrics, and only samples inside [start, end]
    assert len(found) == 2 * SERIES // 2
    assert {dict(s.labels)["env"] for s in found} == {"dev"}
    for s in found:
        assert s.timestamps.min() >= start
        assert s.timestamps.max() <= end
        assert len(s.timestamps) == 41
    assert found == sorted(found, key=lambda s: s.labels)


def test_a_narrow_query_reads_far_less_than_the_file(estate):
    # Given the archive's single Parquet file
    (key,) = estate.keys("parquet/")
    size = len(estate.objects[key])
    estate.bytes_fetched = estate.range_gets = estate.gets = 0
    # When one metric is selected over 30 minutes
    reader = ArchiveReader("acme", estate)
    found = reader.select([Matcher("__name__", "=", "metric_050")], HOUR0, HOUR0 + 30 * 60_000)
    # Then the answer is complete, yet only the footer and one or two of ~60 row groups were fetched
    assert len(found) == SERIES
    assert all(len(s.timestamps) == 121 for s in found)
    assert reader.stats.row_groups >= 50
    assert reader.stats.row_groups_read <= 2
    assert estate.gets == 0, "no whole-object GET"
    assert estate.bytes_fetched == reader.stats.bytes_read
    assert estate.bytes_fetched < size / 10, (estate.bytes_fetched, size)
    print(f"\npushdown: {estate.bytes_fetched} of {size} bytes in {estate.range_gets} ranged reads")


def test_partitions_and_files_outside_the_range_are_not_opened(estate):
    # When the range misses the archived hour (same day, and a day before)
    reader = ArchiveReader("acme", estate)
    assert reader.select([Matcher("__name__", "=", "metric_001")], HOUR0 + HOUR_MS, HOUR0 + 2 * HOUR_MS) == []
    assert reader.select([Matcher("__name__", "=", "metric_001")], HOUR0 - DAY_MS, HOUR0 - DAY_MS + 1) == []
    # Then files were listed but none was opened
    assert reader.stats.listings == 2
    assert reader.stats.files_opened == 0
    assert reader.stats.requests == 0


def test_other_tenants_and_impossible_names_find_nothing(estate):
    assert (
        ArchiveReader("globex", estate).select([Matcher("__name__", "=", "metric_001")], HOUR0, HOUR0 + HOUR_MS) == []
    )
    both = [Matcher("__name__", "=", "metric_001"), Matcher("__name__", "=", "metric_002")]
    assert ArchiveReader("acme", estate).select(both, HOUR0, HOUR0 + HOUR_MS) == []


def test_overlapping_files_give_one_sample_per_timestamp():
    # Given the same samples converted in two different hours' files (a record re-archived an hour later)
    objects = MemoryObjects()
    record = series_record("acme", HOUR0, [({"__name__": "up"}, [(HOUR0, 1.0), (HOUR0 + STEP, 2.0)])])
    put_raw(objects, "acme", HOUR0 + 60_000, [record])
    put_raw(objects, "acme", HOUR0 + HOUR_MS + 60_000, [record])
    Archiver(objects).run(HOUR0 + 3 * HOUR_MS)
    assert len(objects.keys("parquet/")) == 2
    # When read back
    (series,) = ArchiveReader("acme", objects).select([Matcher("__name__", "=", "up")], HOUR0, HOUR0 + HOUR_MS)
    # Then each timestamp appears once
    assert series.timestamps.tolist() == [HOUR0, HOUR0 + STEP]
    assert np.array_equal(series.values, [1.0, 2.0])


def test_a_range_of_too_many_days_is_refused():
    with pytest.raises(ArchiveRangeTooLarge, match="at most 3 days"):
        ArchiveReader("acme", MemoryObjects(), max_days=3).select([], 0, 5 * DAY_MS)
