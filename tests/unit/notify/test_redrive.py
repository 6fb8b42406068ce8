"""Redriving the notifier's dead letters: what is redriven, what is kept, and that nothing is sent twice."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import replace

import pytest

from novacron.alert.state import NotificationRequest
from novacron.notify.delivery import DeliveryFailed, Sender
from novacron.notify.dispatch import DeadLetter, DeliveryOutcome, Dispatcher, OutcomeStatus
from novacron.notify.model import IncidentNotification
from novacron.notify.redrive import (
    ALREADY_DELIVERED,
    NOT_THIS_RECEIVER,
    NOT_THIS_TENANT,
    QueuedMessage,
    Redriver,
    Selection,
    classify,
)
from tests.unit.notify.conftest import incident
from tests.unit.notify.memory import ListDeadLetters, MemoryDeliveryLog
from tests.unit.notify.test_dispatch import RecordingNotifier

RECEIVER = "oncall/pagerduty[0]"


class ReleasableMemoryLog(MemoryDeliveryLog):
    """The in-memory DeliveryLog with the DynamoDB adapter's release: only a dead-lettered key is freed."""

    def __init__(self) -> None:
        super().__init__()
        self.released: list[str] = []

    def release(self, key: str) -> bool:
        outcome = self.outcomes.get(key)
        if outcome is None and key in self.claims:
            return False  # claimed, no outcome: a delivery under way
        if outcome is not None and outcome.status is not OutcomeStatus.DEAD_LETTERED:
            return False
        self.claims.pop(key, None)
        self.outcomes.pop(key, None)
        self.released.append(key)
        return True

    def outcome(self, key: str) -> str | None:
        found = self.outcomes.get(key)
        return None if found is None else str(found.status)


class MemoryQueue:
    """An SQS-like queue: received messages are hidden until deleted, made visible, or timed out."""

    def __init__(self) -> None:
        self.bodies: dict[str, str] = {}
        self.hidden: set[str] = set()
        self.receive_sizes: list[int] = []
        self._ids = itertools.count(1)

    def send(self, body: str) -> str:
        message_id = f"m{next(self._ids):03d}"
        self.bodies[message_id] = body
        return message_id

    def receive(self, max_messages: int) -> list[QueuedMessage]:
        assert 1 <= max_messages <= 10
        self.receive_sizes.append(max_messages)
        visible = [m for m in self.bodies if m not in self.hidden][:max_messages]
        self.hidden.update(visible)
        return [QueuedMessage(m, f"receipt-{m}-{len(self.receive_sizes)}", self.bodies[m]) for m in visible]

    def delete(self, receipts: Sequence[str]) -> None:
        for receipt in receipts:
            del self.bodies[receipt.split("-")[1]]

    def make_visible(self, receipts: Sequence[str]) -> None:
        self.hidden -= {receipt.split("-")[1] for receipt in receipts}

    def time_out(self) -> None:
        """The visibility timeout passes: every message is visible again."""
        self.hidden.clear()

    @property
    def visible(self) -> list[str]:
        return [m for m in self.bodies if m not in self.hidden]


class ListPublisher:
    """The notifications topic, in a list; can be told to fail."""

    def __init__(self) -> None:
        self.published: list[NotificationRequest] = []
        self.fail = False

    def publish(self, requests: Sequence[NotificationRequest]) -> None:
        if self.fail:
            raise ConnectionError("SNS unavailable")
        self.published.extend(requests)


@pytest.fixture
def queue() -> MemoryQueue:
    return MemoryQueue()


@pytest.fixture
def releasable_log() -> ReleasableMemoryLog:
    return ReleasableMemoryLog()


@pytest.fixture
def publisher() -> ListPublisher:
    return ListPublisher()


@pytest.fixture
def failures(sender: Sender, releasable_log: ReleasableMemoryLog, queue: MemoryQueue) -> Dispatcher:
    """The notifier's dispatcher over the releasable log, writing its dead letters on the queue as SQS does."""

    class QueueDeadLetters(ListDeadLetters):
        def put(self, letter: DeadLetter) -> None:
            super().put(letter)
            queue.send(delivery_body(letter))

    return Dispatcher(sender, releasable_log, QueueDeadLetters())


