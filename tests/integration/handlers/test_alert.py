"""The alert function against moto: data ingested and stored, a rule file and routing stored → a scheduled run
opens an incident, puts IncidentOpened on the bus, publishes a notification request, and writes ALERTS back."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest

from novacron.adapters.alerting_table import DynamoAlertingStore
from novacron.local.handlers import load_handler, make_context
from novacron.local.resources import physical_name, topic_arn
from novacron.local.scheduler import scheduled_event
from novacron.wiring import ALERT, ALERTING_TABLE, EVENT_BUS, INCIDENTS_TABLE, NOTIFICATIONS_TOPIC, WIRING
from tests.integration.handlers.conftest import Stack, body_json

EVALUATION = next(s for s in WIRING.schedules if s.function == ALERT)

RULES = """\
groups:
  - name: availability
    rules:
      - alert: TargetDown
        expr: up == 0
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.instance }} is down"
"""
ROUTING = """\
route:
  receiver: inbox
  group_by: [incident]
  group_wait: 0s
receivers:
  - name: inbox
    inbox_configs:
      - send_resolved: true
"""


def queue_for(name: str) -> tuple[str, str]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def received(url: str) -> list[Any]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


@pytest.fixture
def listeners(stack: Stack) -> dict[str, str]:
    """Queues receiving the notifications topic's messages (raw) and the bus's incident events."""
    notifications_url, notifications_arn = queue_for("notifications-listener")
    boto3.client("sns", region_name="us-east-1").subscribe(
        TopicArn=topic_arn(NOTIFICATIONS_TOPIC),
        Protocol="sqs",
        Endpoint=notifications_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    events_url, events_arn = queue_for("incident-events")
    events = boto3.client("events", region_name="us-east-1")
    bus = physical_name(EVENT_BUS)
    events.put_rule(Name="incidents", EventBusName=bus, EventPattern=json.dumps({"source": ["novacron.alerting"]}))
    events.put_targets(Rule="incidents", EventBusName=bus, Targets=[{"Id": "queue", "Arn": events_arn}])
    return {"notifications": notifications_url, "events": events_url}


def ingest(stack: Stack, series: list[dict[str, Any]]) -> None:
    response = stack.http(
        stack.ingest,
        "POST",
        "/api/v1/ingest",
        key=stack.keys["acme-ingest"],
        body=json.dumps({"series": series}).encode(),
        headers={"content-type": "application/json"},
    )
    assert response["statusCode"] == 200, response
    stack.consume(stack.stream_event())


def run_alert_function() -> dict[str, Any]:
    handler = load_handler(WIRING.function(ALERT))
    return handler(scheduled_event(EVALUATION), make_context(WIRING.function(ALERT)))  # type: ignore[no-any-return]


def test_a_scheduled_run_turns_a_firing_rule_into_an_incident_an_event_and_a_notification(
    stack: Stack, listeners: dict[str, str]
) -> None:
    # Given acme's checkout calling payment, and payment's target down for the last two minutes
    now = int(time.time() * 1000)
    samples = [[now - s * 1000, 0.0] for s in (120, 90, 60, 30, 1)]
    ingest(
        stack,
        [
            {"labels": {"__name__": "up", "service": "payment", "instance": "payment:9000"}, "samples": samples},
            {
                "labels": {"__name__": "rpc_client_requests_total", "service": "checkout", "target": "payment"},
                "samples": [[now - 1000, 42.0]],
            },
        ],
    )
    # And a rule file and routing stored for acme (globex has none)
    store = DynamoAlertingStore(physical_name(ALERTING_TABLE))
    assert store.put_rule_file("acme", "availability.yml", RULES, "key-1", now // 1000, 0)
    assert store.put_alertmanager_config("acme", ROUTING, "key-1", now // 1000, 0)

    # When the scheduled run happens
    summary = run_alert_function()

    # Then acme's rule fired into one stored incident, and nothing failed
    assert summary["failed"] == []
    assert (summary["RulesEvaluated"], summary["IncidentsOpened"], summary["NotificationsPublished"]) == (1, 1, 1)
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=physical_name(INCIDENTS_TABLE))["Items"]
    (item,) = items
    incident = json.loads(item["incident"]["S"])
    assert item["pk"]["S"] == "acme"
    assert incident["title"] == "payment: TargetDown"
    # And IncidentOpened is on the bus with the incident
    (event,) = received(listeners["events"])
    assert (event["detail-type"], event["detail"]["id"]) == ("IncidentOpened", incident["id"])
    # And the notifier was asked to tell the inbox that it opened
    (message,) = received(listeners["notifications"])
    assert (message["receiver"], message["integrations"]) == ("inbox", ["inbox[0]"])
    assert message["notification"]["action"] == "opened"
    assert message["notification"]["incident_id"] == incident["id"]
    # And ALERTS went through the metrics stream: once stored, PromQL sees the firing alert
    stack.consume(stack.stream_event())
    query = urlencode({"query": "ALERTS", "time": time.time()})  # the run may have crossed into the next minute
    answer = body_json(stack.http(stack.query, "GET", "/api/v1/query", key=stack.keys["acme-read"], query=query))
    (alert,) = answer["data"]["result"]
    assert alert["metric"]["alertstate"] == "firing"
    assert alert["metric"]["alertname"] == "TargetDown"

    # When it runs again with nothing new
    again = run_alert_function()

    # Then nothing more is opened, put or published
    assert (again["IncidentsOpened"], again["NotificationsPublished"]) == (0, 0)
    assert received(listeners["events"]) == []
    assert received(listeners["notifications"]) == []
