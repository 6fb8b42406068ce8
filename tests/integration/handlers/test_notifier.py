"""The notifier function against moto: SNS events in → the inbox (and its API), a local receiver, dead letters."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from novacron.adapters.alerting_table import DynamoAlertingStore
from novacron.alert.state import NotificationRequest
from novacron.local.handlers import load_handler, make_context
from novacron.local.resources import physical_name, topic_arn
from novacron.local.topics import sns_event
from novacron.notify.model import Action
from novacron.wiring import ALERTING_TABLE, NOTIFICATIONS_TOPIC, NOTIFIER, NOTIFY_DLQ, WIRING
from tests.integration.handlers.conftest import Stack, body_json
from tests.unit.notify.conftest import ROUTING_KEY, incident
from tests.unit.notify.receivers import PagerDutyEvents, Reply

Notify = Callable[[str], None]


@pytest.fixture
def notify(stack: Stack) -> Notify:
    """Deliver one SNS message (its text) to the notifier, as SNS invokes it."""
    handler = load_handler(WIRING.function(NOTIFIER))
    arn = topic_arn(NOTIFICATIONS_TOPIC)

    def deliver(message: str) -> None:
        event = sns_event({"TopicArn": arn, "Message": message}, f"{arn}:sub-1")
        handler(event, make_context(WIRING.function(NOTIFIER)))

    return deliver


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyEvents]:
    with PagerDutyEvents(ROUTING_KEY) as receiver:
        yield receiver


def request(receiver: str | None = "inbox", action: Action = Action.OPENED, sequence: int = 1, **kw: Any) -> str:
    return json.dumps(NotificationRequest(incident(action, sequence), receiver, **kw).to_json())


def dead_letters() -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=physical_name(NOTIFY_DLQ))["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def inbox(stack: Stack, key: str, query: str = "") -> dict[str, Any]:
    return stack.http(stack.query, "GET", "/api/v1/notifications", key=stack.keys[key], query=query)


def configure(tenant: str, text: str) -> None:
    assert DynamoAlertingStore(physical_name(ALERTING_TABLE)).put_alertmanager_config(tenant, text, "key-1", 0, 0)


def test_with_no_configuration_notifications_land_in_the_inbox_readable_through_the_api(
    stack: Stack, notify: Notify
) -> None:
    # Given a tenant without any Alertmanager configuration
    # When the incident's opening and, by hand, its acknowledgement arrive (the second redelivered by SNS)
    notify(request("inbox"))
    notify(request(None, Action.ACKNOWLEDGED, 2))
    notify(request(None, Action.ACKNOWLEDGED, 2))
    # Then the tenant's inbox shows both once, newest first
    response = inbox(stack, "acme-read")
    assert response["statusCode"] == 200
    entries = body_json(response)["data"]["notifications"]
    assert [(e["action"], e["sequence"], e["receiver"]) for e in entries] == [
        ("acknowledged", 2, "inbox"),
        ("opened", 1, "inbox"),
    ]
    assert entries[1]["headline"] == "[P1 critical] Opened: Checkout latency high: database slowdown suspected"
    # And another tenant sees nothing of it, a filter on another incident neither
    assert body_json(inbox(stack, "globex-read"))["data"]["notifications"] == []
    assert body_json(inbox(stack, "acme-read", "incident=inc-other"))["data"]["notifications"] == []
    assert len(body_json(inbox(stack, "acme-read", "incident=inc-2026-0001&limit=1"))["data"]["notifications"]) == 1


def test_the_inbox_api_needs_a_key_and_names_a_bad_parameter(stack: Stack) -> None:
    assert stack.http(stack.query, "GET", "/api/v1/notifications")["statusCode"] == 401
    response = inbox(stack, "acme-read", "limit=5000")
    assert response["statusCode"] == 400
    assert "limit" in body_json(response)["error"]


def test_a_configured_receiver_is_told_once_and_a_refusal_is_dead_lettered(
    stack: Stack, notify: Notify, pagerduty: PagerDutyEvents
) -> None:
    # Given a tenant whose oncall receiver is PagerDuty (a local receiver checking the Events API contract)
    configure(
        "acme",
        f"""\
route:
  receiver: oncall
receivers:
  - name: oncall
    pagerduty_configs:
      - routing_key: {ROUTING_KEY}
        url: {pagerduty.url}/v2/enqueue
""",
    )
    # When the opening is delivered twice (an SNS redelivery)
    notify(request("oncall"))
    notify(request("oncall"))
    # Then PagerDuty got one valid trigger
    assert [r.json["event_action"] for r in pagerduty.requests] == ["trigger"]
    assert pagerduty.problems() == []
    # When PagerDuty refuses the next update with a 400
    pagerduty.script(Reply(400, {"status": "invalid event", "message": "Event object is invalid"}))
    notify(request(None, Action.ACKNOWLEDGED, 2))
    # Then the update is on the dead-letter queue with the reason, and was not retried
    (letter,) = dead_letters()
    assert (letter["kind"], letter["receiver"], letter["retryable"]) == ("delivery", "oncall/pagerduty[0]", False)
    assert letter["reason"].startswith("HTTP 400")
    assert letter["notification"]["sequence"] == 2
    assert len(pagerduty.requests) == 2


def test_a_malformed_message_is_dead_lettered_with_why_and_not_retried(notify: Notify) -> None:
    # When a message that is not a notification request arrives, Then the invocation succeeds (no retry)
    notify('{"version": 1, "receiver": "inbox", "notification": {"tenant": "acme"}}')
    # And the message is on the dead-letter queue saying what is wrong
    (letter,) = dead_letters()
    assert letter["kind"] == "malformed"
    assert letter["reason"].startswith("malformed notification request: action: expected one of opened,")
    assert json.loads(letter["message"])["notification"] == {"tenant": "acme"}
