"""Opsgenie Alert API against a local receiver that checks the documented contract."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from novacron.notify.dispatch import Dispatcher, OutcomeStatus
from novacron.notify.model import Action
from novacron.notify.opsgenie import OpsgenieNotifier, OpsgenieReceiver, create_body
from tests.unit.notify.conftest import GENIE_KEY, incident
from tests.unit.notify.memory import FakeClock, ListDeadLetters
from tests.unit.notify.receivers import OpsgenieApi, Reply


@pytest.fixture
def notifier(opsgenie: OpsgenieApi) -> OpsgenieNotifier:
    return OpsgenieNotifier(OpsgenieReceiver("og", GENIE_KEY, api_url=opsgenie.url, tags=("team:sre",)))


def test_the_alert_is_created_with_the_incident_id_as_alias_then_acknowledged_and_closed_by_alias(
    dispatcher: Dispatcher, notifier: OpsgenieNotifier, opsgenie: OpsgenieApi
) -> None:
    # Given an incident that is opened, acknowledged and resolved
    for notification in (incident(Action.OPENED, 1), incident(Action.ACKNOWLEDGED, 2), incident(Action.RESOLVED, 3)):
        # When each change is dispatched
        outcome = dispatcher.dispatch(notification, [notifier])[0]
        assert outcome.status is OutcomeStatus.DELIVERED
        assert "requestId=req-" in outcome.detail
    # Then all requests met the contract and addressed one alert by its alias
    assert opsgenie.problems() == []
    create, ack, close = opsgenie.requests
    assert create.path == "/v2/alerts"
    assert create.json["alias"] == "inc-2026-0001"
    assert create.json["priority"] == "P1"
    assert ack.path == "/v2/alerts/inc-2026-0001/acknowledge"
    assert close.path == "/v2/alerts/inc-2026-0001/close"
    assert ack.query["identifierType"] == close.query["identifierType"] == ["alias"]
    assert opsgenie.alerts == {"inc-2026-0001": "closed"}


def test_the_create_body_stays_within_opsgenies_limits() -> None:
    long_title = incident(title="x" * 500, services=tuple(f"service-{i}-{'y' * 60}" for i in range(30)))
    body = create_body(OpsgenieReceiver("og", GENIE_KEY), long_title)
    assert len(body["message"]) == 130
    assert len(body["tags"]) <= 20
    assert all(len(tag) <= 50 for tag in body["tags"])


def test_an_alias_with_slashes_is_quoted_in_the_path(
    dispatcher: Dispatcher, notifier: OpsgenieNotifier, opsgenie: OpsgenieApi
) -> None:
    dispatcher.dispatch(incident(Action.ACKNOWLEDGED, 2, incident_id="team/a 1"), [notifier])
    assert opsgenie.problems() == []
    assert opsgenie.requests[0].path == "/v2/alerts/team%2Fa%201/acknowledge"


def test_429_with_an_http_date_retry_after_is_honoured(
    dispatcher: Dispatcher, notifier: OpsgenieNotifier, opsgenie: OpsgenieApi, clock: FakeClock
) -> None:
    # Given Opsgenie asking to come back at a time 20 s from now
    later = format_datetime(datetime.fromtimestamp(clock.now() + 20, UTC), usegmt=True)
    opsgenie.script(Reply(429, {"message": "rate limited"}, {"Retry-After": later}))
    # When the alert is created, Then the retry came 20 s later and succeeded
    assert dispatcher.dispatch(incident(), [notifier])[0].status is OutcomeStatus.DELIVERED
    assert clock.sleeps == [20.0]


def test_a_wrong_key_is_refused_and_dead_lettered_without_retry(
    dispatcher: Dispatcher, opsgenie: OpsgenieApi, dead_letters: ListDeadLetters
) -> None:
    wrong = OpsgenieNotifier(OpsgenieReceiver("og", "wrong-key", api_url=opsgenie.url))
    assert dispatcher.dispatch(incident(), [wrong])[0].status is OutcomeStatus.DEAD_LETTERED
    assert len(opsgenie.requests) == 1
    assert dead_letters.letters[0].reason.startswith("HTTP 401:")


def test_5xx_is_retried(dispatcher: Dispatcher, notifier: OpsgenieNotifier, opsgenie: OpsgenieApi) -> None:
    opsgenie.script(Reply(502, "bad gateway"))
    outcome = dispatcher.dispatch(incident(), [notifier])[0]
    assert (outcome.status, outcome.attempts) == (OutcomeStatus.DELIVERED, 2)
    assert opsgenie.alerts == {"inc-2026-0001": "open"}


def test_the_key_stays_out_of_repr() -> None:
    assert GENIE_KEY not in repr(OpsgenieReceiver("og", GENIE_KEY))
