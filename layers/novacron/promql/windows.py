"""Range-vector functions, vectorised over evaluation steps for one series at a time.

Every function here takes one series' samples and, per step, the window ``(end - range, end]``
(Prometheus 3 range selectors are left-open), and returns ``(values, present)`` arrays over steps.
Window bounds come from ``searchsorted`` over the sample timestamps, so no Python code runs per
sample; the few loops run once per *position within a window* (vectorised over all steps), which
keeps Prometheus's exact summation order where it matters for bit-identical results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from novacron.promql.errors import ExecutionError
from novacron.promql.values import F64, I64, Mask
from novacron.series import SeriesSamples

Result = tuple[F64, Mask]
RangeFn = Callable[[SeriesSamples, I64, int, list[F64]], Result]


def bounds(ts: I64, window_end: I64, range_ms: int) -> tuple[I64, I64]:
    """Per step, the sample index range ``[lo, hi)`` with ``end - range < t <= end``."""
    lo = np.searchsorted(ts, window_end - range_ms, side="right").astype(np.int64)
    hi = np.searchsorted(ts, window_end, side="right").astype(np.int64)
    return lo, hi


def kahan_inc(inc: F64, total: F64, comp: F64) -> tuple[F64, F64]:
    """Neumaier-compensated addition, element-wise, as Prometheus's ``kahanSumInc``."""
    t = total + inc
    corr = np.where(np.abs(total) >= np.abs(inc), (total - t) + inc, (inc - t) + total)
    return t, np.where(np.isinf(t), 0.0, comp + corr)


def _at(values: npt.NDArray[Any], idx: I64) -> npt.NDArray[Any]:
    """``values[idx]`` with out-of-range indexes clamped (their results are masked anyway)."""
    if len(values) == 0:
        return np.full(idx.shape, np.nan)
    return values[np.clip(idx, 0, len(values) - 1)]


def _window_sum(values: F64, lo: I64, n: I64) -> F64:
    """Kahan sum of each window, in sample order (Prometheus's ``sum_over_time``)."""
    total: F64 = np.zeros(len(lo))
    comp: F64 = np.zeros(len(lo))
    for j in range(int(n.max(initial=0))):
        m = n > j
        t, c = kahan_inc(_at(values, lo + j), total, comp)
        total = np.where(m, t, total)
        comp = np.where(m, c, comp)
    return np.asarray(np.where(np.isinf(total), total, total + comp), dtype=np.float64)


