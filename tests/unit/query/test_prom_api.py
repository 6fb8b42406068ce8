"""The Prometheus HTTP API logic: envelopes, parameters, errors."""

from __future__ import annotations

import pytest

from novacron import __version__
from novacron.promql import BadData
from novacron.query import prom_api

NOW_S = 1_700_000_000


def test_instant_query_defaults_to_now(reader, now):
    # Given up{} series / When querying without a time
    status, body = prom_api.query(reader, {"query": "up"}, now=now)
    # Then Prometheus's vector envelope, string values, float-second timestamps
    assert status == 200
    assert body == {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"__name__": "up", "instance": "a:9090", "job": "api"}, "value": [NOW_S, "1"]},
                {"metric": {"__name__": "up", "instance": "b:9090", "job": "web"}, "value": [NOW_S, "0.5"]},
            ],
        },
    }


def test_instant_query_scalar_and_fractional_time(reader, now):
    # Given a time with milliseconds / When querying a scalar / Then [ts, "value"]
    status, body = prom_api.query(reader, {"query": "1/0", "time": "1700000000.123"}, now=now)
    assert (status, body["data"]) == (200, {"resultType": "scalar", "result": [1700000000.123, "+Inf"]})


def test_query_range_matrix(reader, now):
    # Given two samples 10 s apart / When querying a 10 s range with 5 s step as duration strings
    params = {"query": "http_total", "start": str(NOW_S - 10), "end": str(NOW_S), "step": "5s"}
    status, body = prom_api.query_range(reader, params, now=now)
    # Then each step shows the latest sample at or before it
    assert status == 200
    assert body["data"]["resultType"] == "matrix"
    [series] = body["data"]["result"]
    assert series["metric"] == {"__name__": "http_total", "job": "api"}
    assert series["values"] == [[NOW_S - 10, "10"], [NOW_S - 5, "10"], [NOW_S, "20"]]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"query": "up", "start": "x", "end": "1", "step": "1"},
            'invalid parameter "start": cannot parse "x" to a valid timestamp',
        ),
        ({"query": "up", "start": "2", "end": "1", "step": "1"}, "end timestamp must not be before start time"),
        (
            {"query": "up", "start": "1", "end": "2", "step": "0"},
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ),
        (
            {"query": "up", "start": "1", "end": "2", "step": "1x"},
            'invalid parameter "step": cannot parse "1x" to a valid duration',
        ),
        (
            {"query": "up", "start": "0", "end": "11001", "step": "1"},
            "exceeded maximum resolution of 11,000 points per timeseries. "
            "Try decreasing the query resolution (?step=XX)",
        ),
        ({"query": "sum(", "start": "0", "end": "1", "step": "1"}, 'invalid parameter "query": '),
    ],
)
def test_query_range_errors(reader, now, params, message):
    # Given bad parameters / When calling query_range / Then 400 bad_data with Prometheus's message
    status, body = prom_api.query_range(reader, params, now=now)
    assert status == 400
    assert body["status"] == "error"
    assert body["errorType"] == "bad_data"
    assert body["error"].startswith(message)


def test_execution_error_is_422(reader, now):
    # Given a many-to-many match / When queried / Then errorType execution with HTTP 422
    status, body = prom_api.query(reader, {"query": "up + on() up"}, now=now)
    assert status == 422
    assert body["errorType"] == "execution"
    assert "found duplicate series" in body["error"]


