"""The streaming anomaly detector of one series: each sample is scored as it arrives, with no look-ahead.

Per sample, in this order:

1. The seasonal baseline (:mod:`novacron.detect.seasonality`), scaled by a *gain*, is subtracted; what
   is left is the *deseasonalised* value. The gain is how strongly the last 36 samples (within six
   hours) followed the baseline (Theil-Sen over pairs of samples; 1 on flat stretches; within 0.3-1.5):
   a weekend or holiday that runs the usual day at half its swing is then normal, even before a weekly
   pattern is learnt. The upper bound keeps a ramp that runs along a rising or falling baseline (a trend
   change in the evening descent) from being explained away as a bigger day.
2. The expected deseasonalised value is the median of the last 9 (the local level); without a seasonal
   baseline, plus a robust local slope (median of pairwise slopes between the two halves of the last
   16) times the time since them, capped at 8 typical intervals (gaps). The residual is the observation
   minus this expectation; its scale is 1.4826 x the MAD of the earlier residuals (the last 8 are left
   out, so an anomaly does not widen its own band), floored for flat and quantised series. Where the
   noise grows with the level (a request rate's noise is a share of the traffic), the earlier residuals
   are first rescaled to the current level: spread ~ level**p, with p (0: additive noise, 1:
   proportional) learnt as a running mean of per-sample estimates that compare the spread of the
   residuals at the higher and the lower half of the levels in the window. Without it, the band at
   the daily peak was drawn from the quieter hours before it, and was far too tight. One window's
   estimate scatters by +-0.3, so the mean remembers about a thousand of them (days, several
   independent windows), and the estimates are averaged unclipped (the mean is used within [0, 1]).
3. Evidence, each in robust-z units (standard deviations of the residual):
   - ``spike`` / ``dip``: the residual's z, from the 8th sample on;
   - ``level_shift`` / ``trend_break``: the median of the last 5 against the level (and, without a
     seasonal baseline, the slope) of the 34 before them, a two-window median test, x1.8; from the
     40th sample and two days of history on, and not across a gap; a trend break when the recent
     slope departs from the earlier one, a level shift otherwise; neither when the last samples are
     on their way back to the seasonal baseline at its full swing (within 2 sigmas of it, or nearer
     to it than the reference window, on the same side): a return to the usual level for the time
     of day is not a fault (after a quiet Sunday, before a weekly pattern is known, Monday's traffic
     would otherwise read as a shift);
   - ``variance_change``: the spread (MAD) of the last 12 residuals around their own robust trend
     against the usual scale, x1.6, on the samples at least 2.5 scales off. Around their trend, so that
     residuals that drift together (a restarted process refilling its caches, a level that moves on)
     are not read as wider noise: only a wider scatter is;
   - ``seasonal`` is added to the methods when the value lies within the series' normal range of the
     last day but not at this time of day (only with a seasonal baseline).
4. The score is a logistic of the strongest evidence (less the warm-up margin): 0.5 at 5.5 robust
   standard deviations, 0.1 at 4, 0.9 at 7. A sample is an anomaly when its score reaches
   ``1 - sensitivity``: the default sensitivity 0.5 alarms at 5.5 sigma; 0.8 at 4.6 sigma; 0.2 at
   6.4 sigma. ``lower``/``upper`` is the band outside which a single sample alarms.

Warm-up: before 8 samples nothing is scored; until 40 samples and two days of history (when daily
seasonality is decided) only spikes and dips. While ``warming_up``, an anomaly needs ``WARM_UP_MARGIN``
(2.5) more sigmas of evidence: the scale rests on few residuals and there is no seasonal baseline yet.
``confidence`` grows with the samples seen (to 64) and the days of history (to 2 for daily, 8 for weekly
seasonality); ``warming_up`` holds until 64 samples and two days.

Samples are expected in time order; a late one is scored against the current state (without
extrapolating backwards) and does not rewrite the seasonal history.

State is a few deques of the last 64 samples (144 residuals) and the slot ring of the seasonal profile: about 13 KB
zlib-compressed JSON once eight days are held.
"""

from __future__ import annotations

import functools
import json
import math
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from novacron.detect.seasonality import SeasonalProfile

