"""Window functions against straightforward per-window versions of Prometheus's algorithms.

The engine answers every window at once (prefix sums, sparse tables, a wavelet matrix); these tests
recompute each window one by one, in Prometheus's sequential order, on data chosen to stress the
vectorised forms: large offsets, heavy cancellation, ties, NaN/Inf, constant runs, many resets.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from novacron.promql.windows import RANGE_FUNCTIONS, bounds, quantile
from novacron.series import STALE_NAN_BITS, SeriesSamples

S = 1000
T0 = 1_700_000_000_000


def _kahan(values: list[float]) -> float:
    total = comp = 0.0
    for v in values:
        t = total + v
        if math.isinf(t):
            comp = 0.0
        elif abs(total) >= abs(v):
            comp += (total - t) + v
        else:
            comp += (v - t) + total
        total = t
    return total if math.isinf(total) else total + comp


def _kahan_inc(inc: float, total: float, comp: float) -> tuple[float, float]:
    t = total + inc
    if math.isinf(t):
        return t, 0.0
    return t, comp + ((total - t) + inc if abs(total) >= abs(inc) else (inc - t) + total)


def _mean(values: list[float]) -> float:
    total = _kahan(values)
    if math.isinf(total) and all(math.isfinite(v) for v in values):
        mean = 0.0  # the sum overflowed: Prometheus switches to an incremental mean
        for i, v in enumerate(values, start=1):
            mean += v / i - mean / i
        return mean
    return total / len(values)


def _welford(values: list[float]) -> float:
    mean = c_mean = aux = c_aux = 0.0
    for count, v in enumerate(values, start=1):
        delta = v - (mean + c_mean)
        mean, c_mean = _kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = _kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / len(values)


def _extreme(values: list[float], better) -> float:
    best = values[0]
    for v in values:
        if better(v, best) or math.isnan(best):
            best = v
    return best


def _deriv(ts: list[int], values: list[float]) -> float:
    sx = cx = sy = cy = sxy = cxy = sx2 = cx2 = 0.0
    for t, y in zip(ts, values, strict=True):
        x = float(t - ts[0]) / 1e3
        sx, cx = _kahan_inc(x, sx, cx)
        sy, cy = _kahan_inc(y, sy, cy)
        sxy, cxy = _kahan_inc(x * y, sxy, cxy)
        sx2, cx2 = _kahan_inc(x * x, sx2, cx2)
    if all(y == values[0] for y in values[1:]):
        return math.nan if math.isinf(values[0]) else 0.0
    n = float(len(values))
    sx, sy, sxy, sx2 = sx + cx, sy + cy, sxy + cxy, sx2 + cx2
    return (sxy - sx * sy / n) / (sx2 - sx * sx / n)


def _increase_before_extrapolation(values: list[float]) -> float:
    result = values[-1] - values[0]
    for prev, cur in itertools.pairwise(values):
        if cur < prev:
            result += prev
    return result


REFERENCE = {
    "sum_over_time": _kahan,
    "avg_over_time": lambda w: _mean(w),
    "min_over_time": lambda w: _extreme(w, lambda a, b: a < b),
    "max_over_time": lambda w: _extreme(w, lambda a, b: a > b),
    "stdvar_over_time": _welford,
    "quantile_over_time": lambda w: quantile(0.9, np.array(w)),
    "mad_over_time": lambda w: quantile(0.5, np.abs(np.array(w) - quantile(0.5, np.array(w)))),
}
EXACT = {"min_over_time", "max_over_time", "quantile_over_time", "mad_over_time"}


def _series(kind: str, rng: np.random.Generator) -> SeriesSamples:
    n = 400
    ts = T0 + np.sort(rng.choice(np.arange(0, 2000, dtype=np.int64), size=n, replace=False)) * S
    values = {
        "normal": lambda: rng.normal(0.0, 1.0, n),
        "counter": lambda: np.cumsum(rng.exponential(5.0, n)) + 1e9,
        "ties": lambda: rng.integers(-3, 4, n).astype(np.float64),
        "offset": lambda: rng.normal(1e12, 1.0, n),  # Welford's own rounding shows here
        "cancel": lambda: rng.choice([1e100, -1e100, 1.0, -1.0, 0.5], n),
        "huge": lambda: rng.choice([1e300, -1e300, 1e308, 3.0], n),
        "constant": lambda: np.full(n, 7.25),
        "nonfinite": lambda: np.where(rng.random(n) < 0.1, rng.choice([np.nan, np.inf, -np.inf], n), rng.random(n)),
        "gauge_resets": lambda: rng.normal(100.0, 30.0, n),  # rate() of a gauge: a reset every other sample
    }[kind]()
    return SeriesSamples((), ts.astype(np.int64), np.asarray(values, dtype=np.float64))


def _close(got: float, want: float, exact: bool) -> bool:
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    if exact or math.isinf(want):
        return got == want
    return got == pytest.approx(want, rel=1e-9, abs=0.0)


KINDS = ["normal", "counter", "ties", "offset", "cancel", "huge", "constant", "nonfinite", "gauge_resets"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("range_s", [5, 60, 600])
def test_window_functions_match_sequential_prometheus(kind, range_s):
    # Given a series and windows of many lengths, some of them empty (steps before the data)
    rng = np.random.default_rng(hash((kind, range_s)) % 2**32)
    s = _series(kind, rng)
    ends = np.arange(T0 - 30 * S, T0 + 2050 * S, 7 * S, dtype=np.int64)
    lo, hi = bounds(s.timestamps, ends, range_s * S)
    args = [np.full(len(ends), 0.9)]
    for name, reference in REFERENCE.items():
        # When the vectorised function evaluates every window at once
        with np.errstate(all="ignore"):
            got, present = RANGE_FUNCTIONS[name][0](s, ends, range_s * S, args)
            # Then it is present exactly where the window holds samples, with Prometheus's values
            assert (present == (hi > lo)).all(), name
            for k in np.nonzero(present)[0]:
                want = reference(s.values[lo[k] : hi[k]].tolist())
                assert _close(float(got[k]), want, name in EXACT), (name, k, got[k], want)


@pytest.mark.parametrize("kind", ["normal", "counter", "ties", "offset", "constant", "nonfinite"])
def test_deriv_matches_sequential_prometheus(kind):
    # Given a series / When deriv() runs over 5-minute windows / Then each slope is Prometheus's
    s = _series(kind, np.random.default_rng(7))
    ends = np.arange(T0, T0 + 2000 * S, 11 * S, dtype=np.int64)
    lo, hi = bounds(s.timestamps, ends, 300 * S)
    with np.errstate(all="ignore"):
        got, present = RANGE_FUNCTIONS["deriv"][0](s, ends, 300 * S, [])
        for k in np.nonzero(present)[0]:
            want = _deriv(s.timestamps[lo[k] : hi[k]].tolist(), s.values[lo[k] : hi[k]].tolist())
            assert _close(float(got[k]), want, exact=False), (k, got[k], want)


@pytest.mark.parametrize("kind", ["counter", "gauge_resets"])
def test_increase_adds_every_reset_like_prometheus(kind):
    # Given a counter, or a gauge with a drop every other sample (many resets per window)
    s = _series(kind, np.random.default_rng(3))
    ends = np.arange(T0, T0 + 2000 * S, 13 * S, dtype=np.int64)
    lo, hi = bounds(s.timestamps, ends, 600 * S)
    # When increase() runs / Then dividing out the extrapolation factor leaves the sequential sum
    got, present = RANGE_FUNCTIONS["increase"][0](s, ends, 600 * S, [])
    delta, _ = RANGE_FUNCTIONS["delta"][0](s, ends, 600 * S, [])
    for k in np.nonzero(present)[0]:
        window = s.values[lo[k] : hi[k]].tolist()
        raw = _increase_before_extrapolation(window)
        if raw <= 0 or window[0] < 0:
            continue  # the zero-point clamp makes the factors differ; covered in test_promql_rate
        factor = delta[k] / (window[-1] - window[0]) if window[-1] != window[0] else None
        if factor is not None and math.isfinite(factor):
            assert got[k] == pytest.approx(raw * factor, rel=1e-9), k


def test_edges_through_the_engine(reader, instant, lb):
    # Given a series with one sample, one with NaN/Inf, and one with a staleness marker
    stale = np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0]
    reader.add({"__name__": "one"}, [30 * S], [5.0])
    reader.add({"__name__": "odd"}, [10 * S, 20 * S, 30 * S, 40 * S], [1.0, math.nan, math.inf, 2.0])
    reader.add({"__name__": "st"}, [10 * S, 20 * S, 30 * S], [4.0, stale, 6.0])
    at = 60 * S
    # Then a single sample is its own sum, quantile and extreme, with zero spread
    for fn, want in (("sum", 5.0), ("avg", 5.0), ("max", 5.0), ("stddev", 0.0), ("mad", 0.0), ("count", 1.0)):
        assert instant(f"{fn}_over_time(one[1m])", at) == {(): want}, fn
    assert instant("quantile_over_time(0.3, one[1m])", at) == {(): 5.0}
    assert instant("rate(one[1m])", at) == {}
    # NaN wins sums, Inf dominates where NaN is absent, min/max skip NaN, quantiles sort NaN first
    assert math.isnan(instant("sum_over_time(odd[1m])", at)[()])
    assert instant("sum_over_time(odd[35s])", at) == {(): math.inf}
    assert instant("max_over_time(odd[1m])", at) == {(): math.inf}
    assert instant("min_over_time(odd[1m])", at) == {(): 1.0}
    assert math.isnan(instant("quantile_over_time(0, odd[1m])", at)[()])
    assert instant("quantile_over_time(0.5, odd[1m])", at) == {(): 1.5}
    assert math.isnan(instant("stdvar_over_time(odd[1m])", at)[()])
    assert instant("mad_over_time(odd[1m])", at) == {(): 0.5}  # deviations NaN, .5, .5, Inf
    # Staleness markers are not samples of a range vector
    assert instant("count_over_time(st[1m])", at) == {(): 2.0}
    assert instant("sum_over_time(st[1m])", at) == {(): 10.0}
    assert instant("stdvar_over_time(st[1m])", at) == {(): 1.0}
    # An empty window is absent, not zero
    assert instant("sum_over_time(one[10s])", at) == {}


def test_range_query_skips_empty_windows(reader, engine):
    # Given samples at 0-60 s and 300-360 s / When sum_over_time over 30 s runs every 30 s
    ts = [t * S for t in (*range(0, 61, 15), *range(300, 361, 15))]
    reader.add({"__name__": "g"}, ts, [1.0] * len(ts))
    [series] = engine.range("sum_over_time(g[30s])", 0, 390 * S, 30 * S).series
    # Then steps whose window is empty are missing and the rest count the samples in (t-30 s, t]
    assert series.timestamps.tolist() == [t * S for t in (0, 30, 60, 300, 330, 360)]
    assert series.values.tolist() == [1.0, 2.0, 2.0, 1.0, 2.0, 2.0]


def test_histogram_quantile_uses_the_buckets_present_at_each_step(reader, engine, lb):
    # Given buckets where le="2" is missing for the middle steps
    for le, counts in (("1", [10, 10, 10, 10]), ("2", [30, None, None, 30]), ("+Inf", [40, 40, 40, 40])):
        ts = [i * 60 * S for i, c in enumerate(counts) if c is not None]
        reader.add({"__name__": "h_bucket", "le": le}, ts, [float(c) for c in counts if c is not None])
    # When the median is asked at every step (lookback shorter than the gap)
    eng = type(engine)(reader, lookback_ms=30 * S)
    [series] = eng.range("histogram_quantile(0.5, h_bucket)", 0, 180 * S, 60 * S).series
    # Then full steps interpolate in (1, 2]; the others fall in (1, +Inf] and return 1
    assert series.values.tolist() == [1.5, 1.0, 1.0, 1.5]


@pytest.mark.parametrize("batch_samples", [1 << 16, 100])
def test_series_laid_end_to_end_give_each_series_its_own_result(monkeypatch, batch_samples):
    # Given small or large batches, and series with gaps, a counter reset, NaN, different lengths
    # and one with no samples
    from novacron.promql import windows
    from novacron.promql.windows import _END_TO_END, RANGE_FUNCTIONS, evaluate
    from novacron.series import SeriesSamples

    monkeypatch.setattr(windows, "_BATCH_SAMPLES", batch_samples)

    rng = np.random.default_rng(7)
    series = []
    for i in range(6):
        ts = np.sort(rng.choice(np.arange(0, 3_600_000, 15_000), size=40 + 30 * i, replace=False)).astype(np.int64)
        vs = np.cumsum(rng.uniform(0, 10, len(ts)))
        if i == 2:
            vs[len(vs) // 2 :] -= vs[len(vs) // 2]  # a counter reset
        if i == 3:
            vs[5] = np.nan
        series.append(SeriesSamples((("i", str(i)),), ts, vs))
    series.append(SeriesSamples((("i", "empty"),), np.zeros(0, dtype=np.int64), np.zeros(0)))
    window_end = np.arange(300_000, 3_900_000, 60_000, dtype=np.int64)
    args = {"quantile_over_time": [np.full(len(window_end), 0.9)]}
    for name in sorted(_END_TO_END):
        fn = RANGE_FUNCTIONS[name][0]
        # When evaluating all series at once
        values, present = evaluate(name, series, window_end, 300_000, args.get(name, []))
        # Then each row equals the function applied to that series alone (to rounding for prefix sums)
        for row, s in enumerate(series):
            want, ok = fn(s, window_end, 300_000, args.get(name, []))
            assert present[row].tolist() == ok.tolist(), name
            np.testing.assert_allclose(values[row][ok], want[ok], rtol=1e-12, atol=0, err_msg=name)


def test_sorted_windows_quantile_agrees_with_rank_select():
    # Given values with NaNs and ties, and windows of varied length including empty ones
    from novacron.promql.windows import _RankSelect, _sorted_windows_quantile, _window_quantile

    rng = np.random.default_rng(3)
    values = rng.integers(0, 5, 200).astype(np.float64)
    values[rng.integers(0, 200, 15)] = np.nan
    lo = rng.integers(0, 150, 60)
    n = rng.integers(0, 50, 60)
    for q in (0.0, 0.3, 0.5, 0.95, 1.0, -1.0, 2.0, np.nan):
        qs = np.full(60, q)
        # When computing per window by sorting and by rank selection
        got = _sorted_windows_quantile(values, qs, lo, n)
        want = _window_quantile(_RankSelect(values), qs, lo, n)
        # Then both agree exactly, NaN for NaN
        np.testing.assert_array_equal(got, want)
