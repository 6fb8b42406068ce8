"""The notification service: requests → the tenant's configured receivers, at most once, failures dead-lettered."""

from __future__ import annotations

import pytest

from novacron.alert.state import NotificationRequest, StoredText
from novacron.notify.dispatch import Dispatcher, OutcomeStatus
from novacron.notify.model import Action
from novacron.notify.receivers import Outlets
from novacron.notify.service import NotificationService
from tests.unit.notify.conftest import ROUTING_KEY, incident
from tests.unit.notify.memory import ListDeadLetters, MemoryInbox, MemoryMessageRefs, ScriptedPublisher
from tests.unit.notify.receivers import PagerDutyEvents, Reply, SlackApi

EMAIL_TOPIC = "arn:aws:sns:us-east-1:123456789012:novacron-email"


class MemoryConfigs:
    """ConfigSource over a dict of tenant → configuration text."""

    def __init__(self) -> None:
        self.texts: dict[str, StoredText] = {}

    def set(self, tenant: str, text: str) -> None:
        version = self.texts[tenant].version + 1 if tenant in self.texts else 1
        self.texts[tenant] = StoredText(text, version, 0, "key-admin")

    def alertmanager_config(self, tenant: str) -> StoredText | None:
        return self.texts.get(tenant)


class MemoryTold:
    """ToldReceivers over a dict."""

    def __init__(self) -> None:
        self.receivers: dict[tuple[str, str], set[str]] = {}

    def told(self, tenant: str, incident_id: str) -> list[str]:
        return sorted(self.receivers.get((tenant, incident_id), ()))

    def add_told(self, tenant: str, incident_id: str, receiver: str) -> None:
        self.receivers.setdefault((tenant, incident_id), set()).add(receiver)


@pytest.fixture
def configs() -> MemoryConfigs:
    return MemoryConfigs()


@pytest.fixture
def told() -> MemoryTold:
    return MemoryTold()


@pytest.fixture
def inbox() -> MemoryInbox:
    return MemoryInbox()


@pytest.fixture
def publisher() -> ScriptedPublisher:
    return ScriptedPublisher()


@pytest.fixture
def service(
    configs: MemoryConfigs, told: MemoryTold, dispatcher: Dispatcher, inbox: MemoryInbox, publisher: ScriptedPublisher
) -> NotificationService:
    return NotificationService(configs, told, dispatcher, Outlets(MemoryMessageRefs(), inbox, publisher, EMAIL_TOPIC))


def team_config(slack: SlackApi, pagerduty: PagerDutyEvents) -> str:
    """Receivers ``team-slack`` (a webhook), ``oncall`` (PagerDuty and e-mail) and ``inbox``."""
    return f"""\
route:
  receiver: inbox
receivers:
  - name: inbox
    inbox_configs: [{{}}]
  - name: team-slack
    slack_configs:
      - api_url: {slack.webhook_url}
        channel: "#alerts"
  - name: oncall
    pagerduty_configs:
      - routing_key: {ROUTING_KEY}
        url: {pagerduty.url}/v2/enqueue
    email_configs:
      - to: oncall@acme.example
        from: novacron@acme.example
        smarthost: smtp.acme.example:587
"""


def test_a_request_to_a_slack_receiver_posts_once(
    service: NotificationService, configs: MemoryConfigs, slack: SlackApi, pagerduty: PagerDutyEvents
) -> None:
    # Given a tenant whose team-slack receiver is an incoming webhook
    configs.set("acme", team_config(slack, pagerduty))
    # When a request for that receiver is delivered
    report = service.deliver(NotificationRequest(incident(), "team-slack"))
    # Then one valid Block Kit message was posted, and nothing else was told
    assert [(o.receiver, o.status) for o in report.outcomes] == [("team-slack/slack[0]", OutcomeStatus.DELIVERED)]
    assert len(slack.webhook_posts) == 1
    assert slack.problems() == []
    assert pagerduty.requests == []


