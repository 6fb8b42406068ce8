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
from functools import partial
from typing import Any, TypeVar

import promql_parser

import novacron
from novacron.promql import (
    BadData,
    Engine,
    ExecutionError,
    PromQLError,
    QueryResult,
    format_float,
    format_sample,
    parse,
    parse_selector,
)
from novacron.promql.pretty import pretty
from novacron.query.results_cache import ResultsCache
from novacron.series import METRIC_NAME, Labels, Matcher, SeriesReader
from novacron.storage.reader import QueryTooLarge

Params = Mapping[str, str | Sequence[str]]
Response = tuple[int, dict[str, Any]]
Clock = Callable[[], float]
T = TypeVar("T")

# Prometheus's own bounds for "no start"/"no end", and how clients spell them.
MIN_TIME_MS = -9223309901257974 * 1000
MAX_TIME_MS = 9223309901257974 * 1000 + 999
_MIN_TIME_TEXT = "-292273086-05-16T16:47:06Z"
_MAX_TIME_TEXT = "292277026596-12-04T15:30:07.999999999Z"
MAX_POINTS_PER_SERIES = 11_000
# Series one answer may hold unless the function's config says otherwise: the sample budget bounds
# evaluation memory, this bounds the JSON response built from the result.
MAX_SERIES = 100_000
TRUNCATED = "results truncated due to limit"
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)
_GO_FLOAT = re.compile(r"^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)$", re.IGNORECASE)
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Beyond Prometheus's own types: NovaCron's resources (incidents, ...) also answer not_found and conflict.
_STATUS = {
    "bad_data": 400,
    "not_found": 404,
    "conflict": 409,
    "execution": 422,
    "timeout": 503,
    "canceled": 503,
    "internal": 500,
}