def redriver(
    queue: MemoryQueue, log: ReleasableMemoryLog, publisher: ListPublisher, **options: object
) -> tuple[Redriver, list[str]]:
    progress: list[str] = []
    return Redriver(queue, log, publisher, progress=progress.append, **options), progress  # type: ignore[arg-type]


def delivery_body(letter: DeadLetter) -> str:
    """A dead letter as SqsDeadLetters writes it."""
    return json.dumps({"kind": "delivery", **letter.to_dict()})


def letter_of(notification: IncidentNotification, receiver: str = RECEIVER, retryable: bool = True) -> DeadLetter:
    return DeadLetter(
        key=notification.delivery_key(receiver),
        tenant=notification.tenant,
        receiver=receiver,
        incident_id=notification.incident_id,
        action=notification.action.value,
        sequence=notification.sequence,
        reason="gave up after 5 attempts: HTTP 503" if retryable else "HTTP 400: invalid routing key",
        attempts=5 if retryable else 1,
        retryable=retryable,
        failed_at=1_790_000_000.0,
        notification=notification.to_dict(),
    )


def dead_lettered(
    queue: MemoryQueue, log: ReleasableMemoryLog, letter: DeadLetter, status: OutcomeStatus | None = None
) -> str:
    """What the notifier leaves: ``letter``'s key claimed with ``status`` recorded (none: under way), and the
    letter on the queue; its message id."""
    log.claim(letter.key, 0.0, 60.0)
    if status is not None:
        log.record(letter.key, DeliveryOutcome(letter.key, letter.receiver, status, letter.reason, letter.attempts))
    return queue.send(delivery_body(letter))


def on_failure_body(*messages: str) -> str:
    """Lambda's on-failure record of a notifier invocation whose retries ran out (as novacron.local.topics)."""
    return json.dumps(
        {
            "version": "1.0",
            "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": m}} for m in messages]},
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": "PutError", "errorMessage": "notify-state unavailable"},
        }
    )


def request_json(request: NotificationRequest) -> str:
    return json.dumps(request.to_json())


# --- classify ---------------------------------------------------------------------------------------


def test_a_retryable_delivery_is_redriven_to_its_one_integration_after_releasing_its_key() -> None:
    # Given a retryable dead letter of oncall's PagerDuty integration
    letter = letter_of(incident())
    # When it is classified
    classified = classify(delivery_body(letter))
    # Then its request names the receiver and the one integration, and its own key is to be released
    assert classified.keep_reason is None
    assert classified.requests == (NotificationRequest(incident(), "oncall", ("pagerduty[0]",)),)
    assert classified.release_key == letter.key == "acme/inc-2026-0001/1/oncall/pagerduty[0]"
    assert classified.tenants == {"acme"}


@pytest.mark.parametrize(
    ("body", "reason_part"),
    [
        (delivery_body(letter_of(incident(), retryable=False)), "the receiver refused it: HTTP 400: invalid routing"),
        (json.dumps({"kind": "malformed", "reason": "version: expected 1", "message": "{}"}), "version: expected 1"),
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"kind": "surprise"}), "unknown dead letter kind 'surprise'"),
        (on_failure_body("poison pill"), "record 0 is not a notification request"),
        (json.dumps({"requestPayload": {"Records": []}}), "no SNS records"),
    ],
    ids=["refused", "malformed", "not-json", "not-object", "unknown-kind", "on-failure-poison", "on-failure-empty"],
)
def test_letters_a_redrive_cannot_fix_are_kept_with_why(body: str, reason_part: str) -> None:
    # When a letter that needs a human is classified
    classified = classify(body)
    # Then it is kept, says why, and nothing would be published or released
    assert classified.keep_reason is not None
    assert reason_part in classified.keep_reason
    assert classified.requests == ()
    assert classified.release_key is None


