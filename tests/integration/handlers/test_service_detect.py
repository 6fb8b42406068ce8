"""The service scorer against moto: a fault on a service with a model → a service-level episode with its drivers,
stored and on the bus; users' feedback on it reaches the next training, whose model is scored in shadow."""

from __future__ import annotations

import inspect
import json
import time
from typing import Any

import boto3
import pytest

from novacron.detect.trainer import MINUTE_MS
from novacron.local.handlers import load_handler, make_context
from novacron.local.resources import physical_name
from novacron.local.scheduler import scheduled_event
from novacron.wiring import ANOMALIES_TABLE, DETECTOR_STATE_TABLE, EVENT_BUS, SERVICE_DETECT, WIRING
from tests.integration.handlers.conftest import Stack, body_json
from tests.integration.handlers.test_detect_trainer import (  # the trainer's fixtures, shared
    HOUR_MS,
    history_window,  # noqa: F401
    minute_now,
    registry_json,
    trainer,  # noqa: F401
    write_services,
)

SCORING = next(s for s in WIRING.schedules if s.function == SERVICE_DETECT)


@pytest.fixture
def scorer(history_window: None, stack: Stack) -> Any:  # noqa: F811
    """The service scorer handler, loaded inside the moto stack; ``scorer(later_ms)`` runs it that much later."""
    fn = load_handler(WIRING.function(SERVICE_DETECT))
    # The handler module's scorer: setting its clock moves a run in time.
    service_scorer = inspect.unwrap(fn).__globals__["scorer"]

    def run(later_ms: int = 0) -> Any:
        service_scorer.clock_ms = lambda: int(time.time() * 1000) + later_ms
        return fn(scheduled_event(SCORING), make_context(WIRING.function(SERVICE_DETECT)))

    return run


@pytest.fixture
def alerts_queue(stack: Stack) -> str:
    """An SQS queue receiving the bus's detector events through a rule, as the alerting side would."""
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="service-anomaly-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = physical_name(EVENT_BUS)
    events.put_rule(Name="detector", EventBusName=bus, EventPattern=json.dumps({"source": ["novacron.detector"]}))
    events.put_targets(Rule="detector", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return str(url)


def received(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def stored_anomalies() -> list[dict[str, Any]]:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    items = dynamodb.scan(TableName=physical_name(ANOMALIES_TABLE))["Items"]
    return [json.loads(i["anomaly"]["S"]) for i in items if "anomaly" in i]


def test_a_service_fault_becomes_an_explained_episode_and_feedback_reaches_the_shadow(
    history_window,  # noqa: F811
    stack,
    trainer,  # noqa: F811
    scorer,
    alerts_queue,
):
    # Given four hours of healthy history, and v1 models trained on it
    now = minute_now()
    fault = (now - 15 * MINUTE_MS, now + HOUR_MS)
    write_services(stack, now - 4 * HOUR_MS, now - 16 * MINUTE_MS)
    assert trainer()["ModelsTrained"] == 2
    # ... then payment's errors and latency going up for the last quarter of an hour
    write_services(stack, now - 4 * HOUR_MS, now, faults={"payment": fault})
    # When the service scorer runs
    summary = scorer()
    # Then payment has an open service-level episode, explained by the features that moved
    assert summary["ServiceAnomaliesOpened"] == 1
    [anomaly] = stored_anomalies()
    assert anomaly["labels"] == {"service": "payment"}
    assert (anomaly["scored_as"], anomaly["methods"], anomaly["status"]) == ("service", ["isolation_forest"], "open")
    drivers = [d["feature"] for d in anomaly["drivers"]]
    assert set(drivers[:2]) == {"error ratio", "latency mean (http_request_duration_seconds)"}
    # ... announced on the bus
    [event] = received(alerts_queue)
    assert (event["detail-type"], event["detail"]["id"]) == ("AnomalyDetected", anomaly["id"])
    # ... and its state kept under the service's own key
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    keys = {i["pk"]["S"] for i in dynamodb.scan(TableName=physical_name(DETECTOR_STATE_TABLE))["Items"]}
    assert keys == {"acme#service/api", "acme#service/payment"}
    # When a second run comes in the same minute, nothing new is announced
    scorer()
    assert received(alerts_queue) == []
    # When an admin confirms the episode, and the trainer runs again
    verdict = json.dumps({"verdict": "true_positive", "comment": "payment db"}).encode()
    path = f"/api/v1/anomalies/{anomaly['id']}/feedback"
    answer = stack.http(stack.admin, "POST", path, key=stack.keys["acme-admin"], body=verdict)
    assert answer["statusCode"] in (200, 201), body_json(answer)
    trainer()
    # Then payment's v2 runs in shadow, trained without the confirmed minutes
    payment = registry_json("payment")
    assert (payment["current"], payment["shadow"]) == (1, 2)
    assert payment["models"]["2"]["points"] < payment["models"]["1"]["points"] + 16
    # And the scorer's next minute scores the shadow beside the current model, without a second episode
    scorer(MINUTE_MS)
    state = dynamodb.get_item(TableName=physical_name(DETECTOR_STATE_TABLE), Key={"pk": {"S": "acme#service/payment"}})[
        "Item"
    ]
    meta = json.loads(state["meta"]["S"])
    assert meta["shadow"]["version"] == 2
    assert len(stored_anomalies()) == 1