def extrapolated(is_counter: bool, is_rate: bool) -> RangeFn:
    """``rate``, ``increase`` or ``delta``: Prometheus's extrapolation to the window boundaries."""

    def fn(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
        ts, vs = s.timestamps, s.values
        lo, hi = bounds(ts, window_end, range_ms)
        n = hi - lo
        ok = n >= 2
        first_t, last_t = _at(ts.astype(np.float64), lo), _at(ts.astype(np.float64), hi - 1)
        first_v, last_v = _at(vs, lo), _at(vs, hi - 1)
        result = last_v - first_v
        if is_counter and len(vs) > 1:
            # Add the value before each reset, in order, exactly as Prometheus accumulates them.
            resets = (np.nonzero(vs[1:] < vs[:-1])[0] + 1).astype(np.int64)
            a = np.searchsorted(resets, lo, side="right")
            b = np.searchsorted(resets, hi - 1, side="right")
            count = np.where(ok, b - a, 0)
            for j in range(int(count.max(initial=0))):
                m = count > j
                result = np.where(m, result + _at(vs, _at(resets, a + j) - 1), result)
        range_start = (window_end - range_ms).astype(np.float64)
        to_start = (first_t - range_start) / 1000
        to_end = (window_end.astype(np.float64) - last_t) / 1000
        sampled = (last_t - first_t) / 1000
        avg = sampled / np.maximum(n - 1, 1)
        threshold = avg * 1.1
        to_start = np.where(to_start >= threshold, avg / 2, to_start)
        if is_counter:
            # Counters cannot go below zero: do not extrapolate the start past the zero point.
            clamp = (result > 0) & (first_v >= 0)
            to_zero = sampled * (first_v / np.where(clamp, result, 1.0))
            to_start = np.where(clamp & (to_zero < to_start), to_zero, to_start)
        interval = sampled + to_start
        to_end = np.where(to_end >= threshold, avg / 2, to_end)
        interval = interval + to_end
        factor = interval / np.where(ok, sampled, 1.0)
        if is_rate:
            factor = factor / (range_ms / 1000)
        return result * factor, ok

    return fn


def instant_delta(is_rate: bool) -> RangeFn:
    """``irate`` or ``idelta``: from the last two samples of each window."""

    def fn(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
        lo, hi = bounds(s.timestamps, window_end, range_ms)
        last, prev = _at(s.values, hi - 1), _at(s.values, hi - 2)
        interval = _at(s.timestamps, hi - 1) - _at(s.timestamps, hi - 2)
        ok = (hi - lo >= 2) & (interval != 0)
        result = last - prev
        if is_rate:
            result = np.where(last < prev, last, result) / (np.where(ok, interval, 1) / 1000)
        return result, ok

    return fn


def _regression(s: SeriesSamples, lo: I64, n: I64, intercept_ms: I64) -> tuple[F64, F64]:
    """Least-squares slope and intercept per window, with Kahan sums as Prometheus computes them."""
    zeros: F64 = np.zeros(len(lo))
    sx, cx, sy, cy, sxy, cxy, sx2, cx2 = (zeros.copy() for _ in range(8))
    first = _at(s.values, lo)
    const_y = np.ones(len(lo), dtype=bool)
    for j in range(int(n.max(initial=0))):
        m = n > j
        y = _at(s.values, lo + j)
        x = (_at(s.timestamps, lo + j) - intercept_ms).astype(np.float64) / 1e3
        const_y &= ~m | (y == first) | (j == 0)
        for acc, inc in ((0, x), (1, y), (2, x * y), (3, x * x)):
            tot, comp = ((sx, cx), (sy, cy), (sxy, cxy), (sx2, cx2))[acc]
            t, c = kahan_inc(inc, tot, comp)
            tot[m], comp[m] = t[m], c[m]
    nf = n.astype(np.float64)
    sx, sy, sxy, sx2 = sx + cx, sy + cy, sxy + cxy, sx2 + cx2
    slope = (sxy - sx * sy / nf) / (sx2 - sx * sx / nf)
    intercept = sy / nf - slope * sx / nf
    slope = np.where(const_y, np.where(np.isinf(first), np.nan, 0.0), slope)
    intercept = np.where(const_y, np.where(np.isinf(first), np.nan, first), intercept)
    return slope, intercept


def deriv(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """Per-second slope of a least-squares fit over each window."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    slope, _ = _regression(s, lo, hi - lo, _at(s.timestamps, lo))
    return slope, hi - lo >= 2


def predict_linear(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """The fitted value ``args[0]`` seconds after each evaluation time."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    slope, intercept = _regression(s, lo, hi - lo, window_end)
    return slope * args[0] + intercept, hi - lo >= 2


def _pair_count(indicator: Mask) -> Callable[[I64, I64], F64]:
    """Counts of ``indicator[i]`` (comparing sample i with i-1) over ``lo < i < hi``."""
    csum = np.concatenate(([0], np.cumsum(indicator, dtype=np.int64)))

    def count(lo: I64, hi: I64) -> F64:
        # indicator[k] compares samples k+1 and k; pairs fully inside [lo, hi) are k in [lo, hi-1).
        a = np.clip(lo, 0, len(csum) - 1)
        b = np.clip(hi - 1, 0, len(csum) - 1)
        return np.asarray(np.maximum(csum[b] - csum[a], 0), dtype=np.float64)

    return count


def resets(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """How many times each window's value decreased."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    v = s.values
    return _pair_count(v[1:] < v[:-1])(lo, hi), hi > lo


def changes(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """How many times each window's value changed (NaN to NaN is no change)."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    v = s.values
    changed = ~((v[1:] == v[:-1]) | (np.isnan(v[1:]) & np.isnan(v[:-1])))
    return _pair_count(changed)(lo, hi), hi > lo


def sum_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """Kahan sum of each window."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    return _window_sum(s.values, lo, hi - lo), hi > lo


def count_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """Number of samples in each window."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    return (hi - lo).astype(np.float64), hi > lo


def avg_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """Mean of each window (Kahan sum over count; overflowing sums fall back to a running mean)."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    n = hi - lo
    total = _window_sum(s.values, lo, n)
    result = total / np.maximum(n, 1)
    overflow = np.isinf(total) & (n > 0)
    for k in np.nonzero(overflow)[0]:
        window = s.values[lo[k] : hi[k]]
        if np.all(np.isfinite(window)):
            result[k] = _running_mean(window)
    return result, n > 0


def _running_mean(values: F64) -> float:
    """Incremental mean that cannot overflow, for the rare windows whose sum does."""
    mean = 0.0
    for i, v in enumerate(values.tolist(), start=1):
        mean += v / i - mean / i
    return mean


def _extreme(pick: Callable[[F64, F64], F64]) -> RangeFn:
    def fn(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
        lo, hi = bounds(s.timestamps, window_end, range_ms)
        n = hi - lo
        result = _at(s.values, lo)
        for j in range(1, int(n.max(initial=0))):
            # fmin/fmax skip NaN: a NaN wins only if the whole window is NaN, as in Prometheus.
            result = np.where(n > j, pick(result, _at(s.values, lo + j)), result)
        return result, n > 0

    return fn


min_over_time = _extreme(np.fmin)
max_over_time = _extreme(np.fmax)


def last_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """The newest sample of each window."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    return _at(s.values, hi - 1), hi > lo


def first_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """The oldest sample of each window."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    return _at(s.values, lo), hi > lo


def present_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """1 for each window holding any sample."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    return np.ones(len(lo)), hi > lo


def _variance(s: SeriesSamples, window_end: I64, range_ms: int) -> Result:
    """Population variance per window: Welford's algorithm with Kahan-compensated accumulators."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    n = hi - lo
    size = len(lo)
    mean: F64
    c_mean: F64
    aux: F64
    c_aux: F64
    mean, c_mean, aux, c_aux = (np.zeros(size) for _ in range(4))
    for j in range(int(n.max(initial=0))):
        m = n > j
        v = _at(s.values, lo + j)
        delta = v - (mean + c_mean)
        t, c = kahan_inc(delta / (j + 1), mean, c_mean)
        mean, c_mean = np.where(m, t, mean), np.where(m, c, c_mean)
        t, c = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
        aux, c_aux = np.where(m, t, aux), np.where(m, c, c_aux)
    return (aux + c_aux) / np.maximum(n, 1), n > 0


def stdvar_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """Population variance of each window."""
    return _variance(s, window_end, range_ms)


def stddev_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """Population standard deviation of each window."""
    var, ok = _variance(s, window_end, range_ms)
    return np.sqrt(var), ok


def quantile(q: float, values: F64) -> float:
    """Prometheus's quantile: linear interpolation between closest ranks, NaN sorting first."""
    if len(values) == 0 or np.isnan(q):
        return float("nan")
    if q < 0:
        return float("-inf")
    if q > 1:
        return float("inf")
    nan = np.isnan(values)
    ordered = np.concatenate((values[nan], np.sort(values[~nan])))
    rank = q * (len(ordered) - 1)
    lower = max(0, int(np.floor(rank)))
    upper = min(len(ordered) - 1, lower + 1)
    weight = rank - np.floor(rank)
    return float(ordered[lower] * (1 - weight) + ordered[upper] * weight)


def quantile_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """The ``args[0]``-quantile of each window (a loop per window: sorting is per window anyway)."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    q = args[0]
    out = np.array([quantile(float(q[k]), s.values[lo[k] : hi[k]]) for k in range(len(lo))])
    return out.reshape(len(lo)), hi > lo


def mad_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """Median absolute deviation from the median of each window."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    out = np.full(len(lo), np.nan)
    for k in np.nonzero(hi > lo)[0]:
        window = s.values[lo[k] : hi[k]]
        out[k] = quantile(0.5, np.abs(window - quantile(0.5, window)))
    return out, hi > lo


def double_exponential_smoothing(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """Holt's linear smoothing (``holt_winters`` before Prometheus 3) of each window."""
    sf, tf = args[0], args[1]
    if np.any((sf <= 0) | (sf >= 1)):
        raise ExecutionError(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf[0]:f}")
    if np.any((tf <= 0) | (tf >= 1)):
        raise ExecutionError(f"invalid trend factor. Expected: 0 < tf < 1, got: {tf[0]:f}")
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    n = hi - lo
    s0: F64 = np.zeros(len(lo))
    s1 = _at(s.values, lo)
    trend = _at(s.values, lo + 1) - s1
    for i in range(1, int(n.max(initial=0))):
        m = n > i
        x = sf * _at(s.values, lo + i)
        if i > 1:
            trend = np.where(m, tf * (s1 - s0) + (1 - tf) * trend, trend)
        y = (1 - sf) * (s1 + trend)
        s0, s1 = np.where(m, s1, s0), np.where(m, x + y, s1)
    return s1, n >= 2


# name -> (implementation, keeps __name__). Prometheus keeps the name only for these two.
RANGE_FUNCTIONS: dict[str, tuple[RangeFn, bool]] = {
    "rate": (extrapolated(True, True), False),
    "increase": (extrapolated(True, False), False),
    "delta": (extrapolated(False, False), False),
    "irate": (instant_delta(True), False),
    "idelta": (instant_delta(False), False),
    "deriv": (deriv, False),
    "predict_linear": (predict_linear, False),
    "resets": (resets, False),
    "changes": (changes, False),
    "sum_over_time": (sum_over_time, False),
    "count_over_time": (count_over_time, False),
    "avg_over_time": (avg_over_time, False),
    "min_over_time": (min_over_time, False),
    "max_over_time": (max_over_time, False),
    "last_over_time": (last_over_time, True),
    "first_over_time": (first_over_time, True),
    "present_over_time": (present_over_time, False),
    "stddev_over_time": (stddev_over_time, False),
    "stdvar_over_time": (stdvar_over_time, False),
    "quantile_over_time": (quantile_over_time, False),
    "mad_over_time": (mad_over_time, False),
    "double_exponential_smoothing": (double_exponential_smoothing, False),
}
