"""One incident's lifecycle told to every kind of receiver at once, each checking its contract."""

from __future__ import annotations

from novacron.notify.dispatch import Dispatcher, Notifier, OutcomeStatus
from novacron.notify.email import EmailNotifier, EmailReceiver
from novacron.notify.inbox import InboxNotifier, read_inbox
from novacron.notify.model import Action
from novacron.notify.opsgenie import OpsgenieNotifier, OpsgenieReceiver
from novacron.notify.pagerduty import PagerDutyNotifier, PagerDutyReceiver
from novacron.notify.slack import SlackNotifier, SlackReceiver
from novacron.notify.webhook import WebhookNotifier, WebhookReceiver
from tests.unit.notify.conftest import BOT_TOKEN, GENIE_KEY, ROUTING_KEY, WEBHOOK_SECRET, incident
from tests.unit.notify.memory import MemoryInbox, MemoryMessageRefs, ScriptedPublisher
from tests.unit.notify.receivers import OpsgenieApi, PagerDutyEvents, SlackApi, WebhookEndpoint


def test_every_receiver_follows_the_incident(
    dispatcher: Dispatcher,
    slack: SlackApi,
    pagerduty: PagerDutyEvents,
    opsgenie: OpsgenieApi,
    webhook_endpoint: WebhookEndpoint,
) -> None:
    # Given one receiver of each kind
    inbox, publisher = MemoryInbox(), ScriptedPublisher()
    receivers: list[Notifier] = [
        SlackNotifier(SlackReceiver("slack", bot_token=BOT_TOKEN, channel="#oncall", api_url=slack.api_url),
                      MemoryMessageRefs()),
        PagerDutyNotifier(PagerDutyReceiver("pd", ROUTING_KEY, url=pagerduty.url + "/v2/enqueue")),
        OpsgenieNotifier(OpsgenieReceiver("og", GENIE_KEY, api_url=opsgenie.url)),
        WebhookNotifier(WebhookReceiver("hook", webhook_endpoint.endpoint, WEBHOOK_SECRET)),
        EmailNotifier(EmailReceiver("mail", "arn:aws:sns:eu-west-1:123456789012:oncall"), publisher),
        InboxNotifier(inbox),
    ]  # fmt: skip
    # When the incident is opened, escalated, acknowledged and resolved (and one message is redelivered)
    lifecycle = [incident(Action.OPENED, 1), incident(Action.ESCALATED, 2, priority=1),
                 incident(Action.ACKNOWLEDGED, 3), incident(Action.RESOLVED, 4)]  # fmt: skip
    outcomes = [o for n in [*lifecycle, lifecycle[1]] for o in dispatcher.dispatch(n, receivers)]
    # Then every change reached every receiver once, the redelivery none, and no contract was broken
    statuses = [o.status for o in outcomes]
    assert statuses.count(OutcomeStatus.DELIVERED) == 24
    assert statuses.count(OutcomeStatus.DUPLICATE) == 6
    for receiver in (slack, pagerduty, opsgenie, webhook_endpoint):
        assert receiver.problems() == []
    assert len(slack.messages) == 1
    assert pagerduty.alerts == {"inc-2026-0001": "resolved"}
    assert opsgenie.alerts == {"inc-2026-0001": "closed"}
    assert len(webhook_endpoint.notifications) == 4
    assert len(publisher.published) == 4
    assert [e.sequence for e in read_inbox(inbox, "acme")] == [4, 3, 2, 1]