class TooManySeries(ExecutionError):
    """An answer would hold more series than the query function allows."""

    def __init__(self, count: int, allowed: int) -> None:
        super().__init__(
            f"the answer would hold {count} series, more than the {allowed} allowed; "
            "narrow the selectors or pass a limit"
        )


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
                "value": [_timestamp(int(s.timestamps[0])), format_sample(float(s.values[0]))],
            }
            for s in result.series
        ]
        return {"resultType": "vector", "result": items}
    matrix = [
        {
            "metric": _metric(s.labels),
            "values": [
                [_timestamp(t), format_sample(v)] for t, v in zip(s.timestamps.tolist(), s.values.tolist(), strict=True)
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


def window_params(params: Params, now_ms: int, default_range_ms: int) -> tuple[int, int]:
    """``start`` and ``end`` of a listing (default: the ``default_range_ms`` up to now); BadData naming the
    parameter when they are wrong."""
    end = _time_param(params, "end", now_ms)
    start = _time_param(params, "start", end - default_range_ms)
    if end < start:
        raise BadData('invalid parameter "end": end timestamp must not be before start time')
    return start, end


def listing_limit(params: Params, default: int, maximum: int, what: str) -> int:
    """``limit`` of a listing (``default`` when absent); BadData above ``maximum``."""
    limit = _query_limit(params) or default
    if limit > maximum:
        raise BadData(f'invalid parameter "limit": at most {maximum} {what} per request')
    return limit


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


def query(
    reader: SeriesReader,
    params: Params,
    now: Clock | None = None,
    engine: Engine | None = None,
    max_series: int = MAX_SERIES,
) -> Response:
    """``/api/v1/query``: ``query``, optional ``time`` (default now), ``timeout`` and ``limit``."""

    def run() -> Response:
        limit = _query_limit(params)
        at = _time_param(params, "time", _now_ms(now))
        timeout = _timeout_param(params)
        text = _param(params, "query")
        eng = engine or Engine(reader)
        try:
            result = eng.instant(text, at, timeout_ms=timeout)
        except BadData as exc:
            raise _invalid("query", exc) from exc
        return _bounded(result, limit, max_series)

    return _run(run)


def query_range(
    reader: SeriesReader,
    params: Params,
    now: Clock | None = None,
    engine: Engine | None = None,
    max_series: int = MAX_SERIES,
    results_cache: ResultsCache | None = None,
) -> Response:
    """``/api/v1/query_range``: ``query``, ``start``, ``end``, ``step``, optional ``timeout`` and ``limit``.

    With ``results_cache``, complete older chunks of the range come from the cache (see results_cache.py).
    """

    def run() -> Response:
        limit = _query_limit(params)
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
            evaluate = eng.range if results_cache is None else partial(results_cache.range, eng)
            result = evaluate(_param(params, "query"), start, end, step, timeout_ms=timeout)
        except BadData as exc:
            raise _invalid("query", exc) from exc
        return _bounded(result, limit, max_series)

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


def _query_limit(params: Params) -> int:
    try:
        return _limit(params)
    except BadData as exc:
        raise _invalid("limit", exc) from exc


def _cut(items: list[T], limit: int, max_series: int | None) -> tuple[list[T], list[str]]:
    """``items`` cut to the client's ``limit`` (with Prometheus's warning), refused beyond ``max_series``."""
    warnings = []
    if limit and len(items) > limit:
        items, warnings = items[:limit], [TRUNCATED]
    if max_series is not None and len(items) > max_series:
        raise TooManySeries(len(items), max_series)
    return items, warnings


def _limited(items: list[Any], limit: int, max_series: int | None = None) -> Response:
    return success(*_cut(items, limit, max_series))


def _bounded(result: QueryResult, limit: int, max_series: int) -> Response:
    if result.result_type not in ("vector", "matrix"):
        return success(result_json(result))  # limit does not apply to scalars and strings
    rows, warnings = _cut(result.series, limit, max_series)
    return success(result_json(QueryResult(result.result_type, rows)), warnings)


def _range_params(params: Params) -> dict[str, int | None]:
    """``start``/``end`` as reader bounds: None where absent, so the reader applies its default."""
    start = _time_param(params, "start", MIN_TIME_MS)
    end = _time_param(params, "end", MAX_TIME_MS)
    return {
        "start_ms": None if start == MIN_TIME_MS else start,
        "end_ms": None if end == MAX_TIME_MS else end,
    }


def series(reader: SeriesReader, params: Params, now: Clock | None = None, max_series: int = MAX_SERIES) -> Response:
    """``/api/v1/series``: label sets of the series matching any ``match[]``, at most ``max_series``."""

    def run() -> Response:
        if not _params(params, "match[]"):
            raise BadData("no match[] parameter provided")
        bounds = _range_params(params)
        limit = _limit(params)
        sets = _matcher_sets(params)
        return _limited([_metric(lb) for lb in reader.series(sets, **bounds)], limit, max_series)

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


def _metadata_limit(params: Params, name: str) -> int:
    # Prometheus reads these with Atoi and treats any negative number as "no limit".
    text = _param(params, name)
    if text == "":
        return -1
    if not re.fullmatch(r"[+-]?\d+", text):
        raise BadData(f"{name} must be a number")
    return int(text)


def metadata(reader: SeriesReader, params: Params, now: Clock | None = None) -> Response:
    """``/api/v1/metadata``: ``metric``, ``limit``, ``limit_per_metric``.

    NovaCron keeps no metric metadata (remote write 2.0 metadata is parsed but not stored), so each
    metric name of the tenant's index (recent days, as for ``labels``) is listed with type
    ``unknown`` and empty help and unit: what the index can honestly say.
    """

    def run() -> Response:
        limit = _metadata_limit(params, "limit")
        _metadata_limit(params, "limit_per_metric")  # validated; one entry per metric is below any limit
        metric = _param(params, "metric")
        sets = [[Matcher(METRIC_NAME, "=", metric)]] if metric else []
        names = reader.label_values(METRIC_NAME, sets)
        if limit >= 0:
            names = names[:limit]
        return success({name: [{"type": "unknown", "help": "", "unit": ""}] for name in names})

    return _run(run)


def _has_selector(node: Any) -> bool:
    def not_a_selector(child: Any) -> bool:
        return type(child).__name__ not in ("VectorSelector", "MatrixSelector")

    return promql_parser.walk(node, pre_visit=not_a_selector) is False


def query_exemplars(reader: SeriesReader, params: Params, now: Clock | None = None) -> Response:
    """``/api/v1/query_exemplars``: ``query``, optional ``start`` and ``end``.

    NovaCron stores no exemplars (remote write answers ``X-Prometheus-Remote-Write-Exemplars-Written: 0``),
    so a valid request answers an empty list, and an expression without selectors ``null``, as
    Prometheus does.
    """

    def run() -> Response:
        start = _time_param(params, "start", MIN_TIME_MS)
        end = _time_param(params, "end", MAX_TIME_MS)
        if end < start:
            raise BadData("end timestamp must not be before start timestamp")
        node = parse(_param(params, "query"))
        return success([] if _has_selector(node) else None)

    return _run(run)


def format_query(params: Params) -> Response:
    """``/api/v1/format_query``: ``query`` pretty-printed as Prometheus's ``Pretty`` does."""

    def run() -> Response:
        try:
            return success(pretty(_param(params, "query")))
        except BadData as exc:
            raise _invalid("query", exc) from exc

    return _run(run)


def _bool_param(params: Params, name: str) -> bool:
    # Go's strconv.ParseBool spellings.
    text = _param(params, name)
    if text in ("", "0", "f", "F", "false", "FALSE", "False"):
        return False
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    raise BadData(f'invalid parameter "{name}": strconv.ParseBool: parsing "{text}": invalid syntax')
