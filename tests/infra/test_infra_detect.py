"""The streaming detector's deployment: its bus, tables, stream consumer and least-privilege role."""

from __future__ import annotations

from typing import Any

import pytest

from novacron.wiring import (
    ADMIN,
    ALERT,
    ANOMALIES_TABLE,
    DETECT,
    DETECTOR_STATE_TABLE,
    EVENT_BUS,
    METRICS_STREAM,
    SERVICE_DETECT,
    SETTINGS_TABLE,
    WIRING,
)

pytestmark = pytest.mark.infra


def _role_statements(synthesized, function: str) -> list[dict[str, Any]]:
    role_id = synthesized.logical_id(synthesized.stack.functions.by_name[function].role)
    return [
        statement
        for policy in synthesized.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def test_the_event_bus_exists_encrypted_with_the_stack_key(synthesized):
    # Given the synthesized app
    # When its event buses are listed
    buses = synthesized.of_type("AWS::Events::EventBus")
    # Then the declared bus is there, encrypted with the stack's customer managed key
    bus_id = synthesized.logical_id(synthesized.stack.resources.buses[EVENT_BUS])
    assert set(buses) == {bus_id}
    key_id = synthesized.logical_id(synthesized.stack.resources.key)
    assert buses[bus_id]["Properties"]["KmsKeyIdentifier"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_the_detector_consumes_the_metrics_stream(synthesized):
    # Given the detect function and the metrics stream
    fn_id = synthesized.logical_id(synthesized.stack.functions.by_name[DETECT])
    stream_id = synthesized.logical_id(synthesized.stack.resources.streams[METRICS_STREAM])
    # When the event source mappings are listed
    mappings = [
        m["Properties"]
        for m in synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Fn::GetAtt": [fn_id, "Arn"]}
    ]
    # Then exactly one maps the metrics stream to it, reporting batch item failures
    assert len(mappings) == 1
    assert mappings[0]["EventSourceArn"] == {"Fn::GetAtt": [stream_id, "Arn"]}
    assert mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_only_the_detector_may_put_events_and_only_on_its_bus(synthesized):
    # Given the bus
    bus_id = synthesized.logical_id(synthesized.stack.resources.buses[EVENT_BUS])
    # When every function's role is read
    putters = {}
    for decl in WIRING.functions:
        for statement in _role_statements(synthesized, decl.name):
            if any(a.startswith("events:") for a in _actions(statement)):
                putters.setdefault(decl.name, []).append(statement)
    # Then only the detectors (per series, per service), the alert function and the admin function (incident
    # actions) put events, with exactly PutEvents, on exactly that bus
    assert set(putters) == {DETECT, SERVICE_DETECT, ALERT, ADMIN}
    for detector in (DETECT, SERVICE_DETECT, ALERT, ADMIN):
        [statement] = putters[detector]
        assert _actions(statement) == ["events:PutEvents"]
        assert statement["Resource"] == {"Fn::GetAtt": [bus_id, "Arn"]}


def test_the_detector_reads_and_writes_its_state_and_only_writes_anomalies(synthesized):
    # Given the detector's tables
    res = synthesized.stack.resources
    state_id = synthesized.logical_id(res.tables[DETECTOR_STATE_TABLE])
    anomalies_id = synthesized.logical_id(res.tables[ANOMALIES_TABLE])
    # When its role's table statements are read
    by_table: dict[str, set[str]] = {}
    for statement in _role_statements(synthesized, DETECT):
        resource = statement["Resource"]
        if isinstance(resource, dict) and "Fn::GetAtt" in resource:
            by_table.setdefault(resource["Fn::GetAtt"][0], set()).update(_actions(statement))
    # Then it batch-reads and writes states, writes anomalies without reading them, and nothing else
    assert {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"} <= by_table[state_id]
    assert "dynamodb:BatchWriteItem" in by_table[anomalies_id]
    assert not {"dynamodb:Query", "dynamodb:GetItem", "dynamodb:Scan"} & by_table[anomalies_id]
    # ... reads tenants' detection policies from the settings table without writing it, and nothing else
    settings_id = synthesized.logical_id(res.tables[SETTINGS_TABLE])
    assert "dynamodb:GetItem" in by_table[settings_id]
    assert not {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} & by_table[settings_id]
    other_tables = {synthesized.logical_id(t) for name, t in res.tables.items()} - {state_id, anomalies_id, settings_id}
    assert not other_tables & set(by_table)


def test_both_detector_tables_expire_items(synthesized):
    # Given the detector's tables
    res = synthesized.stack.resources
    for name in (DETECTOR_STATE_TABLE, ANOMALIES_TABLE):
        # When their properties are read
        props = synthesized.resources[synthesized.logical_id(res.tables[name])]["Properties"]
        # Then TTL is on, on expires_at
        assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
