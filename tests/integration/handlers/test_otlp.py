"""The OTLP function and the spans archiver against moto: metrics to PromQL, traces to the archive."""

from __future__ import annotations

import base64
import gzip
import json
import time
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from novacron.ingest.otlp import Status
from novacron.local.handlers import load_handler, make_context
from novacron.local.resources import physical_name
from novacron.spans import read_archive_object
from novacron.wiring import ARCHIVE_BUCKET, OTLP, SPANS_ARCHIVER, SPANS_STREAM, WIRING
from tests.builders_otlp import JSON, PROTOBUF, all_spans, gauge_request, span, trace_request
from tests.integration.handlers.conftest import Stack, body_json, kinesis_record


@pytest.fixture
def otlp(stack: Stack) -> Any:
    """The OTLP function's handler, loaded inside the stack's moto."""
    return load_handler(WIRING.function(OTLP))


@pytest.fixture
def archive_spans(stack: Stack) -> Any:
    """Run the spans archiver over a Kinesis event."""
    handler = load_handler(WIRING.function(SPANS_ARCHIVER))
    return lambda event: handler(event, make_context(WIRING.function(SPANS_ARCHIVER)))


def raw_body(response: dict[str, Any]) -> bytes:
    body = response["body"]
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


def archived(prefix: str) -> dict[str, bytes]:
    """The archive's objects under ``prefix``, by key."""
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = physical_name(ARCHIVE_BUCKET)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_otlp_metrics_are_queryable(stack: Stack, otlp: Any) -> None:
    # Given a gauge exported over OTLP/HTTP (protobuf)
    body = gauge_request("queue_depth", {"a": 3.0, "b": 4.0}).SerializeToString()
    response = stack.http(otlp, "POST", "/otlp/v1/metrics", key=stack.keys["acme-ingest"], body=body, headers=PROTOBUF)
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "application/x-protobuf"
    # When the metrics writer consumes the stream
    assert stack.consume(stack.stream_event()) == {"batchItemFailures": []}
    # Then PromQL sees both points, with job from the resource's service.name
    query = urlencode({"query": 'sum(queue_depth{job="checkout"})', "time": time.time()})
    answer = stack.http(stack.query, "GET", "/api/v1/query", key=stack.keys["acme-read"], query=query)
    assert float(body_json(answer)["data"]["result"][0]["value"][1]) == 7.0


def test_traces_reach_the_stream_and_the_archive(stack: Stack, otlp: Any, archive_spans: Any) -> None:
    # Given spans of two tenants exported over OTLP/HTTP, one gzip'd
    acme = trace_request([span(name=f"acme-{i}") for i in range(5)])
    globex = trace_request([span(name="globex-0")])
    zipped = {**PROTOBUF, "content-encoding": "gzip"}
    for key, request, headers in [("acme-ingest", acme, zipped), ("globex-ingest", globex, PROTOBUF)]:
        body = request.SerializeToString()
        response = stack.http(
            otlp,
            "POST",
            "/otlp/v1/traces",
            key=stack.keys[key],
            body=gzip.compress(body) if headers is zipped else body,
            headers=headers,
        )
        assert response["statusCode"] == 200
        assert ExportTraceServiceResponse.FromString(raw_body(response)) == ExportTraceServiceResponse()
    # When the archiver consumes the spans stream
    event = stack.stream_event(SPANS_STREAM)
    assert event["Records"]
    assert archive_spans(event) == {"batchItemFailures": []}
    # Then each tenant's spans are archived under its own prefix, and nowhere else
    acme_objects = archived("spans/acme/")
    assert acme_objects
    assert all(k.endswith(".otlp.pb.gz") for k in acme_objects)
    names = [s.name for data in acme_objects.values() for m in read_archive_object(data) for s in all_spans(m)]
    assert sorted(names) == [f"acme-{i}" for i in range(5)]
    globex_objects = archived("spans/globex/")
    assert [s.name for d in globex_objects.values() for m in read_archive_object(d) for s in all_spans(m)] == [
        "globex-0"
    ]
    # And a redelivered batch overwrites the same objects
    archive_spans(event)
    assert archived("spans/") == {**acme_objects, **globex_objects}