WINDOW = 64
SCALE_POINTS = 144  # residuals kept for the scale: a MAD of 56 wobbles by +-15 %, which moves the band as much
MIN_SCORED = 8  # samples before spikes and dips are scored
MIN_WINDOW_METHODS = 40  # samples before level shifts, trend breaks and variance changes are
LEVEL_POINTS = 9
GAIN_POINTS = 36
GAIN_MS = 6 * 3600 * 1000
MIN_GAIN_PAIRS = 20
# A quiet day runs at a fraction of the usual swing; a day at more than half as much again is not the usual
# day, and a gain that high would mostly be a ramp that happens to run with the baseline, explained away.
GAIN_RANGE = (0.3, 1.5)
SLOPE_POINTS = 16
FAST_POINTS = 5
GAP_STEPS = 6  # an interval this many times the typical one is a gap
SHIFT_WEIGHT = 1.8  # the median of 5 is that much steadier than one sample
REFERENCE = (40, 6)  # the reference window: from 40 samples back to 6 back
VARIANCE_POINTS = 12
USUAL_SIGMAS = 2.0  # the last samples' median this close to the seasonal baseline is the usual level
VARIANCE_WEIGHT = 1.6  # a spread 3.4 times the usual scores 0.5
VARIANCE_MIN_Z = 2.5
FRESH_RESIDUALS = 8  # the newest residuals, left out of the scale
RELATIVE_FLOOR = 0.01  # the scale is at least this share of the level: alarms need a change of 5 % or more
SCORE_MIDPOINT = 5.5  # evidence (robust sigmas) scored 0.5
# While warming up, a scale from few residuals and no seasonal baseline: an anomaly needs this much more
# evidence, so that a new series' ordinary variation does not open episodes (a fault is far larger).
WARM_UP_MARGIN = 2.5
SCORE_STEEPNESS = 1.5
WARM_DAYS = 2.0  # seasonality is decided, and the window methods start, after this much history
WEEK_DAYS = 8.0  # ...and weekly seasonality can be told after this much
# Noise that grows with the level (a request rate's noise is a share of the traffic): the residuals' spread
# is compared between the samples at the higher and the lower levels of the scale's window, and the
# power p of spread ~ level**p (0: additive noise, 1: proportional) is followed as a running mean.
NOISE_POWER_MIN_POINTS = 48
NOISE_POWER_MIN_RATIO = 1.5  # the two halves' levels must differ this much to tell anything
NOISE_POWER_RATE = 0.001  # the running mean's weight of one new estimate, once warm
NOISE_WEIGHT_RANGE = (0.1, 10.0)  # how far a residual is rescaled to the current level
NOISE_ESTIMATE_RANGE = (-1.0, 2.0)  # one estimate's bounds (against wild ones); the mean is used within [0, 1]
STATE_VERSION = 1

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Verdict:
    """What the detector says about one sample."""

    timestamp_ms: int
    value: float
    score: float  # in [0, 1]
    anomaly: bool  # at the detector's sensitivity
    expected: float | None
    lower: float | None
    upper: float | None
    methods: tuple[str, ...]  # the methods whose evidence alone reaches the threshold
    confidence: float  # in [0, 1]; low while warming up
    warming_up: bool


def score_of(evidence: float) -> float:
    """The [0, 1] score of an evidence in robust standard deviations."""
    return 1.0 / (1.0 + math.exp(-SCORE_STEEPNESS * (evidence - SCORE_MIDPOINT)))


def evidence_at(score: float) -> float:
    """The evidence that scores ``score`` (the inverse of :func:`score_of`)."""
    score = min(max(score, 1e-9), 1 - 1e-9)
    return SCORE_MIDPOINT + math.log(score / (1 - score)) / SCORE_STEEPNESS


def median(values: Floats) -> float:
    """The median of a small non-empty array (``np.median`` costs ten times more at these sizes)."""
    ordered = values.copy()
    ordered.sort()
    middle = ordered.size // 2
    if ordered.size % 2:
        return float(ordered[middle])
    return 0.5 * float(ordered[middle - 1] + ordered[middle])


def _mad(values: Floats) -> float:
    """The median absolute deviation of a small non-empty array around its median."""
    return median(np.abs(values - median(values)))


