"""Dispatch: at most once per receiver and update, crashes re-delivered after the lease, dead letters."""

from __future__ import annotations

import pytest

from novacron.notify.delivery import Channel, DeliveryFailed, Sender
from novacron.notify.dispatch import Dispatcher, OutcomeStatus
from novacron.notify.model import Action, IncidentNotification
from novacron.notify.ratelimit import RateLimit
from tests.unit.notify.conftest import incident
from tests.unit.notify.memory import FakeClock, ListDeadLetters, MemoryDeliveryLog


class RecordingNotifier:
    """A receiver that records what it is told, or fails as told."""

    def __init__(self, name: str, fail: Exception | None = None) -> None:
        self.name = name
        self.rate_limit: RateLimit | None = None
        self.fail = fail
        self.told: list[IncidentNotification] = []

    def deliver(self, notification: IncidentNotification, channel: Channel) -> str:
        if self.fail is not None:
            raise self.fail
        self.told.append(notification)
        return "told"


def test_a_redelivered_notification_is_not_sent_again(dispatcher: Dispatcher) -> None:
    # Given a notification already delivered to a receiver
    notifier = RecordingNotifier("pd")
    assert dispatcher.dispatch(incident(), [notifier])[0].status is OutcomeStatus.DELIVERED
    # When the same notification arrives again (SNS redelivery, retried invocation)
    outcome = dispatcher.dispatch(incident(), [notifier])[0]
    # Then nothing is sent
    assert outcome.status is OutcomeStatus.DUPLICATE
    assert len(notifier.told) == 1
    # But the next update of the incident is
    assert dispatcher.dispatch(incident(Action.ACKNOWLEDGED, 2), [notifier])[0].status is OutcomeStatus.DELIVERED


def test_a_delivery_that_crashed_is_retried_once_its_lease_runs_out(
    dispatcher: Dispatcher, clock: FakeClock, log: MemoryDeliveryLog
) -> None:
    # Given an invocation that died while delivering (claimed, no outcome recorded)
    notifier = RecordingNotifier("pd", fail=RuntimeError("Lambda timed out"))
    with pytest.raises(RuntimeError):
        dispatcher.dispatch(incident(), [notifier])
    notifier.fail = None
    # When it is retried at once, Then the live lease holds it back
    assert dispatcher.dispatch(incident(), [notifier])[0].status is OutcomeStatus.DUPLICATE
    # When it is retried after the lease, Then it is delivered: a crash delays but never drops
    clock.t += dispatcher.lease_s + 1
    assert dispatcher.dispatch(incident(), [notifier])[0].status is OutcomeStatus.DELIVERED
    assert len(notifier.told) == 1


def test_a_failed_receiver_is_dead_lettered_with_the_reason_and_others_still_delivered(
    dispatcher: Dispatcher, dead_letters: ListDeadLetters, log: MemoryDeliveryLog
) -> None:
    # Given one receiver that refuses and one that works
    broken = RecordingNotifier("hook", fail=DeliveryFailed("HTTP 410: gone", attempts=1, retryable=False))
    working = RecordingNotifier("pd")
    # When a notification is dispatched to both
    outcomes = dispatcher.dispatch(incident(), [broken, working])
    # Then the failure is a dead letter that says why and carries the notification, and pd got it
    assert [o.status for o in outcomes] == [OutcomeStatus.DEAD_LETTERED, OutcomeStatus.DELIVERED]
    (letter,) = dead_letters.letters
    assert (letter.receiver, letter.reason, letter.retryable) == ("hook", "HTTP 410: gone", False)
    assert letter.notification == incident().to_dict()
    assert letter.key == "acme/inc-2026-0001/1/hook"
    # And the dead-lettered delivery is final: a redelivery does not send it again
    assert log.outcomes[letter.key].status is OutcomeStatus.DEAD_LETTERED
    assert dispatcher.dispatch(incident(), [broken])[0].status is OutcomeStatus.DUPLICATE


def test_when_the_dead_letter_queue_is_down_the_invocation_fails_rather_than_losing_it(
    dispatcher: Dispatcher, dead_letters: ListDeadLetters, log: MemoryDeliveryLog
) -> None:
    # Given a dead-letter queue that cannot be written
    dead_letters.fail = True
    broken = RecordingNotifier("hook", fail=DeliveryFailed("HTTP 500", attempts=4, retryable=True))
    # When a delivery fails, Then dispatch raises (the invocation will be retried) and records nothing
    with pytest.raises(ConnectionError):
        dispatcher.dispatch(incident(), [broken])
    assert log.outcomes == {}


def test_the_lease_outlives_the_delivery_deadline(sender: Sender) -> None:
    assert Dispatcher(sender, MemoryDeliveryLog(), ListDeadLetters()).lease_s > sender.policy.deadline_s
