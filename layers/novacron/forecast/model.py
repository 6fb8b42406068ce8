"""Forecasts of one series for capacity planning: seasonal profile + robust level/trend, empirical intervals.

The series is put on a regular grid (its typical interval, or a given step; several samples of one cell are
averaged, empty cells stay missing). A forecast is ``level + slope·lead + seasonal(time)``:

- seasonal: none, daily (the median of each time-of-day slot of the detrended history) or weekly (the daily
  profile plus a smoothed median of each time-of-week slot of what remains). Daily is a candidate with two
  days of history, weekly with two weeks.
- level and slope, on the deseasonalised series: the median of the last hour or of the last day (no trend),
  or a robust slope (the median of the slopes between points up to a day apart) over the last day or over
  the whole history, anchored at the median of the last points so that a recent drop (a cleanup) is
  followed.

Every candidate is tried from several origins inside the history (rolling origin, no look-ahead: each fit
sees only what came before its origin, and at least half the history), up to the horizon or a quarter of
the history. The candidate with the lowest median absolute error wins (the median, so that a rare jump such
as a cleanup does not hand the win to a model that hedges), a simpler one when it is within 2 %. The
winner's errors at each lead time give the prediction intervals (their empirical 80 % and 95 % absolute
quantiles, pooled over nearby leads, never narrowing with the lead), extended beyond the tested leads by
the square root of the lead.

With too little history for a backtest, the model is ``naive`` (last level, random-walk intervals from the
one-step changes) and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
MIN_POINTS = 8  # fewer observed points cannot say anything about a level, let alone a trend
MIN_BACKTEST_POINTS = 24
MAX_HISTORY_POINTS = 20_000  # the grid is coarsened beyond this
MAX_HORIZON_POINTS = 5_000
ORIGINS = 8
MIN_POOLED_ERRORS = 40
SIMPLER_WITHIN = 1.02
LEVELS = (0.80, 0.95)
NICE_STEPS_MS = tuple(
    seconds * 1000
    for seconds in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
)
_PERIODS = {"none": 0, "daily": DAY_MS, "weekly": WEEK_MS}


class ForecastError(ValueError):
    """The series cannot be forecast; the message says why."""


@dataclass(frozen=True)
class Spec:
    """One candidate model: its seasonality and how its level and slope are estimated."""

    season: str  # "none", "daily" or "weekly"
    level: str  # "recent" (last hour), "day" (last day), "trend-day" or "trend-all" (robust slope)

    @property
    def name(self) -> str:
        """The name shown to users, e.g. ``daily+trend``."""
        kind = "trend" if self.level.startswith("trend") else "level"
        return kind if self.season == "none" else f"{self.season}+{kind}"


@dataclass(frozen=True)
class Forecast:
    """A forecast on the grid ``origin + k·step`` (k = 1..), with its intervals and how it was made."""

    model: str
    origin_ms: int
    step_ms: int
    timestamps: Ints
    mean: Floats
    lower80: Floats
    upper80: Floats
    lower95: Floats
    upper95: Floats
    last_ms: int  # the last observed sample
    last_value: float
    history_points: int
    backtest_mae: float | None  # the chosen model's rolling-origin error (None: no backtest was possible)


@dataclass(frozen=True)
class Crossing:
    """When a forecast reaches a threshold; None where it does not within the horizon."""

    threshold: float
    direction: str  # "above" or "below"
    crosses_at: int | None  # the point forecast
    earliest: int | None  # the 95 % bound on the side of the threshold
    latest: int | None  # the other 95 % bound


@dataclass(frozen=True)
class _Fitted:
    level: float  # at the last grid index of the fit
    slope: float  # per step
    daily: Floats | None
    weekly: Floats | None


# --- grid ----------------------------------------------------------------------------------------------


def nice_step(step_ms: float) -> int:
    """The smallest of NICE_STEPS_MS at least ``step_ms`` (whole days beyond): grid cells then tile a day."""
    for nice in NICE_STEPS_MS:
        if nice >= step_ms:
            return nice
    return math.ceil(step_ms / DAY_MS) * DAY_MS


def typical_step(timestamps_ms: Ints) -> int:
    """The series' typical interval: the median gap between successive distinct timestamps, made nice."""
    gaps = np.diff(np.unique(timestamps_ms))
    if gaps.size == 0:
        raise ForecastError("the series has a single timestamp; a forecast needs a history")
    return nice_step(float(np.median(gaps)))


