"""The alert function in CloudFormation: every minute, the PromQL layers, its environment and least privilege."""

from __future__ import annotations

from typing import Any

import pytest

from novacron.wiring import (
    ALERT,
    ALERTING_TABLE,
    ANOMALIES_TABLE,
    BLOCKS_TABLE,
    EVENT_BUS,
    INCIDENTS_TABLE,
    METRICS_STREAM,
    NOTIFICATIONS_TOPIC,
)
from tests.infra.test_infra_iam import _granted

pytestmark = pytest.mark.infra


def _ids(synthesized: Any) -> dict[str, str]:
    res = synthesized.stack.resources
    return {
        "function": synthesized.logical_id(synthesized.stack.functions.by_name[ALERT]),
        "topic": synthesized.logical_id(res.topics[NOTIFICATIONS_TOPIC]),
        "alerting": synthesized.logical_id(res.tables[ALERTING_TABLE]),
        "incidents": synthesized.logical_id(res.tables[INCIDENTS_TABLE]),
        "anomalies": synthesized.logical_id(res.tables[ANOMALIES_TABLE]),
        "blocks": synthesized.logical_id(res.tables[BLOCKS_TABLE]),
        "stream": synthesized.logical_id(res.streams[METRICS_STREAM]),
        "bus": synthesized.logical_id(res.buses[EVENT_BUS]),
    }


def test_the_alert_function_runs_every_minute(synthesized: Any) -> None:
    # Given the synthesized app / When its schedules are read
    ids = _ids(synthesized)
    (schedule,) = [
        s["Properties"]
        for s in synthesized.of_type("AWS::Scheduler::Schedule").values()
        if s["Properties"]["Description"].startswith("NovaCron alert-evaluation:")
    ]
    # Then one invokes the alert function every minute
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": [ids["function"], "Arn"]}


def test_the_alert_function_has_its_size_layers_and_the_topic_by_arn(synthesized: Any) -> None:
    # Given the alert function's properties
    ids = _ids(synthesized)
    props = synthesized.resources[ids["function"]]["Properties"]
    # Then 1 GB, a minute, the core and science layers (the PromQL engine), the topic named by its ARN
    assert (props["MemorySize"], props["Timeout"]) == (1024, 60)
    assert len(props["Layers"]) == 2
    assert props["Environment"]["Variables"]["NOVACRON_NOTIFICATIONS_TOPIC"] == {"Ref": ids["topic"]}


def test_the_alert_function_may_publish_write_rule_output_and_incidents_and_only_read_data(synthesized: Any) -> None:
    # Given what the alert function's role grants
    ids = _ids(synthesized)
    granted = _granted(synthesized, ALERT)
    writes = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")
    # Then it publishes to the notifications topic, puts records and events, and writes only its own tables
    assert granted[ids["topic"]] == {"sns:Publish"}
    assert {"kinesis:PutRecords"} <= granted[ids["stream"]]
    assert not {a for a in granted[ids["stream"]] if a.startswith("kinesis:Get")}
    assert granted[ids["bus"]] == {"events:PutEvents"}
    for table in ("alerting", "incidents"):
        assert {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:BatchWriteItem"} <= granted[ids[table]]
    for table in ("anomalies", "blocks"):
        assert "dynamodb:Query" in granted[ids[table]]
        assert not {a for a in granted[ids[table]] if a.endswith(writes)}