def test_a_letter_whose_key_is_not_its_notifications_is_kept_and_no_key_released() -> None:
    # Given a letter naming globex's key but carrying acme's notification (tampered or corrupted)
    letter = replace(letter_of(incident()), key="globex/inc-2026-0001/1/oncall/pagerduty[0]", tenant="globex")
    # When it is classified, Then it is kept: a redrive releases only the key its notification computes
    classified = classify(delivery_body(letter))
    assert classified.keep_reason == "its key, tenant and receiver do not match its notification"
    assert classified.release_key is None


def test_an_on_failure_record_republishes_its_requests_as_they_are() -> None:
    # Given the on-failure record of a fan-out request (no receiver: every receiver told before)
    request = NotificationRequest(incident(sequence=4))
    # When it is classified, Then the very request is to be published, with no key to release
    classified = classify(on_failure_body(request_json(request)))
    assert classified.requests == (request,)
    assert classified.release_key is None
    assert classified.what == "on-failure record (RetriesExhausted: PutError) of acme/inc-2026-0001/4"


# --- Redriver -----------------------------------------------------------------------------------------


def test_a_fixed_receiver_gets_the_redriven_notification_once(
    failures: Dispatcher, queue: MemoryQueue, releasable_log: ReleasableMemoryLog, publisher: ListPublisher
) -> None:
    # Given a receiver that kept failing (an outage), so the notification was dead-lettered
    pagerduty = RecordingNotifier(RECEIVER, fail=DeliveryFailed("gave up after 5 attempts: HTTP 503", 5, True))
    assert failures.dispatch(incident(), [pagerduty])[0].status is OutcomeStatus.DEAD_LETTERED
    # And simply resending it would be dropped as a duplicate (its key holds the outcome)
    pagerduty.fail = None
    assert failures.dispatch(incident(), [pagerduty])[0].status is OutcomeStatus.DUPLICATE
    # When the operator redrives the queue
    redrive, progress = redriver(queue, releasable_log, publisher)
    report = redrive.run()
    # Then the key was released, the request published and the letter deleted
    assert report.redriven == ["acme/inc-2026-0001/1/oncall/pagerduty[0]"]
    assert (report.kept, report.skipped) == ([], {})
    assert publisher.published == [NotificationRequest(incident(), "oncall", ("pagerduty[0]",))]
    assert queue.bodies == {}
    assert progress == ["redriven acme/inc-2026-0001/1/oncall/pagerduty[0]"]
    assert report.summary() == "redriven: 1, kept: 0, skipped: none"
    # And the notifier now delivers the republished request, once
    assert failures.dispatch(incident(), [pagerduty])[0].status is OutcomeStatus.DELIVERED
    assert failures.dispatch(incident(), [pagerduty])[0].status is OutcomeStatus.DUPLICATE
    assert len(pagerduty.told) == 1


def test_a_mixed_queue_redrives_what_it_can_and_keeps_the_rest_visible(
    queue: MemoryQueue, releasable_log: ReleasableMemoryLog, publisher: ListPublisher
) -> None:
    # Given a retryable letter, a refused one, a malformed message and an on-failure record
    retryable = letter_of(incident())
    dead_lettered(queue, releasable_log, retryable, OutcomeStatus.DEAD_LETTERED)
    refused = queue.send(delivery_body(letter_of(incident(sequence=2), retryable=False)))
    malformed = queue.send(json.dumps({"kind": "malformed", "reason": "not JSON", "message": "x"}))
    fan_out = NotificationRequest(incident(sequence=3))
    queue.send(on_failure_body(request_json(fan_out)))
    # When the queue is redriven
    report = redriver(queue, releasable_log, publisher)[0].run()
    # Then the retryable letter and the on-failure record were published and deleted
    assert publisher.published == [NotificationRequest(incident(), "oncall", ("pagerduty[0]",)), fan_out]
    assert releasable_log.released == [retryable.key]
    # And the other two are kept, with why, and visible again for the next operator
    assert [(k.message_id, k.reason.split(":")[0]) for k in report.kept] == [
        (refused, "the receiver refused it"),
        (malformed, "refused by the notifier"),
    ]
    assert queue.visible == [refused, malformed]


