"""Range-vector functions, vectorised over evaluation steps for one series at a time.

Every function here takes one series' samples and, per step, the window ``(end - range, end]``
(Prometheus 3 range selectors are left-open), and returns ``(values, present)`` arrays over steps.
Window bounds come from ``searchsorted``; each function then answers every window with whole-array
operations whose Python-level cost does not depend on the window length:

* sums (``sum``/``avg``/``stdvar``/``stddev_over_time``, ``deriv``, ``predict_linear``, counter
  resets) use double-double prefix sums, which are as accurate as Prometheus's Kahan sums;
* ``min``/``max_over_time`` use a sparse table of pairwise minima/maxima;
* ``quantile``/``mad_over_time`` use a wavelet matrix over the series' value ranks, which finds the
  k-th smallest value of any index range in one pass per bit of the rank.

The few windows where a prefix sum could differ from Prometheus's sequential arithmetic by more than
rounding (values near overflow, extreme cancellation) are recomputed with Prometheus's sequential
algorithm, vectorised over those windows only (the ``_*_loop`` functions).
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

_EPS = 2.0**-52
# Dekker's splitter: a * _SPLIT separates a double into two 26-bit halves for exact products.
_SPLIT = 134217729.0
# Above this magnitude squares, splits or prefix sums could overflow: use the sequential fallbacks.
_HUGE = 1e150
# A window whose prefix-sum error bound exceeds this fraction of its result is recomputed exactly.
_REL_TOL = 1e-12
# Likewise where Prometheus's own rounding could move its result by more than this fraction: only
# its sequential algorithm then reproduces its figure to 1e-9.
_PROM_TOL = 2e-10


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


def _counts(flags: Mask) -> Callable[[I64, I64], I64]:
    """How many ``flags`` are set in each index range ``[lo, hi)``."""
    csum = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    return lambda lo, hi: np.asarray(csum[hi] - csum[lo], dtype=np.int64)


# --- double-double arithmetic (element-wise; a value is an unevaluated sum hi + lo) ------------


def _two_sum(a: F64, b: F64) -> tuple[F64, F64]:
    """``a + b`` as a rounded sum and its exact rounding error (Knuth's TwoSum)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _two_prod(a: F64, b: F64) -> tuple[F64, F64]:
    """``a * b`` as a rounded product and its exact rounding error (Dekker; |a|, |b| < _HUGE)."""
    p = a * b
    ta, tb = _SPLIT * a, _SPLIT * b
    ah, bh = ta - (ta - a), tb - (tb - b)
    al, bl = a - ah, b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _dd_add(a: tuple[F64, F64], b: tuple[F64, F64]) -> tuple[F64, F64]:
    s, e = _two_sum(a[0], b[0])
    return _two_sum(s, e + (a[1] + b[1]))


def _dd_mul(a: tuple[F64, F64], b: F64) -> tuple[F64, F64]:
    """Double-double times double."""
    p, e = _two_prod(a[0], b)
    return _two_sum(p, e + a[1] * b)


def _dd_div(a: tuple[F64, F64], b: F64) -> tuple[F64, F64]:
    """Double-double divided by double."""
    q = a[0] / b
    p, e = _two_prod(q, b)
    return _two_sum(q, ((a[0] - p) - e + a[1]) / b)


def _dd_round(a: tuple[F64, F64]) -> F64:
    """The double nearest a double-double."""
    return np.asarray(a[0] + a[1], dtype=np.float64)


def _dd_neg(a: tuple[F64, F64]) -> tuple[F64, F64]:
    return -a[0], -a[1]


class _Prefix:
    """Compensated prefix sums: ``hi[k] + lo[k]`` is the sum of the first ``k`` terms.

    ``np.cumsum`` accumulates sequentially, so the rounding error of every partial sum is recovered
    exactly with TwoSum and accumulated separately. The result carries about 100 bits; its absolute
    error is at most ``bound(k)``, second order in the machine epsilon.
    """

    def __init__(self, hi: F64, lo: F64 | None = None) -> None:
        p: F64 = np.concatenate(([0.0], np.cumsum(hi)))
        bb = p[1:] - p[:-1]
        err: F64 = (p[:-1] - (p[1:] - bb)) + (hi - bb)
        if lo is not None:
            err = err + lo
        self.hi = p
        self.lo: F64 = np.concatenate(([0.0], np.cumsum(err)))
        self.scale = float(np.abs(p).max(initial=0.0))

    def window(self, lo: I64, hi: I64) -> tuple[F64, F64]:
        """The sum of terms ``[lo, hi)`` per window, as a double-double."""
        s, e = _two_sum(self.hi[hi], -self.hi[lo])
        return _two_sum(s, e + (self.lo[hi] - self.lo[lo]))

    def bound(self, hi: I64) -> F64:
        """Error bound of ``window(·, hi)``: the plain cumsum of the (tiny) errors drifts by k·eps each."""
        k = hi.astype(np.float64) + 1
        return np.asarray(4 * k * k * _EPS * _EPS * self.scale, dtype=np.float64)


# --- Prometheus's sequential algorithms, for the few windows the prefix sums cannot answer ------


def _kahan_loop(values: F64, lo: I64, n: I64) -> F64:
    """Kahan sum of each window, in sample order (Prometheus's ``sum_over_time``)."""
    total: F64 = np.zeros(len(lo))
    comp: F64 = np.zeros(len(lo))
    for j in range(int(n.max(initial=0))):
        m = n > j
        t, c = kahan_inc(_at(values, lo + j), total, comp)
        total = np.where(m, t, total)
        comp = np.where(m, c, comp)
    return np.asarray(np.where(np.isinf(total), total, total + comp), dtype=np.float64)


def _welford_loop(values: F64, lo: I64, n: I64) -> F64:
    """Population variance per window: Welford's algorithm with Kahan-compensated accumulators."""
    size = len(lo)
    mean: F64
    c_mean: F64
    aux: F64
    c_aux: F64
    mean, c_mean, aux, c_aux = (np.zeros(size) for _ in range(4))
    for j in range(int(n.max(initial=0))):
        m = n > j
        v = _at(values, lo + j)
        delta = v - (mean + c_mean)
        t, c = kahan_inc(delta / (j + 1), mean, c_mean)
        mean, c_mean = np.where(m, t, mean), np.where(m, c, c_mean)
        t, c = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
        aux, c_aux = np.where(m, t, aux), np.where(m, c, c_aux)
    return np.asarray((aux + c_aux) / np.maximum(n, 1), dtype=np.float64)


def _regression_loop(s: SeriesSamples, lo: I64, n: I64, intercept_ms: I64) -> tuple[F64, F64, F64, F64]:
    """Kahan sums of x, y, x·y and x² per window, in sample order as Prometheus adds them."""
    zeros: F64 = np.zeros(len(lo))
    sx, cx, sy, cy, sxy, cxy, sx2, cx2 = (zeros.copy() for _ in range(8))
    for j in range(int(n.max(initial=0))):
        m = n > j
        y = _at(s.values, lo + j)
        x = (_at(s.timestamps, lo + j) - intercept_ms).astype(np.float64) / 1e3
        for tot, comp, inc in ((sx, cx, x), (sy, cy, y), (sxy, cxy, x * y), (sx2, cx2, x * x)):
            t, c = kahan_inc(inc, tot, comp)
            tot[m], comp[m] = t[m], c[m]
    return sx + cx, sy + cy, sxy + cxy, sx2 + cx2


def _refine(result: F64, flagged: Mask, exact: Callable[[npt.NDArray[np.intp]], F64]) -> F64:
    """``result`` with the ``flagged`` windows replaced by ``exact(indexes)``."""
    idx = np.nonzero(flagged)[0]
    if len(idx):
        result = result.copy()
        result[idx] = exact(idx)
    return result


# --- sums ----------------------------------------------------------------------------------------


def _window_sum(values: F64, lo: I64, hi: I64) -> F64:
    """Per window, the sum Prometheus's Kahan summation returns (to within an ulp or two)."""
    n = hi - lo
    finite = np.isfinite(values)
    x: F64 = np.where(finite, values, 0.0)
    if np.abs(x).max(initial=0.0) > _HUGE:
        return _kahan_loop(values, lo, n)  # the prefix sums could overflow where windows do not
    pre = _Prefix(x)
    s, e = pre.window(lo, hi)
    total: F64 = s + e
    # Prometheus's own error is about n·eps²·Σ|v|; ours is bounded by the prefix error. Windows where
    # either could reach the tolerance (heavy cancellation) are recomputed in Prometheus's order.
    abs_pre = np.concatenate(([0.0], np.cumsum(np.abs(x))))
    err = pre.bound(hi) + n * _EPS * _EPS * (abs_pre[hi] - abs_pre[lo])
    nonzero = _counts(x != 0)(lo, hi) > 0
    total = np.where(nonzero, total, 0.0)  # a window of zeros sums to exactly 0 (and -0 + 0 is 0)
    if not finite.all():
        nan, pos, neg = (_counts(f)(lo, hi) > 0 for f in (np.isnan(values), values == np.inf, values == -np.inf))
        total = np.where(nan | (pos & neg), np.nan, np.where(pos, np.inf, np.where(neg, -np.inf, total)))
        nonzero &= ~(nan | pos | neg)
    flagged = nonzero & (n > 0) & ~(err <= _REL_TOL * np.abs(total))
    return _refine(total, flagged, lambda i: _kahan_loop(values, lo[i], n[i]))


def _pair_count(indicator: Mask) -> Callable[[I64, I64], F64]:
    """Counts of ``indicator[i]`` (comparing sample i with i-1) over ``lo < i < hi``."""
    csum = np.concatenate(([0], np.cumsum(indicator, dtype=np.int64)))

    def count(lo: I64, hi: I64) -> F64:
        # indicator[k] compares samples k+1 and k; pairs fully inside [lo, hi) are k in [lo, hi-1).
        a = np.clip(lo, 0, len(csum) - 1)
        b = np.clip(hi - 1, 0, len(csum) - 1)
        return np.asarray(np.maximum(csum[b] - csum[a], 0), dtype=np.float64)

    return count


def _is_constant(values: F64, lo: I64, hi: I64) -> Mask:
    """Windows whose values all equal the first (NaN equals nothing, as in Go)."""
    return np.asarray(_pair_count(values[1:] != values[:-1])(lo, hi) == 0, dtype=bool)


# --- rate and friends ------------------------------------------------------------------------------

# Up to this many counter resets in a window, they are added one by one in Prometheus's exact order.
_SEQUENTIAL_RESETS = 8


def _reset_correction(vs: F64, lo: I64, hi: I64, ok: Mask, result: F64) -> F64:
    """``last - first`` plus the value before each counter reset in each window."""
    if len(vs) < 2:
        return result
    resets = (np.nonzero(vs[1:] < vs[:-1])[0] + 1).astype(np.int64)
    a = np.searchsorted(resets, lo, side="right")
    b = np.searchsorted(resets, hi - 1, side="right")
    count = np.where(ok, b - a, 0)
    if int(count.max(initial=0)) <= _SEQUENTIAL_RESETS or not np.isfinite(vs).all() or np.abs(vs).max() > _HUGE:
        return _reset_correction_loop(vs, resets, a, count, result)
    # Many resets (a gauge fed to rate()): a compensated prefix sum of the pre-reset values, where
    # a reset at sample r lies in the window when lo < r <= hi - 1.
    terms: F64 = np.zeros(len(vs))
    terms[resets] = vs[resets - 1]
    start = np.minimum(lo + 1, hi)
    prefix = _Prefix(terms)
    corr = prefix.window(start, hi)
    s, e = _two_sum(corr[0], result)
    total: F64 = np.where(count > 0, s + (e + corr[1]), result)
    # Prometheus adds the terms one by one; where its rounding (or our prefix error) could matter,
    # do the same.
    abs_terms = np.concatenate(([0.0], np.cumsum(np.abs(terms))))
    rounding = count * _EPS * (np.abs(result) + abs_terms[hi] - abs_terms[start])
    flagged = (count > 0) & ~((rounding <= _PROM_TOL * np.abs(total)) & (prefix.bound(hi) <= _REL_TOL * np.abs(total)))
    idx = np.nonzero(flagged)[0]
    if len(idx):
        total[idx] = _reset_correction_loop(vs, resets, a[idx], count[idx], result[idx])
    return total


def _reset_correction_loop(vs: F64, resets: I64, a: I64, count: I64, result: F64) -> F64:
    """Prometheus's order: one addition per reset, vectorised over windows."""
    for j in range(int(count.max(initial=0))):
        result = np.where(count > j, result + _at(vs, _at(resets, a + j) - 1), result)
    return result


def extrapolated(is_counter: bool, is_rate: bool) -> RangeFn:
    """``rate``, ``increase`` or ``delta``: Prometheus's extrapolation to the window boundaries."""

    def fn(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
        lo, hi = bounds(s.timestamps, window_end, range_ms)
        return _extrapolate(s, lo, hi, hi - lo, window_end, range_ms, is_counter, is_rate)

    return fn


def rollup_extrapolated(
    name: str, counter: list[SeriesSamples], counts: list[SeriesSamples], window_end: I64, range_ms: int
) -> Result:
    """``rate``/``increase`` of counters rebuilt from rollups (``storage.rollups``, view ``counter``),
    with the number of raw samples of each window taken from the ``count`` view: the average sample
    interval, which decides how far the extrapolation reaches, is then the raw one."""
    values: F64 = np.zeros((len(counter), len(window_end)))
    present: Mask = np.zeros((len(counter), len(window_end)), dtype=bool)
    for i, (s, c) in enumerate(zip(counter, counts, strict=True)):
        lo, hi = bounds(s.timestamps, window_end, range_ms)
        c_lo, c_hi = bounds(c.timestamps, window_end, range_ms)
        totals = np.concatenate([[0.0], np.cumsum(c.values)])
        n = (totals[c_hi] - totals[c_lo]).astype(np.int64)
        values[i], present[i] = _extrapolate(s, lo, hi, n, window_end, range_ms, True, name == "rate")
    return values, present


def _extrapolate(
    s: SeriesSamples, lo: I64, hi: I64, n: I64, window_end: I64, range_ms: int, is_counter: bool, is_rate: bool
) -> Result:
    """Prometheus's extrapolated delta of the samples ``lo:hi`` of each window, ``n`` raw samples each."""
    ts, vs = s.timestamps, s.values
    ok = (n >= 2) & (hi - lo >= 2)
    first_t, last_t = _at(ts.astype(np.float64), lo), _at(ts.astype(np.float64), hi - 1)
    first_v, last_v = _at(vs, lo), _at(vs, hi - 1)
    result = last_v - first_v
    if is_counter:
        result = _reset_correction(vs, lo, hi, ok, result)
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


# --- linear regression -----------------------------------------------------------------------------


def _regression_sums(s: SeriesSamples, lo: I64, n: I64, intercept_ms: I64) -> tuple[F64, F64, F64, F64]:
    """Per window, Σx, Σy, Σx·y and Σx² with ``x = (t - intercept) / 1000``, as Kahan would sum them.

    With ``u = t - t0`` (exact in float64) and ``U = intercept - t0``, the window sums expand into
    prefix sums of ``u``, ``u²``, ``y`` and ``u·y`` (exact products), combined in double-double.
    """
    ts, y = s.timestamps, s.values
    if len(ts) == 0:
        zeros: F64 = np.zeros(len(lo))
        return zeros, zeros, zeros, zeros
    hi = lo + n
    finite = np.isfinite(y)
    yf: F64 = np.where(finite, y, 0.0)
    u: F64 = (ts - ts[0]).astype(np.float64)
    if np.abs(yf).max() > _HUGE or np.abs(u).max() > 2.0**52:
        return _regression_loop(s, lo, n, intercept_ms)
    big_u: F64 = (intercept_ms - ts[0]).astype(np.float64)
    nf = n.astype(np.float64)
    p_u, p_y = _Prefix(u), _Prefix(yf)
    p_uu, p_uy = _Prefix(*_two_prod(u, u)), _Prefix(*_two_prod(u, yf))
    w_u, w_y, w_uu, w_uy = (p.window(lo, hi) for p in (p_u, p_y, p_uu, p_uy))
    sx_ms = _dd_add(w_u, _dd_neg(_two_prod(nf, big_u)))
    sxx_ms = _dd_add(_dd_add(w_uu, _dd_neg(_dd_mul(w_u, 2 * big_u))), _dd_mul(_two_prod(big_u, big_u), nf))
    sxy_ms = _dd_add(w_uy, _dd_neg(_dd_mul(w_y, big_u)))
    ms, ms2 = np.full(len(lo), 1e3), np.full(len(lo), 1e6)
    sum_x, sum_x2, sum_xy = (_dd_round(_dd_div(v, d)) for v, d in ((sx_ms, ms), (sxx_ms, ms2), (sxy_ms, ms)))
    sum_y: F64 = w_y[0] + w_y[1]
    # Recompute sequentially where a non-finite y takes part, or where the prefix error bound is not
    # negligible against the sums the fit depends on (only with extreme magnitudes).
    abs_u = np.abs(big_u)
    err_xy = p_uy.bound(hi) + abs_u * p_y.bound(hi)
    err_xx = p_uu.bound(hi) + 2 * abs_u * p_u.bound(hi)
    # Prometheus rounds every x and x·y before summing: its covariance and variance of x can be off
    # by about eps·Σ|x·y| and eps·Σx². Where that is not negligible against them, or where our
    # prefix error is not, take Prometheus's sequential sums so the fit comes out as its does.
    max_x = np.maximum(np.abs(_at(u, lo) - big_u), np.abs(_at(u, hi - 1) - big_u)) / 1e3
    abs_y = np.concatenate(([0.0], np.cumsum(np.abs(yf))))
    sum_abs_y = abs_y[hi] - abs_y[lo]
    mean_y = np.abs(sum_y) / np.maximum(nf, 1)
    cov = sum_xy - sum_x * sum_y / nf
    var_x = sum_x2 - sum_x * sum_x / nf
    rounding = 2 * _EPS * max_x * (sum_abs_y + nf * mean_y) / np.abs(cov) + 4 * _EPS * nf * max_x * max_x / var_x
    bad = _counts(~finite)(lo, hi) > 0
    bad |= ~(rounding <= _PROM_TOL) & ~_is_constant(y, lo, hi)
    bad |= ~(err_xy <= _REL_TOL * 1e3 * np.abs(sum_xy)) & (_counts(yf != 0)(lo, hi) > 0)
    bad |= ~(err_xx <= _REL_TOL * 1e6 * np.abs(sum_x2))
    bad &= n > 1
    idx = np.nonzero(bad)[0]
    out = [np.asarray(v, dtype=np.float64).copy() for v in (sum_x, sum_y, sum_xy, sum_x2)]
    if len(idx):
        exact = _regression_loop(s, lo[idx], n[idx], intercept_ms[idx])
        for dst, src in zip(out, exact, strict=True):
            dst[idx] = src
    return out[0], out[1], out[2], out[3]


def _regression(s: SeriesSamples, lo: I64, n: I64, intercept_ms: I64) -> tuple[F64, F64]:
    """Least-squares slope and intercept per window, with the formulas Prometheus uses."""
    sx, sy, sxy, sx2 = _regression_sums(s, lo, n, intercept_ms)
    first = _at(s.values, lo)
    const_y = _is_constant(s.values, lo, lo + n)
    nf = n.astype(np.float64)
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


# --- simple aggregates over time -------------------------------------------------------------------


def sum_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """Kahan sum of each window."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    return _window_sum(s.values, lo, hi), hi > lo


def count_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """Number of samples in each window."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    return (hi - lo).astype(np.float64), hi > lo


def avg_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """Mean of each window (Kahan sum over count; overflowing sums fall back to a running mean)."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    n = hi - lo
    total = _window_sum(s.values, lo, hi)
    result = total / np.maximum(n, 1)
    overflow = np.isinf(total) & (n > 0)
    for k in np.nonzero(overflow)[0]:  # only windows of finite values whose sum overflows
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
    """``min``/``max_over_time`` from a sparse table: ``table[j][i]`` covers samples ``[i, i + 2**j)``.

    Each window is covered by two (overlapping) power-of-two ranges, which is exact for an
    idempotent ``pick``. ``fmin``/``fmax`` skip NaN: a NaN wins only if the whole window is NaN.
    """

    def fn(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
        lo, hi = bounds(s.timestamps, window_end, range_ms)
        n = hi - lo
        v = s.values
        if len(v) == 0:
            return np.full(len(lo), np.nan), n > 0
        # floor(log2(width)), exactly: frexp's exponent e has 2**(e-1) <= width < 2**e.
        level = np.frexp(np.maximum(n, 1).astype(np.float64))[1].astype(np.int64) - 1
        table: F64 = np.empty((int(level.max(initial=0)) + 1, len(v)))
        table[0] = v
        for j in range(1, len(table)):
            half = 1 << (j - 1)
            table[j] = table[j - 1]  # the tail (shorter than 2**j) is never queried
            table[j, :-half] = pick(table[j - 1, :-half], table[j - 1, half:])
        last = len(v) - 1
        first_part = table[level, np.clip(lo, 0, last)]
        second_part = table[level, np.clip(hi - (1 << level), 0, last)]
        return pick(first_part, second_part), n > 0

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


# --- variance --------------------------------------------------------------------------------------


def _variance(s: SeriesSamples, window_end: I64, range_ms: int) -> Result:
    """Population variance per window, as Prometheus's Kahan-compensated Welford algorithm gives it.

    With ``d = v - r`` (``r`` the series' median, exact in double-double), ``n·var = Σd² - (Σd)²/n``
    from prefix sums of ``d`` and of ``d²`` (exact squares) evaluated in double-double.
    """
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    n = hi - lo
    v = s.values
    finite = np.isfinite(v)
    if not finite.any() or np.abs(v[finite]).max() > _HUGE:
        return _welford_loop(v, lo, n), n > 0
    ref = float(np.median(v[finite]))
    d_hi, d_lo = _two_sum(np.where(finite, v, ref), np.full(len(v), -ref))
    sq_hi, sq_lo = _two_prod(d_hi, d_hi)
    p1, p2 = _Prefix(d_hi, d_lo), _Prefix(sq_hi, sq_lo + 2 * d_hi * d_lo)
    s1, s2 = p1.window(lo, hi), p2.window(lo, hi)
    nf = np.maximum(n, 1).astype(np.float64)
    square = _two_prod(s1[0], s1[0])
    m2 = _dd_add(s2, _dd_neg(_dd_div((square[0], square[1] + 2 * s1[0] * s1[1]), nf)))
    var: F64 = (m2[0] + m2[1]) / nf
    # Welford returns exactly 0 for a constant window and NaN once an Inf or NaN takes part.
    constant = _is_constant(v, lo, hi)
    var = np.where(constant, 0.0, var)
    nonfinite = _counts(~finite)(lo, hi) > 0
    var = np.where(nonfinite, np.nan, var)
    # Our error bound, and Welford's own rounding (about 2·eps·|v|/std relative, from subtracting
    # the running mean): where either is not negligible, follow Prometheus's sequential algorithm.
    err = p2.bound(hi) + 2 * np.abs(s1[0]) * p1.bound(hi) / nf + 8 * _EPS * _EPS * np.abs(s2[0])
    magnitude = abs(ref) + np.sqrt(np.abs(s2[0]) / nf)
    welford = 2 * _EPS * magnitude * np.sqrt(np.abs(m2[0]) * nf)
    flagged = (n > 0) & ~nonfinite & ~constant & ~((err <= _REL_TOL * m2[0]) & (welford <= _PROM_TOL * m2[0]))
    return _refine(var, flagged, lambda i: _welford_loop(v, lo[i], n[i])), n > 0


def stdvar_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """Population variance of each window."""
    return _variance(s, window_end, range_ms)


def stddev_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """Population standard deviation of each window."""
    var, ok = _variance(s, window_end, range_ms)
    return np.sqrt(var), ok


# --- quantiles -------------------------------------------------------------------------------------


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


class _RankSelect:
    """The k-th smallest value of any index range of a series, for many ranges at once.

    A wavelet matrix over each sample's rank in the series (NaN first, as Prometheus sorts): level
    by level, from the top bit of the rank, a query narrows ``[lo, hi)`` to the samples whose rank
    shares the bits found so far. Building costs O(n log n), a batch of queries O(queries · log n),
    independent of the window length.
    """

    def __init__(self, values: F64) -> None:
        n = len(values)
        # numpy sorts NaN last; Prometheus's order puts them first, so rotate them to the front.
        order = np.argsort(values, kind="stable")
        nans = int(np.isnan(values).sum())
        if nans:
            order = np.concatenate((order[n - nans :], order[: n - nans]))
        self.ordered: F64 = values[order]
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n, dtype=np.int64)
        self.levels = max(1, (n - 1).bit_length())
        self.zeros: list[I64] = []  # per level (top bit first): zero bits among the first i samples
        self.total_zeros: list[int] = []
        for level in reversed(range(self.levels)):
            one = ((rank >> level) & 1).astype(bool)
            zeros = np.concatenate(([0], np.cumsum(~one, dtype=np.int64)))
            self.zeros.append(zeros)
            self.total_zeros.append(int(zeros[-1]))
            rank = np.concatenate((rank[~one], rank[one]))  # stable: zeros first, then ones

    def kth(self, lo: I64, hi: I64, k: I64) -> F64:
        """Per query, the ``k``-th smallest (0-based) value of samples ``[lo, hi)``; needs ``k < hi - lo``."""
        found: I64 = np.zeros(len(lo), dtype=np.int64)
        for i, level in enumerate(reversed(range(self.levels))):
            zeros, nz = self.zeros[i], self.total_zeros[i]
            zl, zh = zeros[lo], zeros[hi]
            right = k >= zh - zl
            k = np.where(right, k - (zh - zl), k)
            lo = np.where(right, nz + lo - zl, zl)
            hi = np.where(right, nz + hi - zh, zh)
            found |= right.astype(np.int64) << level
        return np.asarray(self.ordered[np.minimum(found, len(self.ordered) - 1)], dtype=np.float64)


def _interpolated(q: F64, n: I64, kth: Callable[[I64], F64]) -> F64:
    """Prometheus's quantile of windows of ``n`` samples, given each window's k-th smallest sample."""
    size = np.maximum(n, 1)
    qc = np.where(np.isfinite(q), np.clip(q, 0.0, 1.0), 0.0)  # the real q's rules are applied last
    rank = qc * (size - 1)
    floor = np.floor(rank)
    lower = np.maximum(0, floor.astype(np.int64))
    upper = np.minimum(size - 1, lower + 1)
    weight = rank - floor
    result = kth(lower) * (1 - weight) + kth(upper) * weight
    result = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, result))
    return np.asarray(np.where(np.isnan(q) | (n == 0), np.nan, result), dtype=np.float64)


def _window_quantile(sel: _RankSelect, q: F64, lo: I64, n: I64) -> F64:
    """``quantile(q, window)`` per window, with Prometheus's interpolation and out-of-range rules."""
    lo = np.where(n > 0, lo, np.minimum(lo, len(sel.ordered) - 1))  # empty windows: any valid range
    hi = lo + np.maximum(n, 1)
    return _interpolated(q, n, lambda k: sel.kth(lo, hi, k))


def quantile_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """The ``args[0]``-quantile of each window."""
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    if len(s.values) == 0:
        return np.full(len(lo), np.nan), hi > lo
    q = np.broadcast_to(np.asarray(args[0], dtype=np.float64), lo.shape)
    n = hi - lo
    if len(lo) * int(n.max(initial=0)) <= 2 * len(s.values):
        # Few windows (an instant query): sorting just their samples beats ranking every sample.
        return _sorted_windows_quantile(s.values, q, lo, n), hi > lo
    return _window_quantile(_RankSelect(s.values), q, lo, n), hi > lo


def _sorted_windows_quantile(values: F64, q: F64, lo: I64, n: I64) -> F64:
    """What ``_window_quantile`` computes, by sorting each window's samples padded to one width."""
    width = max(1, int(n.max(initial=0)))
    offsets = np.arange(width, dtype=np.int64)
    inside = offsets[None, :] < n[:, None]
    block = np.where(inside, values[np.minimum(lo[:, None] + offsets[None, :], len(values) - 1)], np.nan)
    nans = (np.isnan(block) & inside).sum(axis=1)
    block.sort(axis=1)  # numpy puts NaN (real ones and padding) last; Prometheus puts real ones first

    def kth(k: I64) -> F64:
        at = np.clip(k - nans, 0, width - 1)
        return np.asarray(np.where(k < nans, np.nan, block[np.arange(len(lo)), at]), dtype=np.float64)

    return _interpolated(q, n, kth)


def mad_over_time(s: SeriesSamples, window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """Median absolute deviation from the median of each window.

    In the sorted window ``w``, with median ``m`` and ``p`` values at or below it, the deviations
    ``m - w[p-1-i]`` and ``w[p+j] - m`` form two ascending lists; the median deviation is the k-th
    smallest of their union, found by binary search over how many come from the left list.
    Windows holding an Inf or NaN (whose deviations are not ordered that way) are done one by one.
    """
    lo, hi = bounds(s.timestamps, window_end, range_ms)
    n = hi - lo
    v = s.values
    out: F64 = np.full(len(lo), np.nan)
    if len(v) == 0:
        return out, n > 0
    sel = _RankSelect(v)
    median = _window_quantile(sel, np.full(len(lo), 0.5), lo, n)
    valid = (n > 0) & np.isfinite(median) & (_counts(~np.isfinite(v))(lo, hi) == 0)
    idx = np.nonzero(valid)[0]
    wl, wn, m = lo[idx], n[idx], median[idx]
    k = (wn - 1) // 2  # the lower rank of a median; the left list holds w[0..k]
    left_len, right_len = k + 1, wn - k - 1

    def left(i: I64) -> F64:  # i-th smallest deviation of values at or below the median
        return np.asarray(m - sel.kth(wl, wl + wn, np.clip(k - i, 0, wn - 1)), dtype=np.float64)

    def right(j: I64) -> F64:  # j-th smallest deviation of values above the median's lower rank
        return np.asarray(sel.kth(wl, wl + wn, np.clip(k + 1 + j, 0, wn - 1)) - m, dtype=np.float64)

    # Smallest i (taken from the left list) such that the (k+1) smallest are i left and k+1-i right.
    a = np.maximum(0, k + 1 - right_len)
    b = np.minimum(k + 1, left_len)
    while (a < b).any():
        mid = (a + b) // 2
        j = k + 1 - mid
        more_left = (mid < left_len) & (j >= 1) & (left(mid) < right(j - 1))
        searching = a < b
        a = np.where(searching & more_left, mid + 1, a)
        b = np.where(searching & ~more_left, mid, b)
    j = k + 1 - a
    low = np.maximum(np.where(a > 0, left(a - 1), -np.inf), np.where(j > 0, right(j - 1), -np.inf))
    nxt = np.minimum(np.where(a < left_len, left(a), np.inf), np.where(j < right_len, right(j), np.inf))
    weight = 0.5 * (wn - 1) - k
    high = np.where(wn > 1, nxt, low)
    out[idx] = low * (1 - weight) + high * weight
    for w in np.nonzero((n > 0) & ~valid)[0]:
        window = v[lo[w] : hi[w]]
        out[w] = quantile(0.5, np.abs(window - quantile(0.5, window)))
    return out, n > 0


# --- smoothing -------------------------------------------------------------------------------------


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


# --- many series at once ---------------------------------------------------------------------------

# Functions whose result for a window depends only on that window's samples and on differences of
# their timestamps, so series laid end to end on one time axis give every series its own result.
# ``deriv`` qualifies too: its prefix sums are taken relative to the array's first sample, so laid end
# to end their error bounds grow and more windows take the exact sequential path (still one call).
# The variance functions are left out: their reference point, the whole array's median, would change.
_END_TO_END = frozenset(
    {
        "deriv",
        "rate",
        "increase",
        "delta",
        "irate",
        "idelta",
        "resets",
        "changes",
        "sum_over_time",
        "count_over_time",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "last_over_time",
        "first_over_time",
        "present_over_time",
        "quantile_over_time",
    }
)
# Samples per end-to-end batch: the prefix sums' error bounds grow with their length, so batches stay
# about as long as one long series.
_BATCH_SAMPLES = 1 << 16


def evaluate(name: str, series: list[SeriesSamples], window_end: I64, range_ms: int, args: list[F64]) -> Result:
    """A range function over every series: ``(values, present)`` arrays of shape (series, steps).

    Calling a function once per series costs tens of microseconds of numpy overhead each, which
    dominates instant queries over thousands of series. Where the function allows it, series are
    instead laid end to end: series ``i`` is shifted by ``i`` times a span longer than all samples
    and windows together, so no window reaches into a neighbour, and one call answers all windows.
    """
    fn = RANGE_FUNCTIONS[name][0]
    steps = len(window_end)
    values: F64 = np.zeros((len(series), steps))
    present: Mask = np.zeros((len(series), steps), dtype=bool)
    if name not in _END_TO_END:
        for i, s in enumerate(series):
            values[i], present[i] = fn(s, window_end, range_ms, args)
        return values, present
    for first, last in _batches(series):
        joined, ends = _end_to_end(series[first:last], window_end, range_ms)
        count = last - first
        v, ok = fn(joined, ends, range_ms, [np.tile(a, count) for a in args])
        values[first:last] = v.reshape(count, steps)
        present[first:last] = ok.reshape(count, steps)
    return values, present


def _batches(series: list[SeriesSamples]) -> list[tuple[int, int]]:
    """``[first, last)`` index ranges of consecutive series holding about ``_BATCH_SAMPLES`` samples."""
    sizes = np.cumsum([len(s.timestamps) for s in series], dtype=np.int64)
    out, first = [], 0
    while first < len(series):
        done = int(sizes[first - 1]) if first else 0
        last = max(first + 1, int(np.searchsorted(sizes, done + _BATCH_SAMPLES, side="right")))
        out.append((first, last))
        first = last
    return out


def _end_to_end(series: list[SeriesSamples], window_end: I64, range_ms: int) -> tuple[SeriesSamples, I64]:
    """The series as one, each shifted past the previous one's samples and windows; and its windows."""
    ts = [s.timestamps for s in series]
    earliest = min([int(window_end.min()) - range_ms, *(int(t[0]) for t in ts if len(t))])
    latest = max([int(window_end.max()), *(int(t[-1]) for t in ts if len(t))])
    span = latest - earliest + 1
    shifts = span * np.arange(len(series), dtype=np.int64)
    sizes = [len(t) for t in ts]
    joined_ts = np.concatenate(ts) + np.repeat(shifts, sizes) if ts else np.zeros(0, dtype=np.int64)
    joined_vs = np.concatenate([s.values for s in series]) if series else np.zeros(0)
    ends = (shifts[:, None] + window_end[None, :]).ravel()
    return SeriesSamples((), joined_ts.astype(np.int64), joined_vs), ends
