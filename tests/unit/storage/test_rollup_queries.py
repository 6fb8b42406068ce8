"""PromQL over rollups: the engine picks a rollup when it keeps the answer right, and it matches raw."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.promql import Engine
from novacron.promql.resolution import choose_resolution
from novacron.series import Labels
from novacron.storage.compaction import Compactor
from novacron.storage.reader import HotTierReader
from tests.fakes import MemoryBlockStore, MemoryIndexStore
from tests.unit.storage.conftest import END, HOUR, T0, Clock

MINUTE = 60_000


class CountingReader(HotTierReader):
    """A hot-tier reader remembering the resolutions it served."""

    served: list[str]

    def select_views(self, matchers, start_ms, end_ms, resolution, views):  # type: ignore[no-untyped-def]
        self.served.append(resolution)
        return super().select_views(matchers, start_ms, end_ms, resolution, views)


@pytest.fixture
def compacted(store: MemoryBlockStore, index: MemoryIndexStore, written: object) -> CountingReader:
    """The first two windows compacted; the third (the last hour of data) still in the writer's blocks."""
    Compactor(store, clock_ms=Clock(T0 + 4 * HOUR + 20 * MINUTE)).compact_tenant("acme")
    reader = CountingReader("acme", store, index, clock_ms=lambda: END)
    reader.served = []
    return reader


def _answers(engine: Engine, query: str, start: int, end: int, step: int) -> dict[Labels, list[float]]:
    return {s.labels: s.values.tolist() for s in engine.range(query, start, end, step).series}


EXACT = [
    "max_over_time(temperature[1h])",
    "min_over_time(temperature[30m])",
    "sum_over_time(temperature[2h])",
    "count_over_time(requests_total[1h])",
    "avg_over_time(temperature[1h])",
    "last_over_time(requests_total[5m])",
    "sum by (job) (max_over_time(temperature[1h]))",
]


@pytest.mark.parametrize("query", EXACT)
@pytest.mark.parametrize("step", [5 * MINUTE, HOUR])
def test_aggregates_over_rollups_equal_raw(compacted: CountingReader, query: str, step: int) -> None:
    # Given data compacted for its first four hours and an aligned range over all of it
    start, end = T0 + 2 * HOUR, END // step * step
    # When the query is answered with rollups and from raw samples
    over_rollups = _answers(Engine(compacted), query, start, end, step)
    raw = _answers(Engine(compacted, rollups=False), query, start, end, step)
    # Then rollups were used, and the answers are the same
    assert compacted.served
    assert over_rollups.keys() == raw.keys()
    assert raw
    for labels, values in raw.items():
        assert over_rollups[labels] == pytest.approx(values, rel=1e-9), labels


@pytest.mark.parametrize("query", ["rate(requests_total[1h])", "increase(requests_total[2h])"])
def test_rate_and_increase_over_rollups_stay_within_a_percent(compacted: CountingReader, query: str) -> None:
    # Given counters (one with a reset mid-range) and a range crossing compacted and fresh windows
    start, end, step = T0 + 2 * HOUR, END // HOUR * HOUR, 5 * MINUTE
    # When answered with 5-minute rollups and from raw samples
    over_rollups = _answers(Engine(compacted), query, start, end, step)
    raw = _answers(Engine(compacted, rollups=False), query, start, end, step)
    # Then rollups were used, and every value is within 1% of the raw one
    assert compacted.served == ["5m"]
    assert over_rollups.keys() == raw.keys()
    for labels, values in raw.items():
        assert over_rollups[labels] == pytest.approx(values, rel=1e-9), labels


def test_one_minute_rollups_are_derived_by_the_reader_when_not_stored(compacted: CountingReader) -> None:
    # Given 15 s data, whose 1-minute rollups the compactor left to readers
    query, start, end = "max_over_time(temperature[1m])", T0 + HOUR, T0 + 3 * HOUR
    # When asked at a 1-minute step, then the 1-minute resolution answers exactly as raw
    over_rollups = _answers(Engine(compacted), query, start, end, MINUTE)
    assert compacted.served == ["1m"]
    assert over_rollups == _answers(Engine(compacted, rollups=False), query, start, end, MINUTE)


def test_late_samples_in_a_compacted_window_are_seen_through_rollups(
    compacted: CountingReader, store: MemoryBlockStore, index: MemoryIndexStore
) -> None:
    # Given a late, extreme sample written into an already compacted window
    from novacron.records import encode_record
    from novacron.storage.writer import MetricsWriter
    from tests.builders import timeseries

    late = timeseries({"__name__": "temperature", "job": "api", "instance": "i0"}, [(T0 + 30 * MINUTE + 1, 99.0)])
    MetricsWriter(store, index).write_record(encode_record("acme", END, [late.SerializeToString()]), "late")
    # When the hourly maximum is asked over rollups, then it is there
    result = _answers(Engine(compacted), 'max_over_time(temperature{instance="i0"}[1h])', T0 + HOUR, T0 + HOUR, HOUR)
    assert list(result.values()) == [[99.0]]
    assert compacted.served == ["1h"]