def test_query_range_allows_exactly_11000_points(reader, now):
    # Given end - start = 11000 steps / When querying / Then accepted (the limit is "more than")
    status, _ = prom_api.query_range(reader, {"query": "1", "start": "0", "end": "11000", "step": "1"}, now=now)
    assert status == 200


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1700000000", 1_700_000_000_000),
        ("1700000000.5", 1_700_000_000_500),
        ("1.0006", 1001),  # rounded to milliseconds
        ("0.0025", 3),  # half away from zero, as Go's math.Round (Python's round() would give 2)
        ("-1.5", -1500),
        ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        ("2023-11-14T22:13:20.123456Z", 1_700_000_000_123),
        ("2023-11-15T00:13:20+02:00", 1_700_000_000_000),
        ("-292273086-05-16T16:47:06Z", prom_api.MIN_TIME_MS),
        ("292277026596-12-04T15:30:07.999999999Z", prom_api.MAX_TIME_MS),
    ],
)
def test_parse_time(text, ms):
    # Given a Prometheus time parameter / When parsed / Then milliseconds as Prometheus computes them
    assert prom_api.parse_time(text) == ms


@pytest.mark.parametrize("text", ["", "abc", "1 ", "1_0", "2023-11-14", "NaN"])
def test_parse_time_rejects(text):
    # Given malformed times / When parsed / Then BadData
    with pytest.raises(BadData, match="to a valid timestamp"):
        prom_api.parse_time(text)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("15", 15_000),
        ("0.5", 500),
        ("15s", 15_000),
        ("1m", 60_000),
        ("1h30m", 5_400_000),
        ("1d", 86_400_000),
        ("100ms", 100),
        ("1w", 604_800_000),
        ("1y", 31_536_000_000),
    ],
)
def test_parse_duration(text, ms):
    # Given a step/timeout / When parsed / Then milliseconds
    assert prom_api.parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "1x", "m", "1m1h", "-1m"])
def test_parse_duration_rejects(text):
    # Given malformed durations (units must be ordered) / When parsed / Then BadData
    with pytest.raises(BadData):
        prom_api.parse_duration(text)


def test_series_requires_match(reader, now):
    # Given no match[] / When listing series / Then Prometheus's error
    status, body = prom_api.series(reader, {}, now=now)
    assert (status, body["error"]) == (400, "no match[] parameter provided")


def test_series_union_of_matchers_and_limit(reader, now):
    # Given two match[] selectors / When listing series / Then the union, each once
    status, body = prom_api.series(reader, {"match[]": ['up{job="api"}', '{job="api"}']}, now=now)
    assert status == 200
    assert body["data"] == [
        {"__name__": "http_total", "job": "api"},
        {"__name__": "up", "instance": "a:9090", "job": "api"},
    ]
    # When limited to 1 / Then truncated with Prometheus's warning
    _, body = prom_api.series(reader, {"match[]": ["up"], "limit": "1"}, now=now)
    assert len(body["data"]) == 1
    assert body["warnings"] == ["results truncated due to limit"]


def test_series_bad_selector(reader, now):
    # Given a match[] that is not a selector / Then bad_data
    status, body = prom_api.series(reader, {"match[]": "sum(up)"}, now=now)
    assert (status, body["errorType"]) == (400, "bad_data")


def test_labels_and_label_values(reader, now):
    # Given the fixture series / When listing label names and values
    assert prom_api.labels(reader, {}, now=now) == (
        200,
        {"status": "success", "data": ["__name__", "instance", "job"]},
    )
    assert prom_api.labels(reader, {"match[]": ["http_total"]}, now=now)[1]["data"] == ["__name__", "job"]
    assert prom_api.label_values(reader, "job", {}, now=now)[1]["data"] == ["api", "web"]
    assert prom_api.label_values(reader, "__name__", {"match[]": ['{job="web"}']}, now=now)[1]["data"] == ["up"]
    # Then an unknown label has no values (an empty list, not null)
    assert prom_api.label_values(reader, "nope", {}, now=now)[1]["data"] == []


def test_bad_limit(reader, now):
    # Given a negative limit / Then bad_data
    status, body = prom_api.labels(reader, {"limit": "-1"}, now=now)
    assert (status, body["error"]) == (400, "limit must be non-negative")


def test_buildinfo():
    # When asking for build info / Then NovaCron's version with Prometheus's field names
    status, body = prom_api.buildinfo()
    assert status == 200
    assert body["data"]["version"] == __version__
    assert set(body["data"]) >= {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}
