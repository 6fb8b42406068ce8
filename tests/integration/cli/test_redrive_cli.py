"""`novacron notifications redrive` against moto: the wiring's dead-letter queue, topic and notify-state table."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from novacron.adapters.dead_letters import SqsDeadLetters
from novacron.adapters.notify_state import DynamoDeliveryLog
from novacron.alert.state import NotificationRequest
from novacron.cli import main
from novacron.local.resources import physical_name, topic_arn
from novacron.notify.delivery import DeliveryFailed, Sender
from novacron.notify.dispatch import Dispatcher, OutcomeStatus
from novacron.notify.http_client import UrllibClient
from novacron.wiring import NOTIFICATIONS_TOPIC, NOTIFY_DLQ, NOTIFY_STATE_TABLE
from tests.unit.notify.conftest import incident
from tests.unit.notify.memory import FakeClock
from tests.unit.notify.test_dispatch import RecordingNotifier

OUTAGE = DeliveryFailed("gave up after 5 attempts: HTTP 503: service unavailable", 5, retryable=True)
REFUSED = DeliveryFailed("HTTP 400: invalid routing key", 1, retryable=False)


@dataclass
class Stack:
    """The notifier's resources in moto, a subscriber of the notifications topic, and the notifier's dispatcher."""

    sqs: Any
    dlq_url: str
    subscriber_url: str
    log: DynamoDeliveryLog
    dispatcher: Dispatcher

    def args(self, *extra: str) -> list[str]:
        return [
            "notifications",
            "redrive",
            "--queue",
            physical_name(NOTIFY_DLQ),
            "--topic",
            topic_arn(NOTIFICATIONS_TOPIC),
            "--delivery-table",
            physical_name(NOTIFY_STATE_TABLE),
            *extra,
        ]

    def published(self) -> list[NotificationRequest]:
        answer = self.sqs.receive_message(QueueUrl=self.subscriber_url, MaxNumberOfMessages=10)
        return [NotificationRequest.from_json(json.loads(m["Body"])) for m in answer.get("Messages", [])]

    def letters(self) -> list[dict[str, Any]]:
        """The dead letters visible now (received with a 0 s visibility timeout: they stay visible)."""
        answer = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


@pytest.fixture
def stack(moto_wiring: None) -> Stack:
    sqs, sns = boto3.client("sqs", region_name="us-east-1"), boto3.client("sns", region_name="us-east-1")
    subscriber_url = sqs.create_queue(QueueName="notifications-subscriber")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=subscriber_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=topic_arn(NOTIFICATIONS_TOPIC),
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    log = DynamoDeliveryLog(physical_name(NOTIFY_STATE_TABLE))
    dead_letters = SqsDeadLetters(physical_name(NOTIFY_DLQ))
    dispatcher = Dispatcher(Sender(UrllibClient(1.0), clock=FakeClock()), log, dead_letters)
    return Stack(sqs, dead_letters.url, subscriber_url, log, dispatcher)


def run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def failed(stack: Stack) -> dict[str, str]:
    """The notifier's failures of one incident: PagerDuty down (retryable), Opsgenie refusing, a store failing."""
    pagerduty = RecordingNotifier("oncall/pagerduty[0]", fail=OUTAGE)
    opsgenie = RecordingNotifier("oncall/opsgenie[0]", fail=REFUSED)
    outcomes = stack.dispatcher.dispatch(incident(), [pagerduty, opsgenie])
    assert [o.status for o in outcomes] == [OutcomeStatus.DEAD_LETTERED] * 2
    # An invocation whose stores failed until Lambda gave up: its on-failure record holds the SNS event
    fan_out = NotificationRequest(incident(sequence=2))
    record = {
        "version": "1.0",
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(fan_out.to_json())}}]},
        "responsePayload": {"errorType": "PutError", "errorMessage": "notify-state unavailable"},
    }
    stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=json.dumps(record))
    return {"pagerduty": outcomes[0].key, "opsgenie": outcomes[1].key}


def test_redrive_republishes_what_can_be_fixed_and_keeps_what_needs_a_human(
    stack: Stack, failed: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given PagerDuty's outage is over, and a dry run first
    code, out, err = run(capsys, stack.args("--dry-run"))
    # Then the dry run says what it would do and changes nothing
    assert code == 1
    assert out.splitlines()[0] == "would redrive: 2, kept: 1, skipped: none"
    assert f"would redrive {failed['pagerduty']}" in err
    assert stack.published() == []
    assert len(stack.letters()) == 3
    assert not stack.log.claim(failed["pagerduty"], 0.0, 60.0)
    # When the operator redrives the queue
    code, out, err = run(capsys, stack.args())
    # Then the retryable delivery (to its one integration) and the on-failure request are published
    assert code == 1  # one letter was kept
    assert sorted(stack.published(), key=lambda r: r.notification.sequence) == [
        NotificationRequest(incident(), "oncall", ("pagerduty[0]",)),
        NotificationRequest(incident(sequence=2)),
    ]
    assert f"redriven {failed['pagerduty']}" in err
    # And only the refused letter stays on the queue, said on stdout with its reason
    assert [letter["key"] for letter in stack.letters()] == [failed["opsgenie"]]
    assert out.splitlines()[0] == "redriven: 2, kept: 1, skipped: none"
    assert "the receiver refused it: HTTP 400: invalid routing key" in out
    # And the released key is claimable again, so the notifier delivers it; the refused one is not
    assert stack.log.claim(failed["pagerduty"], 0.0, 60.0)
    assert not stack.log.claim(failed["opsgenie"], 0.0, 60.0)


def test_another_tenants_letters_are_skipped_and_the_run_succeeds(
    stack: Stack, failed: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # When only globex's letters are redriven
    code, out, _ = run(capsys, stack.args("--tenant", "globex"))
    # Then acme's three are skipped, untouched and visible, and nothing selected was kept
    assert code == 0
    assert out.splitlines() == ["redriven: 0, kept: 0, skipped: 3 another tenant"]
    assert stack.published() == []
    assert len(stack.letters()) == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max", "0"], "--max: expected a whole number of at least 1"),
        (["--topic", "notifications"], "--topic: expected an SNS topic ARN"),
    ],
)
def test_bad_arguments_exit_2_naming_them(
    stack: Stack, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When an argument is malformed, Then argparse stops with status 2 and says which
    with pytest.raises(SystemExit) as stopped:
        main(stack.args(*extra))
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "message"),
    [("--queue", "--queue: no queue named 'no-such-queue'"), ("--delivery-table", "--delivery-table: no table named")],
)
def test_a_resource_that_does_not_exist_is_a_bad_argument(
    stack: Stack, failed: dict[str, str], option: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the queue or the table named does not exist
    args = stack.args()
    args[args.index(option) + 1] = "no-such-queue" if option == "--queue" else "no-such-table"
    code, _, err = run(capsys, args)
    # Then the redrive stops with status 2 before changing anything
    assert code == 2
    assert message in err
    assert len(stack.letters()) == 3
    assert stack.published() == []


def test_a_redrive_stopped_by_aws_says_so_and_deletes_nothing(
    stack: Stack, failed: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # When the topic named does not exist (a well-formed ARN of another deployment)
    args = stack.args()
    args[args.index("--topic") + 1] = topic_arn("no-such-topic")
    code, _, err = run(capsys, args)
    # Then the run stops with status 1, says that running it again is safe, and no letter was deleted
    assert code == 1
    assert "redrive stopped" in err
    assert "running the redrive again is safe" in err
    counts = stack.sqs.get_queue_attributes(
        QueueUrl=stack.dlq_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert sum(int(n) for n in counts.values()) == 3
