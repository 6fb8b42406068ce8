"""PagerDuty Events API v2 against a local receiver that checks the documented contract."""

from __future__ import annotations

import pytest

from novacron.notify.dispatch import Dispatcher, OutcomeStatus
from novacron.notify.model import Action
from novacron.notify.pagerduty import PagerDutyNotifier, PagerDutyReceiver, build_event
from tests.unit.notify.conftest import ROUTING_KEY, incident
from tests.unit.notify.memory import FakeClock, ListDeadLetters
from tests.unit.notify.receivers import PagerDutyEvents, Reply


@pytest.fixture
def notifier(pagerduty: PagerDutyEvents) -> PagerDutyNotifier:
    return PagerDutyNotifier(PagerDutyReceiver("pd", ROUTING_KEY, url=pagerduty.url + "/v2/enqueue"))


def test_trigger_acknowledge_resolve_act_on_one_alert_keyed_by_the_incident(
    dispatcher: Dispatcher, notifier: PagerDutyNotifier, pagerduty: PagerDutyEvents
) -> None:
    # Given an incident that is opened, acknowledged and resolved
    lifecycle = [incident(Action.OPENED, 1), incident(Action.ACKNOWLEDGED, 2), incident(Action.RESOLVED, 3)]
    # When each change is dispatched
    for notification in lifecycle:
        assert dispatcher.dispatch(notification, [notifier])[0].status is OutcomeStatus.DELIVERED
    # Then every event met the contract, the actions were trigger/acknowledge/resolve on one dedup_key
    assert pagerduty.problems() == []
    events = [request.json for request in pagerduty.requests]
    assert [e["event_action"] for e in events] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in events} == {"inc-2026-0001"}
    # And PagerDuty paged once and ended with the alert resolved
    assert pagerduty.triggers == 1
    assert pagerduty.alerts == {"inc-2026-0001": "resolved"}


def test_the_trigger_carries_summary_source_severity_and_context() -> None:
    event = build_event(PagerDutyReceiver("pd", ROUTING_KEY), incident())
    payload = event["payload"]
    assert payload["summary"] == "[P1] Checkout latency high: database slowdown suspected"
    assert (payload["source"], payload["severity"], payload["component"]) == ("novacron", "critical", "checkout")
    assert payload["custom_details"]["alerts"][0] == 'HighLatency{service="checkout"} = 2.5'
    assert event["links"] == [
        {"href": "https://novacron.example.com/incidents/inc-2026-0001", "text": "NovaCron incident"}
    ]


def test_an_escalation_re_triggers_without_paging_again(
    dispatcher: Dispatcher, notifier: PagerDutyNotifier, pagerduty: PagerDutyEvents
) -> None:
    dispatcher.dispatch(incident(Action.OPENED, 1), [notifier])
    dispatcher.dispatch(incident(Action.ESCALATED, 2), [notifier])
    assert [r.json["event_action"] for r in pagerduty.requests] == ["trigger", "trigger"]
    assert pagerduty.triggers == 1


def test_429_with_retry_after_is_honoured(
    dispatcher: Dispatcher, notifier: PagerDutyNotifier, pagerduty: PagerDutyEvents, clock: FakeClock
) -> None:
    # Given PagerDuty throttling the first attempt
    pagerduty.script(Reply(429, {"status": "throttled"}, {"Retry-After": "12"}))
    # When the trigger is dispatched
    outcome = dispatcher.dispatch(incident(), [notifier])[0]
    # Then it waited the 12 s asked for, and the retry was accepted
    assert outcome.status is OutcomeStatus.DELIVERED
    assert outcome.attempts == 2
    assert 12.0 in clock.sleeps
    assert len(pagerduty.requests) == 2


def test_5xx_is_retried_until_accepted(
    dispatcher: Dispatcher, notifier: PagerDutyNotifier, pagerduty: PagerDutyEvents
) -> None:
    pagerduty.script(Reply(500, "oops"), Reply(503, "busy"))
    outcome = dispatcher.dispatch(incident(), [notifier])[0]
    assert outcome.status is OutcomeStatus.DELIVERED
    assert outcome.attempts == 3
    assert pagerduty.triggers == 1


def test_an_invalid_event_is_not_retried_and_is_dead_lettered_with_the_reason(
    dispatcher: Dispatcher, pagerduty: PagerDutyEvents, dead_letters: ListDeadLetters
) -> None:
    # Given a receiver configured with a wrong routing key: PagerDuty answers 400
    wrong = PagerDutyNotifier(PagerDutyReceiver("pd", "not-the-key", url=pagerduty.url + "/v2/enqueue"))
    # When a notification is dispatched
    outcome = dispatcher.dispatch(incident(), [wrong])[0]
    # Then it was tried once and dead-lettered with PagerDuty's explanation
    assert outcome.status is OutcomeStatus.DEAD_LETTERED
    assert len(pagerduty.requests) == 1
    (letter,) = dead_letters.letters
    assert letter.reason.startswith("HTTP 400:")
    assert "routing_key is missing or not this integration" in letter.reason
    assert not letter.retryable


def test_a_retried_delivery_with_the_same_key_sends_nothing(
    dispatcher: Dispatcher, notifier: PagerDutyNotifier, pagerduty: PagerDutyEvents
) -> None:
    dispatcher.dispatch(incident(), [notifier])
    assert dispatcher.dispatch(incident(), [notifier])[0].status is OutcomeStatus.DUPLICATE
    assert len(pagerduty.requests) == 1


def test_the_routing_key_stays_out_of_repr() -> None:
    assert ROUTING_KEY not in repr(PagerDutyReceiver("pd", ROUTING_KEY))