def test_a_redelivered_sns_message_sends_nothing(
    service: NotificationService, configs: MemoryConfigs, slack: SlackApi, pagerduty: PagerDutyEvents
) -> None:
    # Given a request delivered once
    configs.set("acme", team_config(slack, pagerduty))
    request = NotificationRequest(incident(), "oncall", ("pagerduty[0]",))
    service.deliver(request)
    # When SNS delivers the same message again
    report = service.deliver(request)
    # Then nothing is sent: PagerDuty saw one trigger
    assert [o.status for o in report.outcomes] == [OutcomeStatus.DUPLICATE]
    assert len(pagerduty.requests) == 1


def test_a_request_names_the_integrations_to_use(
    service: NotificationService,
    configs: MemoryConfigs,
    slack: SlackApi,
    pagerduty: PagerDutyEvents,
    publisher: ScriptedPublisher,
) -> None:
    configs.set("acme", team_config(slack, pagerduty))
    # When only the e-mail integration of oncall is named
    service.deliver(NotificationRequest(incident(), "oncall", ("email[0]",)))
    # Then only e-mail went out, to the email topic, with attributes a filter policy can pick it by
    assert pagerduty.requests == []
    ((topic, _subject, _body, attributes),) = publisher.published
    assert topic == EMAIL_TOPIC
    assert attributes == {
        "tenant": "acme",
        "severity": "critical",
        "action": "opened",
        "receiver": "oncall",
        "to": "oncall@acme.example",
    }


def test_a_request_without_receiver_goes_to_the_receivers_told_before(
    service: NotificationService,
    configs: MemoryConfigs,
    told: MemoryTold,
    slack: SlackApi,
    pagerduty: PagerDutyEvents,
    publisher: ScriptedPublisher,
) -> None:
    # Given an incident whose opening went to team-slack and oncall's PagerDuty
    configs.set("acme", team_config(slack, pagerduty))
    service.deliver(NotificationRequest(incident(), "team-slack"))
    service.deliver(NotificationRequest(incident(), "oncall", ("pagerduty[0]",)))
    assert told.told("acme", "inc-2026-0001") == ["oncall", "team-slack"]
    # When someone acknowledges it by hand (a request without receiver)
    report = service.deliver(NotificationRequest(incident(Action.ACKNOWLEDGED, 2)))
    # Then both receivers hear of it, with all their integrations; the inbox, never told, does not
    assert sorted(o.receiver for o in report.outcomes) == [
        "oncall/email[0]",
        "oncall/pagerduty[0]",
        "team-slack/slack[0]",
    ]
    assert {o.status for o in report.outcomes} == {OutcomeStatus.DELIVERED}
    assert [r.json["event_action"] for r in pagerduty.requests] == ["trigger", "acknowledge"]
    assert len(slack.webhook_posts) == 2
    assert report.receivers == ("oncall", "team-slack")


def test_a_request_without_receiver_for_an_unknown_incident_tells_nobody(service: NotificationService) -> None:
    report = service.deliver(NotificationRequest(incident(Action.RESOLVED, 2)))
    assert (report.receivers, report.outcomes) == ((), ())


def test_a_resolution_skips_integrations_that_do_not_send_resolved(
    service: NotificationService, configs: MemoryConfigs, told: MemoryTold, slack: SlackApi, pagerduty: PagerDutyEvents
) -> None:
    # Given team-slack (send_resolved defaults to false for Slack, as in Alertmanager) told of the opening
    configs.set("acme", team_config(slack, pagerduty))
    service.deliver(NotificationRequest(incident(), "team-slack"))
    # When the incident is resolved
    report = service.deliver(NotificationRequest(incident(Action.RESOLVED, 2), "team-slack"))
    # Then Slack is not told again
    assert report.outcomes == ()
    assert len(slack.webhook_posts) == 1


