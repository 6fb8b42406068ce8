"""The streaming detector against moto: metrics-stream records → states, anomalies and bus events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import boto3
import numpy as np
import pytest

from novacron.local.handlers import load_handler, make_context
from novacron.local.resources import physical_name
from novacron.records import encode_record
from novacron.wiring import ANOMALIES_TABLE, DETECT, DETECTOR_STATE_TABLE, EVENT_BUS, WIRING
from tests.builders import NOW, timeseries
from tests.integration.handlers.conftest import body_json, kinesis_record

STEP_MS = 60_000
T0 = NOW - 200 * STEP_MS
SPIKE_AT = 100


@pytest.fixture
def detect(stack: Any) -> Any:
    """The detect handler, loaded inside the moto stack (a cold start per test)."""
    return load_handler(WIRING.function(DETECT))


@pytest.fixture
def alerts_queue(stack: Any) -> Iterator[str]:
    """An SQS queue receiving the bus's detector events through a rule, as the alerting side would."""
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="anomaly-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = physical_name(EVENT_BUS)
    events.put_rule(Name="detector", EventBusName=bus, EventPattern=json.dumps({"source": ["novacron.detector"]}))
    events.put_targets(Rule="detector", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return url


def received(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def spiky_record(tenant: str = "acme") -> bytes:
    rng = np.random.default_rng(7)
    values = [100.0 + float(rng.normal(0.0, 2.0)) for _ in range(120)]
    values[SPIKE_AT] = 250.0
    samples = [(T0 + i * STEP_MS, v) for i, v in enumerate(values)]
    series = timeseries({"__name__": "latency_seconds", "job": "api"}, samples)
    return encode_record(tenant, NOW, [series.SerializeToString()])


def test_a_spike_becomes_a_stored_episode_and_two_bus_events(stack, detect, alerts_queue):
    # Given a metrics-stream batch holding a spiky series, and a poison record
    event = {"Records": [kinesis_record(spiky_record(), "1"), kinesis_record(b"garbage", "2")]}
    # When the detector consumes it
    response = detect(event, make_context(WIRING.function(DETECT)))
    # Then only the poison record is a batch item failure
    assert response == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    # ... the series' state is stored under its tenant, with a TTL
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    states = dynamodb.scan(TableName=physical_name(DETECTOR_STATE_TABLE))["Items"]
    assert len(states) == 1
    assert states[0]["pk"]["S"].startswith("acme#")
    assert "expires_at" in states[0]
    # ... one resolved episode is stored, keyed by its start
    [item] = dynamodb.scan(TableName=physical_name(ANOMALIES_TABLE))["Items"]
    assert item["pk"] == {"S": "acme"}
    assert item["status"] == {"S": "resolved"}
    anomaly = json.loads(item["anomaly"]["S"])
    assert item["sk"] == {"S": f"{T0 + SPIKE_AT * STEP_MS:013d}#{anomaly['id']}"}
    assert anomaly["value"] == 250.0
    assert anomaly["methods"] == ["spike"]
    # ... and the bus received AnomalyDetected then AnomalyResolved for that episode
    events = received(alerts_queue)
    assert sorted(e["detail-type"] for e in events) == ["AnomalyDetected", "AnomalyResolved"]
    assert {e["detail"]["id"] for e in events} == {anomaly["id"]}
    assert {e["source"] for e in events} == {"novacron.detector"}


def test_a_redelivered_batch_emits_nothing_new(stack, detect, alerts_queue):
    # Given a batch the detector consumed, and whose events were read
    event = {"Records": [kinesis_record(spiky_record(), "1")]}
    detect(event, make_context(WIRING.function(DETECT)))
    received(alerts_queue)
    # When a new instance (a cold start) receives the same batch again
    again = load_handler(WIRING.function(DETECT))
    response = again(event, make_context(WIRING.function(DETECT)))
    # Then it succeeds without putting any event: the stored state has seen these samples
    assert response == {"batchItemFailures": []}
    assert received(alerts_queue) == []


def test_the_episodes_are_listed_by_the_query_api_for_their_tenant_only(stack, detect):
    # Given the detector found a spike in acme's series
    detect({"Records": [kinesis_record(spiky_record(), "1")]}, make_context(WIRING.function(DETECT)))
    window = urlencode({"start": (T0 - STEP_MS) / 1000, "end": NOW / 1000})
    # When acme's reader lists the anomalies of the window
    answer = stack.http(stack.query, "GET", "/api/v1/anomalies", key=stack.keys["acme-read"], query=window)
    # Then the episode comes back, explained
    assert answer["statusCode"] == 200, body_json(answer)
    [anomaly] = body_json(answer)["data"]
    assert anomaly["labels"] == {"__name__": "latency_seconds", "job": "api"}
    assert (anomaly["value"], anomaly["methods"], anomaly["status"]) == (250.0, ["spike"], "resolved")
    assert anomaly["lower"] < anomaly["expected"] < anomaly["upper"] < 250.0
    # And globex sees none of it, a bad filter is a 400 naming it, and no key is a 401
    other = stack.http(stack.query, "GET", "/api/v1/anomalies", key=stack.keys["globex-read"], query=window)
    assert body_json(other)["data"] == []
    bad = stack.http(stack.query, "GET", "/api/v1/anomalies", key=stack.keys["acme-read"], query="status=closed")
    assert bad["statusCode"] == 400
    assert "status" in body_json(bad)["error"]
    assert stack.http(stack.query, "GET", "/api/v1/anomalies", query=window)["statusCode"] == 401
