"""Forecast quality: rolling-origin evaluation against the seasonal-naive forecast.

Generated series (seeded, 5-minute nominal interval unless said otherwise), a few of each class:
- ``daily``: a request rate with two daily peaks, a slow upward trend and noise (14 days);
- ``weekly``: the same with weekend dips and a smaller trend (21 days);
- ``disk``: disk usage growing ~1.5 %/day with a little noise and a cleanup (-20 %) every 3.5 days (14 days);
- ``flat``: a constant with Gaussian noise (7 days);
- ``irregular``: the daily series sampled at random (exponential gaps, mean 4 minutes) with a 6-hour outage (14 days).

For each series, ORIGINS origins spread over its last four days (the model sees only what precedes each),
and horizons of 1 h, 6 h and 24 h. The actual values are the samples after the origin on the forecast's
grid (cell means, as the model reads its history). Reported, per class and horizon and overall:
- MASE of the model and of the seasonal-naive forecast (the value one day earlier), both scaled by the
  in-sample MAE of the one-day seasonal-naive forecast over the history (the standard definition,
  Hyndman & Koehler 2006); below 1 means better than seasonal-naive in-sample;
- the empirical coverage of the 80 % and 95 % intervals.
Time until threshold: on the disk series at each origin, the threshold the true (noise-free) usage
reaches 12 h later (or never, after a cleanup); predicted crossing vs actual, and how often the actual
crossing lies within [earliest, latest].
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from novacron.forecast.model import DAY_MS, HOUR_MS, Floats, Ints, crossing, forecast, regular_grid

STEP_MS = 5 * 60_000
HORIZONS = {"1h": HOUR_MS, "6h": 6 * HOUR_MS, "24h": DAY_MS}
ORIGINS = 8
SEEDS = (1, 2, 3)
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a Thursday


@dataclass(frozen=True)
class Series:
    """One generated series: samples, and the noise-free signal where the threshold check needs it."""

    kind: str
    timestamps: Ints
    values: Floats
    truth: Callable[[Ints], Floats] | None = None


def _daily_shape(t: Ints) -> Floats:
    hours = (t % DAY_MS) / HOUR_MS
    morning = np.exp(-(((hours - 10) / 2.5) ** 2))
    evening = 0.7 * np.exp(-(((hours - 19) / 2.0) ** 2))
    return np.asarray(morning + evening, dtype=np.float64)


def _grid(days: float) -> Ints:
    return START_MS + STEP_MS * np.arange(int(days * DAY_MS / STEP_MS), dtype=np.int64)


def daily_series(rng: np.random.Generator, days: float = 14) -> Series:
    """Requests per second with two daily peaks, a trend and noise."""
    t = _grid(days)
    trend = 0.02 * (t - START_MS) / DAY_MS
    values = 100 * (1 + 0.6 * _daily_shape(t) + trend) + rng.normal(0, 4, t.size)
    return Series("daily", t, values)


def weekly_series(rng: np.random.Generator) -> Series:
    """The daily shape, damped on Saturdays and Sundays."""
    t = _grid(21)
    weekday = ((t - START_MS) // DAY_MS + 3) % 7  # 2026-01-01 is a Thursday (Monday = 0)
    weekend = np.where(weekday >= 5, 0.55, 1.0)
    values = 200 * (0.5 + weekend * _daily_shape(t) + 0.005 * (t - START_MS) / DAY_MS) + rng.normal(0, 6, t.size)
    return Series("weekly", t, values)


def _disk_usage(t: Ints) -> Floats:
    cycle = 3.5 * DAY_MS
    since_cleanup = (t - START_MS) % cycle
    cleanups = (t - START_MS) // cycle
    return np.asarray(40 + 1.5 * since_cleanup / DAY_MS + 0.7 * cleanups, dtype=np.float64)


def disk_series(rng: np.random.Generator) -> Series:
    """Percent of a disk used: a steady ramp, cleaned up every 3.5 days."""
    t = _grid(14)
    return Series("disk", t, _disk_usage(t) + rng.normal(0, 0.05, t.size), truth=_disk_usage)


def flat_series(rng: np.random.Generator) -> Series:
    """A constant level with noise."""
    t = _grid(7)
    return Series("flat", t, 50 + rng.normal(0, 3, t.size))


def irregular_series(rng: np.random.Generator) -> Series:
    """The daily series sampled at random times, with a six-hour outage."""
    gaps = rng.exponential(4 * 60_000, size=int(14 * DAY_MS / (4 * 60_000)))
    t = START_MS + np.cumsum(gaps).astype(np.int64)
    t = t[(t < START_MS + 14 * DAY_MS) & ~((t > START_MS + 9 * DAY_MS) & (t < START_MS + 9 * DAY_MS + 6 * HOUR_MS))]
    values = 100 * (1 + 0.6 * _daily_shape(t) + 0.02 * (t - START_MS) / DAY_MS) + rng.normal(0, 4, t.size)
    return Series("irregular", t, values)


def corpus() -> list[Series]:
    """Every generated series, a few seeds of each class."""
    makers = (daily_series, weekly_series, disk_series, flat_series, irregular_series)
    return [make(np.random.default_rng(seed)) for make in makers for seed in SEEDS]


@dataclass
class Score:
    """Accumulated errors of one class and horizon."""

    model_mase: list[float]
    naive_mase: list[float]
    inside80: list[float]
    inside95: list[float]


def _actual(series: Series, origin: int, step: int, leads: int) -> Floats:
    future = series.timestamps <= origin + leads * step
    _, cells = regular_grid(series.timestamps[future], series.values[future], step, origin + leads * step)
    return cells[-leads:]


def _seasonal_naive_scale(series: Series, origin: int, step: int) -> tuple[Floats, float]:
    _, history = regular_grid(series.timestamps, series.values, step, origin)
    m = DAY_MS // step
    scale = float(np.nanmean(np.abs(history[m:] - history[:-m])))
    return history, scale


def evaluate(series: Series, scores: dict[tuple[str, str], Score], origins: int) -> None:
    """Add one series' rolling-origin errors to ``scores``."""
    last = int(series.timestamps[-1])
    for k in range(origins):
        origin = last - DAY_MS - k * (3 * DAY_MS // origins)
        origin -= origin % STEP_MS
        for name, horizon_ms in HORIZONS.items():
            past = series.timestamps <= origin
            result = forecast(series.timestamps[past], series.values[past], horizon_ms, origin_ms=origin)
            step, leads = result.step_ms, result.mean.size
            actual = _actual(series, origin, step, leads)
            history, scale = _seasonal_naive_scale(series, origin, step)
            m = DAY_MS // step
            lead_index = np.arange(1, leads + 1)
            naive = history[history.size - m + (lead_index - 1) % m]
            ok = np.isfinite(actual) & np.isfinite(naive)
            if not ok.any():  # the whole horizon fell in an outage: nothing to score
                continue
            score = scores.setdefault((series.kind, name), Score([], [], [], []))
            score.model_mase.append(float(np.mean(np.abs(actual[ok] - result.mean[ok]))) / scale)
            score.naive_mase.append(float(np.mean(np.abs(actual[ok] - naive[ok]))) / scale)
            score.inside80.extend(((actual >= result.lower80) & (actual <= result.upper80))[ok].tolist())
            score.inside95.extend(((actual >= result.lower95) & (actual <= result.upper95))[ok].tolist())


def threshold_accuracy(series: Series, origins: int) -> list[tuple[float, float | None, float | None, bool]]:
    """Per origin: hours to the actual crossing, predicted hours (None: not within the horizon), error, inside."""
    assert series.truth is not None
    rows = []
    last = int(series.timestamps[-1])
    for k in range(origins):
        origin = last - 2 * DAY_MS - k * (3 * DAY_MS // origins)
        origin -= origin % STEP_MS
        future = origin + STEP_MS * np.arange(1, 2 * DAY_MS // STEP_MS + 1, dtype=np.int64)
        usage = series.truth(np.concatenate(([origin], future)))
        if np.any(np.diff(usage[: 12 * HOUR_MS // STEP_MS + 1]) < 0):  # a cleanup first: no answer to check
            continue
        threshold = float(usage[12 * HOUR_MS // STEP_MS])
        actual_h = float(future[np.flatnonzero(usage[1:] >= threshold)[0]] - origin) / HOUR_MS
        past = series.timestamps <= origin
        result = forecast(series.timestamps[past], series.values[past], 2 * DAY_MS, origin_ms=origin)
        answer = crossing(result, threshold)
        predicted = None if answer.crosses_at is None else (answer.crosses_at - origin) / HOUR_MS
        earliest = answer.earliest if answer.earliest is not None else origin
        latest = answer.latest if answer.latest is not None else origin + 10 * 2 * DAY_MS
        inside = earliest <= origin + actual_h * HOUR_MS <= latest
        rows.append((actual_h, predicted, None if predicted is None else abs(predicted - actual_h), inside))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--origins", type=int, default=ORIGINS, help=f"origins per series (default {ORIGINS})")
    args = parser.parse_args()
    started = time.perf_counter()
    scores: dict[tuple[str, str], Score] = {}
    series_list = corpus()
    for series in series_list:
        evaluate(series, scores, args.origins)
    seconds = time.perf_counter() - started
    runs = len(series_list) * args.origins * len(HORIZONS)
    print(
        f"forecast evaluation: {len(series_list)} series, {runs} forecasts, {seconds:.1f} s "
        f"({seconds / runs * 1000:.0f} ms each)"
    )
    print(
        f"\n  {'class':<10} {'horizon':>7} {'MASE model':>11} {'MASE s-naive':>13} {'cover 80%':>10} {'cover 95%':>10}"
    )
    overall: dict[str, list[float]] = defaultdict(list)
    for (kind, horizon), s in sorted(scores.items(), key=lambda item: (item[0][0], HORIZONS[item[0][1]])):
        print(
            f"  {kind:<10} {horizon:>7} {np.mean(s.model_mase):>11.3f} {np.mean(s.naive_mase):>13.3f} "
            f"{np.mean(s.inside80):>10.1%} {np.mean(s.inside95):>10.1%}"
        )
        overall["model"] += s.model_mase
        overall["naive"] += s.naive_mase
        overall["80"] += s.inside80
        overall["95"] += s.inside95
    print(
        f"  {'overall':<10} {'':>7} {np.mean(overall['model']):>11.3f} {np.mean(overall['naive']):>13.3f} "
        f"{np.mean(overall['80']):>10.1%} {np.mean(overall['95']):>10.1%}   (target: MASE < 1, coverage ≈ nominal)"
    )
    print("\n  time until threshold, disk series (threshold reached 12 h after the origin, no cleanup in between)")
    rows = [row for series in series_list if series.kind == "disk" for row in threshold_accuracy(series, args.origins)]
    errors = [r[2] for r in rows if r[2] is not None]
    missed = sum(r[1] is None for r in rows)
    print(
        f"    {len(rows)} questions: median |predicted - actual| "
        f"{np.median(errors) if errors else float('nan'):.2f} h, "
        f"90th percentile {np.quantile(errors, 0.9) if errors else float('nan'):.2f} h, "
        f"{missed} not predicted within 48 h, actual within [earliest, latest] {np.mean([r[3] for r in rows]):.0%}"
    )


if __name__ == "__main__":
    main()
