"""The metrics path through the real handlers against moto: write → stream → writer → query."""

from __future__ import annotations

import base64
import sys
import time
from typing import Any

import boto3
import pytest

from novacron.local.resources import physical_name
from novacron.protocols.remote_write_pb import TimeSeries
from novacron.records import decode_record, encode_record
from novacron.wiring import ARCHIVE_BUCKET, BLOCKS_TABLE
from tests.builders import RW_HEADERS, timeseries, write_request
from tests.integration.handlers.conftest import Stack, body_json, kinesis_record


def now_ms() -> int:
    return int(time.time() * 1000)


def write(stack: Stack, series: list, key: str) -> dict[str, Any]:
    return stack.http(stack.ingest, "POST", "/api/v1/write", key=key, body=write_request(series), headers=RW_HEADERS)


def instant(stack: Stack, promql: str, key: str, at_s: float) -> dict[str, Any]:
    from urllib.parse import urlencode

    return stack.http(stack.query, "GET", "/api/v1/query", key=key, query=urlencode({"query": promql, "time": at_s}))


def stored_block_samples(stack: Stack | None = None) -> int:
    """Samples in the blocks table; with ``stack``, less NovaCron's own ingest metrics that its ingest
    handler wrote to the stream (ingest/self_metrics.py), so that only the test's samples count."""
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(physical_name(BLOCKS_TABLE))
    stored = sum(int(item["samples"]) for item in table.scan()["Items"])
    return stored - (own_metric_samples(stack) if stack is not None else 0)


def own_metric_samples(stack: Stack) -> int:
    """Samples of NovaCron's own series (``novacron_*``) in the metrics stream."""
    total = 0
    for record in stack.stream_event()["Records"]:
        for content in decode_record(base64.b64decode(record["kinesis"]["data"])).contents:
            ts = TimeSeries.FromString(content)
            if any(lb.name == "__name__" and lb.value.startswith("novacron_") for lb in ts.labels):
                total += len(ts.samples)
    return total


def test_remote_write_is_queryable(stack: Stack) -> None:
    # Given 20 series written over remote write
    t = now_ms()
    series = [
        timeseries({"__name__": "up", "job": "node", "instance": f"i{i}"}, [(t - 15000, 1.0), (t, i)])
        for i in range(20)
    ]
    response = write(stack, series, stack.keys["acme-ingest"])
    assert response["statusCode"] == 204
    # When the writer consumes the stream
    result = stack.consume(stack.stream_event())
    assert result == {"batchItemFailures": []}
    # Then PromQL sees every series with its latest value
    answer = instant(stack, 'sum(up{job="node"})', stack.keys["acme-read"], t / 1000)
    assert answer["statusCode"] == 200
    data = body_json(answer)["data"]
    assert data["resultType"] == "vector"
    assert float(data["result"][0]["value"][1]) == sum(range(20))
    assert stored_block_samples(stack) == 40
    # And the raw records are archived under the tenant's prefix
    s3 = boto3.client("s3", region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=physical_name(ARCHIVE_BUCKET), Prefix="raw/tenant=acme/")
    assert listed.get("KeyCount", 0) >= 1


def test_replaying_a_batch_leaves_each_sample_once(stack: Stack) -> None:
    # Given a written body and the batch the writer receives
    t = now_ms()
    write(stack, [timeseries({"__name__": "m", "i": str(i)}, [(t, 1.0)]) for i in range(30)], stack.keys["acme-ingest"])
    event = stack.stream_event()
    # When the same batch is delivered twice
    stack.consume(event)
    stack.consume(event)
    # Then each sample is stored once
    assert stored_block_samples(stack) == 30


def test_a_poison_record_fails_alone(stack: Stack) -> None:
    # Given a batch of three records, the middle one not in NovaCron's format
    t = now_ms()
    good = [
        encode_record("acme", t, [timeseries({"__name__": "g", "n": str(n)}, [(t, n)]).SerializeToString()])
        for n in range(2)
    ]
    event = {
        "Records": [kinesis_record(good[0], "100"), kinesis_record(b"poison", "101"), kinesis_record(good[1], "102")]
    }
    # When the writer processes it
    result = stack.consume(event)
    # Then only the poison record is reported failed, and the others are stored
    assert result == {"batchItemFailures": [{"itemIdentifier": "101"}]}
    assert stored_block_samples() == 2


@pytest.mark.parametrize(
    ("method", "path", "key_name", "status", "fragment"),
    [
        ("POST", "/api/v1/write", None, 401, "missing Authorization header"),
        ("POST", "/api/v1/write", "nck_000000000000_wrongwrongwrongwrongwrong", 401, "invalid API key"),
        ("POST", "/api/v1/write", "acme-read", 403, "needs role 'ingest'"),
        ("GET", "/api/v1/query", "acme-ingest", 403, "needs role 'read'"),
        ("GET", "/api/v1/labels", None, 401, "missing Authorization header"),
        ("GET", "/api/v1/admin/keys", "acme-read", 403, "needs role 'admin'"),
    ],
)
def test_every_route_is_authenticated(
    stack: Stack, method: str, path: str, key_name: str | None, status: int, fragment: str
) -> None:
    fn = stack.ingest if path == "/api/v1/write" else stack.admin if "/admin/" in path else stack.query
    key = stack.keys.get(key_name, key_name) if key_name else None
    response = stack.http(fn, method, path, key=key, body=b"", headers=RW_HEADERS, query="query=up")
    assert response["statusCode"] == status
    assert fragment in response["body"]


