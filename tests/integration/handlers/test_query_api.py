"""The query function's Prometheus API through the real handler against moto: every wiring route
answers, POST forms are read, and answers are scoped to the caller's tenant."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest

from novacron.local.handlers import load_handler
from novacron.local.resources import physical_name
from novacron.wiring import BLOCKS_TABLE, QUERY, RESULTS_TABLE, WIRING
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
        path = route.path.replace("{name}", "job").replace("{id}", "unknown-id")
        # When called without parameters / Then Prometheus's JSON envelope, never a 404/405 or 5xx
        # (a resource by id, an incident or a silence, answers 404 naming the unknown id)
        response = stack.http(stack.query, route.method, path, key=stack.keys["acme-read"])
        if "{id}" in route.path and response["statusCode"] == 404:
            assert "unknown-id" in json.dumps(body_json(response)), route  # the resource is unknown, not the route
            continue
        assert response["statusCode"] in (200, 400), (route, response)
        if route.path.startswith("/api/v2/"):  # Alertmanager's v2 API answers bare JSON, no envelope
            assert isinstance(body_json(response), list), route
            continue
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


@pytest.fixture
def day_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingest accepts samples up to a day old (set before the handlers load their config)."""
    monkeypatch.setenv("NOVACRON_MAX_SAMPLE_AGE_S", "86400")


def test_range_results_are_shared_through_the_cache_table_by_tenant(day_window: None, stack: Stack) -> None:
    # Given two hours of acme data ending two hours ago (so both hours are final and cacheable)
    hour = 3_600_000
    end = (int(time.time() * 1000) // hour - 2) * hour
    points = [(t, float(t // 15_000)) for t in range(end - 2 * hour, end, 15_000)]
    body = write_request([timeseries({"__name__": "load", "job": "db"}, points)])
    response = stack.http(
        stack.ingest, "POST", "/api/v1/write", key=stack.keys["acme-ingest"], body=body, headers=RW_HEADERS
    )
    assert response["statusCode"] == 204
    assert stack.consume(stack.stream_event()) == {"batchItemFailures": []}
    params = {"query": "max_over_time(load[5m])", "start": (end - 2 * hour) / 1000, "end": end / 1000 - 60, "step": 60}
    # When acme asks a range; then the blocks are gone and a fresh instance (empty near cache) asks again
    status, first = _get(stack, "/api/v1/query_range", params)
    dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
    blocks = dynamodb.Table(physical_name(BLOCKS_TABLE))
    for item in blocks.scan()["Items"]:
        blocks.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
    stack.query = load_handler(WIRING.function(QUERY))
    status_again, second = _get(stack, "/api/v1/query_range", params)
    # Then the second answer, read from the shared cache only, is the first; the table holds acme's 2 chunks
    assert (status, status_again) == (200, 200)
    assert first == second
    assert len(first["data"]["result"][0]["values"]) == 120
    table = dynamodb.Table(physical_name(RESULTS_TABLE))
    items = table.scan()["Items"]
    assert len(items) == 2
    assert all(item["pk"].startswith("acme#retention-v0#") for item in items)  # tenant, retention version, query
    # And globex asking the same query gets its own (empty) answer, not acme's cached chunks
    status, other = _get(stack, "/api/v1/query_range", params, tenant="globex")
    assert (status, other["data"]["result"]) == (200, [])


def test_a_range_reaching_past_the_hot_tier_reads_the_archive_too(stack: Stack, written: float) -> None:
    # Given samples written now, and a range over the last 30 days (raw samples are kept 15 days hot)
    params = {"query": "up", "start": written - 30 * 86_400, "end": written, "step": 3600}
    # When asked, then the handler opens the tenant's (empty) Parquet archive beside the hot tier and answers
    status, body = _get(stack, "/api/v1/query_range", params)
    assert status == 200
    assert len(body["data"]["result"]) == 2
