"""The notifier's adapters against moto: the notify-state table, the dead-letter queue, the e-mail topic."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from novacron.adapters.dead_letters import DeadLetterQueueError, SqsDeadLetters
from novacron.adapters.email_topic import SnsEmailPublisher
from novacron.adapters.notify_state import (
    DynamoDeliveryLog,
    DynamoInbox,
    DynamoMessageRefs,
    DynamoRateLimits,
    DynamoToldReceivers,
)
from novacron.local.resources import physical_name, topic_arn
from novacron.notify.delivery import AttemptFailed
from novacron.notify.dispatch import DeadLetter, DeliveryOutcome, OutcomeStatus
from novacron.notify.inbox import InboxEntry
from novacron.notify.ratelimit import BucketState
from novacron.notify.slack import MessageRef
from novacron.wiring import EMAIL_TOPIC, NOTIFY_DLQ, NOTIFY_STATE_TABLE

NOW = 1_790_000_000.0
KEY = "acme/inc-1/1/oncall/pagerduty[0]"


@pytest.fixture
def table(moto_wiring: None) -> str:
    return physical_name(NOTIFY_STATE_TABLE)


def entry(incident: str, sequence: int, at: float, tenant: str = "acme") -> InboxEntry:
    return InboxEntry(tenant, "inbox", incident, "opened", sequence, "critical", f"[P1] {incident}", "text", at)


def test_a_delivery_is_claimed_once_and_its_outcome_ends_it(table: str) -> None:
    log = DynamoDeliveryLog(table, clock=lambda: NOW)
    # Given a first claim
    assert log.claim(KEY, NOW, lease_s=100)
    # Then a second one, while the lease runs, is refused, and so is one after the outcome is recorded
    assert not log.claim(KEY, NOW + 50, lease_s=100)
    log.record(KEY, DeliveryOutcome(KEY, "oncall/pagerduty[0]", OutcomeStatus.DELIVERED, "HTTP 202", 1))
    assert not log.claim(KEY, NOW + 1_000, lease_s=100)
    assert log.outcome(KEY) == "delivered"
    # And another tenant's same incident and receiver is another delivery
    assert log.claim(KEY.replace("acme", "globex", 1), NOW, lease_s=100)


def test_an_abandoned_claim_can_be_taken_again_after_its_lease(table: str) -> None:
    log = DynamoDeliveryLog(table, clock=lambda: NOW)
    # Given a claim whose invocation died (no outcome)
    assert log.claim(KEY, NOW, lease_s=100)
    # Then it cannot be taken during the lease, and can after it
    assert not log.claim(KEY, NOW + 99, lease_s=100)
    assert log.claim(KEY, NOW + 101, lease_s=100)
    assert log.outcome(KEY) is None


def test_message_refs_rate_limits_and_told_receivers_round_trip(table: str) -> None:
    refs, limits, told = DynamoMessageRefs(table), DynamoRateLimits(table), DynamoToldReceivers(table)
    # Message refs
    assert refs.get("acme/inc-1/team/slack[1]") is None
    refs.put("acme/inc-1/team/slack[1]", MessageRef("C0123", "1790000000.000100", 3))
    assert refs.get("acme/inc-1/team/slack[1]") == MessageRef("C0123", "1790000000.000100", 3)
    # Rate-limit buckets (negative levels: tokens reserved on credit)
    limits.save("acme/team/slack[1]", BucketState(-1.5, NOW))
    assert limits.load("acme/team/slack[1]") == BucketState(-1.5, NOW)
    assert limits.load("globex/team/slack[1]") is None
    # Told receivers: a set, added to atomically, per tenant and incident
    for receiver in ("team", "oncall", "team"):
        told.add_told("acme", "inc-1", receiver)
    assert told.told("acme", "inc-1") == ["oncall", "team"]
    assert told.told("globex", "inc-1") == []


def test_the_inbox_lists_newest_first_per_tenant_and_by_incident(table: str) -> None:
    inbox = DynamoInbox(table)
    for i, incident in enumerate(["inc-1", "inc-2", "inc-1", "inc-2"]):
        inbox.append(entry(incident, i + 1, NOW + i))
    inbox.append(entry("inc-9", 1, NOW + 10, tenant="globex"))
    assert [(e.incident_id, e.sequence) for e in inbox.latest("acme", 3)] == [("inc-2", 4), ("inc-1", 3), ("inc-2", 2)]
    assert [e.sequence for e in inbox.latest("acme", 10, "inc-1")] == [3, 1]
    assert inbox.latest("acme", 10)[0] == entry("inc-2", 4, NOW + 3)
    assert [e.tenant for e in inbox.latest("globex", 10)] == ["globex"]


def receive_all(queue: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return list(answer.get("Messages", []))


def test_dead_letters_carry_the_reason_as_attributes_and_the_notification_in_the_body(moto_wiring: None) -> None:
    queue = physical_name(NOTIFY_DLQ)
    letters = SqsDeadLetters(queue)
    letter = DeadLetter(
        KEY, "acme", "oncall/pagerduty[0]", "inc-1", "opened", 1, "HTTP 400: invalid event", 1, False, NOW, {"x": 1}
    )
    letters.put(letter)
    letters.put_malformed("{not json", "malformed notification request: Expecting property name")
    delivery, malformed = receive_all(queue)
    assert json.loads(delivery["Body"]) == {"kind": "delivery", **letter.to_dict()}
    attributes = {k: v["StringValue"] for k, v in delivery["MessageAttributes"].items()}
    assert attributes == {
        "kind": "delivery",
        "reason": "HTTP 400: invalid event",
        "tenant": "acme",
        "receiver": "oncall/pagerduty[0]",
    }
    assert json.loads(malformed["Body"])["message"] == "{not json"
    assert malformed["MessageAttributes"]["kind"]["StringValue"] == "malformed"


def test_an_email_reaches_a_subscription_whose_filter_policy_matches(moto_wiring: None) -> None:
    # Given an address-like subscription (a queue here) that only takes acme's oncall receiver
    sns, sqs = boto3.client("sns", region_name="us-east-1"), boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="mailbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {"tenant": ["acme"], "receiver": ["oncall"]}
    sns.subscribe(
        TopicArn=topic_arn(EMAIL_TOPIC),
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"FilterPolicy": json.dumps(policy), "RawMessageDelivery": "true"},
    )
    publisher = SnsEmailPublisher()
    # When acme's oncall and globex's oncall get an e-mail
    for tenant in ("acme", "globex"):
        message_id = publisher.publish(
            topic_arn(EMAIL_TOPIC), "[P1] db slow", f"body {tenant}", {"tenant": tenant, "receiver": "oncall"}
        )
        assert message_id
    # Then only acme's reached the subscription
    answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    assert [m["Body"] for m in answer["Messages"]] == ["body acme"]


def test_publishing_to_a_missing_topic_is_a_final_failure(moto_wiring: None) -> None:
    with pytest.raises(AttemptFailed) as failed:
        SnsEmailPublisher().publish(topic_arn("no-such-topic"), "s", "m", {"tenant": "acme"})
    assert not failed.value.retryable
    assert failed.value.reason.startswith("SNS NotFound")


def test_release_frees_a_dead_lettered_key_and_never_a_delivered_one(table: str) -> None:
    log = DynamoDeliveryLog(table, clock=lambda: NOW)
    delivered, failed, running = KEY, KEY.replace("/1/", "/2/"), KEY.replace("/1/", "/3/")
    # Given a delivered key, a dead-lettered key and a key claimed by a delivery under way
    for key in (delivered, failed, running):
        assert log.claim(key, NOW, lease_s=100)
    log.record(delivered, DeliveryOutcome(delivered, "oncall/pagerduty[0]", OutcomeStatus.DELIVERED, "HTTP 202", 1))
    log.record(failed, DeliveryOutcome(failed, "oncall/pagerduty[0]", OutcomeStatus.DEAD_LETTERED, "HTTP 503", 5))
    # When each is released
    released = {key: log.release(key) for key in (delivered, failed, running)}
    # Then only the dead-lettered one is, and it can be claimed again
    assert released == {delivered: False, failed: True, running: False}
    assert log.claim(failed, NOW + 1, lease_s=100)
    # And the delivered one keeps its outcome and is never claimed again; the running one keeps its lease
    assert log.outcome(delivered) == "delivered"
    assert not log.claim(delivered, NOW + 1_000, lease_s=100)
    assert not log.claim(running, NOW + 50, lease_s=100)
    # And a key with no claim at all (never made, or expired) is claimable: releasing it says so
    assert log.release(KEY.replace("/1/", "/9/"))
    assert log.table_exists()
    assert not DynamoDeliveryLog("no-such-table").table_exists()


@pytest.fixture
def dlq(moto_wiring: None) -> SqsDeadLetters:
    return SqsDeadLetters(physical_name(NOTIFY_DLQ), visibility_timeout_s=300, wait_s=0)


def dead_letter(sequence: int) -> DeadLetter:
    key = f"acme/inc-1/{sequence}/oncall/pagerduty[0]"
    return DeadLetter(key, "acme", "oncall/pagerduty[0]", "inc-1", "opened", sequence, "HTTP 503", 5, True, NOW, {})


def test_the_redrive_reads_letters_in_batches_of_ten_hidden_until_deleted_or_shown(dlq: SqsDeadLetters) -> None:
    # Given 12 letters on the queue
    for sequence in range(12):
        dlq.put(dead_letter(sequence))
    # When they are received, Then at most ten come at a time, with their bodies, and are then hidden
    first, second = dlq.receive(10), dlq.receive(10)
    assert (len(first), len(second)) == (10, 2)
    assert {json.loads(m.body)["sequence"] for m in first + second} == set(range(12))
    assert dlq.receive(10) == []
    # When two are deleted and the rest shown again at once
    dlq.delete([m.receipt for m in first[:2]])
    dlq.make_visible([m.receipt for m in first[2:] + second])
    # Then the other ten come back now, not after the visibility timeout, and the deleted two never do
    again = dlq.receive(10) + dlq.receive(10)
    assert {m.message_id for m in again} == {m.message_id for m in first[2:] + second}


def test_deleting_with_a_stale_receipt_names_the_failure(dlq: SqsDeadLetters) -> None:
    # Given a received letter that was deleted already
    dlq.put(dead_letter(1))
    (message,) = dlq.receive(10)
    dlq.delete([message.receipt])
    # When it is made visible with its stale receipt, Then the adapter says what failed rather than passing silently
    with pytest.raises(DeadLetterQueueError, match="could not make visible 1 messages"):
        dlq.make_visible([message.receipt])
