"""rate/irate/increase/delta with Prometheus's extrapolation, hand-computed."""

from __future__ import annotations

import pytest

S = 1000  # one second in milliseconds


@pytest.mark.parametrize(
    ("samples", "expected_increase"),
    [
        # Samples 15 s from both window ends (< 1.1 x 15 s average): extrapolate to both ends:
        # 20 over 30 s -> 20 * (30 + 15 + 15) / 30 = 40.
        ([(15, 10.0), (30, 20.0), (45, 30.0)], 40.0),
        # Zero-point clamp: from 1, the counter would hit 0 after 1.5 s back, so the start
        # extrapolation is 1.5 s, not 15 s: 20 * (30 + 1.5 + 15) / 30 = 31.
        ([(15, 1.0), (30, 11.0), (45, 21.0)], 31.0),
        # First sample 40 s after the window start (>= 1.1 x 10 s): extrapolate only half an
        # interval (5 s) at the start, none at the end: 20 * (20 + 5 + 0) / 20 = 25.
        ([(40, 100.0), (50, 110.0), (60, 120.0)], 25.0),
        # Counter reset 20 -> 5: increase is (5 - 10) + 20 = 15 over 30 s, extrapolated x2 = 30.
        ([(15, 10.0), (30, 20.0), (45, 5.0)], 30.0),
    ],
)
def test_increase_extrapolates_like_prometheus(reader, instant, lb, samples, expected_increase):
    # Given one counter with hand-picked samples inside the window (0 s, 60 s]
    reader.add({"__name__": "c", "job": "x"}, [t * S for t, _ in samples], [v for _, v in samples])
    # When increase() and rate() are evaluated at 60 s over 1 m
    increase = instant("increase(c[1m])", 60 * S)
    rate = instant("rate(c[1m])", 60 * S)
    # Then the metric name is dropped and the values are the hand-computed ones
    assert increase == {lb(job="x"): expected_increase}
    assert rate[lb(job="x")] == pytest.approx(expected_increase / 60, rel=1e-15)


def test_rate_is_exactly_prometheus_float(reader, instant):
    # Given the first extrapolation case
    reader.add({"__name__": "c"}, [15 * S, 30 * S, 45 * S], [10.0, 20.0, 30.0])
    # When rate() is evaluated
    got = instant("rate(c[1m])", 60 * S)[()]
    # Then it is computed in Prometheus's operation order: result * ((interval / sampled) / range)
    assert got == 20.0 * ((60.0 / 30.0) / 60.0)


def test_rate_needs_two_samples(reader, instant):
    # Given a single sample in the window
    reader.add({"__name__": "c"}, [30 * S], [5.0])
    # When rate() is evaluated / Then the series is absent
    assert instant("rate(c[1m])", 60 * S) == {}


def test_delta_does_not_treat_drops_as_resets(reader, instant):
    # Given a gauge going 10 -> 20 -> 5
    reader.add({"__name__": "g"}, [15 * S, 30 * S, 45 * S], [10.0, 20.0, 5.0])
    # When delta() is evaluated / Then (5 - 10) extrapolated x2, with no zero clamp
    assert instant("delta(g[1m])", 60 * S) == {(): -10.0}


def test_irate_and_idelta_use_last_two_samples(reader, instant):
    # Given a counter that resets between its last two samples
    reader.add({"__name__": "c"}, [15 * S, 30 * S, 45 * S], [10.0, 20.0, 5.0])
    # When irate() and idelta() are evaluated
    # Then irate takes the post-reset value over 15 s; idelta is the plain difference
    assert instant("irate(c[1m])", 60 * S) == {(): 5.0 / 15.0}
    assert instant("idelta(c[1m])", 60 * S) == {(): -15.0}


def test_range_window_is_left_open(reader, instant):
    # Given samples exactly at the window start and inside it
    reader.add({"__name__": "c"}, [0, 30 * S, 60 * S], [0.0, 10.0, 20.0])
    # When counting samples over (0 s, 60 s]
    # Then the sample at exactly 0 s is excluded (Prometheus 3 semantics)
    assert instant("count_over_time(c[1m])", 60 * S) == {(): 2.0}


def test_rate_over_a_range_query_evaluates_every_step(reader, engine):
    # Given a counter growing 1/s, scraped every 15 s for 10 minutes
    ts = list(range(0, 600 * S + 1, 15 * S))
    reader.add({"__name__": "c"}, ts, [t / 1000 for t in ts])
    # When rate over 1m is evaluated every minute
    result = engine.range("rate(c[1m])", 60 * S, 600 * S, 60 * S)
    # Then every step has rate 1 (4 samples: 45 s sampled, 15 s extrapolated at the start)
    [series] = result.series
    assert series.timestamps.tolist() == list(range(60 * S, 600 * S + 1, 60 * S))
    assert series.values.tolist() == pytest.approx([1.0] * 10, rel=1e-15)


def test_offset_shifts_the_window(reader, instant):
    # Given a counter whose slope changes after 60 s
    reader.add({"__name__": "c"}, [15 * S, 30 * S, 45 * S, 60 * S, 75 * S], [0.0, 15.0, 30.0, 45.0, 300.0])
    # When increase is evaluated at 75 s with offset 15 s (window (0, 60 s])
    got = instant("increase(c[1m] offset 15s)", 75 * S)
    # Then only the first four samples count: 45 over 45 s, extrapolated to 60 s (zero clamp: 0)
    assert got == {(): 45.0 * (45.0 + 0.0 + 0.0) / 45.0}