@functools.cache
def _pairs(size: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Index pairs (i < j) of ``size`` items."""
    first, second = np.triu_indices(size, 1)
    return first, second


def robust_slope(times: Floats, values: Floats) -> float:
    """Median of the slopes between the points of the first and the second half (per millisecond)."""
    half = len(times) // 2
    dt = times[-half:, None] - times[None, :half]
    dv = values[-half:, None] - values[None, :half]
    valid = dt > 0
    if not valid.any():
        return 0.0
    return median(dv[valid] / dt[valid])


def robust_scale(residuals: Floats, level: float) -> float:
    """1.4826 x MAD (one standard deviation of normal noise), floored three ways.

    - By 0.8 x the 90th percentile of the deviations / 1.645, for quantised series where most residuals
      are equal.
    - When most residuals are equal (a sparse counter's rate is 0 but for one request now and then), by
      the median size of the departures that do happen: one event is the series' normal noise, a burst
      of them is not.
    - By a share of the level (``RELATIVE_FLOOR``): on a series that barely moves, a change of a few
      per cent is not worth anyone's attention.
    """
    deviations = np.abs(residuals - median(residuals))
    deviations.sort()
    last = deviations.size - 1
    mad = 1.4826 * 0.5 * float(deviations[last // 2] + deviations[(last + 1) // 2])
    tail = 0.8 * float(deviations[round(0.9 * last)]) / 1.645
    departures = deviations[deviations > 1e-12 * max(1.0, abs(level))]
    sparse = median(departures) if 0 < departures.size <= deviations.size // 2 else 0.0
    return max(mad, tail, sparse, RELATIVE_FLOOR * abs(level), 1e-9)


class SeriesDetector:
    """Scores the samples of one series in arrival order; all state lives in the object."""

    def __init__(self, sensitivity: float = 0.5) -> None:
        if not 0.0 <= sensitivity <= 1.0:
            raise ValueError(f"sensitivity must be within [0, 1], got {sensitivity}")
        self.sensitivity = sensitivity
        self.count = 0
        self.times: deque[int] = deque(maxlen=WINDOW)
        self.values: deque[float] = deque(maxlen=WINDOW)
        self.baselines: deque[float] = deque(maxlen=WINDOW)  # the seasonal baseline at each sample
        self.residuals: deque[float] = deque(maxlen=SCALE_POINTS)
        self.levels: deque[float] = deque(maxlen=SCALE_POINTS)  # the expected value at each residual
        self.noise_power = 0.0  # p in: the noise's spread grows as level**p
        self.noise_updates = 0
        self.profile = SeasonalProfile()
        self._profile_version = self.profile.version

    @property
    def threshold(self) -> float:
        """The score from which a sample is an anomaly."""
        return 1.0 - self.sensitivity

    def observe(self, timestamp_ms: int, value: float, noise_floor: float = 0.0) -> Verdict:
        """Score one sample, then learn from it.

        ``noise_floor``: a change the caller knows to be ordinary for this sample (a counter's rate moves
        by one event per interval): the residual's scale is at least that.
        """
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"value must be a finite number, got {value}")
        timestamp_ms = int(timestamp_ms)
        self.profile.add(timestamp_ms, value)
        if self.profile.version != self._profile_version:
            self._deseason_window()
        seasonal = self.profile.at_one(timestamp_ms)
        if len(self.values) < MIN_SCORED:
            verdict = self._warming(timestamp_ms, value)
            earlier = np.array(self.values) - np.array(self.baselines)
            expected = seasonal + median(earlier) if earlier.size else None
            residual = None if expected is None else value - expected
        else:
            verdict, residual = self._score(timestamp_ms, value, seasonal, noise_floor)
            expected = verdict.expected
        self.count += 1
        self.times.append(timestamp_ms)
        self.values.append(value)
        self.baselines.append(seasonal)
        if residual is not None and expected is not None:
            self.residuals.append(residual)
            self.levels.append(abs(expected))
            self._learn_noise_power()
        return verdict

    def _learn_noise_power(self) -> None:
        """Follow how the residuals' spread grows with the level: one estimate of p per sample, from the
        residuals at the higher and the lower half of the levels in the window, into a running mean."""
        n = len(self.residuals)
        if n < NOISE_POWER_MIN_POINTS:
            return
        residuals = np.fromiter(self.residuals, dtype=np.float64, count=n)
        levels = np.fromiter(self.levels, dtype=np.float64, count=n)
        order = np.argsort(levels, kind="stable")
        low, high = order[: n // 2], order[n - n // 2 :]
        level_low, level_high = median(levels[low]), median(levels[high])
        if level_low <= 0 or level_high < NOISE_POWER_MIN_RATIO * level_low:
            return
        spread_low, spread_high = _mad(residuals[low]), _mad(residuals[high])
        if spread_low <= 0 or spread_high <= 0:
            return
        estimate = math.log(spread_high / spread_low) / math.log(level_high / level_low)
        self.noise_updates += 1
        rate = max(NOISE_POWER_RATE, 1.0 / self.noise_updates)
        # The estimates are averaged as they come (only bounded against wild ones); the mean is clipped to
        # [0, 1] where it is used. Clipping each estimate to [0, 1] first biased the mean upwards on
        # additive noise (its negative half was cut off), which widened peak-hour bands by ~12 % and let
        # level shifts of 5-6 sigma there go unflagged.
        bounded = min(max(estimate, NOISE_ESTIMATE_RANGE[0]), NOISE_ESTIMATE_RANGE[1])
        self.noise_power += rate * (bounded - self.noise_power)

    def _at_level(self, residuals: Floats, levels: Floats, level: float) -> Floats:
        """``residuals`` rescaled to what they would be at ``level``, as far as the noise grows with it."""
        power = min(max(self.noise_power, 0.0), 1.0)
        if power < 0.05 or residuals.size == 0:
            return residuals
        floor = 0.1 * median(levels)
        if floor <= 0:
            return residuals
        ratio = max(level, floor) / np.maximum(levels, floor)
        weights = np.clip(ratio**power, *NOISE_WEIGHT_RANGE)
        return np.asarray(residuals * weights, dtype=np.float64)

    def _deseason_window(self) -> None:
        times = np.fromiter(self.times, dtype=np.float64, count=len(self.times))
        self.baselines = deque(self.profile.at(times).tolist(), maxlen=WINDOW)
        self._profile_version = self.profile.version

    def _confidence(self, timestamp_ms: int) -> tuple[float, bool]:
        days = self.profile.history_days()
        local = min(1.0, self.count / WINDOW)
        daily = min(1.0, days / WARM_DAYS)
        weekly = min(1.0, days / WEEK_DAYS)
        warming = self.count < WINDOW or days < WARM_DAYS
        return round(0.4 * local + 0.4 * daily + 0.2 * weekly, 4), warming

    def _warming(self, timestamp_ms: int, value: float) -> Verdict:
        confidence, _ = self._confidence(timestamp_ms)
        return Verdict(timestamp_ms, value, 0.0, False, None, None, None, (), min(confidence, 0.1), True)

    def _score(self, timestamp_ms: int, value: float, seasonal: float, noise_floor: float) -> tuple[Verdict, float]:
        n = len(self.values)
        times = np.fromiter(self.times, dtype=np.float64, count=n)
        values = np.fromiter(self.values, dtype=np.float64, count=n)
        baselines = np.fromiter(self.baselines, dtype=np.float64, count=n)
        gain = self._gain(times, values, baselines, timestamp_ms) if self.profile.model != "none" else 1.0
        levels = values - gain * baselines
        deseasoned = value - gain * seasonal
        steps = np.diff(times[-LEVEL_POINTS:])
        typical_step = max(median(steps), 0.0) if steps.size else 0.0

        level = median(levels[-LEVEL_POINTS:])
        level_time = median(times[-LEVEL_POINTS:])
        slope = robust_slope(times[-SLOPE_POINTS:], levels[-SLOPE_POINTS:]) if self._local_slope() else 0.0
        # no long extrapolation across a gap, and none backwards for a late (out-of-order) sample
        reach = min(max(timestamp_ms - level_time, 0.0), 8 * typical_step)
        expected_deseasoned = level + slope * reach
        residual = deseasoned - expected_deseasoned

        history = np.fromiter(self.residuals, dtype=np.float64, count=len(self.residuals))
        history_levels = np.fromiter(self.levels, dtype=np.float64, count=len(self.levels))
        history = self._at_level(history, history_levels, abs(gain * seasonal + expected_deseasoned))
        recent_residuals = history[-(VARIANCE_POINTS - 1) :]
        if history.size >= 3 * FRESH_RESIDUALS:
            history = history[:-FRESH_RESIDUALS]
        scale = max(robust_scale(history, seasonal + level) if history.size else 1e-9, noise_floor)
        z = residual / scale

        evidence: dict[str, float] = {"spike" if z > 0 else "dip": abs(z)}
        if n >= MIN_WINDOW_METHODS and self.profile.history_days() >= WARM_DAYS:
            evidence.update(
                self._window_evidence(times, levels, timestamp_ms, deseasoned, scale, residual, recent_residuals)
            )
            if self._back_to_usual(values - baselines, value - seasonal, scale):
                evidence.pop("level_shift", None)
                evidence.pop("trend_break", None)

        confidence, warming = self._confidence(timestamp_ms)
        margin = WARM_UP_MARGIN if warming else 0.0
        strongest = max(evidence.values())
        score = score_of(strongest - margin)
        needed = evidence_at(self.threshold) + margin
        methods = [name for name, e in evidence.items() if e >= needed]
        if methods and self.profile.model != "none":
            low, high = self.profile.normal_range
            if low <= value <= high and set(methods) & {"spike", "dip", "level_shift"}:
                methods.append("seasonal")
        expected = gain * seasonal + expected_deseasoned
        verdict = Verdict(
            timestamp_ms=timestamp_ms,
            value=value,
            score=score,
            anomaly=score >= self.threshold,
            expected=expected,
            lower=expected - needed * scale,
            upper=expected + needed * scale,
            methods=tuple(methods),
            confidence=confidence,
            warming_up=warming,
        )
        return verdict, residual

    def _gain(self, times: Floats, values: Floats, baselines: Floats, timestamp_ms: int) -> float:
        """How strongly the last hours follow the seasonal baseline (1: fully; 0.5: half its swing).

        A weekend or a holiday often runs the usual day at a smaller amplitude; following it is what
        keeps their peaks from alarming before a weekly pattern is learnt. Theil-Sen over the pairs of
        the last 36 samples (within six hours) whose baselines differ enough to tell; 1 when they are
        too few (a flat stretch, or a series sampled less often than every 20 minutes or so)."""
        recent = int(np.searchsorted(times, timestamp_ms - GAIN_MS))
        x, p = values[max(recent, values.size - GAIN_POINTS) :], baselines[max(recent, values.size - GAIN_POINTS) :]
        first, second = _pairs(x.size)
        dp, dx = p[second] - p[first], x[second] - x[first]
        usable = np.abs(dp) >= 0.05 * self.profile.swing
        if self.profile.swing <= 0 or int(usable.sum()) < MIN_GAIN_PAIRS:
            return 1.0
        return min(max(median(dx[usable] / dp[usable]), GAIN_RANGE[0]), GAIN_RANGE[1])

    def _back_to_usual(self, departures: Floats, departure: float, scale: float) -> bool:
        """Whether a change of level is a way back to the seasonal baseline at its full swing.

        A change of level *towards* the usual value for this time of day is a return, not a fault: the
        local level and the gain follow the last hours, so after a quiet stretch (a Sunday, before the
        weekly pattern is known) the way back (Monday's traffic) reads as a shift. ``departures`` are
        the window's values less their seasonal baseline (gain 1), ``departure`` the current one's: the
        last samples are back when they are within ordinary noise of the baseline, or on the same side
        as the reference window but nearer."""
        if self.profile.model == "none":
            return False
        fast = median(np.append(departures[-(FAST_POINTS - 1) :], departure))
        far, near = REFERENCE
        before = median(departures[-far:-near])
        return abs(fast) <= USUAL_SIGMAS * scale or (fast * before > 0 and abs(fast) < abs(before))

    def _local_slope(self) -> bool:
        """Whether to follow the local slope: only without a seasonal baseline, which otherwise carries the
        ramps of the day (a local slope then only overshoots after steps)."""
        return self.profile.model == "none"

    def _window_evidence(
        self,
        times: Floats,
        levels: Floats,
        timestamp_ms: int,
        deseasoned: float,
        scale: float,
        residual: float,
        recent_residuals: Floats,
    ) -> dict[str, float]:
        """Level shift or trend break (two-window median test) and variance change."""
        evidence: dict[str, float] = {}
        far = REFERENCE[0]
        steps = np.diff(np.append(times[-far:], timestamp_ms))
        if steps.max() <= GAP_STEPS * max(median(steps), 1.0):  # the two windows are not compared across a gap
            evidence.update(self._shift_evidence(times, levels, timestamp_ms, deseasoned, scale))
        recent = np.append(recent_residuals, residual)
        order = np.arange(recent.size, dtype=np.float64)
        detrended = recent - robust_slope(order, recent) * order
        spread = 1.4826 * median(np.abs(detrended - median(detrended)))
        if abs(residual) >= VARIANCE_MIN_Z * scale:  # flag the samples that show the wider spread
            evidence["variance_change"] = VARIANCE_WEIGHT * spread / scale
        return evidence

    def _shift_evidence(
        self, times: Floats, levels: Floats, timestamp_ms: int, deseasoned: float, scale: float
    ) -> dict[str, float]:
        """The two-window median test: a level shift, or a trend break when the slope bends."""
        evidence: dict[str, float] = {}
        far, near = REFERENCE
        ref_times, ref_levels = times[-far:-near], levels[-far:-near]
        ref_level = median(ref_levels)
        ref_time = median(ref_times)
        ref_slope = robust_slope(ref_times, ref_levels) if self._local_slope() else 0.0
        fast_levels = np.append(levels[-(FAST_POINTS - 1) :], deseasoned)
        fast_time = median(np.append(times[-(FAST_POINTS - 1) :], timestamp_ms))
        predicted = ref_level + ref_slope * (fast_time - ref_time)
        shift = (median(fast_levels) - predicted) / scale
        current = (deseasoned - ref_level - ref_slope * (timestamp_ms - ref_time)) / scale
        if shift * current > 0 and abs(current) >= 1.5:
            recent_times = np.append(times[-(VARIANCE_POINTS - 1) :], timestamp_ms)
            recent_levels = np.append(levels[-(VARIANCE_POINTS - 1) :], deseasoned)
            bend = (robust_slope(recent_times, recent_levels) - ref_slope) * (recent_times[-1] - recent_times[0])
            name = "trend_break" if abs(bend) / scale > 3.0 and abs(bend) > 0.5 * abs(shift) * scale else "level_shift"
            evidence[name] = SHIFT_WEIGHT * abs(shift)
        return evidence

    # --- state -----------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The detector's whole state, compact (zlib-compressed JSON)."""
        state: dict[str, Any] = {
            "v": STATE_VERSION,
            "sensitivity": self.sensitivity,
            "count": self.count,
            "times": list(self.times),
            "values": list(self.values),
            "residuals": list(self.residuals),
            "levels": list(self.levels),
            "noise_power": self.noise_power,
            "noise_updates": self.noise_updates,
            "profile": self.profile.to_state(),
        }
        return zlib.compress(json.dumps(state, separators=(",", ":")).encode(), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> SeriesDetector:
        """A detector continuing exactly where the one that wrote ``data`` stopped."""
        state = json.loads(zlib.decompress(data))
        if state.get("v") != STATE_VERSION:
            raise ValueError(f"unknown detector state version {state.get('v')!r}")
        detector = cls(float(state["sensitivity"]))
        detector.count = int(state["count"])
        detector.times = deque((int(t) for t in state["times"]), maxlen=WINDOW)
        detector.values = deque((float(v) for v in state["values"]), maxlen=WINDOW)
        detector.residuals = deque((float(r) for r in state["residuals"]), maxlen=SCALE_POINTS)
        # states written before the noise power was learnt: additive noise, every residual at today's level
        level = abs(detector.values[-1]) if detector.values else 0.0
        levels = state.get("levels") or [level] * len(detector.residuals)
        detector.levels = deque((float(x) for x in levels), maxlen=SCALE_POINTS)
        detector.noise_power = float(state.get("noise_power", 0.0))
        detector.noise_updates = int(state.get("noise_updates", 0))
        detector.profile = SeasonalProfile.from_state(state["profile"])
        detector._deseason_window()
        return detector
