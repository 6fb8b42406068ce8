"""Raw samples older than the hot tier keeps come from the archive, in one answer with the hot tier's."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from novacron.query.memory_reader import InMemorySeriesReader
from novacron.records import encode_record
from novacron.retention.policy import RetentionPolicy
from novacron.series import Matcher, SeriesSamples
from novacron.storage.reader import HotTierReader
from novacron.storage.writer import DAY_MS, MetricsWriter
from tests.builders import timeseries
from tests.fakes import MemoryBlockStore, MemoryIndexStore

NOW = 1_790_000_000_000
LABELS = {"__name__": "load", "job": "api"}


class CountingArchive(InMemorySeriesReader):
    """The archive, counting the selections made of it."""

    selections: list[tuple[int, int]]

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesSamples]:
        self.selections.append((start_ms, end_ms))
        return super().select(matchers, start_ms, end_ms)


def _setup(raw_days: int = 15) -> tuple[HotTierReader, CountingArchive, list[int]]:
    """Hot samples for the last 14 days (what the hot tier keeps); archived ones for 40 days, one a day."""
    blocks, index = MemoryBlockStore(), MemoryIndexStore()
    hot_times = [NOW - d * DAY_MS for d in range(14, 0, -1)]
    writer = MetricsWriter(blocks, index, now_ms=lambda: NOW)
    for n, t in enumerate(hot_times):
        writer.write_record(encode_record("acme", t, [timeseries(LABELS, [(t, 1.0)]).SerializeToString()]), f"{n:03d}")
    archive = CountingArchive()
    archive.selections = []
    archived = [NOW - d * DAY_MS for d in range(40, 0, -1)]
    archive.add(LABELS, np.array(archived), np.full(len(archived), 2.0))
    policy = RetentionPolicy.model_validate({"defaults": {"raw_days": raw_days}})
    reader = HotTierReader("acme", blocks, index, clock_ms=lambda: NOW, retention=policy, archive=lambda: archive)
    return reader, archive, archived


def test_a_range_past_the_hot_tier_reads_the_archive_for_its_older_part() -> None:
    # Given 15 days of raw retention, hot samples for 14 days and archived ones for 40
    reader, archive, archived = _setup()
    # When 40 days are selected
    (series,) = reader.select([Matcher("job", "=", "api")], NOW - 41 * DAY_MS, NOW)
    # Then the days before the hot tier's 15 come from the archive, the rest from the hot tier, each day once
    assert series.timestamps.tolist() == archived
    values = dict(zip(series.timestamps.tolist(), series.values.tolist(), strict=True))
    assert {values[NOW - d * DAY_MS] for d in range(40, 14, -1)} == {2.0}  # archive only
    assert {values[NOW - d * DAY_MS] for d in range(14, 0, -1)} == {1.0}  # the hot tier's own
    assert archive.selections == [(NOW - 41 * DAY_MS, NOW - 15 * DAY_MS)]


def test_a_range_within_the_hot_tier_never_opens_the_archive() -> None:
    reader, archive, _ = _setup()
    reader.select([Matcher("job", "=", "api")], NOW - 14 * DAY_MS, NOW)
    assert archive.selections == []


def test_merged_selections_keep_the_first_ones_sample_where_both_have_one() -> None:
    from novacron.storage.reader import merge_series

    lb = (("__name__", "load"),)
    hot = [SeriesSamples(lb, np.array([3, 4, 5]), np.array([1.0, 1.0, 1.0]))]
    old = [
        SeriesSamples(lb, np.array([1, 2, 3]), np.array([2.0, 2.0, 2.0])),
        SeriesSamples((("__name__", "gone"),), np.array([1]), np.array([9.0])),
    ]
    merged = merge_series(hot, old)
    assert [s.labels for s in merged] == [(("__name__", "gone"),), lb]
    assert merged[1].timestamps.tolist() == [1, 2, 3, 4, 5]
    assert merged[1].values.tolist() == [2.0, 2.0, 1.0, 1.0, 1.0]


def test_a_range_of_years_reads_at_most_a_year_of_archive_before_the_hot_tier() -> None:
    # Given the hot tier and archive of the other tests, when three years are selected
    reader, archive, archived = _setup()
    (series,) = reader.select([Matcher("job", "=", "api")], NOW - 3 * 365 * DAY_MS, NOW)
    # Then the archive is read for the year before the hot tier's horizon (within its reader's bound)
    assert archive.selections == [(NOW - 15 * DAY_MS - 365 * DAY_MS, NOW - 15 * DAY_MS)]
    assert series.timestamps.tolist() == archived
