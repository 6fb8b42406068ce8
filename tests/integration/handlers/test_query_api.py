"""The query function's Prometheus API through the real handler against moto: every wiring route
answers, POST forms are read, and answers are scoped to the caller's tenant."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import pytest

from novacron.wiring import QUERY, WIRING
from tests.builders import RW_HEADERS, timeseries, write_request
from tests.integration.handlers.conftest import Stack, body_json

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def written(stack: Stack) -> float:
    """Two ``up`` series of tenant acme, stored through ingest and writer; returns their time (s)."""
    t = int(time.time() * 1000)
    series = [timeseries({"__name__": "up", "job": "node", "instance": f"i{i}"}, [(t, float(i))]) for i in range(2)]
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
    return t / 1000


def _get(stack: Stack, path: str, params: dict[str, Any], tenant: str = "acme") -> tuple[int, Any]:
    response = stack.http(
        stack.query, "GET", path, key=stack.keys[f"{tenant}-read"], query=urlencode(params, doseq=True)
    )
    return response["statusCode"], body_json(response)


def _post(stack: Stack, path: str, params: dict[str, Any]) -> tuple[int, Any]:
    body = urlencode(params, doseq=True).encode()
    response = stack.http(stack.query, "POST", path, key=stack.keys["acme-read"], body=body, headers=FORM)
    return response["statusCode"], body_json(response)


def test_every_wiring_route_of_the_query_function_answers(stack: Stack) -> None:
    # Given each route the wiring sends to the query function
    for route in (r for r in WIRING.routes if r.function == QUERY):
        path = route.path.replace("{name}", "job")
        # When called without parameters / Then Prometheus's JSON envelope, never a 404/405 or 5xx
        response = stack.http(stack.query, route.method, path, key=stack.keys["acme-read"])
        assert response["statusCode"] in (200, 400), (route, response)
        assert body_json(response)["status"] in ("success", "error"), route


def test_query_needs_a_key(stack: Stack) -> None:
    response = stack.http(stack.query, "GET", "/api/v1/metadata")
    assert response["statusCode"] == 401


def test_instant_query_with_limit_over_post_form(stack: Stack, written: float) -> None:
    status, body = _post(stack, "/api/v1/query", {"query": "up", "time": written, "limit": 1})
    assert status == 200
    assert len(body["data"]["result"]) == 1
    assert body["warnings"] == ["results truncated due to limit"]


def test_range_query_with_limit(stack: Stack, written: float) -> None:
    params = {"query": "up", "start": written - 60, "end": written, "step": 15, "limit": 5}
    status, body = _get(stack, "/api/v1/query_range", params)
    assert (status, len(body["data"]["result"]), "warnings" in body) == (200, 2, False)


def test_metadata_lists_the_tenants_metric_names_only(stack: Stack, written: float) -> None:
    # Given acme wrote up{}: acme sees it (type unknown, NovaCron stores no metadata)
    status, body = _get(stack, "/api/v1/metadata", {"metric": "up"})
    assert (status, body["data"]) == (200, {"up": [{"type": "unknown", "help": "", "unit": ""}]})
    # And globex does not
    assert _get(stack, "/api/v1/metadata", {}, tenant="globex")[1]["data"] == {}


def test_exemplars_over_post_form_are_empty(stack: Stack, written: float) -> None:
    status, body = _post(stack, "/api/v1/query_exemplars", {"query": "up", "start": written - 60, "end": written})
    assert (status, body) == (200, {"status": "success", "data": []})


def test_format_query_get_and_post(stack: Stack) -> None:
    expected = (200, {"status": "success", "data": "sum by (job) (rate(x[5m]))"})
    assert _get(stack, "/api/v1/format_query", {"query": "sum  by(job)(rate(x[5m]))"}) == expected
    assert _post(stack, "/api/v1/format_query", {"query": "sum  by(job)(rate(x[5m]))"}) == expected


def test_rules_and_alerts_empty_state(stack: Stack) -> None:
    assert _get(stack, "/api/v1/rules", {"type": "alert"}) == (200, {"status": "success", "data": {"groups": []}})
    assert _get(stack, "/api/v1/alerts", {}) == (200, {"status": "success", "data": {"alerts": []}})
    assert _get(stack, "/api/v1/rules", {"type": "bogus"})[0] == 400


def test_label_values_path_parameter(stack: Stack, written: float) -> None:
    # (match[] leaves out NovaCron's own ingest metrics, which carry an instance label too)
    status, body = _get(stack, "/api/v1/label/instance/values", {"match[]": "up"})
    assert (status, body["data"]) == (200, ["i0", "i1"])
