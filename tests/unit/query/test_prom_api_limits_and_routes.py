"""The query API beyond query/series/labels: limit, series and sample bounds, metadata, exemplars,
format_query, rules and alerts, each in Prometheus's shape."""

from __future__ import annotations

import promql_parser
import pytest

from novacron.promql import Engine
from novacron.query import prom_api

NOW_S = 1_700_000_000
TRUNCATED = ["results truncated due to limit"]


def _range(query: str, **extra: str) -> dict[str, str]:
    return {"query": query, "start": str(NOW_S - 10), "end": str(NOW_S), "step": "5", **extra}


# --- limit on query and query_range ------------------------------------------------------------


def test_instant_limit_truncates_the_vector_with_a_warning(reader, now):
    # Given two series of up / When asking for at most one
    status, body = prom_api.query(reader, {"query": "up", "limit": "1"}, now=now)
    # Then one series and Prometheus's warning
    assert status == 200
    assert [r["metric"]["job"] for r in body["data"]["result"]] == ["api"]
    assert body["warnings"] == TRUNCATED


def test_range_limit_truncates_the_matrix_with_a_warning(reader, now):
    status, body = prom_api.query_range(reader, _range("up", limit="1"), now=now)
    assert status == 200
    assert len(body["data"]["result"]) == 1
    assert body["warnings"] == TRUNCATED


@pytest.mark.parametrize("limit", ["0", "2", "5"])
def test_limit_at_or_above_the_series_count_or_zero_leaves_the_answer_whole(reader, now, limit):
    status, body = prom_api.query(reader, {"query": "up", "limit": limit}, now=now)
    assert status == 200
    assert len(body["data"]["result"]) == 2
    assert "warnings" not in body


def test_limit_does_not_apply_to_scalars(reader, now):
    status, body = prom_api.query(reader, {"query": "1+1", "limit": "1"}, now=now)
    assert (status, body["data"]["result"][1]) == (200, "2")
    assert "warnings" not in body


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("-1", 'invalid parameter "limit": limit must be non-negative'),
        ("x", 'invalid parameter "limit": strconv.Atoi: parsing "x": invalid syntax'),
    ],
)
@pytest.mark.parametrize("endpoint", ["query", "query_range"])
def test_bad_limit_on_queries_is_bad_data(reader, now, endpoint, limit, message):
    status, body = getattr(prom_api, endpoint)(reader, _range("up", limit=limit), now=now)
    assert (status, body["errorType"], body["error"]) == (400, "bad_data", message)


# --- server-side bounds --------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["query", "query_range"])
def test_more_series_than_allowed_is_an_execution_error(reader, now, endpoint):
    # Given a function allowing one series per answer / When a query returns two
    status, body = getattr(prom_api, endpoint)(reader, _range("up"), now=now, max_series=1)
    # Then 422 execution naming the bound, rather than an unbounded response
    assert (status, body["errorType"]) == (422, "execution")
    assert "2 series, more than the 1 allowed" in body["error"]


def test_a_client_limit_under_the_bound_is_served_truncated(reader, now):
    status, body = prom_api.query(reader, {"query": "up", "limit": "1"}, now=now, max_series=1)
    assert (status, body["warnings"]) == (200, TRUNCATED)


def test_series_endpoint_is_bounded_too(reader, now):
    status, body = prom_api.series(reader, {"match[]": ["up"]}, now=now, max_series=1)
    assert (status, body["errorType"]) == (422, "execution")


@pytest.mark.parametrize("endpoint", ["query", "query_range"])
def test_loading_more_samples_than_allowed_is_prometheus_execution_error(reader, now, endpoint):
    # Given an engine allowed 3 samples / When a query loads 6
    engine = Engine(reader, max_samples=3)
    status, body = getattr(prom_api, endpoint)(
        reader, _range("up[1m]" if endpoint == "query" else "up"), now=now, engine=engine
    )
    # Then Prometheus's own error
    assert (status, body["errorType"]) == (422, "execution")
    assert body["error"] == "query processing would load too many samples into memory in query execution"


def test_timeout_is_honoured_as_prometheus_timeout(reader, now):
    # Given a clock that jumps a minute on every read / When the query allows one second
    ticks = iter(range(0, 10_000, 60))
    engine = Engine(reader, clock=lambda: float(next(ticks)))
    status, body = prom_api.query(reader, {"query": "up", "timeout": "1s"}, now=now, engine=engine)
    # Then 503 timeout
    assert (status, body["errorType"]) == (503, "timeout")


# --- metadata ------------------------------------------------------------------------------------

UNKNOWN = [{"type": "unknown", "help": "", "unit": ""}]


