"""Prometheus HTTP API (``/api/v1/...``) logic, free of any web framework.

Each endpoint takes a ``SeriesReader`` and the request parameters (query string and POST form
merged; multi-valued parameters such as ``match[]`` as lists) and returns ``(http_status, body)``
where ``body`` is Prometheus's exact JSON envelope. Parameter parsing and error messages follow
Prometheus's ``web/api/v1`` so that Grafana, promtool and client libraries behave as against
Prometheus itself.
"""

from __future__ import annotations

import math
import platform
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import novacron
from novacron.promql import BadData, Engine, PromQLError, QueryResult, format_float, parse_selector
from novacron.series import Labels, Matcher, SeriesReader
from novacron.storage.reader import QueryTooLarge

Params = Mapping[str, str | Sequence[str]]
Response = tuple[int, dict[str, Any]]
Clock = Callable[[], float]

# Prometheus's own bounds for "no start"/"no end", and how clients spell them.
MIN_TIME_MS = -9223309901257974 * 1000
MAX_TIME_MS = 9223309901257974 * 1000 + 999
_MIN_TIME_TEXT = "-292273086-05-16T16:47:06Z"
_MAX_TIME_TEXT = "292277026596-12-04T15:30:07.999999999Z"
MAX_POINTS_PER_SERIES = 11_000
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)
_GO_FLOAT = re.compile(r"^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)$", re.IGNORECASE)
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_STATUS = {"bad_data": 400, "execution": 422, "timeout": 503, "canceled": 503, "internal": 500}


def error(error_type: str, message: str) -> Response:
    """Prometheus's error envelope with the status code it uses for ``error_type``."""
    return _STATUS.get(error_type, 500), {"status": "error", "errorType": error_type, "error": message}


def success(data: Any, warnings: Sequence[str] = ()) -> Response:
    """Prometheus's success envelope."""
    body: dict[str, Any] = {"status": "success", "data": data}
    if warnings:
        body["warnings"] = list(warnings)
    return 200, body


def _param(params: Params, name: str) -> str:
    """The first value of a parameter (Go's ``FormValue``), or ``""``."""
    value = params.get(name, "")
    if isinstance(value, str):
        return value
    return value[0] if value else ""


def _params(params: Params, name: str) -> list[str]:
    value = params.get(name, [])
    return [value] if isinstance(value, str) else list(value)


def _go_float(text: str) -> float | None:
    # Go's ParseFloat accepts no spaces or bare underscores, unlike Python's float().
    if not _GO_FLOAT.match(text):
        return None
    return float(text)


def _go_round(x: float) -> float:
    # Go's math.Round rounds half away from zero; Python's round() rounds half to even.
    return math.copysign(math.floor(abs(x) + 0.5), x)


def parse_time(text: str) -> int:
    """A Prometheus time parameter (unix seconds or RFC 3339) as milliseconds."""
    try:
        return _parse_time(text)
    except OverflowError:
        raise BadData(f'cannot parse "{text}" to a valid timestamp') from None


