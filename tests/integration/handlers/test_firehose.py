"""CloudWatch metric streams through the real Firehose handler against moto: deliver → stream → writer → PromQL."""

from __future__ import annotations

import gzip
import io
import logging
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from novacron.local.handlers import load_handler
from novacron.wiring import FIREHOSE, WIRING
from tests.integration.handlers.conftest import Stack, body_json
from tests.unit.firehose.sender import (
    ACCOUNT,
    REGION,
    STREAM,
    FirehoseDelivery,
    Point,
    delivery,
    json_record,
    otel_record,
)

ENCODERS = {"json": json_record, "opentelemetry1.0": otel_record}


@pytest.fixture
def firehose_fn(stack: Stack) -> Any:
    """The Firehose function, loaded inside the stack's moto session and environment."""
    return load_handler(WIRING.function(FIREHOSE))


@pytest.fixture
def firehose_log(firehose_fn: Any) -> Iterator[io.StringIO]:
    """What the function logs (Powertools' handler writes to the stream it was created with)."""
    stream = io.StringIO()
    handlers = [h for h in logging.getLogger("novacron-firehose").handlers if isinstance(h, logging.StreamHandler)]
    assert handlers
    previous = [h.setStream(stream) for h in handlers]
    yield stream
    for handler, old in zip(handlers, previous, strict=True):
        handler.setStream(old)


def post(stack: Stack, fn: Any, sent: FirehoseDelivery) -> dict[str, Any]:
    return stack.http(fn, "POST", "/aws/firehose", body=sent.body, headers=sent.headers)


def query(stack: Stack, promql: str, at_s: float) -> list[dict[str, Any]]:
    answer = stack.http(
        stack.query,
        "GET",
        "/api/v1/query",
        key=stack.keys["acme-read"],
        query=urlencode({"query": promql, "time": at_s}),
    )
    assert answer["statusCode"] == 200
    return body_json(answer)["data"]["result"]  # type: ignore[no-any-return]


