"""E-mail through SNS (a publisher protocol) and the local inbox."""

from __future__ import annotations

import pytest

from novacron.notify.delivery import AttemptFailed
from novacron.notify.dispatch import Dispatcher, OutcomeStatus
from novacron.notify.email import EmailNotifier, EmailReceiver, build_email, subject_line
from novacron.notify.inbox import InboxNotifier, read_inbox
from novacron.notify.model import Action
from tests.unit.notify.conftest import incident
from tests.unit.notify.memory import FakeClock, ListDeadLetters, MemoryInbox, ScriptedPublisher

TOPIC = "arn:aws:sns:eu-west-1:123456789012:novacron-acme-oncall"


def test_the_email_has_an_sns_safe_subject_the_full_text_and_filterable_attributes() -> None:
    email = build_email(incident(title="Débit de la base\nréduit — " + "x" * 200))
    assert email.subject.isascii()
    assert "\n" not in email.subject
    assert len(email.subject) < 100
    assert email.subject.startswith("[P1 critical] Opened: D bit de la base r duit")
    assert "Alerts (3):" in email.body
    assert email.attributes == {"tenant": "acme", "severity": "critical", "action": "opened"}


def test_an_email_is_published_to_the_topic(dispatcher: Dispatcher) -> None:
    publisher = ScriptedPublisher()
    outcome = dispatcher.dispatch(incident(), [EmailNotifier(EmailReceiver("mail", TOPIC), publisher)])[0]
    assert (outcome.status, outcome.detail) == (OutcomeStatus.DELIVERED, "published message_id=msg-1")
    ((topic, subject, body, _),) = publisher.published
    assert topic == TOPIC
    assert subject == subject_line(incident())
    assert body == build_email(incident()).body


def test_throttling_is_retried_and_a_refusal_is_dead_lettered(
    dispatcher: Dispatcher, dead_letters: ListDeadLetters, clock: FakeClock
) -> None:
    # Given SNS throttling once
    throttled = ScriptedPublisher(AttemptFailed("Throttling: rate exceeded", retryable=True))
    notifier = EmailNotifier(EmailReceiver("mail", TOPIC), throttled)
    # Then the publish is retried after a backoff and succeeds
    assert dispatcher.dispatch(incident(), [notifier])[0].status is OutcomeStatus.DELIVERED
    assert len(clock.sleeps) == 1
    # Given SNS refusing (a topic that does not exist)
    refused = ScriptedPublisher(AttemptFailed("NotFound: Topic does not exist", retryable=False))
    notifier = EmailNotifier(EmailReceiver("mail2", TOPIC), refused)
    # Then it is dead-lettered with the reason, not retried
    assert dispatcher.dispatch(incident(), [notifier])[0].status is OutcomeStatus.DEAD_LETTERED
    assert dead_letters.letters[0].reason == "NotFound: Topic does not exist"


def test_the_email_receiver_needs_a_topic_arn() -> None:
    with pytest.raises(ValueError, match="topic ARN"):
        EmailReceiver("mail", "oncall@example.com")


def test_the_inbox_lists_a_tenants_notifications_newest_first(dispatcher: Dispatcher, clock: FakeClock) -> None:
    # Given an inbox receiving an incident's lifecycle and another tenant's incident
    store = MemoryInbox()
    inbox = InboxNotifier(store)
    for notification in (incident(Action.OPENED, 1), incident(Action.RESOLVED, 2)):
        dispatcher.dispatch(notification, [inbox])
        clock.t += 60
    dispatcher.dispatch(incident(tenant="globex"), [inbox])
    # When acme's inbox is read
    entries = read_inbox(store, "acme")
    # Then it holds acme's two notifications, newest first, with their rendered text
    assert [(e.action, e.sequence) for e in entries] == [("resolved", 2), ("opened", 1)]
    assert entries[0].headline.startswith("[P1 critical] Resolved:")
    assert "Open the incident: https://novacron.example.com/incidents/inc-2026-0001" in entries[1].text
    assert entries[0].received_at - entries[1].received_at == 60
    assert [e.tenant for e in read_inbox(store, "globex")] == ["globex"]


def test_the_inbox_is_idempotent_too(dispatcher: Dispatcher) -> None:
    store = MemoryInbox()
    for _ in range(3):
        dispatcher.dispatch(incident(), [InboxNotifier(store)])
    assert len(read_inbox(store, "acme")) == 1


@pytest.mark.parametrize(
    ("tenant", "limit", "message"),
    [("acme", 0, "limit must be between 1 and 500"), ("acme", 501, "limit must be"), ("../etc", 10, "invalid tenant")],
)
def test_reading_the_inbox_checks_its_arguments(tenant: str, limit: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_inbox(MemoryInbox(), tenant, limit)