def _parse_time(text: str) -> int:
    number = _go_float(text)
    if number is not None:
        if math.isnan(number) or math.isinf(number):
            raise BadData(f'cannot parse "{text}" to a valid timestamp')
        whole = math.trunc(number)
        frac = _go_round((number - whole) * 1000) / 1000  # Prometheus keeps millisecond precision
        nanos = int(whole) * 1_000_000_000 + int(frac * 1e9)
        return (nanos // 1_000_000_000) * 1000 + (nanos % 1_000_000_000) // 1_000_000
    m = _RFC3339.match(text)
    if m:
        try:
            y, mo, d, h, mi, sec = (int(m.group(i)) for i in range(1, 7))
            base = datetime(y, mo, d, h, mi, sec, tzinfo=UTC)
        except ValueError:
            base = None
        if base is not None:
            zone = m.group(8)
            if zone != "Z":
                sign = 1 if zone[0] == "+" else -1
                base -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            fraction = (m.group(7) or ".")[1:].ljust(3, "0")[:3]
            return int((base - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)) + int(fraction)
    if text == _MIN_TIME_TEXT:
        return MIN_TIME_MS
    if text == _MAX_TIME_TEXT:
        return MAX_TIME_MS
    raise BadData(f'cannot parse "{text}" to a valid timestamp')


def parse_duration(text: str) -> int:
    """A Prometheus duration parameter (float seconds or ``1h30m``-style) as milliseconds."""
    number = _go_float(text)
    if number is not None:
        nanos = number * 1e9
        if math.isnan(nanos) or nanos > 2**63 - 1 or nanos < -(2**63):
            raise BadData(f'cannot parse "{text}" to a valid duration. It overflows int64')
        return int(nanos) // 1_000_000
    m = _DURATION.match(text)
    if text and m:
        return sum(int(g or 0) * unit for g, unit in zip(m.groups(), _DURATION_UNITS_MS, strict=True))
    raise BadData(f'cannot parse "{text}" to a valid duration')


def _timestamp(ms: int) -> int | float:
    # Prometheus writes whole seconds without a fraction, else up to three decimals.
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def _metric(labels: Labels) -> dict[str, str]:
    return dict(labels)


def result_json(result: QueryResult) -> dict[str, Any]:
    """A query result as Prometheus's ``data`` object, values as Go-formatted strings."""
    if result.result_type in ("scalar", "string"):
        assert result.scalar is not None
        t, v = result.scalar
        shown = v if isinstance(v, str) else format_float(v)
        return {"resultType": result.result_type, "result": [_timestamp(t), shown]}
    if result.result_type == "vector":
        items = [
            {
                "metric": _metric(s.labels),
                "value": [_timestamp(int(s.timestamps[0])), format_float(float(s.values[0]))],
            }
            for s in result.series
        ]
        return {"resultType": "vector", "result": items}
    matrix = [
        {
            "metric": _metric(s.labels),
            "values": [
                [_timestamp(t), format_float(v)] for t, v in zip(s.timestamps.tolist(), s.values.tolist(), strict=True)
            ],
        }
        for s in result.series
    ]
    return {"resultType": "matrix", "result": matrix}


def _invalid(name: str, exc: PromQLError) -> BadData:
    return BadData(f'invalid parameter "{name}": {exc}')


def _time_param(params: Params, name: str, default_ms: int) -> int:
    text = _param(params, name)
    if text == "":
        return default_ms
    try:
        return parse_time(text)
    except BadData as exc:
        raise _invalid(name, exc) from exc


def _timeout_param(params: Params) -> int | None:
    text = _param(params, "timeout")
    if text == "":
        return None
    try:
        return parse_duration(text)
    except BadData as exc:
        raise _invalid("timeout", exc) from exc


def _now_ms(now: Clock | None) -> int:
    return int((now or time.time)() * 1000)


def _run(fn: Callable[[], Response]) -> Response:
    try:
        return fn()
    except PromQLError as exc:
        return error(exc.error_type, str(exc))
    except QueryTooLarge as exc:
        return error("bad_data", str(exc))
    except OverflowError as exc:
        # Times and durations far outside anything stored (e.g. time=1e300) overflow on the way.
        return error("bad_data", f"a time or duration parameter is out of range: {exc}")


def query(reader: SeriesReader, params: Params, now: Clock | None = None, engine: Engine | None = None) -> Response:
    """``/api/v1/query``: ``query``, optional ``time`` (default now) and ``timeout``."""

    def run() -> Response:
        at = _time_param(params, "time", _now_ms(now))
        timeout = _timeout_param(params)
        text = _param(params, "query")
        eng = engine or Engine(reader)
        try:
            result = eng.instant(text, at, timeout_ms=timeout)
        except BadData as exc:
            raise _invalid("query", exc) from exc
        return success(result_json(result))

    return _run(run)


def query_range(
    reader: SeriesReader, params: Params, now: Clock | None = None, engine: Engine | None = None
) -> Response:
    """``/api/v1/query_range``: ``query``, ``start``, ``end``, ``step``, optional ``timeout``."""

    def run() -> Response:
        start = _required_time(params, "start")
        end = _required_time(params, "end")
        if end < start:
            raise BadData("end timestamp must not be before start time")
        step_text = _param(params, "step")
        try:
            step = parse_duration(step_text)
        except BadData as exc:
            raise _invalid("step", exc) from exc
        if step <= 0:
            raise BadData("zero or negative query resolution step widths are not accepted. Try a positive integer")
        # For safety, limit the number of returned points per timeseries.
        if (end - start) // step > MAX_POINTS_PER_SERIES:
            raise BadData(
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        timeout = _timeout_param(params)
        eng = engine or Engine(reader)
        try:
            result = eng.range(_param(params, "query"), start, end, step, timeout_ms=timeout)
        except BadData as exc:
            raise _invalid("query", exc) from exc
        return success(result_json(result))

    return _run(run)


def _required_time(params: Params, name: str) -> int:
    text = _param(params, name)
    try:
        return parse_time(text)
    except BadData as exc:
        raise _invalid(name, exc) from exc


def _matcher_sets(params: Params) -> list[list[Matcher]]:
    return [parse_selector(text) for text in _params(params, "match[]")]


def _limit(params: Params) -> int:
    text = _param(params, "limit")
    if text == "":
        return 0
    if not re.fullmatch(r"[+-]?\d+", text):
        raise BadData(f'strconv.Atoi: parsing "{text}": invalid syntax')
    limit = int(text)
    if limit < 0:
        raise BadData("limit must be non-negative")
    return limit


def _limited(items: list[Any], limit: int) -> Response:
    if limit and len(items) > limit:
        return success(items[:limit], ["results truncated due to limit"])
    return success(items)


def _range_params(params: Params) -> dict[str, int | None]:
    """``start``/``end`` as reader bounds: None where absent, so the reader applies its default."""
    start = _time_param(params, "start", MIN_TIME_MS)
    end = _time_param(params, "end", MAX_TIME_MS)
    return {
        "start_ms": None if start == MIN_TIME_MS else start,
        "end_ms": None if end == MAX_TIME_MS else end,
    }


def series(reader: SeriesReader, params: Params, now: Clock | None = None) -> Response:
    """``/api/v1/series``: label sets of the series matching any ``match[]``."""

    def run() -> Response:
        if not _params(params, "match[]"):
            raise BadData("no match[] parameter provided")
        bounds = _range_params(params)
        limit = _limit(params)
        sets = _matcher_sets(params)
        return _limited([_metric(lb) for lb in reader.series(sets, **bounds)], limit)

    return _run(run)


def labels(reader: SeriesReader, params: Params, now: Clock | None = None) -> Response:
    """``/api/v1/labels``: label names, optionally of the series matching ``match[]``."""

    def run() -> Response:
        bounds = _range_params(params)
        limit = _limit(params)
        return _limited(list(reader.label_names(_matcher_sets(params), **bounds)), limit)

    return _run(run)


def label_values(reader: SeriesReader, name: str, params: Params, now: Clock | None = None) -> Response:
    """``/api/v1/label/<name>/values``: values of one label, optionally filtered by ``match[]``."""

    def run() -> Response:
        if not _LABEL_NAME.match(name):
            raise BadData(f'invalid label name: "{name}"')
        bounds = _range_params(params)
        limit = _limit(params)
        return _limited(list(reader.label_values(name, _matcher_sets(params), **bounds)), limit)

    return _run(run)


def buildinfo() -> Response:
    """``/api/v1/status/buildinfo``, with the fields Grafana and promtool read."""
    return success(
        {
            "version": novacron.__version__,
            "revision": "unknown",
            "branch": "main",
            "buildUser": "novacron",
            "buildDate": "unknown",
            "goVersion": f"python{platform.python_version()}",
        }
    )
