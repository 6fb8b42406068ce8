"""The ingest policy through the real handlers against moto: admin API, key labels, limits, summary."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from novacron.adapters.dynamo_tier import DynamoIndexStore
from novacron.local.resources import physical_name
from novacron.storage.writer import SeriesEntry, day_of
from novacron.wiring import INDEX_TABLE
from tests.builders import RW_HEADERS, timeseries, write_request
from tests.integration.handlers.conftest import Stack, body_json

POLICY = "/api/v1/admin/ingest-policy"
APPROVALS = "/api/v1/admin/cardinality/approvals"


def now_ms() -> int:
    return int(time.time() * 1000)


def admin(stack: Stack, method: str, path: str, key: str, body: Any = None, query: str = "") -> dict[str, Any]:
    raw = b"" if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} if body is not None else {}
    return stack.http(stack.admin, method, path, key=key, body=raw, headers=headers, query=query)


def write(stack: Stack, series: list[Any], key: str) -> dict[str, Any]:
    return stack.http(stack.ingest, "POST", "/api/v1/write", key=key, body=write_request(series), headers=RW_HEADERS)


def stored_series(stack: Stack, metric: str) -> list[dict[str, str]]:
    from urllib.parse import urlencode

    answer = stack.http(
        stack.query, "GET", "/api/v1/series", key=stack.keys["acme-read"], query=urlencode({"match[]": metric})
    )
    return list(body_json(answer)["data"])


def test_the_policy_is_read_and_changed_with_versions(stack: Stack) -> None:
    key = stack.keys["acme-admin"]
    # Given the default policy (version 0)
    got = body_json(admin(stack, "GET", POLICY, key))["data"]
    assert (got["version"], got["required_labels"], got["tenant"]) == (0, ["source", "environment", "owner"], "acme")
    # When an admin changes it from version 0
    changed = admin(stack, "PUT", POLICY, key, {**got, "mode": "reject", "defaults": {"owner": "ops"}})
    # Then it is version 1, recorded as theirs
    assert changed["statusCode"] == 200
    data = body_json(changed)["data"]
    assert (data["version"], data["mode"], data["defaults"]) == (1, "reject", {"owner": "ops"})
    assert data["updated_by"]
    assert data["updated_at"] > 0
    # And a second change still based on version 0 conflicts
    stale = admin(stack, "PUT", POLICY, key, {**got, "mode": "default"})
    assert stale["statusCode"] == 409
    assert "at version 1" in body_json(stale)["error"]


def test_an_invalid_policy_is_a_400_naming_the_fields(stack: Stack) -> None:
    # When a policy with two bad fields is PUT
    response = admin(
        stack, "PUT", POLICY, stack.keys["acme-admin"], {"version": 0, "mode": "maybe", "max_series_per_metric": -1}
    )
    # Then the answer lists both
    assert response["statusCode"] == 400
    details = body_json(response)["details"]
    assert any(d.startswith("mode:") for d in details)
    assert any(d.startswith("max_series_per_metric:") for d in details)


def test_policy_routes_are_for_admins_of_the_tenant(stack: Stack) -> None:
    # A read key cannot see it; another tenant's admin cannot name acme
    assert admin(stack, "GET", POLICY, stack.keys["acme-read"])["statusCode"] == 403
    assert admin(stack, "GET", POLICY, stack.keys["globex-admin"], query="tenant=acme")["statusCode"] == 403


def test_key_labels_reach_the_stored_series(stack: Stack) -> None:
    # Given an ingest key created with labels through the admin API
    created = stack.http(
        stack.admin,
        "POST",
        "/api/v1/admin/keys",
        key=stack.keys["acme-admin"],
        body=json.dumps({"labels": {"source": "prometheus", "environment": "prod", "owner": "team-payments"}}).encode(),
        headers={"content-type": "application/json"},
        query="role=ingest",
    )
    assert created["statusCode"] == 201
    key = body_json(created)["data"]["key"]
    assert body_json(created)["data"]["labels"]["owner"] == "team-payments"
    # When a series without those labels is written with it, and stored
    assert write(stack, [timeseries({"__name__": "up", "job": "api"}, [(now_ms(), 1.0)])], key)["statusCode"] == 204
    stack.consume(stack.stream_event())
    # Then the stored series carries them
    assert stored_series(stack, "up") == [
        {"__name__": "up", "environment": "prod", "job": "api", "owner": "team-payments", "source": "prometheus"}
    ]


def test_bad_key_labels_are_a_400(stack: Stack) -> None:
    response = stack.http(
        stack.admin,
        "POST",
        "/api/v1/admin/keys",
        key=stack.keys["acme-admin"],
        query="role=ingest&label=__name__%3Dx",
    )
    assert response["statusCode"] == 400
    assert "reserved" in body_json(response)["error"]


def test_reject_mode_answers_400_naming_the_label(stack: Stack) -> None:
    # Given a policy rejecting series without an owner
    key = stack.keys["acme-admin"]
    current = body_json(admin(stack, "GET", POLICY, key))["data"]
    admin(stack, "PUT", POLICY, key, {**current, "required_labels": ["owner"], "mode": "reject"})
    # When a series without one is written (a fresh ingest function reads the new policy)
    response = write(stack, [timeseries({"__name__": "up"}, [(now_ms(), 1.0)])], stack.keys["acme-ingest"])
    # Then it is a 400 saying which label and how to set it
    assert response["statusCode"] == 400
    assert "series has no 'owner' label" in body_text(response)


def body_text(response: dict[str, Any]) -> str:
    import base64

    body = response["body"]
    return base64.b64decode(body).decode() if response.get("isBase64Encoded") else body


def test_approvals_are_listed_changed_and_revoked(stack: Stack) -> None:
    key = stack.keys["acme-admin"]
    # When a metric is approved
    put = admin(stack, "PUT", f"{APPROVALS}/http_requests_total", key, {"limit": 200000, "reason": "per customer"})
    assert put["statusCode"] == 200
    # Then it is listed with who approved it, and the policy limit for it follows
    (listed,) = body_json(admin(stack, "GET", APPROVALS, key))["data"]
    assert (listed["metric"], listed["limit"], listed["reason"]) == ("http_requests_total", 200000, "per customer")
    assert listed["approved_by"]
    # And a bad approval or an unknown metric are refused
    assert admin(stack, "PUT", f"{APPROVALS}/http_requests_total", key, {"limit": 0, "reason": ""})["statusCode"] == 400
    assert admin(stack, "DELETE", f"{APPROVALS}/nope", key)["statusCode"] == 404
    # When it is revoked
    assert admin(stack, "DELETE", f"{APPROVALS}/http_requests_total", key)["statusCode"] == 200
    assert body_json(admin(stack, "GET", APPROVALS, key))["data"] == []


def test_cardinality_is_counted_by_the_writer_and_limits_bite(stack: Stack) -> None:
    key = stack.keys["acme-admin"]
    # Given a per-metric limit of 3
    current = body_json(admin(stack, "GET", POLICY, key))["data"]
    admin(stack, "PUT", POLICY, key, {**current, "max_series_per_metric": 3})
    t = now_ms()
    # When 5 series of one metric are written and stored
    response = write(
        stack, [timeseries({"__name__": "m", "i": str(i)}, [(t, 1.0)]) for i in range(5)], stack.keys["acme-ingest"]
    )
    stack.consume(stack.stream_event())
    # Then 2 are rejected with the approval hint, and the summary counts the 3 stored
    assert response["statusCode"] == 400
    assert "novacron cardinality approve m --limit N" in body_text(response)
    data = body_json(admin(stack, "GET", "/api/v1/admin/cardinality", key))["data"]
    rows = {row["metric"]: row for row in data["metrics"]}
    assert rows["m"] == {"metric": "m", "series": 3, "limit": 3, "approved": False}
    assert data["series"] == sum(row["series"] for row in rows.values())


def test_the_index_adapter_counts_and_checks_existence(stack: Stack) -> None:
    # Given 400 series of a metric in the index (more than one existence batch)
    index = DynamoIndexStore(physical_name(INDEX_TABLE))
    day = day_of(now_ms())
    entries = [SeriesEntry("acme", day, f"{i:016x}", (("__name__", "m"), ("i", str(i)))) for i in range(400)]
    index.put_series(entries, 2_000_000_000)
    # Then counting is exact, summaries never go down, and both existence paths agree
    assert index.count_series("acme", day, "m") == 400
    index.put_cardinality("acme", day, {"m": 400}, 2_000_000_000)
    index.put_cardinality("acme", day, {"m": 350}, 2_000_000_000)
    assert index.cardinality("acme", day) == {"m": 400}
    few = [f"{i:016x}" for i in (1, 2)] + ["ffffffffffffffff"]
    many = [f"{i:016x}" for i in range(350)] + ["ffffffffffffffff"]
    assert index.existing_series("acme", day, "m", few) == {f"{i:016x}" for i in (1, 2)}
    assert len(index.existing_series("acme", day, "m", many)) == 350


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_the_operator_manages_any_tenant(stack: Stack, method: str) -> None:
    # Given no operator key in the stack's keys, an acme admin cannot reach globex
    body = {"version": 0} if method == "PUT" else None
    response = admin(stack, method, POLICY, stack.keys["acme-admin"], body, query="tenant=globex")
    assert response["statusCode"] == 403


def test_an_encoded_recording_rule_name_is_decoded(stack: Stack) -> None:
    # When a client percent-encodes the colons of a metric name in the path
    key = stack.keys["acme-admin"]
    response = admin(stack, "PUT", f"{APPROVALS}/job%3Arequests%3Arate5m", key, {"limit": 7, "reason": "r"})
    # Then the approval is for the metric itself
    assert response["statusCode"] == 200
    assert [a["metric"] for a in body_json(admin(stack, "GET", APPROVALS, key))["data"]] == ["job:requests:rate5m"]