def regular_grid(timestamps_ms: Ints, values: Floats, step_ms: int, origin_ms: int) -> tuple[Ints, Floats]:
    """The samples up to ``origin`` on the grid ``origin - k·step``: each cell the mean of its samples, or NaN."""
    keep = (timestamps_ms <= origin_ms) & np.isfinite(values)
    ts, vs = timestamps_ms[keep], values[keep]
    if ts.size == 0:
        raise ForecastError("the series has no finite sample before the forecast origin")
    cells = int((origin_ms - int(ts.min()) + step_ms // 2) // step_ms) + 1
    index = cells - 1 - (origin_ms - ts + step_ms // 2) // step_ms
    sums = np.bincount(index, weights=vs, minlength=cells)
    counts = np.bincount(index, minlength=cells)
    grid = origin_ms - step_ms * np.arange(cells - 1, -1, -1, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return grid, np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


# --- robust pieces -------------------------------------------------------------------------------------


def _slot_medians(slots: Ints, values: Floats, size: int) -> Floats:
    """The median of the values of each slot 0..size-1 (NaN for a slot without any)."""
    order = np.lexsort((values, slots))
    s, v = slots[order], values[order]
    counts = np.bincount(s, minlength=size)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    low = starts + np.maximum(counts - 1, 0) // 2
    high = starts + counts // 2
    low, high = np.minimum(low, max(v.size - 1, 0)), np.minimum(high, max(v.size - 1, 0))
    if v.size == 0:
        return np.full(size, np.nan)
    return np.where(counts > 0, 0.5 * (v[low] + v[high]), np.nan)


def robust_slope(x: Ints, y: Floats, lag: int) -> float:
    """The median of the slopes between points ``lag`` apart (x are grid indices, y finite).

    A one-off jump (a cleanup, a restart) spoils only the pairs that straddle it, a minority when the lag
    is short beside the stretch between jumps; a lag of a whole day also cancels daily seasonality.
    """
    dense = np.full(int(x[-1] - x[0]) + 1, np.nan) if x.size else np.zeros(0)
    dense[x - x[0]] = y
    lag = max(1, min(lag, dense.size // 2))
    slopes = (dense[lag:] - dense[:-lag]) / lag
    slopes = slopes[np.isfinite(slopes)]
    return float(np.median(slopes)) if slopes.size else 0.0


def _slots(times_ms: Ints, period_ms: int, step_ms: int) -> tuple[Ints, int]:
    size = max(1, round(period_ms / step_ms))
    return (times_ms % period_ms) * size // period_ms, size


def _profile(times_ms: Ints, residuals: Floats, period_ms: int, step_ms: int, smooth: int = 1) -> Floats:
    """A centred seasonal profile: slot medians of ``residuals`` (finite only), circularly smoothed."""
    slots, size = _slots(times_ms, period_ms, step_ms)
    finite = np.isfinite(residuals)
    medians = _slot_medians(slots[finite], residuals[finite], size)
    medians = np.where(np.isfinite(medians), medians, 0.0)  # a slot never seen contributes nothing
    if smooth > 1:
        kernel = np.ones(smooth) / smooth
        padded = np.concatenate((medians[-(smooth // 2) :], medians, medians[: smooth // 2]))
        medians = np.asarray(np.convolve(padded, kernel, mode="valid")[:size], dtype=np.float64)
    return medians - float(np.mean(medians))


def _seasonal(fitted: _Fitted, times_ms: Ints, step_ms: int) -> Floats:
    out = np.zeros(times_ms.size)
    if fitted.daily is not None:
        out += fitted.daily[_slots(times_ms, DAY_MS, step_ms)[0]]
    if fitted.weekly is not None:
        out += fitted.weekly[_slots(times_ms, WEEK_MS, step_ms)[0]]
    return out


# --- fitting -------------------------------------------------------------------------------------------


def _points(duration_ms: int, step_ms: int, low: int, high: int) -> int:
    return int(min(high, max(low, round(duration_ms / step_ms))))


def _profiles(times: Ints, y: Floats, season: str, step_ms: int) -> tuple[Floats | None, Floats | None]:
    """The daily and weekly profiles of ``season`` from the whole of ``y`` (detrended by a robust slope)."""
    if season == "none":
        return None, None
    x = np.flatnonzero(np.isfinite(y))
    slope = robust_slope(x, y[x], _slope_lag(x.size, step_ms))
    detrended = y - slope * np.arange(y.size)
    daily = _profile(times, detrended, DAY_MS, step_ms)
    if season == "daily":
        return daily, None
    rest = detrended - daily[_slots(times, DAY_MS, step_ms)[0]]
    weekly = _profile(times, rest, WEEK_MS, step_ms, smooth=_points(2 * HOUR_MS, step_ms, 1, 49))
    return daily, weekly


def _slope_lag(points: int, step_ms: int) -> int:
    """A quarter of the window, at most a day."""
    return max(1, min(points // 4, DAY_MS // step_ms))


def _fit(times: Ints, y: Floats, spec: Spec, step_ms: int, profiles: tuple[Floats | None, Floats | None]) -> _Fitted:
    daily, weekly = profiles
    partial = _Fitted(0.0, 0.0, daily, weekly)
    deseasonalised = y - _seasonal(partial, times, step_ms)
    finite = np.flatnonzero(np.isfinite(deseasonalised))
    last = y.size - 1
    day = _points(DAY_MS, step_ms, MIN_POINTS, y.size)
    recent = finite[-_points(HOUR_MS, step_ms, 3, 12) :]
    slope = 0.0
    if spec.level.startswith("trend"):
        window = finite[finite > last - day] if spec.level == "trend-day" else finite
        window = window if window.size >= 3 else finite
        slope = robust_slope(window, deseasonalised[window], _slope_lag(int(window[-1] - window[0]) + 1, step_ms))
        anchor = finite[-_points(2 * HOUR_MS, step_ms, 3, 24) :]
        level = float(np.median(deseasonalised[anchor] + slope * (last - anchor)))
    elif spec.level == "day" and np.any(finite > last - day):
        level = float(np.median(deseasonalised[finite[finite > last - day]]))
    else:
        level = float(np.median(deseasonalised[recent]))
    return _Fitted(level, slope, daily, weekly)


def _predict(fitted: _Fitted, last_ms: int, leads: Ints, step_ms: int) -> Floats:
    times = last_ms + leads * step_ms
    return fitted.level + fitted.slope * leads + _seasonal(fitted, times, step_ms)


def candidates(history_ms: int) -> list[Spec]:
    """The models worth trying on this much history, simplest first."""
    seasons = ["none"] + (["daily"] if history_ms >= 2 * DAY_MS else [])
    seasons += ["weekly"] if history_ms >= 2 * WEEK_MS else []
    return [Spec(season, level) for season in seasons for level in ("day", "recent", "trend-day", "trend-all")]


def _backtest(times: Ints, y: Floats, specs: list[Spec], step_ms: int, horizon: int) -> dict[Spec, Floats] | None:
    """Each spec's signed errors (origins x leads) from rolling origins in the history, or None if too short."""
    longest_period = max(_PERIODS[spec.season] for spec in specs)
    # Each fit sees at least half the history, so that its errors resemble those of the fit on all of it.
    min_prefix = max(MIN_BACKTEST_POINTS, longest_period // step_ms, y.size // 2)
    leads = min(horizon, max(1, (y.size - min_prefix) // 2), max(1, y.size // 4))
    room = y.size - leads - min_prefix
    if room < 0 or y.size < MIN_BACKTEST_POINTS + leads:
        return None
    count = min(ORIGINS, room + 1)
    gap = room // max(count - 1, 1) if count > 1 else 0
    origins = [y.size - leads - k * gap for k in range(count)]
    errors: dict[Spec, Floats] = {spec: np.full((count, leads), np.nan) for spec in specs}
    lead_steps = np.arange(1, leads + 1, dtype=np.int64)
    for row, origin in enumerate(origins):
        past_t, past_y, future = times[:origin], y[:origin], y[origin : origin + leads]
        if np.count_nonzero(np.isfinite(past_y)) < MIN_POINTS:
            continue
        by_season: dict[str, tuple[Floats | None, Floats | None]] = {}
        for spec in specs:
            if spec.season not in by_season:
                by_season[spec.season] = _profiles(past_t, past_y, spec.season, step_ms)
            fitted = _fit(past_t, past_y, spec, step_ms, by_season[spec.season])
            errors[spec][row] = future - _predict(fitted, int(past_t[-1]), lead_steps, step_ms)
    return errors


def _choose(errors: dict[Spec, Floats]) -> Spec:
    # The median: a rare jump (a cleanup) should not make a model that misses only it lose to one that hedges.
    scores = {spec: float(np.nanmedian(np.abs(e))) for spec, e in errors.items() if np.isfinite(e).any()}
    if not scores:
        raise ForecastError("the history has too few observed points to compare models")
    best = min(scores.values())
    return next(spec for spec, score in scores.items() if score <= best * SIMPLER_WITHIN)


def interval_widths(errors: Floats, horizon: int, level: float) -> Floats:
    """Half-widths of the ``level`` interval at leads 1..horizon from backtest errors (origins x leads).

    At each lead, the absolute errors of nearby leads (half of it up to it, widened until enough are pooled)
    give the empirical quantile; widths never narrow with the lead and grow as √lead past the tested ones.
    """
    magnitude = np.abs(errors)
    tested = magnitude.shape[1]
    widths: Floats = np.zeros(min(horizon, tested))
    for lead in range(1, widths.size + 1):
        low, high = (lead + 1) // 2, lead
        pooled = magnitude[:, low - 1 : high]
        while np.count_nonzero(np.isfinite(pooled)) < MIN_POOLED_ERRORS and (low > 1 or high < tested):
            low, high = max(1, low - 1), min(tested, high + 1)
            pooled = magnitude[:, low - 1 : high]
        finite = pooled[np.isfinite(pooled)]
        widths[lead - 1] = float(np.quantile(finite, level)) if finite.size else 0.0
    widths = np.maximum.accumulate(widths)
    if horizon > widths.size:
        beyond = np.arange(widths.size + 1, horizon + 1)
        widths = np.concatenate((widths, widths[-1] * np.sqrt(beyond / widths.size))).astype(np.float64)
    return widths


def _naive_widths(y: Floats, horizon: int, level: float) -> Floats:
    changes = np.abs(np.diff(y[np.isfinite(y)]))
    one_step = float(np.quantile(changes, level)) if changes.size else 0.0
    return np.asarray(one_step * np.sqrt(np.arange(1, horizon + 1)), dtype=np.float64)


def forecast(
    timestamps_ms: Ints,
    values: Floats,
    horizon_ms: int,
    step_ms: int | None = None,
    origin_ms: int | None = None,
) -> Forecast:
    """Forecast one series ``horizon_ms`` past ``origin_ms`` (default: its last sample) on a regular grid.

    ``step_ms`` defaults to the series' typical interval; it is coarsened so that the history and the
    horizon stay within MAX_HISTORY_POINTS and MAX_HORIZON_POINTS. Raises ForecastError when the series
    has fewer than MIN_POINTS observed points.
    """
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    vs = np.asarray(values, dtype=np.float64)
    if horizon_ms <= 0:
        raise ForecastError("the horizon must be positive")
    observed = np.count_nonzero(np.isfinite(vs) if origin_ms is None else np.isfinite(vs) & (ts <= origin_ms))
    if observed < MIN_POINTS:
        raise ForecastError(f"too little history: {observed} observed points, at least {MIN_POINTS} are needed")
    origin = int(ts[np.isfinite(vs)].max()) if origin_ms is None else origin_ms
    step = step_ms or typical_step(ts[np.isfinite(vs)])
    span = origin - int(ts[np.isfinite(vs)].min())
    coarsest = max(math.ceil(span / MAX_HISTORY_POINTS), math.ceil(horizon_ms / MAX_HORIZON_POINTS))
    if coarsest > step:
        step = nice_step(coarsest)
    times, y = regular_grid(ts, vs, step, origin)
    horizon = max(1, math.ceil(horizon_ms / step))
    leads = np.arange(1, horizon + 1, dtype=np.int64)
    finite = np.isfinite(y)
    last_index = int(np.flatnonzero(finite)[-1])
    specs = candidates(int(times[-1] - times[np.flatnonzero(finite)[0]]))
    errors = _backtest(times, y, specs, step, horizon)
    widths: dict[float, Floats]
    if errors is None:
        spec, mae = Spec("none", "recent"), None
        widths = {level: _naive_widths(y, horizon, level) for level in LEVELS}
        model = "naive (little history)"
    else:
        spec = _choose(errors)
        mae = float(np.nanmean(np.abs(errors[spec])))
        widths = {level: interval_widths(errors[spec], horizon, level) for level in LEVELS}
        model = spec.name
    fitted = _fit(times, y, spec, step, _profiles(times, y, spec.season, step))
    mean = _predict(fitted, origin, leads, step)
    return Forecast(
        model=model,
        origin_ms=origin,
        step_ms=step,
        timestamps=origin + leads * step,
        mean=mean,
        lower80=mean - widths[0.80],
        upper80=mean + widths[0.80],
        lower95=mean - widths[0.95],
        upper95=mean + widths[0.95],
        last_ms=int(times[last_index]),
        last_value=float(y[last_index]),
        history_points=int(np.count_nonzero(finite)),
        backtest_mae=mae,
    )


def crossing(result: Forecast, threshold: float, direction: str | None = None) -> Crossing:
    """When ``result`` reaches ``threshold`` going ``direction`` (default: the way the forecast goes).

    ``earliest`` is when the 95 % bound on the threshold's side reaches it, ``latest`` when the other does.
    """
    if direction is None:
        change = float(result.mean[-1]) - result.last_value
        if change == 0:
            change = threshold - result.last_value
        direction = "above" if change >= 0 else "below"
    if direction not in ("above", "below"):
        raise ForecastError(f"direction must be above or below, not {direction!r}")
    near, far = (result.upper95, result.lower95) if direction == "above" else (result.lower95, result.upper95)

    def first(series: Floats) -> int | None:
        reached = series >= threshold if direction == "above" else series <= threshold
        hits = np.flatnonzero(reached)
        return int(result.timestamps[hits[0]]) if hits.size else None

    return Crossing(threshold, direction, first(result.mean), first(near), first(far))
