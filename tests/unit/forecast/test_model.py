"""The forecasting model: seasonal forecasts, trends and thresholds, honest intervals, awkward inputs."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.forecast.model import (
    DAY_MS,
    HOUR_MS,
    ForecastError,
    crossing,
    forecast,
    interval_widths,
    nice_step,
    regular_grid,
    robust_slope,
)
from tests.unit.forecast.conftest import START_MS, STEP_MS, daily_pattern, grid


def test_a_daily_seasonal_series_is_forecast_within_tolerance(rng: np.random.Generator) -> None:
    # Given two weeks of a daily pattern with noise (sd 2)
    t = grid(14)
    values = daily_pattern(t) + rng.normal(0, 2, t.size)
    # When forecast a day ahead
    result = forecast(t, values, DAY_MS)
    # Then the model is daily, and the forecast follows the pattern within the noise
    assert result.model.startswith("daily") or result.model.startswith("weekly")
    truth = daily_pattern(result.timestamps)
    assert np.mean(np.abs(result.mean - truth)) < 2.0
    assert np.max(np.abs(result.mean - truth)) < 8.0
    assert result.timestamps[0] == t[-1] + STEP_MS
    assert result.timestamps[-1] == t[-1] + DAY_MS


def test_a_linear_ramp_gives_the_right_threshold_crossing(rng: np.random.Generator) -> None:
    # Given three days of disk usage growing 1 % per hour from 10 %, with a little noise
    t = grid(3)
    values = 10 + (t - START_MS) / HOUR_MS + rng.normal(0, 0.05, t.size)
    last = t[-1]
    # When asked when it reaches 100 % (at hour 90, 18 hours after the last sample)
    result = forecast(t, values, 2 * DAY_MS)
    answer = crossing(result, 100.0)
    # Then a trend model, crossing upwards 18 h ahead, with the point inside [earliest, latest]
    assert "trend" in result.model
    assert answer.direction == "above"
    assert answer.crosses_at is not None
    assert answer.earliest is not None
    assert answer.latest is not None
    assert abs(answer.crosses_at - (START_MS + 90 * HOUR_MS)) <= 15 * 60_000
    assert answer.earliest <= answer.crosses_at <= answer.latest
    assert answer.crosses_at > last


def test_a_threshold_not_reached_within_the_horizon_is_none(rng: np.random.Generator) -> None:
    # Given a flat noisy series; when asked when it reaches far above its level
    t = grid(3)
    result = forecast(t, 50 + rng.normal(0, 1, t.size), 6 * HOUR_MS)
    answer = crossing(result, 500.0, "above")
    # Then none of the times is within the horizon
    assert (answer.crosses_at, answer.earliest, answer.latest) == (None, None, None)


def test_a_falling_series_crosses_below_by_default(rng: np.random.Generator) -> None:
    # Given free memory falling 2 units per hour; when a threshold below it is asked without a direction
    t = grid(2)
    values = 500 - 2 * (t - START_MS) / HOUR_MS + rng.normal(0, 0.1, t.size)
    answer = crossing(forecast(t, values, DAY_MS), 400.0)
    # Then the direction follows the trend, and the crossing is at hour 50 (2 h ahead)
    assert answer.direction == "below"
    assert answer.crosses_at is not None
    assert abs(answer.crosses_at - (START_MS + 50 * HOUR_MS)) <= 15 * 60_000


def test_intervals_widen_with_the_horizon_and_cover_about_nominally_on_noise() -> None:
    # Given many independent flat noisy series (sd 1) and their next day
    inside80, inside95 = [], []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        t = grid(4)
        result = forecast(t, 20 + rng.normal(0, 1, t.size), 12 * HOUR_MS)
        actual = 20 + rng.normal(0, 1, result.mean.size)
        # Then the bands are nested and never narrow with the lead
        width80, width95 = result.upper80 - result.lower80, result.upper95 - result.lower95
        assert np.all(np.diff(width95) >= -1e-9)
        assert np.all(width95 >= width80)
        inside80.append(np.mean((actual >= result.lower80) & (actual <= result.upper80)))
        inside95.append(np.mean((actual >= result.lower95) & (actual <= result.upper95)))
    # And they cover about nominally (the noise is what the backtest saw)
    assert 0.72 <= np.mean(inside80) <= 0.9
    assert 0.9 <= np.mean(inside95) <= 0.99


def test_interval_widths_grow_past_the_tested_leads() -> None:
    # Given backtest errors of 10 leads that grow with the lead
    errors = np.outer(np.linspace(-1, 1, 40), np.arange(1, 11, dtype=np.float64))
    # When widths are asked for 40 leads
    widths = interval_widths(errors, 40, 0.8)
    # Then they grow within the tested leads and keep growing (as the square root of the lead) beyond
    assert widths.size == 40
    assert np.all(np.diff(widths) >= 0)
    assert widths[-1] == pytest.approx(widths[9] * 2)


def test_irregular_samples_with_a_gap_are_forecast(rng: np.random.Generator) -> None:
    # Given a daily pattern sampled at random times (mean gap 3 minutes) with a 12-hour outage
    t = START_MS + np.cumsum(rng.exponential(180_000, size=4 * 480)).astype(np.int64)
    t = t[(t < START_MS + 4 * DAY_MS) & ~((t > START_MS + 2 * DAY_MS) & (t < START_MS + 2 * DAY_MS + 12 * HOUR_MS))]
    values = daily_pattern(t) + rng.normal(0, 1, t.size)
    # When forecast 6 hours ahead
    result = forecast(t, values, 6 * HOUR_MS)
    # Then on a nice grid step, seasonal, close to the pattern
    assert result.step_ms in (120_000, 300_000)
    assert result.model.startswith("daily")
    assert np.mean(np.abs(result.mean - daily_pattern(result.timestamps))) < 3.0


def test_too_little_history_is_a_clear_error() -> None:
    # Given five samples; then no forecast, and the error says how many are needed
    t = grid(5 * STEP_MS / DAY_MS)
    with pytest.raises(ForecastError, match="too little history: 5 observed points, at least 8"):
        forecast(t, np.ones(t.size), HOUR_MS)


def test_short_history_is_forecast_by_a_naive_model_flagged_as_such(rng: np.random.Generator) -> None:
    # Given 12 samples (an hour), too few to compare models
    t = grid(HOUR_MS / DAY_MS)
    result = forecast(t, 5 + rng.normal(0, 0.5, t.size), HOUR_MS)
    # Then a naive forecast, said to be one, with intervals widening as a random walk's
    assert result.model == "naive (little history)"
    assert result.backtest_mae is None
    widths = result.upper95 - result.mean
    assert widths[-1] == pytest.approx(widths[0] * np.sqrt(12))


def test_nan_values_and_samples_after_the_origin_are_ignored(rng: np.random.Generator) -> None:
    # Given a flat series with missing values and samples past the origin
    t = grid(2)
    values = 7 + rng.normal(0, 0.1, t.size)
    values[::10] = np.nan
    origin = int(t[-1] - 6 * HOUR_MS)
    values[t > origin] = 1000.0
    # When forecast from the origin; then the late samples play no part
    result = forecast(t, values, HOUR_MS, origin_ms=origin)
    assert result.origin_ms == origin
    assert np.all(np.abs(result.mean - 7) < 0.5)


def test_regular_grid_averages_cells_and_leaves_gaps_missing() -> None:
    # Given samples at 0, 10 s, 20 s and 70 s; on a 30-second grid ending at 90 s
    t = np.array([0, 10_000, 20_000, 70_000], dtype=np.int64)
    times, cells = regular_grid(t, np.array([1.0, 2.0, 3.0, 4.0]), 30_000, 90_000)
    # Then each sample is in the cell of its nearest grid time: 0 → mean(1, 2), 30 s → 3, 60 s → 4, 90 s → missing
    assert times.tolist() == [0, 30_000, 60_000, 90_000]
    assert cells[:3].tolist() == [1.5, 3.0, 4.0]
    assert np.isnan(cells[3])


def test_robust_slope_ignores_a_cleanup() -> None:
    # Given a ramp of slope 1 with a drop of 50 in the middle
    x = np.arange(200, dtype=np.int64)
    y = x.astype(np.float64) - 50.0 * (x >= 100)
    # Then the slope is still 1
    assert robust_slope(x, y, 20) == pytest.approx(1.0)


def test_nice_steps_tile_a_day() -> None:
    assert [nice_step(s) for s in (1, 166_000, 300_000, 301_000, 2 * DAY_MS + 1)] == [
        1000,
        300_000,
        300_000,
        600_000,
        3 * DAY_MS,
    ]


def test_a_long_horizon_coarsens_the_grid_to_a_nice_step(rng: np.random.Generator) -> None:
    # Given a week at 5 minutes; when forecast 60 days ahead (17,280 five-minute steps, over the limit)
    t = grid(7)
    result = forecast(t, 3 + rng.normal(0, 0.1, t.size), 60 * DAY_MS)
    # Then the step is the next nice one that keeps the horizon within 5,000 points: 20 minutes
    assert result.step_ms == 1_200_000
    assert result.mean.size == 60 * 72