def test_tenants_are_isolated_on_every_read_route(stack: Stack) -> None:
    # Given acme's data
    t = now_ms()
    write(stack, [timeseries({"__name__": "secret_metric", "team": "acme"}, [(t, 42.0)])], stack.keys["acme-ingest"])
    stack.consume(stack.stream_event())
    globex = stack.keys["globex-read"]
    # When globex reads through every route, Then it sees nothing of acme's
    assert body_json(instant(stack, "secret_metric", globex, t / 1000))["data"]["result"] == []
    for path, query in [
        ("/api/v1/series", "match[]=secret_metric"),
        ("/api/v1/labels", ""),
        ("/api/v1/label/__name__/values", ""),
        ("/api/v1/label/team/values", ""),
    ]:
        answer = body_json(stack.http(stack.query, "GET", path, key=globex, query=query))
        assert answer["data"] == [], path
    # And acme does see it
    assert body_json(instant(stack, "secret_metric", stack.keys["acme-read"], t / 1000))["data"]["result"]


def test_keys_are_managed_per_tenant(stack: Stack) -> None:
    admin = stack.keys["acme-admin"]
    # When acme's admin creates a read key
    created = stack.http(stack.admin, "POST", "/api/v1/admin/keys", key=admin, query="role=read&description=grafana")
    assert created["statusCode"] == 201
    new = body_json(created)["data"]
    assert new["tenant"] == "acme"
    assert new["key"].startswith("nck_")
    # Then it works, is listed without its secret, and stops working once revoked
    assert instant(stack, "up", new["key"], time.time())["statusCode"] == 200
    listed = body_json(stack.http(stack.admin, "GET", "/api/v1/admin/keys", key=admin))["data"]
    assert new["key_id"] in {k["key_id"] for k in listed}
    assert all("key" not in k and "key_hash" not in k for k in listed)
    revoked = stack.http(stack.admin, "DELETE", f"/api/v1/admin/keys/{new['key_id']}", key=admin)
    assert revoked["statusCode"] == 200
    assert instant(stack, "up", new["key"], time.time())["statusCode"] == 401
    # And globex's admin can neither create keys for acme nor revoke acme's
    other = stack.keys["globex-admin"]
    assert (
        stack.http(stack.admin, "POST", "/api/v1/admin/keys", key=other, query="tenant=acme&role=admin")["statusCode"]
        == 403
    )
    assert stack.http(stack.admin, "DELETE", f"/api/v1/admin/keys/{new['key_id']}", key=other)["statusCode"] == 404


class _FlakyKinesis:
    """Fails the first ``failures`` PutRecords entries with throttling, then delegates."""

    def __init__(self, real: Any, failures: int) -> None:
        self.real = real
        self.failures = failures

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        if self.failures <= 0:
            return self.real.put_records(StreamName=StreamName, Records=Records)
        failed = Records[: self.failures]
        passed = Records[self.failures :]
        self.failures -= len(failed)
        results = [{"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}] * len(failed)
        if passed:
            results += self.real.put_records(StreamName=StreamName, Records=passed)["Records"]
        return {"FailedRecordCount": len(failed), "Records": results}


def test_partial_put_failures_are_retried_and_nothing_is_lost(stack: Stack, monkeypatch) -> None:
    # Given a stream that throttles the first few entries
    sink = sys.modules[stack.ingest.__module__].edge.service.sink
    monkeypatch.setattr(sink, "_kinesis", _FlakyKinesis(boto3.client("kinesis", region_name="us-east-1"), 3))
    monkeypatch.setattr(sink, "_sleep", lambda _s: None)
    t = now_ms()
    # When a body is written
    response = write(
        stack, [timeseries({"__name__": "m", "i": str(i)}, [(t, 1.0)]) for i in range(40)], stack.keys["acme-ingest"]
    )
    # Then it succeeds and every sample is stored
    assert response["statusCode"] == 204
    stack.consume(stack.stream_event())
    assert stored_block_samples(stack) == 40


def test_a_throttled_stream_gets_a_retryable_status(stack: Stack, monkeypatch) -> None:
    # Given a stream that throttles everything
    sink = sys.modules[stack.ingest.__module__].edge.service.sink
    monkeypatch.setattr(sink, "_kinesis", _FlakyKinesis(None, 10**9))
    monkeypatch.setattr(sink, "_sleep", lambda _s: None)
    # When a body is written
    response = write(stack, [timeseries({"__name__": "m"}, [(now_ms(), 1.0)])], stack.keys["acme-ingest"])
    # Then the sender is told to retry later
    assert response["statusCode"] == 429
    assert response["headers"]["Retry-After"] == "1"
    assert "retry later" in response["body"]


def test_bad_remote_write_gets_400_naming_the_series(stack: Stack) -> None:
    t = now_ms()
    response = write(
        stack,
        [timeseries([("__name__", "ok"), ("b", "1"), ("a", "2")], [(t, 1.0)], sort=False)],
        stack.keys["acme-ingest"],
    )
    assert response["statusCode"] == 400
    assert "labels are not sorted by name" in response["body"]
    assert 'ok{b="1", a="2"}' in response["body"]


def test_native_json_ingest(stack: Stack) -> None:
    t = now_ms()
    body = b'{"series": [{"labels": {"__name__": "temp", "room": "a"}, "samples": [[%d, 21.5]]}]}' % t
    response = stack.http(
        stack.ingest,
        "POST",
        "/api/v1/ingest",
        key=stack.keys["acme-ingest"],
        body=body,
        headers={"content-type": "application/json"},
    )
    assert response["statusCode"] == 200
    assert body_json(response) == {"series_accepted": 1, "samples_accepted": 1}
    stack.consume(stack.stream_event())
    answer = body_json(instant(stack, "temp", stack.keys["acme-read"], t / 1000))
    assert answer["data"]["result"][0]["value"][1] == "21.5"
