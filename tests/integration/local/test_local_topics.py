"""SNS → Lambda locally: a subscribed function gets SNS's event; failures retry, then land on the queue."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from novacron.local.runtime import LocalRuntime
from novacron.wiring import Access, Function, Grant, Queue, Topic, TopicSubscription, Wiring
from tests.integration.local.support import read_log, running, write_handler

NOTIFIER_HANDLER = """
import json, os
def lambda_handler(event, context):
    record = event["Records"][0]
    with open(LOG, "a") as out:
        out.write(json.dumps({"event": event, "topic_env": os.environ.get("NOVACRON_TOPIC")}) + "\\n")
    if record["Sns"]["Message"].startswith("poison"):
        raise ValueError("cannot deliver " + record["Sns"]["Message"])
"""


def topic_wiring() -> Wiring:
    return Wiring(
        streams=(),
        tables=(),
        buckets=(),
        queues=(Queue("notify-failures"),),
        functions=(
            Function(
                "notifier",
                code="fns/notifier",
                handler="handler.lambda_handler",
                grants=(Grant("notify-failures", Access.WRITE),),
                environment={"NOVACRON_TOPIC": "notifications"},
            ),
        ),
        consumers=(),
        routes=(),
        topics=(Topic("notifications"),),
        subscriptions=(TopicSubscription("notifier", "notifications", on_failure="notify-failures"),),
    )


@pytest.fixture
def topic_runtime(handler_root: Path) -> Iterator[LocalRuntime]:
    write_handler(handler_root, "fns/notifier", NOTIFIER_HANDLER, handler_root / "notifier.jsonl")
    with running(handler_root, topic_wiring()) as runtime:
        yield runtime


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_published_message_reaches_the_subscribed_function_as_an_sns_event(
    topic_runtime: LocalRuntime, handler_root: Path
) -> None:
    # Given the topic's ARN, as the function's environment names it
    arn = topic_runtime.resources.topic_arns["notifications"] if topic_runtime.resources else ""

    # When a message is published with a subject and an attribute
    topic_runtime.client("sns").publish(
        TopicArn=arn,
        Message=json.dumps({"incident": "i-1"}),
        Subject="incident opened",
        MessageAttributes={"tenant": {"DataType": "String", "StringValue": "acme"}},
    )

    # Then the function is invoked once with the SNS event shape Lambda delivers
    log = handler_root / "notifier.jsonl"
    assert eventually(lambda: len(read_log(log)) == 1)
    entry = read_log(log)[0]
    (record,) = entry["event"]["Records"]
    assert record["EventSource"] == "aws:sns"
    assert record["Sns"]["TopicArn"] == arn == entry["topic_env"]
    assert json.loads(record["Sns"]["Message"]) == {"incident": "i-1"}
    assert record["Sns"]["Subject"] == "incident opened"
    assert record["Sns"]["MessageAttributes"]["tenant"] == {"Type": "String", "Value": "acme"}


def test_a_failing_message_is_retried_then_lands_on_the_failure_queue(
    topic_runtime: LocalRuntime, handler_root: Path
) -> None:
    # Given a message the function always fails on
    arn = topic_runtime.resources.topic_arns["notifications"] if topic_runtime.resources else ""
    topic_runtime.client("sns").publish(TopicArn=arn, Message="poison pill")

    # When its retries run out (1 try + 2 retries)
    log = handler_root / "notifier.jsonl"
    assert eventually(lambda: len(read_log(log)) == 3)

    # Then the failure queue holds Lambda's on-failure record with the event and the error
    sqs = topic_runtime.client("sqs")
    url = sqs.get_queue_url(QueueName="t-notify-failures")["QueueUrl"]
    messages: list[dict[str, object]] = []
    assert eventually(lambda: bool(messages.extend(sqs.receive_message(QueueUrl=url).get("Messages", [])) or messages))
    failure = json.loads(str(messages[0]["Body"]))
    assert failure["requestContext"]["condition"] == "RetriesExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    assert failure["requestPayload"]["Records"][0]["Sns"]["Message"] == "poison pill"
    assert "cannot deliver poison pill" in failure["responsePayload"]["errorMessage"]
