"""The retention policy through the real admin handler against moto: versions, audit records, history."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest

from novacron.auth import key_id_of
from novacron.local.resources import physical_name
from novacron.records import encode_record
from novacron.wiring import ARCHIVE_BUCKET, BLOCKS_TABLE, SETTINGS_TABLE
from tests.builders import timeseries
from tests.integration.handlers.conftest import Stack, body_json, kinesis_record

RETENTION = "/api/v1/admin/retention"
HISTORY = "/api/v1/admin/retention/history"


def admin(stack: Stack, method: str, path: str, key: str, body: Any = None, query: str = "") -> dict[str, Any]:
    raw = b"" if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} if body is not None else {}
    return stack.http(stack.admin, method, path, key=key, body=raw, headers=headers, query=query)


def settings_items(tenant: str) -> dict[str, dict[str, Any]]:
    """The tenant's items in the settings table, by sort key."""
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(physical_name(SETTINGS_TABLE))
    items = table.query(KeyConditionExpression="pk = :t", ExpressionAttributeValues={":t": tenant})["Items"]
    return {item["sk"]: item for item in items}


def test_a_change_is_stored_with_its_audit_record(stack: Stack) -> None:
    key = stack.keys["acme-admin"]
    # Given the defaults as read
    doc = body_json(admin(stack, "GET", RETENTION, key))["data"]
    assert (doc["version"], doc["defaults"]["raw_days"]) == (0, 15)
    # When the admin PUTs an override back with the version read
    doc["overrides"] = [{"match": '{__name__=~"debug_.*", env="dev"}', "raw_days": 2, "rollup_1m_days": 2}]
    answer = admin(stack, "PUT", RETENTION, key, doc)
    # Then version 1 is answered and stored, with one audit record beside it
    assert answer["statusCode"] == 200, body_json(answer)
    assert body_json(answer)["data"]["version"] == 1
    items = settings_items("acme")
    assert int(items["retention"]["version"]) == 1
    record = json.loads(items["retention#v0000000001"]["document"])
    assert (record["version"], record["previous_version"], record["changed_by_tenant"]) == (1, 0, "acme")
    # Who: the key's id, never the key itself
    assert record["changed_by"] == key_id_of(key)
    assert key not in items["retention#v0000000001"]["document"]
    assert record["after"]["overrides"][0]["raw_days"] == 2
    # And a GET reads the new version back
    assert body_json(admin(stack, "GET", RETENTION, key))["data"]["overrides"] == doc["overrides"]


def test_history_lists_every_version_newest_first(stack: Stack) -> None:
    key = stack.keys["acme-admin"]
    for version, raw in enumerate((10, 8, 6)):
        assert (
            admin(stack, "PUT", RETENTION, key, {"version": version, "defaults": {"raw_days": raw}})["statusCode"]
            == 200
        )
    answer = admin(stack, "GET", HISTORY, key, query="limit=2")
    assert answer["statusCode"] == 200
    versions = body_json(answer)["data"]["versions"]
    assert [v["version"] for v in versions] == [3, 2]
    assert versions[0]["changes"] == ["defaults.raw_days: 8 → 6"]
    assert len(body_json(admin(stack, "GET", HISTORY, key))["data"]["versions"]) == 3


def test_a_stale_version_is_a_409_and_writes_nothing(stack: Stack) -> None:
    key = stack.keys["acme-admin"]
    assert admin(stack, "PUT", RETENTION, key, {"version": 0, "defaults": {"raw_days": 10}})["statusCode"] == 200
    stale = admin(stack, "PUT", RETENTION, key, {"version": 0, "defaults": {"raw_days": 3}})
    assert stale["statusCode"] == 409
    assert "at version 1" in body_json(stale)["error"]
    assert sorted(settings_items("acme")) == ["retention", "retention#v0000000001"]


def test_an_invalid_policy_is_a_400_naming_the_field(stack: Stack) -> None:
    answer = admin(
        stack, "PUT", RETENTION, stack.keys["acme-admin"], {"version": 0, "defaults": {"rollup_5m_days": 5000}}
    )
    assert answer["statusCode"] == 400
    assert any(d.startswith("defaults.rollup_5m_days:") for d in body_json(answer)["details"])
    assert settings_items("acme") == {}