def test_a_letter_whose_key_was_delivered_since_is_deleted_without_sending(
    queue: MemoryQueue, releasable_log: ReleasableMemoryLog, publisher: ListPublisher
) -> None:
    # Given a letter whose key was delivered since (a duplicate letter, or a redrive that stopped before deleting)
    letter = letter_of(incident())
    dead_lettered(queue, releasable_log, letter, OutcomeStatus.DELIVERED)
    # When the queue is redriven
    report = redriver(queue, releasable_log, publisher)[0].run()
    # Then the key stays delivered, nothing is published, and the letter is gone as done
    assert releasable_log.outcome(letter.key) == "delivered"
    assert publisher.published == []
    assert report.skipped == {ALREADY_DELIVERED: 1}
    assert queue.bodies == {}


def test_a_letter_whose_key_is_being_delivered_is_kept_for_later(
    queue: MemoryQueue, releasable_log: ReleasableMemoryLog, publisher: ListPublisher
) -> None:
    # Given a letter whose key is claimed with no outcome yet (a notifier invocation under way)
    letter = letter_of(incident())
    message = dead_lettered(queue, releasable_log, letter)
    # When the queue is redriven
    report = redriver(queue, releasable_log, publisher)[0].run()
    # Then it is not published, and stays on the queue, visible, saying why
    assert publisher.published == []
    assert [k.message_id for k in report.kept] == [message]
    assert "under way" in report.kept[0].reason
    assert queue.visible == [message]


def test_a_dry_run_changes_nothing_and_says_what_it_would_do(
    queue: MemoryQueue, releasable_log: ReleasableMemoryLog, publisher: ListPublisher
) -> None:
    # Given a dead-lettered key and its letter, a refused letter, and a letter whose key was delivered since
    letter = letter_of(incident())
    dead_lettered(queue, releasable_log, letter, OutcomeStatus.DEAD_LETTERED)
    queue.send(delivery_body(letter_of(incident(sequence=2), retryable=False)))
    dead_lettered(queue, releasable_log, letter_of(incident(sequence=3)), OutcomeStatus.DELIVERED)
    # When a dry run goes over the queue
    redrive, progress = redriver(queue, releasable_log, publisher, dry_run=True)
    report = redrive.run()
    # Then it reports what it would do
    assert report.redriven == [letter.key]
    assert len(report.kept) == 1
    assert progress[0] == f"would redrive {letter.key}"
    assert report.summary() == f"would redrive: 1, kept: 1, skipped: 1 {ALREADY_DELIVERED}"
    # And nothing changed: the key still dead-lettered, nothing published, the three letters visible
    assert releasable_log.outcome(letter.key) == "dead_lettered"
    assert releasable_log.released == []
    assert publisher.published == []
    assert len(queue.visible) == 3


def test_tenant_and_receiver_filters_leave_other_letters_untouched(
    queue: MemoryQueue, releasable_log: ReleasableMemoryLog, publisher: ListPublisher
) -> None:
    # Given retryable letters of acme's oncall (PagerDuty and Slack), acme's team and globex's oncall
    notifications = {
        "acme-pd": (incident(), "oncall/pagerduty[0]"),
        "acme-slack": (incident(), "oncall/slack[0]"),
        "acme-team": (incident(), "team/slack[0]"),
        "globex": (incident(tenant="globex"), "oncall/pagerduty[0]"),
    }
    ids = {name: queue.send(delivery_body(letter_of(n, receiver))) for name, (n, receiver) in notifications.items()}
    # When acme's oncall letters are redriven (by receiver name: every integration)
    report = redriver(queue, releasable_log, publisher, selection=Selection("acme", "oncall"))[0].run()
    # Then only those two are redriven; the others are skipped by reason and visible again
    assert sorted(report.redriven) == [
        "acme/inc-2026-0001/1/oncall/pagerduty[0]",
        "acme/inc-2026-0001/1/oncall/slack[0]",
    ]
    assert report.skipped == {NOT_THIS_TENANT: 1, NOT_THIS_RECEIVER: 1}
    assert sorted(queue.visible) == sorted([ids["acme-team"], ids["globex"]])
    # When one integration is named, Then only its letter is selected
    report = redriver(queue, releasable_log, publisher, selection=Selection(receiver="team/slack[0]"))[0].run()
    assert report.redriven == ["acme/inc-2026-0001/1/team/slack[0]"]
    assert report.skipped == {NOT_THIS_RECEIVER: 1}


