"""The detection policy through the real admin handler against moto, and the detect function honouring it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from novacron.auth import key_id_of
from novacron.local.handlers import load_handler, make_context
from novacron.local.resources import physical_name
from novacron.wiring import ANOMALIES_TABLE, DETECT, WIRING
from tests.integration.handlers.conftest import Stack, body_json, kinesis_record
from tests.integration.handlers.test_detect import SPIKE_AT, STEP_MS, T0, spiky_record
from tests.integration.handlers.test_retention import admin, settings_items

DETECTION = "/api/v1/admin/detection"
HISTORY = "/api/v1/admin/detection/history"


def test_a_change_is_stored_with_its_audit_record(stack: Stack) -> None:
    key = stack.keys["acme-admin"]
    # Given the defaults as read
    doc = body_json(admin(stack, "GET", DETECTION, key))["data"]
    assert (doc["version"], doc["defaults"], doc["watch"]) == (0, {"sensitivity": 0.5, "seasonality": "auto"}, [])
    # When the admin PUTs settings back with the version read
    doc["overrides"] = [{"match": '{env="dev"}', "sensitivity": 0.2}]
    doc["ignore"] = ["debug_requests_total"]
    doc["maintenance"] = [{"start": "2026-11-28T02:00:00Z", "end": "2026-11-28T03:00:00Z", "comment": "db upgrade"}]
    answer = admin(stack, "PUT", DETECTION, key, doc)
    # Then version 1 is answered and stored, with one audit record beside it
    assert answer["statusCode"] == 200, body_json(answer)
    assert body_json(answer)["data"]["version"] == 1
    items = settings_items("acme")
    assert int(items["detection"]["version"]) == 1
    record = json.loads(items["detection#v0000000001"]["document"])
    assert (record["version"], record["previous_version"], record["changed_by_tenant"]) == (1, 0, "acme")
    # Who: the key's id, never the key itself
    assert record["changed_by"] == key_id_of(key)
    assert key not in items["detection#v0000000001"]["document"]
    assert 'ignore[0]: - → "debug_requests_total"' in record["changes"]
    # And a GET reads the new version back, the other settings of the tenant untouched
    again = body_json(admin(stack, "GET", DETECTION, key))["data"]
    assert (again["overrides"], again["maintenance"][0]["comment"]) == (doc["overrides"], "db upgrade")
    assert "retention" not in items


def test_history_lists_every_version_newest_first(stack: Stack) -> None:
    key = stack.keys["acme-admin"]
    for version, sensitivity in enumerate((0.6, 0.7, 0.8)):
        body = {"version": version, "defaults": {"sensitivity": sensitivity}}
        assert admin(stack, "PUT", DETECTION, key, body)["statusCode"] == 200
    answer = admin(stack, "GET", HISTORY, key, query="limit=2")
    assert answer["statusCode"] == 200
    versions = body_json(answer)["data"]["versions"]
    assert [v["version"] for v in versions] == [3, 2]
    assert versions[0]["changes"] == ["defaults.sensitivity: 0.7 → 0.8"]
    assert admin(stack, "GET", HISTORY, key, query="limit=101")["statusCode"] == 400


def test_a_stale_version_is_a_409_and_writes_nothing(stack: Stack) -> None:
    key = stack.keys["acme-admin"]
    assert admin(stack, "PUT", DETECTION, key, {"version": 0, "defaults": {"sensitivity": 0.7}})["statusCode"] == 200
    stale = admin(stack, "PUT", DETECTION, key, {"version": 0, "defaults": {"sensitivity": 0.1}})
    assert stale["statusCode"] == 409
    assert "at version 1" in body_json(stale)["error"]
    assert body_json(admin(stack, "GET", DETECTION, key))["data"]["defaults"]["sensitivity"] == 0.7


def test_an_invalid_policy_is_a_400_naming_the_field(stack: Stack) -> None:
    body = {"version": 0, "maintenance": [{"start": "2026-11-28T02:00:00Z", "end": "yesterday"}]}
    answer = admin(stack, "PUT", DETECTION, stack.keys["acme-admin"], body)
    assert answer["statusCode"] == 400
    error = body_json(answer)
    assert error["error"] == "invalid detection policy"
    assert error["details"][0].startswith("maintenance.0.end:")
    assert "detection" not in settings_items("acme")


def test_detection_routes_are_for_admins_of_the_tenant(stack: Stack) -> None:
    assert admin(stack, "GET", DETECTION, stack.keys["acme-read"])["statusCode"] == 403
    assert admin(stack, "PUT", DETECTION, stack.keys["acme-ingest"], {"version": 0})["statusCode"] == 403
    assert admin(stack, "GET", HISTORY, stack.keys["acme-read"])["statusCode"] == 403
    assert admin(stack, "GET", DETECTION, stack.keys["globex-admin"], query="tenant=acme")["statusCode"] == 403
    assert admin(stack, "GET", DETECTION, None)["statusCode"] == 401


@pytest.fixture
def detect(stack: Stack) -> Any:
    return load_handler(WIRING.function(DETECT))


def stored_anomalies() -> list[dict[str, Any]]:
    table = boto3.client("dynamodb", region_name="us-east-1")
    return [json.loads(i["anomaly"]["S"]) for i in table.scan(TableName=physical_name(ANOMALIES_TABLE))["Items"]]


def test_the_detect_function_suppresses_anomalies_in_a_maintenance_window(stack: Stack, detect: Any) -> None:
    # Given a maintenance window over acme's spike, set through the admin API
    spike_s = (T0 + SPIKE_AT * STEP_MS) // 1000
    window = {"start": spike_s - 60, "end": spike_s + 60}
    iso = {k: datetime.fromtimestamp(v, UTC).isoformat() for k, v in window.items()}
    body = {"version": 0, "maintenance": [{**iso, "comment": "deploy"}]}
    assert admin(stack, "PUT", DETECTION, stack.keys["acme-admin"], body)["statusCode"] == 200
    # And one ignoring every series of globex
    globex = {"version": 0, "ignore": ["latency_seconds"]}
    assert admin(stack, "PUT", DETECTION, stack.keys["globex-admin"], globex)["statusCode"] == 200
    # When the detector consumes both tenants' spikes
    event = {"Records": [kinesis_record(spiky_record(), "1"), kinesis_record(spiky_record("globex"), "2")]}
    assert detect(event, make_context(WIRING.function(DETECT))) == {"batchItemFailures": []}
    # Then acme's episode is stored, suppressed; globex's series was not scored at all
    [anomaly] = stored_anomalies()
    assert (anomaly["tenant"], anomaly["suppressed"], anomaly["value"]) == ("acme", True, 250.0)