def test_retention_routes_are_for_admins_of_the_tenant(stack: Stack) -> None:
    assert admin(stack, "GET", RETENTION, stack.keys["acme-read"])["statusCode"] == 403
    assert admin(stack, "GET", HISTORY, stack.keys["acme-ingest"])["statusCode"] == 403
    assert admin(stack, "GET", RETENTION, stack.keys["globex-admin"], query="tenant=acme")["statusCode"] == 403
    assert admin(stack, "GET", RETENTION, None)["statusCode"] == 401


# --- enforcement through the writer and query handlers ------------------------------------------

DAY_MS = 86_400_000


@pytest.fixture(autouse=True)
def _no_settings_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Warm functions re-read policies every call here (in AWS within settings_cache_ttl_s)."""
    monkeypatch.setenv("NOVACRON_SETTINGS_CACHE_TTL_S", "0")


def write_samples(stack: Stack, sequence: str, now_ms: int, *ages_days: int) -> None:
    """Samples of `up{job="node"}` this many days old, straight onto the writer (ingest refuses old samples)."""
    series = timeseries({"__name__": "up", "job": "node"}, [(now_ms - age * DAY_MS, float(age)) for age in ages_days])
    stack.consume({"Records": [kinesis_record(encode_record("acme", now_ms, [series.SerializeToString()]), sequence)]})


def sample_ages(stack: Stack, now_ms: int) -> list[int]:
    answer = stack.http(
        stack.query,
        "GET",
        "/api/v1/query",
        key=stack.keys["acme-read"],
        query=urlencode({"query": "up[30d]", "time": now_ms / 1000}),
    )
    assert answer["statusCode"] == 200, body_json(answer)
    return sorted(int(float(v)) for series in body_json(answer)["data"]["result"] for _, v in series["values"])


def range_ages(stack: Stack, now_ms: int) -> list[int]:
    """Ages of the values of a cacheable range query over the last 12 days (hourly steps, final hours)."""
    end_s = (now_ms // 3_600_000 - 1) * 3600
    params = {"query": "last_over_time(up[1h])", "start": end_s - 12 * 86_400, "end": end_s, "step": 3600}
    answer = stack.http(stack.query, "GET", "/api/v1/query_range", key=stack.keys["acme-read"], query=urlencode(params))
    assert answer["statusCode"] == 200, body_json(answer)
    return sorted({int(float(v)) for series in body_json(answer)["data"]["result"] for _, v in series["values"]})


def newest_block_ttl_days(now_ms: int) -> int:
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(physical_name(BLOCKS_TABLE))
    blocks = [i for i in table.scan()["Items"] if i["pk"].startswith("acme#") and not i["pk"].endswith("#series")]
    newest = max(blocks, key=lambda i: int(i["max_ts"]))
    return (int(newest["expires_at"]) - int(newest["max_ts"]) // 1000) // 86_400


def archive_tags() -> set[str]:
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = physical_name(ARCHIVE_BUCKET)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="raw/tenant=acme/").get("Contents", [])]
    return {f"{t['Key']}={t['Value']}" for key in keys for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]}


def test_a_shortened_retention_takes_effect_on_reads_and_next_writes(stack: Stack) -> None:
    now = int(time.time() * 1000)
    # Given samples 1, 5 and 10 days old, stored under the default policy (raw 15 days)
    write_samples(stack, "1", now, 10, 5, 1)
    assert sample_ages(stack, now) == [1, 5, 10]
    assert range_ages(stack, now) == [1, 5, 10]  # and its hourly chunks are now cached
    # (the writer's blocks expire 3 days after they were written: 4 days after a sample a day old)
    assert newest_block_ttl_days(now) == 4
    assert archive_tags() == {"novacron-retention=400d"}
    # When the admin shortens the hot tiers (raw and rollups) to 2 days and keeps the archive forever
    hot = {"raw_days": 2, "rollup_1m_days": 2, "rollup_5m_days": 2, "rollup_1h_days": 2}
    change = {"version": 0, "defaults": {**hot, "archive_days": 0}}
    assert admin(stack, "PUT", RETENTION, stack.keys["acme-admin"], change)["statusCode"] == 200
    # Then the next read shows only what the policy keeps, though the items' TTLs have not passed
    assert sample_ages(stack, now) == [1]
    assert range_ages(stack, now) == [1]  # cached chunks of the old policy are not served
    # And the next write's blocks expire 2 days after their samples, its archive object kept forever
    write_samples(stack, "2", now, 0)
    assert newest_block_ttl_days(now) == 2
    assert "novacron-retention=forever" in archive_tags()