def test_a_fan_out_on_failure_record_is_not_selected_by_a_receiver_filter(
    queue: MemoryQueue, releasable_log: ReleasableMemoryLog, publisher: ListPublisher
) -> None:
    # Given an on-failure record of a fan-out request (it names no receiver)
    queue.send(on_failure_body(request_json(NotificationRequest(incident()))))
    # When letters of receiver oncall are redriven, Then it is skipped, not published
    report = redriver(queue, releasable_log, publisher, selection=Selection(receiver="oncall"))[0].run()
    assert report.skipped == {NOT_THIS_RECEIVER: 1}
    assert publisher.published == []


def test_the_limit_counts_selected_letters_and_receives_at_most_ten_at_a_time(
    queue: MemoryQueue, releasable_log: ReleasableMemoryLog, publisher: ListPublisher
) -> None:
    # Given 25 retryable letters (no claims left: their keys expired)
    for sequence in range(1, 26):
        queue.send(delivery_body(letter_of(incident(sequence=sequence))))
    # When at most 12 are redriven
    report = redriver(queue, releasable_log, publisher, limit=12)[0].run()
    # Then 12 are, in batches of at most 10, and 13 stay on the queue
    assert len(report.redriven) == len(publisher.published) == 12
    assert queue.receive_sizes == [10, 2]
    assert len(queue.visible) == 13


def test_a_run_sees_each_kept_letter_once_however_many_there_are(
    queue: MemoryQueue, releasable_log: ReleasableMemoryLog, publisher: ListPublisher
) -> None:
    # Given 23 refused letters ahead of one retryable letter
    for sequence in range(1, 24):
        queue.send(delivery_body(letter_of(incident(sequence=sequence), retryable=False)))
    queue.send(delivery_body(letter_of(incident(sequence=99))))
    # When the queue is redriven
    report = redriver(queue, releasable_log, publisher)[0].run()
    # Then each refused letter is kept once, the retryable one behind them is redriven, and all kept are visible
    assert len(report.kept) == 23
    assert report.redriven == ["acme/inc-2026-0001/99/oncall/pagerduty[0]"]
    assert len(queue.visible) == 23


def test_a_redrive_stopped_by_a_publish_failure_can_be_run_again(
    queue: MemoryQueue, releasable_log: ReleasableMemoryLog, publisher: ListPublisher
) -> None:
    # Given a dead-lettered key and its letter, and a topic that fails
    letter = letter_of(incident())
    dead_lettered(queue, releasable_log, letter, OutcomeStatus.DEAD_LETTERED)
    publisher.fail = True
    # When the redrive runs, Then it stops with the error and the letter is not deleted
    with pytest.raises(ConnectionError):
        redriver(queue, releasable_log, publisher)[0].run()
    assert len(queue.bodies) == 1
    # When the letter comes back after its visibility timeout and the redrive runs again
    queue.time_out()
    publisher.fail = False
    report = redriver(queue, releasable_log, publisher)[0].run()
    # Then the (already released) key is still free, and the request is published once
    assert report.redriven == [letter.key]
    assert publisher.published == [NotificationRequest(incident(), "oncall", ("pagerduty[0]",))]
    assert queue.bodies == {}


def test_a_limit_below_one_is_refused(
    queue: MemoryQueue, releasable_log: ReleasableMemoryLog, publisher: ListPublisher
) -> None:
    with pytest.raises(ValueError, match="limit: expected at least 1"):
        Redriver(queue, releasable_log, publisher, limit=0)
