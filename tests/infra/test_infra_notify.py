"""The notifier in CloudFormation: subscribed to the notifications topic with its failure queue, least privilege."""

from __future__ import annotations

from typing import Any

import pytest

from novacron.config import NotifierConfig
from novacron.wiring import (
    ALERTING_TABLE,
    EMAIL_TOPIC,
    NOTIFICATIONS_TOPIC,
    NOTIFIER,
    NOTIFY_DLQ,
    NOTIFY_STATE_TABLE,
    WIRING,
)

pytestmark = pytest.mark.infra


def _ids(synthesized: Any) -> dict[str, str]:
    res = synthesized.stack.resources
    return {
        "function": synthesized.logical_id(synthesized.stack.functions.by_name[NOTIFIER]),
        "topic": synthesized.logical_id(res.topics[NOTIFICATIONS_TOPIC]),
        "email": synthesized.logical_id(res.topics[EMAIL_TOPIC]),
        "queue": synthesized.logical_id(res.queues[NOTIFY_DLQ]),
        "alerting": synthesized.logical_id(res.tables[ALERTING_TABLE]),
        "state": synthesized.logical_id(res.tables[NOTIFY_STATE_TABLE]),
    }


def test_the_notifier_is_subscribed_to_the_notifications_topic_with_the_failure_queue(synthesized: Any) -> None:
    ids = _ids(synthesized)
    subscriptions = [
        s["Properties"]
        for s in synthesized.of_type("AWS::SNS::Subscription").values()
        if s["Properties"]["Endpoint"] == {"Fn::GetAtt": [ids["function"], "Arn"]}
    ]
    # One lambda subscription, to the notifications topic; what SNS cannot deliver goes to notify-failures
    assert len(subscriptions) == 1
    (subscription,) = subscriptions
    assert subscription["Protocol"] == "lambda"
    assert subscription["TopicArn"] == {"Ref": ids["topic"]}
    assert subscription["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [ids["queue"], "Arn"]}}
    # And Lambda's asynchronous retries end in the same queue
    (invoke,) = [
        c["Properties"]
        for c in synthesized.of_type("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": ids["function"]}
    ]
    assert invoke["MaximumRetryAttempts"] == 2
    assert invoke["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [ids["queue"], "Arn"]}}}


def test_the_notifier_may_read_configurations_keep_its_state_dead_letter_and_send_email_only(
    synthesized: Any,
) -> None:
    ids = _ids(synthesized)
    role_id = synthesized.logical_id(synthesized.stack.functions.by_name[NOTIFIER].role)
    granted: dict[str, set[str]] = {}
    for policy in synthesized.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            for resource in resources:
                key = (
                    resource.get("Fn::GetAtt", [None])[0] or resource.get("Ref")
                    if isinstance(resource, dict)
                    else resource
                )
                granted.setdefault(str(key), set()).update(actions)
    # The alerting table read-only (no write to users' documents), the state table read-write
    assert not {a for a in granted[ids["alerting"]] if a.endswith(("PutItem", "UpdateItem", "DeleteItem"))}
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"} <= granted[ids["state"]]
    # Send to the failure queue, never receive from it; publish to the email topic, not to the notifications topic
    assert "sqs:SendMessage" in granted[ids["queue"]]
    assert "sqs:ReceiveMessage" not in granted[ids["queue"]]
    assert granted[ids["email"]] == {"sns:Publish"}
    assert ids["topic"] not in granted
    # Nothing else but its logs, X-Ray and the stack's key
    stack = synthesized.stack
    logs = synthesized.logical_id(stack.functions.log_groups[NOTIFIER])
    key = synthesized.logical_id(stack.resources.key)
    assert set(granted) == {ids["alerting"], ids["state"], ids["queue"], ids["email"], logs, key, "*"}
    assert granted["*"] == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    assert not [a for a in granted[key] if "*" in a]


def test_the_delivery_deadline_fits_in_the_functions_timeout(synthesized: Any) -> None:
    ids = _ids(synthesized)
    props = synthesized.resources[ids["function"]]["Properties"]
    assert (props["Timeout"], props["MemorySize"]) == (60, 512)
    deadline = NotifierConfig.model_fields["deadline_s"].default
    assert deadline + 10 < WIRING.function(NOTIFIER).timeout_s
