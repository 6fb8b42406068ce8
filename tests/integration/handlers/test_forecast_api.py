"""``/api/v1/forecast`` through the real query handler against moto: samples written through ingest and
writer, forecast per series with intervals and time until threshold, tenant-scoped and authenticated."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.builders import RW_HEADERS, timeseries, write_request
from tests.integration.handlers.conftest import Stack, body_json

HOUR_MS = 3_600_000
STEP_MS = 300_000
SLOPE_PER_HOUR = 0.5  # percent of the disk


@pytest.fixture
def disk(day_window: None, stack: Stack) -> int:
    """Twenty hours of two hosts' disk usage (0.5 %/h ramps, now at 40 % and 60 %) for acme; the last time (ms)."""
    end = (int(time.time() * 1000) // STEP_MS) * STEP_MS
    times = range(end - 20 * HOUR_MS, end + 1, STEP_MS)
    series = [
        timeseries(
            {"__name__": "disk_used_percent", "host": host},
            [(t, base + SLOPE_PER_HOUR * (t - end) / HOUR_MS) for t in times],
        )
        for host, base in (("a", 40.0), ("b", 60.0))
    ]
    response = stack.http(
        stack.ingest,
        "POST",
        "/api/v1/write",
        key=stack.keys["acme-ingest"],
        body=write_request(series),
        headers=RW_HEADERS,
    )
    assert response["statusCode"] == 204
    assert stack.consume(stack.stream_event()) == {"batchItemFailures": []}
    return end


@pytest.fixture
def day_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingest accepts samples up to a day old (set before the stack loads the handlers)."""
    monkeypatch.setenv("NOVACRON_MAX_SAMPLE_AGE_S", "86400")


def _forecast(stack: Stack, params: dict[str, Any], key: str = "acme-read") -> tuple[int, Any]:
    response = stack.http(stack.query, "GET", "/api/v1/forecast", key=stack.keys[key], query=urlencode(params))
    return response["statusCode"], body_json(response)


def test_forecast_of_ramps_with_threshold(day_window: None, stack: Stack, disk: int) -> None:
    # Given two hosts' disks filling at 0.5 %/h, at 40 % and 60 % now
    params = {"query": "disk_used_percent", "horizon": "12h", "history": "1d", "threshold": 44, "time": disk / 1000}
    # When acme asks for a 12-hour forecast and when 44 % is reached
    status, body = _forecast(stack, params)
    # Then one forecast per series, on the grid after the origin, continuing the ramp within the intervals
    assert status == 200, body
    assert body["status"] == "success"
    assert body["data"]["resultType"] == "forecast"
    rows = {row["metric"]["host"]: row for row in body["data"]["result"]}
    assert set(rows) == {"a", "b"}
    a = rows["a"]
    assert "trend" in a["model"]
    times = [t for t, _ in a["values"]]
    assert times[0] > disk / 1000
    assert times[-1] == pytest.approx(disk / 1000 + 12 * 3600)
    assert float(a["values"][-1][1]) == pytest.approx(40 + 12 * SLOPE_PER_HOUR, abs=0.3)
    for band in ("lower80", "upper80", "lower95", "upper95"):
        assert len(a[band]) == len(a["values"])
    assert float(a["lower95"][-1][1]) <= float(a["values"][-1][1]) <= float(a["upper95"][-1][1])
    # And host a reaches 44 % about 8 hours ahead; host b (already above) at once, going up
    crossing = a["threshold"]
    assert crossing["direction"] == "above"
    assert crossing["crosses_at"] == pytest.approx(disk / 1000 + 8 * 3600, abs=1800)
    assert crossing["earliest"] <= crossing["crosses_at"] <= crossing["latest"]
    assert rows["b"]["threshold"]["crosses_at"] == times[0]


def test_forecast_is_scoped_to_the_callers_tenant(day_window: None, stack: Stack, disk: int) -> None:
    # Given acme's series; when globex asks the same forecast; then it sees nothing
    status, body = _forecast(stack, {"query": "disk_used_percent", "horizon": "1h", "time": disk / 1000}, "globex-read")
    assert (status, body["data"]["result"]) == (200, [])


def test_forecast_needs_a_read_key(stack: Stack) -> None:
    # Given no key, and an ingest-only key
    query = urlencode({"query": "up", "horizon": "1h"})
    # When each asks for a forecast; then 401 and 403
    unknown = stack.http(stack.query, "GET", "/api/v1/forecast", query=query)
    ingest_only = stack.http(stack.query, "GET", "/api/v1/forecast", key=stack.keys["acme-ingest"], query=query)
    assert (unknown["statusCode"], ingest_only["statusCode"]) == (401, 403)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"horizon": "1h"}, "query"),
        ({"query": "up"}, "horizon"),
        ({"query": "up", "horizon": "soon"}, "horizon"),
        ({"query": "up", "horizon": "-1h"}, "horizon"),
        ({"query": "up", "horizon": "1000d"}, "horizon"),
        ({"query": "up", "horizon": "1h", "history": "0s"}, "history"),
        ({"query": "up", "horizon": "1h", "step": "1ms"}, "step"),
        ({"query": "up", "horizon": "1h", "threshold": "lots"}, "threshold"),
        ({"query": "up", "horizon": "1h", "direction": "sideways"}, "direction"),
        ({"query": "up", "horizon": "1h", "time": "yesterday"}, "time"),
        ({"query": "sum(", "horizon": "1h"}, "query"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(stack: Stack, params: dict[str, str], named: str) -> None:
    status, body = _forecast(stack, params)
    assert (status, body["status"], body["errorType"]) == (400, "error", "bad_data")
    assert f'"{named}"' in body["error"]


def test_too_little_history_is_a_warning_not_an_error(day_window: None, stack: Stack, disk: int) -> None:
    # Given only the last 30 minutes of history (6 points at a 5-minute step)
    params = {"query": "disk_used_percent", "horizon": "1h", "history": "25m", "step": "5m", "time": disk / 1000}
    # When forecast; then no series is forecast, and the warnings say why
    status, body = _forecast(stack, params)
    assert (status, body["data"]["result"]) == (200, [])
    assert len(body["warnings"]) == 2
    assert all("too little history" in w for w in body["warnings"])


def test_post_form_answers_as_get(day_window: None, stack: Stack, disk: int) -> None:
    # Given the same parameters as a query string and as a form body
    params = {"query": "disk_used_percent", "horizon": "1h", "history": "1d", "time": disk / 1000}
    form = urlencode(params).encode()
    headers = {"content-type": "application/x-www-form-urlencoded"}
    # When asked both ways; then the same answer
    posted = stack.http(
        stack.query, "POST", "/api/v1/forecast", key=stack.keys["acme-read"], body=form, headers=headers
    )
    assert posted["statusCode"] == 200
    assert body_json(posted) == _forecast(stack, params)[1]
