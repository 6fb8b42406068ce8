"""Instant vector selectors: matchers, lookback, staleness, offset and @."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from novacron.promql import BadData

S = 1000
STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


@pytest.fixture
def http(reader):
    """Three series of one metric with distinct labels, one sample each at 0 s."""
    for code, job, value in (("200", "api", 1.0), ("500", "api", 2.0), ("200", "web", 3.0)):
        reader.add({"__name__": "http", "code": code, "job": job}, [0], [value])
    return reader


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('http{code="200"}', [1.0, 3.0]),
        ('http{code!="200"}', [2.0]),
        ('http{job=~"a.*"}', [1.0, 2.0]),
        ('http{job!~"a.*"}', [3.0]),
        ('http{job=~"ap"}', []),  # regexes are fully anchored
        ('{__name__="http", job="web"}', [3.0]),
        ('http{missing=""}', [1.0, 2.0, 3.0]),  # empty value matches an absent label
    ],
)
def test_matchers(http, instant, query, expected):
    # Given three series / When selecting with each matcher type / Then the right ones match
    assert sorted(instant(query, 10 * S).values()) == expected


def test_selector_needs_a_non_empty_matcher(engine):
    # Given a selector whose only matcher matches the empty string
    # When it is evaluated / Then it is rejected as Prometheus does
    with pytest.raises(BadData, match="at least one non-empty matcher"):
        engine.instant('{job=~".*"}', 0)


def test_lookback_window_is_left_open(reader, instant):
    # Given one sample at 0 s
    reader.add({"__name__": "m"}, [0], [7.0])
    # When queried just inside and exactly at the 5-minute lookback
    # Then it is found within (t - 5m, t] and not at t - 5m itself
    assert instant("m", 300 * S - 1) == {(("__name__", "m"),): 7.0}
    assert instant("m", 300 * S) == {}
    # And a sample in the future is not visible
    assert instant("m", -1) == {}


def test_latest_sample_wins(reader, instant):
    # Given samples every 15 s
    reader.add({"__name__": "m"}, [0, 15 * S, 30 * S], [1.0, 2.0, 3.0])
    # When queried between samples / Then the one at or before t is used
    assert instant("m", 29 * S) == {(("__name__", "m"),): 2.0}
    assert instant("m", 30 * S) == {(("__name__", "m"),): 3.0}


def test_stale_marker_ends_the_series(reader, instant, engine):
    # Given a sample then a staleness marker 15 s later
    reader.add({"__name__": "m"}, [0, 15 * S], [1.0, STALE])
    # When queried before and after the marker
    # Then the series is present before and absent from the marker on
    assert instant("m", 10 * S) == {(("__name__", "m"),): 1.0}
    assert instant("m", 15 * S) == {}
    assert instant("m", 60 * S) == {}
    # And the marker is not a sample of range vectors
    assert instant("count_over_time(m[1m])", 30 * S) == {(): 1.0}
    matrix = engine.instant("m[1m]", 30 * S)
    assert matrix.result_type == "matrix"
    assert matrix.series[0].timestamps.tolist() == [0]


def test_real_nan_is_a_value_not_staleness(reader, instant):
    # Given an ordinary NaN sample
    reader.add({"__name__": "m"}, [0], [float("nan")])
    # When queried / Then the series is present with value NaN
    [value] = instant("m", 10 * S).values()
    assert np.isnan(value)


def test_offset_and_at(reader, engine, instant):
    # Given samples every minute with value = minute
    reader.add({"__name__": "m"}, [i * 60 * S for i in range(10)], [float(i) for i in range(10)])
    # When using offset / Then the value 1 m earlier is returned, name kept
    assert instant("m offset 1m", 300 * S) == {(("__name__", "m"),): 4.0}
    # When using @ in a range query / Then every step sees the value at that fixed time
    result = engine.range("m @ 120", 0, 540 * S, 60 * S)
    assert result.series[0].values.tolist() == [2.0] * 10
    # And @ end() pins to the range's end
    result = engine.range("m @ end()", 0, 300 * S, 60 * S)
    assert result.series[0].values.tolist() == [5.0] * 6


def test_range_query_one_select_per_selector(reader, engine):
    # Given a reader that records its calls
    calls = []
    original = reader.select

    def spy(matchers, start_ms, end_ms):
        calls.append((start_ms, end_ms))
        return original(matchers, start_ms, end_ms)

    reader.select = spy
    reader.add({"__name__": "m"}, [0], [1.0])
    # When a range query with a 1 m range vector is evaluated over 10 minutes
    engine.range("rate(m[1m]) + m", 600 * S, 1200 * S, 15 * S)
    # Then each selector is fetched exactly once, covering its whole span
    assert sorted(calls) == [(300 * S + 1, 1200 * S), (540 * S + 1, 1200 * S)]


def test_latest_samples_picks_each_series_own_sample_at_every_time():
    # Given series laid out unevenly, one of them starting after some of the times
    from novacron.promql.engine import latest_samples
    from novacron.series import SeriesSamples

    series = [
        SeriesSamples((("a", "1"),), np.array([0, 10, 20]), np.array([1.0, 2.0, 3.0])),
        SeriesSamples((("a", "2"),), np.array([15]), np.array([9.0])),
        SeriesSamples((("a", "3"),), np.array([5, 6, 7, 8]), np.array([4.0, 5.0, 6.0, 7.0])),
    ]
    times = np.array([4, 10, 16, 40], dtype=np.int64)
    # When picking with a lookback of 10
    ts, vs, ok = latest_samples(series, times, 10)
    # Then each cell is the series' own last sample at or before the time, within (t - 10, t]
    assert ok.tolist() == [[True, True, True, False], [False, False, True, False], [False, True, True, False]]
    assert ts[ok].tolist() == [0, 10, 10, 15, 8, 8]
    assert vs[ok].tolist() == [1.0, 2.0, 2.0, 9.0, 7.0, 7.0]
