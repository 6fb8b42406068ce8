"""``/api/v1/forecast``: a PromQL query's series over their history, each forecast past the origin.

Parameters: ``query`` (PromQL), ``horizon`` (a duration, e.g. ``7d``), optional ``history`` (default 14d, at
most 90d), ``step`` (default: chosen from history and horizon), ``threshold`` (a float: when each series
reaches it), ``direction`` (``above``/``below``, default the way the forecast goes), ``time`` (the origin,
default now) and ``timeout``. The query runs as a range query over the history, through the same engine,
results cache and limits as ``/api/v1/query_range``; at most MAX_FORECAST_SERIES series are forecast.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from novacron.forecast.model import (
    DAY_MS,
    MINUTE_MS,
    Crossing,
    Forecast,
    ForecastError,
    crossing,
    nice_step,
)
from novacron.forecast.model import (
    forecast as forecast_series,
)
from novacron.promql import BadData, Engine, ExecutionError, format_sample
from novacron.query.prom_api import (
    MAX_POINTS_PER_SERIES,
    MAX_SERIES,
    Params,
    Response,
    _go_float,
    _invalid,
    _param,
    _run,
    _time_param,
    _timeout_param,
    _timestamp,
    parse_duration,
    success,
)
from novacron.query.results_cache import ResultsCache
from novacron.series import SeriesReader

MAX_FORECAST_SERIES = 100
DEFAULT_HISTORY_MS = 14 * DAY_MS
MAX_HISTORY_MS = 90 * DAY_MS
MAX_HORIZON_MS = 90 * DAY_MS
HISTORY_POINTS = 2016  # the default step keeps about this many points of history (a week at 5 min)
HORIZON_POINTS = 1000


class TooManyForecasts(ExecutionError):
    """The query selects more series than one request may forecast."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"the query selects {count} series, more than the {MAX_FORECAST_SERIES} one forecast request may hold; "
            "narrow the selectors or aggregate (e.g. sum by (...))"
        )


def _duration(params: Params, name: str, default_ms: int | None, cap_ms: int) -> int:
    text = _param(params, name)
    if text == "":
        if default_ms is None:
            raise BadData(f'invalid parameter "{name}": a duration such as 6h or 7d is required')
        return default_ms
    try:
        value = parse_duration(text)
    except BadData as exc:
        raise _invalid(name, exc) from exc
    if value <= 0:
        raise BadData(f'invalid parameter "{name}": must be positive, got "{text}"')
    if value > cap_ms:
        raise BadData(f'invalid parameter "{name}": at most {cap_ms // DAY_MS}d, got "{text}"')
    return value


def _step(params: Params, history_ms: int, horizon_ms: int) -> int:
    text = _param(params, "step")
    if text == "":
        return nice_step(max(MINUTE_MS, history_ms / HISTORY_POINTS, horizon_ms / HORIZON_POINTS))
    step = _duration(params, "step", None, DAY_MS)
    if max(history_ms, horizon_ms) // step > MAX_POINTS_PER_SERIES:
        raise BadData(
            'invalid parameter "step": the history or horizon would exceed 11,000 points per series; use a larger step'
        )
    return step


def _threshold(params: Params) -> tuple[float | None, str | None]:
    text, direction = _param(params, "threshold"), _param(params, "direction")
    if direction not in ("", "above", "below"):
        raise BadData(f'invalid parameter "direction": must be above or below, got "{direction}"')
    if text == "":
        return None, None
    value = _go_float(text)
    if value is None or not np.isfinite(value):
        raise BadData(f'invalid parameter "threshold": cannot parse "{text}" to a finite number')
    return value, direction or None


def _points(timestamps: Any, values: Any) -> list[list[Any]]:
    return [[_timestamp(int(t)), format_sample(float(v))] for t, v in zip(timestamps, values, strict=True)]


def _moment(ms: int | None) -> int | float | None:
    return None if ms is None else _timestamp(ms)


def crossing_json(answer: Crossing) -> dict[str, Any]:
    """A threshold answer as JSON: times in Unix seconds, null where not within the horizon."""
    return {
        "value": answer.threshold,
        "direction": answer.direction,
        "crosses_at": _moment(answer.crosses_at),
        "earliest": _moment(answer.earliest),
        "latest": _moment(answer.latest),
    }


def forecast_json(metric: dict[str, str], result: Forecast, answer: Crossing | None) -> dict[str, Any]:
    """One series' forecast as the answer's ``result`` entry."""
    return {
        "metric": metric,
        "model": result.model,
        "step": result.step_ms / 1000,
        "current": [_timestamp(result.last_ms), format_sample(result.last_value)],
        "values": _points(result.timestamps, result.mean),
        "lower80": _points(result.timestamps, result.lower80),
        "upper80": _points(result.timestamps, result.upper80),
        "lower95": _points(result.timestamps, result.lower95),
        "upper95": _points(result.timestamps, result.upper95),
        "threshold": None if answer is None else crossing_json(answer),
    }


def forecast(
    reader: SeriesReader,
    params: Params,
    now_ms: int,
    engine: Engine | None = None,
    max_series: int = MAX_SERIES,
    results_cache: ResultsCache | None = None,
) -> Response:
    """``/api/v1/forecast``: each series of ``query`` forecast ``horizon`` past ``time``."""

    def run() -> Response:
        text = _param(params, "query")
        if text == "":
            raise BadData('invalid parameter "query": a PromQL expression is required')
        horizon = _duration(params, "horizon", None, MAX_HORIZON_MS)
        history = _duration(params, "history", DEFAULT_HISTORY_MS, MAX_HISTORY_MS)
        step = _step(params, history, horizon)
        threshold, direction = _threshold(params)
        origin = _time_param(params, "time", now_ms)
        timeout = _timeout_param(params)
        eng = engine or Engine(reader)
        start = origin - (history // step) * step  # so that the last evaluation is at the origin
        try:
            evaluate = eng.range if results_cache is None else partial(results_cache.range, eng)
            result = evaluate(text, start, origin, step, timeout_ms=timeout)
        except BadData as exc:
            raise _invalid("query", exc) from exc
        if len(result.series) > min(MAX_FORECAST_SERIES, max_series):
            raise TooManyForecasts(len(result.series))
        rows, warnings = [], []
        for series in result.series:
            metric = dict(series.labels)
            try:
                predicted = forecast_series(series.timestamps, series.values, horizon, step_ms=step, origin_ms=origin)
            except ForecastError as exc:
                warnings.append(f"{metric or '{}'}: not forecast: {exc}")
                continue
            answer = None if threshold is None else crossing(predicted, threshold, direction)
            rows.append(forecast_json(metric, predicted, answer))
        return success({"resultType": "forecast", "result": rows}, warnings)

    return _run(run)
