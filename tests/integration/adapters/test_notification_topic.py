"""Notification requests onto the notifications topic: every message arrives whole; failures are retried, then raise."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from novacron.adapters.notification_topic import NotificationPublishError, NotificationTopic
from novacron.alert.state import NotificationRequest
from novacron.local.resources import topic_arn
from novacron.notify.model import Action, IncidentNotification, Severity, Status
from novacron.wiring import NOTIFICATIONS_TOPIC


def request(i: int, padding: int = 0) -> NotificationRequest:
    notification = IncidentNotification(
        action=Action.OPENED,
        tenant="acme",
        incident_id=f"incident-{i}",
        sequence=1,
        title="payment: HighErrors",
        summary="x" * padding,
        severity=Severity.CRITICAL,
        priority=2,
        status=Status.OPEN,
        started_at=datetime(2027, 1, 15, 8, 0, tzinfo=UTC),
    )
    return NotificationRequest(notification, "inbox", ("inbox[0]",))


def test_every_request_reaches_a_subscriber_whole(moto_wiring: None) -> None:
    # Given a queue subscribed to the topic (raw delivery)
    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    queue_url = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    arn = topic_arn(NOTIFICATIONS_TOPIC)
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})

    # When 23 requests are published, some large enough that a batch must be split by size
    requests = [request(i, padding=100_000 if i % 3 == 0 else 0) for i in range(23)]
    NotificationTopic(arn).publish(requests)

    # Then each arrives once, and parses back to the request
    received = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        received += [NotificationRequest.from_json(json.loads(m["Body"])) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch]
        )
    assert sorted(r.notification.incident_id for r in received) == sorted(f"incident-{i}" for i in range(23))
    assert received[0] in requests


class FlakyClient:
    """PublishBatch that fails some entries (throttled) a number of times."""

    def __init__(self, failures: int, sender_fault: bool = False) -> None:
        self.failures = failures
        self.sender_fault = sender_fault
        self.calls: list[list[str]] = []

    def publish_batch(self, TopicArn: str, PublishBatchRequestEntries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        ids = [e["Id"] for e in PublishBatchRequestEntries]
        self.calls.append(ids)
        if len(self.calls) <= self.failures:
            failed = [{"Id": ids[0], "Code": "Throttled", "Message": "slow down", "SenderFault": self.sender_fault}]
            return {"Successful": [{"Id": i} for i in ids[1:]], "Failed": failed}
        return {"Successful": [{"Id": i} for i in ids], "Failed": []}


def test_failed_entries_are_sent_again_alone() -> None:
    # Given a topic that throttles the first entry twice
    client = FlakyClient(failures=2)

    # When three requests are published
    NotificationTopic("arn:aws:sns:us-east-1:1:t", client, sleep=lambda _s: None).publish(
        [request(i) for i in range(3)]
    )

    # Then the failed entry alone was retried until it went through
    assert client.calls == [["0", "1", "2"], ["0"], ["0"]]


@pytest.mark.parametrize(("failures", "sender_fault", "calls"), [(99, False, 5), (99, True, 1)])
def test_requests_that_never_go_through_raise(failures: int, sender_fault: bool, calls: int) -> None:
    # Given a topic that keeps failing an entry (throttled, or refusing it as the sender's fault)
    client = FlakyClient(failures, sender_fault)
    topic = NotificationTopic("arn:aws:sns:us-east-1:1:t", client, sleep=lambda _s: None)

    # When publishing / Then it raises naming the error, after retries unless the request itself is wrong
    with pytest.raises(NotificationPublishError, match=r"1 notification requests were not published.*Throttled"):
        topic.publish([request(1)])
    assert len(client.calls) == calls