def test_a_receiver_that_refuses_is_dead_lettered_with_its_reason(
    service: NotificationService,
    configs: MemoryConfigs,
    slack: SlackApi,
    pagerduty: PagerDutyEvents,
    dead_letters: ListDeadLetters,
    publisher: ScriptedPublisher,
) -> None:
    # Given PagerDuty refusing the event with a 400
    configs.set("acme", team_config(slack, pagerduty))
    pagerduty.script(Reply(400, {"status": "invalid event", "message": "Event object is invalid"}))
    # When oncall is told
    report = service.deliver(NotificationRequest(incident(), "oncall"))
    # Then PagerDuty's delivery is a dead letter saying why (not retried), and e-mail still went out
    statuses = {o.receiver: o.status for o in report.outcomes}
    assert statuses == {"oncall/pagerduty[0]": OutcomeStatus.DEAD_LETTERED, "oncall/email[0]": OutcomeStatus.DELIVERED}
    (letter,) = dead_letters.letters
    assert (letter.receiver, letter.retryable, letter.attempts) == ("oncall/pagerduty[0]", False, 1)
    assert letter.reason.startswith("HTTP 400: ")
    assert "invalid event" in letter.reason
    assert len(pagerduty.requests) == 1
    assert len(publisher.published) == 1


def test_the_inbox_gets_the_default_routes_notifications(service: NotificationService, inbox: MemoryInbox) -> None:
    # Given a tenant without any configuration: the default routes everything to the inbox
    # When the alert function's request for the default receiver arrives, then an acknowledgement by hand
    service.deliver(NotificationRequest(incident(), "inbox"))
    service.deliver(NotificationRequest(incident(Action.ACKNOWLEDGED, 2)))
    # Then the tenant's inbox shows both, newest first, under the inbox's name
    entries = inbox.latest("acme", 10)
    assert [(e.action, e.sequence, e.receiver) for e in entries] == [
        ("acknowledged", 2, "inbox"),
        ("opened", 1, "inbox"),
    ]
    assert entries[1].headline == "[P1 critical] Opened: Checkout latency high: database slowdown suspected"
    assert inbox.latest("globex", 10) == []


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (NotificationRequest(incident(), "gone"), "receiver 'gone' is not in the tenant's Alertmanager configuration"),
        (NotificationRequest(incident(), "inbox", ("slack[0]",)), "receiver 'inbox' has no integration slack[0]"),
    ],
)
def test_a_receiver_or_integration_no_longer_configured_is_dead_lettered(
    service: NotificationService, dead_letters: ListDeadLetters, request_: NotificationRequest, reason: str
) -> None:
    report = service.deliver(request_)
    assert [o.status for o in report.outcomes] == [OutcomeStatus.DEAD_LETTERED]
    assert [letter.reason for letter in dead_letters.letters] == [reason]


def test_a_stored_configuration_that_no_longer_parses_is_dead_lettered(
    service: NotificationService, configs: MemoryConfigs, dead_letters: ListDeadLetters, inbox: MemoryInbox
) -> None:
    # Given a stored configuration this version cannot parse
    configs.set("acme", "route:\n  receiver: inbox\nreceivers:\n  - name: inbox\n    carrier_pigeon_configs: [{}]\n")
    # When a notification is delivered, Then it is dead-lettered with the line at fault, not dropped
    service.deliver(NotificationRequest(incident(), "inbox"))
    (letter,) = dead_letters.letters
    assert letter.reason.startswith("the tenant's Alertmanager configuration v1 is invalid: line 5:")
    assert inbox.latest("acme", 10) == []


def test_a_configuration_change_takes_effect_at_its_next_version(
    service: NotificationService,
    configs: MemoryConfigs,
    slack: SlackApi,
    pagerduty: PagerDutyEvents,
    inbox: MemoryInbox,
) -> None:
    # Given the default configuration used once, then a configuration without an inbox receiver
    service.deliver(NotificationRequest(incident(), "inbox"))
    configs.set("acme", team_config(slack, pagerduty).replace("name: inbox\n    inbox_configs: [{}]", "name: inbox"))
    # When the next update for the inbox receiver arrives, Then it has no integration left to tell
    report = service.deliver(NotificationRequest(incident(Action.UPDATED, 2), "inbox"))
    assert report.outcomes == ()
    assert len(inbox.latest("acme", 10)) == 1