def test_a_body_that_is_not_otlp_is_400_with_a_status(stack: Stack, otlp: Any) -> None:
    # Given a body that is not a protobuf message / When posted
    response = stack.http(
        otlp, "POST", "/otlp/v1/traces", key=stack.keys["acme-ingest"], body=b"\xff\xff\xff", headers=PROTOBUF
    )
    # Then 400 with a protobuf google.rpc.Status (INVALID_ARGUMENT)
    assert response["statusCode"] == 400
    status = Status.FromString(raw_body(response))
    assert status.code == 3
    assert "not a valid protobuf ExportTraceServiceRequest" in status.message


def test_partial_success_over_the_handler(stack: Stack, otlp: Any) -> None:
    # Given one valid span and one without a name / When posted
    body = trace_request([span(name="ok"), span(name="")]).SerializeToString()
    response = stack.http(otlp, "POST", "/otlp/v1/traces", key=stack.keys["acme-ingest"], body=body, headers=PROTOBUF)
    # Then 200 with rejected_spans 1
    assert response["statusCode"] == 200
    assert ExportTraceServiceResponse.FromString(raw_body(response)).partial_success.rejected_spans == 1


@pytest.mark.parametrize(("key", "status"), [(None, 401), ("acme-read", 403)])
def test_otlp_needs_an_ingest_key(stack: Stack, otlp: Any, key: str | None, status: int) -> None:
    # Given no key, or a read-only key / When spans are posted / Then refused, nothing on the stream
    body = trace_request([span()]).SerializeToString()
    response = stack.http(
        otlp, "POST", "/otlp/v1/traces", key=stack.keys[key] if key else None, body=body, headers=PROTOBUF
    )
    assert response["statusCode"] == status
    assert stack.stream_event(SPANS_STREAM)["Records"] == []


def test_a_poison_record_is_a_batch_item_failure(stack: Stack, otlp: Any, archive_spans: Any) -> None:
    # Given the real records of an export and a foreign record among them
    body = trace_request([span(name="ok")]).SerializeToString()
    stack.http(otlp, "POST", "/otlp/v1/traces", key=stack.keys["acme-ingest"], body=body, headers=PROTOBUF)
    event = stack.stream_event(SPANS_STREAM)
    event["Records"].append(kinesis_record(b"not a spans record", "99999999999999999999"))
    # When archived / Then only the foreign record fails; the good one is archived
    assert archive_spans(event) == {"batchItemFailures": [{"itemIdentifier": "99999999999999999999"}]}
    assert len(archived("spans/acme/")) == 1


def test_json_exports_are_answered_in_json(stack: Stack, otlp: Any) -> None:
    # Given an OTLP/JSON export with one span lacking a name (so the answer has content)
    document = json_format.MessageToDict(trace_request([span(name="ok"), span(name="")]))
    for entry in document["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for field in ("traceId", "spanId"):
            entry[field] = base64.b64decode(entry[field]).hex()  # OTLP/JSON ids are hex
    body = json.dumps(document).encode()
    # When posted through the handler
    response = stack.http(otlp, "POST", "/otlp/v1/traces", key=stack.keys["acme-ingest"], body=body, headers=JSON)
    # Then the answer is a JSON partial success, as text
    assert (response["statusCode"], response["headers"]["Content-Type"]) == (200, "application/json")
    assert int(json.loads(raw_body(response))["partialSuccess"]["rejectedSpans"]) == 1


def test_personal_data_in_span_attributes_never_reaches_the_archive(
    stack: Stack, otlp: Any, archive_spans: Any
) -> None:
    # Given a span whose attributes carry an e-mail address and a SQL literal
    request = trace_request(
        [
            span(
                name="login",
                attrs={"user.email": "jane.doe@example.com", "db.statement": "SELECT 1 FROM u WHERE n='jane'"},
            )
        ]
    )
    # When it is exported and archived
    response = stack.http(
        otlp,
        "POST",
        "/otlp/v1/traces",
        key=stack.keys["acme-ingest"],
        body=request.SerializeToString(),
        headers=PROTOBUF,
    )
    assert response["statusCode"] == 200
    assert archive_spans(stack.stream_event(SPANS_STREAM)) == {"batchItemFailures": []}
    # Then the archive holds tokens in their place, made with the deployment's PII key
    (data,) = archived("spans/acme/").values()
    (stored,) = [s for m in read_archive_object(data) for s in all_spans(m)]
    values = {a.key: a.value.string_value for a in stored.attributes}
    assert values["user.email"].startswith("<email:")
    assert "jane" not in values["db.statement"]
    assert values["db.statement"].startswith("SELECT ? FROM u WHERE n=")