@pytest.mark.parametrize(
    ("function", "times", "range_ms", "expected"),
    [
        ("max_over_time", [0, HOUR, 2 * HOUR], 2 * HOUR, "1h"),
        ("max_over_time", [0, 5 * MINUTE], HOUR, "5m"),
        ("max_over_time", [0, 15_000], HOUR, None),  # a 15 s step is finer than any rollup
        ("max_over_time", [1000, HOUR + 1000], HOUR, None),  # times off the interval grid
        ("max_over_time", [0, HOUR], 90 * MINUTE, "5m"),  # 90 m is not whole hours
        ("rate", [0, HOUR], 2 * HOUR, "1h"),
        ("increase", [0, 5 * MINUTE], 5 * MINUTE, "5m"),
        ("rate", [0, 5 * MINUTE], HOUR, "5m"),
        ("deriv", [0, HOUR], 10 * HOUR, None),  # not a function rollups answer
        ("min_over_time", [7 * HOUR], 24 * HOUR, "1h"),  # an aligned instant query
    ],
)
def test_resolution_selection(function: str, times: list[int], range_ms: int, expected: str | None) -> None:
    assert choose_resolution(function, np.array(times, dtype=np.int64), range_ms) == expected


def test_counters_that_start_stop_and_pause_inside_windows_match_raw(
    store: MemoryBlockStore, index: MemoryIndexStore
) -> None:
    # Given counters starting at 00:37, stopping at 03:12, and one pausing for 20 minutes, compacted
    from novacron.records import encode_record
    from novacron.storage.writer import MetricsWriter
    from tests.builders import timeseries

    ts = np.arange(T0 + 3_000, END, 15_000)
    shapes = {
        "late": ts >= T0 + 37 * MINUTE,
        "early": ts < T0 + 3 * HOUR + 12 * MINUTE,
        "paused": (ts < T0 + HOUR + 7 * MINUTE) | (ts >= T0 + HOUR + 27 * MINUTE),
    }
    series = [
        timeseries(
            {"__name__": "jobs_total", "job": "batch", "kind": kind},
            list(zip(ts[keep].tolist(), np.cumsum(np.arange(keep.sum()) % 7).astype(float).tolist(), strict=True)),
        )
        for kind, keep in shapes.items()
    ]
    writer = MetricsWriter(store, index, now_ms=lambda: T0)
    writer.write_record(encode_record("acme", END, [s.SerializeToString() for s in series]), "1")
    Compactor(store, clock_ms=Clock(T0 + 4 * HOUR + 20 * MINUTE)).compact_tenant("acme")
    reader = CountingReader("acme", store, index, clock_ms=lambda: END)
    reader.served = []
    for query in ("rate(jobs_total[30m])", "increase(jobs_total[1h])", "rate(jobs_total[5m])"):
        # When answered over rollups and from raw samples at a 5-minute step
        over_rollups = _answers(Engine(reader), query, T0, END // HOUR * HOUR, 5 * MINUTE)
        raw = _answers(Engine(reader, rollups=False), query, T0, END // HOUR * HOUR, 5 * MINUTE)
        # Then the answers are the same, extrapolation at each series' start, end and pause included
        assert over_rollups.keys() == raw.keys()
        for labels, values in raw.items():
            assert over_rollups[labels] == pytest.approx(values, rel=1e-9), (query, labels)
    assert set(reader.served) == {"5m"}


def test_samples_on_interval_boundaries_fall_in_the_window_they_end(
    store: MemoryBlockStore, index: MemoryIndexStore
) -> None:
    # Given a CloudWatch-like gauge and counter stamped exactly on each minute, compacted
    from novacron.records import encode_record
    from novacron.storage.writer import MetricsWriter
    from tests.builders import timeseries

    ts = np.arange(T0 + MINUTE, END + 1, MINUTE)
    values = (np.arange(len(ts)) * 37 % 101).astype(float)
    series = [
        timeseries({"__name__": "cw_gauge", "job": "cw"}, list(zip(ts.tolist(), values.tolist(), strict=True))),
        timeseries(
            {"__name__": "cw_total", "job": "cw"}, list(zip(ts.tolist(), np.cumsum(values).tolist(), strict=True))
        ),
    ]
    writer = MetricsWriter(store, index, now_ms=lambda: T0)
    writer.write_record(encode_record("acme", END, [s.SerializeToString() for s in series]), "1")
    Compactor(store, clock_ms=Clock(T0 + 4 * HOUR + 20 * MINUTE)).compact_tenant("acme")
    reader = CountingReader("acme", store, index, clock_ms=lambda: END)
    reader.served = []
    # When windows ending exactly on samples are answered over rollups and from raw samples
    for query in ("max_over_time(cw_gauge[5m])", "sum_over_time(cw_gauge[1h])", "increase(cw_total[15m])"):
        over_rollups = _answers(Engine(reader), query, T0 + HOUR, END, 5 * MINUTE)
        raw = _answers(Engine(reader, rollups=False), query, T0 + HOUR, END, 5 * MINUTE)
        # Then each window holds the sample at its end and not the one at its start, as raw does
        assert over_rollups.keys() == raw.keys()
        for labels, values_ in raw.items():
            assert over_rollups[labels] == pytest.approx(values_, rel=1e-9), (query, labels)
    assert reader.served
