"""The detector's adapters against moto: state table, anomalies table and the event bus."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from novacron.adapters.anomalies import DynamoAnomalyStore
from novacron.adapters.detector_state import DynamoStateStore
from novacron.adapters.event_bus import EventBridgeSink, EventDeliveryError
from novacron.detect.events import DETECTED, SOURCE, Anomaly, AnomalyEvent, Severity, Status, episode_id
from novacron.detect.service import StoredState
from novacron.local.resources import physical_name
from novacron.wiring import ANOMALIES_TABLE, DETECTOR_STATE_TABLE, EVENT_BUS
from tests.unit.detect.conftest import episode

START_MS = 1_790_000_000_000


def anomaly(tenant: str = "acme", start_ms: int = START_MS, status: Status = Status.OPEN) -> Anomaly:
    return episode(
        start_ms,
        id=episode_id(tenant, "00ff", start_ms),
        tenant=tenant,
        status=status,
        end_ms=start_ms + 60_000 if status is Status.RESOLVED else None,
        value=200.0,
        lower=90.0,
        upper=110.0,
        score=0.99,
        confidence=0.8,
        severity=Severity.CRITICAL,
    )


def test_states_round_trip_in_one_batch_read(moto_wiring):
    # Given 150 stored series states (more than one BatchGetItem request holds)
    store = DynamoStateStore(physical_name(DETECTOR_STATE_TABLE))
    states = {("acme", f"{i:016x}"): StoredState(bytes([i % 256]) * 50, json.dumps({"i": i})) for i in range(150)}
    store.put_states(states, expires_at=2_000_000_000)
    # When they are read back with a key that was never stored
    found = store.get_states([*states, ("acme", "missing")])
    # Then every stored state comes back, and the missing one is absent
    assert found == states


def test_state_items_carry_the_tenant_scoped_key_and_ttl(moto_wiring):
    # Given one stored state
    DynamoStateStore(physical_name(DETECTOR_STATE_TABLE)).put_states(
        {("acme", "00ff"): StoredState(b"\x00\x01", "{}")}, expires_at=1_234
    )
    # When the raw item is read
    item = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=physical_name(DETECTOR_STATE_TABLE), Key={"pk": {"S": "acme#00ff"}}
    )["Item"]
    # Then it is keyed by tenant#series, binary, with the TTL attribute
    assert item["state"] == {"B": b"\x00\x01"}
    assert item["expires_at"] == {"N": "1234"}


def test_anomalies_are_rewritten_in_place_and_listed_by_start(moto_wiring):
    # Given an episode stored open, then resolved, and another tenant's episode
    store = DynamoAnomalyStore(physical_name(ANOMALIES_TABLE))
    store.put_anomalies([anomaly()], expires_at=2_000_000_000)
    store.put_anomalies([anomaly(status=Status.RESOLVED), anomaly(start_ms=START_MS + 3_600_000)], 2_000_000_000)
    store.put_anomalies([anomaly(tenant="globex")], expires_at=2_000_000_000)
    # When acme's episodes of the first half hour are listed
    listed = store.list_anomalies("acme", START_MS, START_MS + 1_800_000)
    # Then only the resolved version of the first episode is there
    assert listed == [anomaly(status=Status.RESOLVED)]
    # ... and the whole range holds both of acme's episodes, oldest first, up to the limit
    assert [a.start_ms for a in store.list_anomalies("acme", 0, START_MS * 2)] == [START_MS, START_MS + 3_600_000]
    assert len(store.list_anomalies("acme", 0, START_MS * 2, limit=1)) == 1


def test_events_reach_a_rule_on_the_bus(moto_wiring):
    # Given a rule on the bus sending the detector's events to a queue
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = physical_name(EVENT_BUS)
    events.put_rule(Name="anomalies", EventBusName=bus, EventPattern=json.dumps({"source": [SOURCE]}))
    events.put_targets(Rule="anomalies", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    # When 12 events are put (two PutEvents calls)
    sent = [AnomalyEvent(DETECTED, anomaly(start_ms=START_MS + i)) for i in range(12)]
    EventBridgeSink(bus).put_events(sent)
    # Then all 12 arrive, with the anomaly as their detail
    received = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        received.extend(json.loads(m["Body"]) for m in batch)
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )
    assert sorted(r["detail"]["id"] for r in received) == sorted(e.anomaly.id for e in sent)
    assert {r["detail-type"] for r in received} == {DETECTED}


class _FlakyClient:
    """A PutEvents stub failing the first entry of each call ``failures`` times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        self.calls.append(Entries)
        results: list[dict[str, Any]] = [{"EventId": "x"} for _ in Entries]
        if self.failures:
            self.failures -= 1
            results[0] = {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}
        return {"FailedEntryCount": int(results[0].get("ErrorCode") is not None), "Entries": results}


def test_failed_entries_are_sent_again():
    # Given a bus that throttles one entry twice
    client = _FlakyClient(failures=2)
    sink = EventBridgeSink("bus", client=client, sleep=lambda _: None)
    # When three events are put
    sink.put_events([AnomalyEvent(DETECTED, anomaly(start_ms=START_MS + i)) for i in range(3)])
    # Then only the failed entry is sent again, until it goes through
    assert [len(call) for call in client.calls] == [3, 1, 1]


def test_entries_that_never_go_through_raise():
    # Given a bus that always throttles
    sink = EventBridgeSink("bus", client=_FlakyClient(failures=99), attempts=3, sleep=lambda _: None)
    # When an event is put
    # Then it raises, naming the error
    with pytest.raises(EventDeliveryError, match="ThrottlingException"):
        sink.put_events([AnomalyEvent(DETECTED, anomaly())])