def period_start() -> int:
    return (int(time.time()) // 60 - 1) * 60_000


@pytest.mark.parametrize("fmt", list(ENCODERS))
def test_a_metric_stream_delivery_is_queryable(stack: Stack, firehose_fn: Any, fmt: str) -> None:
    # Given a gzip delivery of two records: EC2 CPU for three instances, and Lambda durations with p99
    t = period_start()
    ec2 = [Point("AWS/EC2", "CPUUtilization", t, {"InstanceId": f"i-{n}"}, sum=10.0 * n, count=2) for n in range(3)]
    lam = Point(
        "AWS/Lambda", "Duration", t, {"FunctionName": "checkout"}, max=0.9, percentiles={"p99": 0.8}, unit="Seconds"
    )
    sent = delivery([ENCODERS[fmt](ec2), ENCODERS[fmt]([lam])], stack.keys["acme-ingest"])
    # When Firehose posts it
    response = post(stack, firehose_fn, sent)
    # Then the answer is the contract's success document with the same request id
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "application/json"
    body = body_json(response)
    assert set(body) == {"requestId", "timestamp"}
    assert body["requestId"] == sent.request_id
    assert abs(body["timestamp"] - time.time() * 1000) < 60_000
    # And once the writer consumed the stream, PromQL sees each statistic as a series
    assert stack.consume(stack.stream_event()) == {"batchItemFailures": []}
    at = t / 1000 + 30
    (total,) = query(stack, 'sum(aws_ec2_cpuutilization_sum{source="cloudwatch"})', at)
    assert float(total["value"][1]) == 30.0
    (p99,) = query(stack, "aws_lambda_duration_p99", at)
    assert p99["metric"] == {
        "__name__": "aws_lambda_duration_p99",
        "dimension_FunctionName": "checkout",
        "account_id": ACCOUNT,
        "region": REGION,
        "unit": "Seconds",
        "metric_stream": STREAM,
        "source": "cloudwatch",
        # Added by the tenant's default ingest policy (docs/ingest-policy.md): the test key has no labels.
        "environment": "unknown",
        "owner": "unknown",
    }
    assert float(p99["value"][1]) == 0.8
    (average,) = query(
        stack,
        'aws_ec2_cpuutilization_sum{dimension_InstanceId="i-2"} / ignoring(__name__) '
        'aws_ec2_cpuutilization_count{dimension_InstanceId="i-2"}',
        at,
    )
    assert float(average["value"][1]) == 10.0


def test_bad_records_are_skipped_and_the_delivery_succeeds(stack: Stack, firehose_fn: Any) -> None:
    # Given a delivery with one good record and one that is not a metric stream record
    t = period_start()
    good = json_record([Point("AWS/SQS", "NumberOfMessagesSent", t, {"QueueName": "orders"}, sum=5.0)])
    sent = delivery([b"garbage", good], stack.keys["acme-ingest"])
    # When posted, Then it is a success (a retry could not fix the bad record) and the good data is stored
    response = post(stack, firehose_fn, sent)
    assert response["statusCode"] == 200
    assert "errorMessage" not in body_json(response)
    stack.consume(stack.stream_event())
    (sent_total,) = query(stack, "aws_sqs_numberofmessagessent_sum", t / 1000 + 30)
    assert float(sent_total["value"][1]) == 5.0


def test_a_delivery_without_usable_records_is_a_400_with_the_contract_body(stack: Stack, firehose_fn: Any) -> None:
    sent = delivery([b"garbage", b"{}"], stack.keys["acme-ingest"])
    response = post(stack, firehose_fn, sent)
    assert response["statusCode"] == 400
    body = body_json(response)
    assert body["requestId"] == sent.request_id
    assert "none of the 2 records" in body["errorMessage"]


@pytest.mark.parametrize(
    ("key_name", "status", "fragment"),
    [
        (None, 401, "missing X-Amz-Firehose-Access-Key"),
        ("nck_000000000000_wrongwrongwrongwrongwrong", 401, "invalid API key"),
        ("acme-read", 403, "needs role 'ingest'"),
    ],
)
def test_the_access_key_is_checked(
    stack: Stack, firehose_fn: Any, key_name: str | None, status: int, fragment: str, firehose_log: io.StringIO
) -> None:
    # Given a delivery whose access key is missing, unknown or of the wrong role
    key = stack.keys.get(key_name, key_name) if key_name else None
    sent = delivery([json_record([Point("AWS/EC2", "CPUUtilization", period_start())])], key)
    # When posted, Then it is refused in the contract's shape, echoing the request id
    response = post(stack, firehose_fn, sent)
    assert response["statusCode"] == status
    body = body_json(response)
    assert body["requestId"] == sent.request_id
    assert fragment in body["errorMessage"]
    assert stack.stream_event() == {"Records": []}
    # And the key is never logged
    assert "request refused" in firehose_log.getvalue()
    if key is not None:
        assert key not in firehose_log.getvalue()


def test_tenants_only_see_their_own_cloudwatch_data(stack: Stack, firehose_fn: Any) -> None:
    t = period_start()
    sent = delivery(
        [json_record([Point("AWS/EC2", "CPUUtilization", t, {"InstanceId": "i-9"})])], stack.keys["globex-ingest"]
    )
    assert post(stack, firehose_fn, sent)["statusCode"] == 200
    stack.consume(stack.stream_event())
    assert query(stack, "aws_ec2_cpuutilization_sum", t / 1000 + 30) == []


def test_a_body_inflating_past_the_limit_is_a_413(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the function configured with a small decoded-size limit
    monkeypatch.setenv("NOVACRON_MAX_DECODED_BYTES", "65536")
    fn = load_handler(WIRING.function(FIREHOSE))
    sent = delivery([], stack.keys["acme-ingest"])
    sent.body = gzip.compress(b" " * 1_000_000)
    # When a body inflating past it arrives, Then the answer is a 413 in the contract's shape
    response = post(stack, fn, sent)
    assert response["statusCode"] == 413
    assert body_json(response)["requestId"] == sent.request_id