def test_metadata_lists_every_metric_name_without_inventing_types(reader, now):
    status, body = prom_api.metadata(reader, {}, now=now)
    assert (status, body["data"]) == (200, {"http_total": UNKNOWN, "up": UNKNOWN})


def test_metadata_of_one_metric(reader, now):
    assert prom_api.metadata(reader, {"metric": "up"}, now=now)[1]["data"] == {"up": UNKNOWN}
    assert prom_api.metadata(reader, {"metric": "nope"}, now=now)[1]["data"] == {}


@pytest.mark.parametrize(("limit", "count"), [("1", 1), ("0", 0), ("-1", 2)])
def test_metadata_limit_follows_prometheus(reader, now, limit, count):
    # Prometheus: a negative limit is no limit, 0 answers nothing
    assert len(prom_api.metadata(reader, {"limit": limit, "limit_per_metric": "1"}, now=now)[1]["data"]) == count


@pytest.mark.parametrize("name", ["limit", "limit_per_metric"])
def test_metadata_bad_limit_is_bad_data(reader, now, name):
    status, body = prom_api.metadata(reader, {name: "many"}, now=now)
    assert (status, body["errorType"], body["error"]) == (400, "bad_data", f"{name} must be a number")


# --- exemplars -----------------------------------------------------------------------------------


def test_exemplars_are_an_empty_list_since_none_are_stored(reader, now):
    status, body = prom_api.query_exemplars(reader, {"query": "up", "start": "0", "end": str(NOW_S)}, now=now)
    assert (status, body) == (200, {"status": "success", "data": []})


def test_exemplars_of_an_expression_without_selectors_are_null_as_in_prometheus(reader, now):
    assert prom_api.query_exemplars(reader, {"query": "1 + 1"}, now=now) == (200, {"status": "success", "data": None})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"query": "up", "start": "10", "end": "5"}, "end timestamp must not be before start timestamp"),
        ({"query": "up", "start": "yesterday"}, 'invalid parameter "start": cannot parse "yesterday"'),
        ({"query": "up", "end": "x"}, 'invalid parameter "end": cannot parse "x"'),
        ({"query": "sum("}, "parse error"),
        ({}, "no expression found"),
    ],
)
def test_exemplars_validate_params(reader, now, params, message):
    status, body = prom_api.query_exemplars(reader, params, now=now)
    assert (status, body["errorType"]) == (400, "bad_data")
    assert message in body["error"]


# --- format_query --------------------------------------------------------------------------------

EXPRESSIONS = [
    "up",
    'up{job="api",instance=~"a.*"}',
    "rate(http_requests_total[5m] offset 1m)",
    "sum by (job) (rate(x[5m]))",
    "sum without (instance) (x) / on (job) group_left (team) y",
    "topk(3, x @ start())",
    "max_over_time(rate(x[1m])[10m:30s])",
    "x > bool 1 and y unless z or w",
    "-x ^ 2 * 3 % 4",
    'label_replace(up, "a", "$1", "job", "(.*)")',
    "histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))",
    'count_values("v", up)',
    "quantile without (job) (0.5, x)",
    'absent(nonexistent{a="b"})',
    (
        'sum by (job, instance) (rate(http_requests_total{job="api",code=~"5.."}[5m])) '
        '/ ignoring (code) group_left sum by (job, instance) (rate(http_requests_total{job="api"}[5m]))'
    ),
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_format_query_round_trips_through_the_parser(expression):
    # When formatting / Then the text parses back to the same tree (its canonical form is unchanged)
    status, body = prom_api.format_query({"query": expression})
    assert status == 200
    formatted = body["data"]
    assert promql_parser.parse(formatted).prettify() == formatted
    assert promql_parser.parse(expression).prettify() == formatted


def test_format_query_is_canonical_and_splits_long_lines():
    # Spacing and matcher order become canonical, as Prometheus's String() does
    assert prom_api.format_query({"query": "sum  by(job)( rate( x[5m] ) )"})[1]["data"] == "sum by (job) (rate(x[5m]))"
    # And an expression longer than 100 characters is split at its operator, as Prometheus's Pretty()
    formatted = prom_api.format_query({"query": EXPRESSIONS[-1]})[1]["data"]
    assert "\n/ ignoring (code) group_left ()\n" in formatted


@pytest.mark.parametrize("params", [{"query": "sum("}, {}])
def test_format_query_of_a_bad_expression_is_bad_data(params):
    status, body = prom_api.format_query(params)
    assert (status, body["errorType"]) == (400, "bad_data")
    assert body["error"].startswith('invalid parameter "query": ')
