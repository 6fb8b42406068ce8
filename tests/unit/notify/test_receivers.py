"""Alertmanager-style receivers → notifiers: one per integration, secrets revealed only into the receivers."""

from __future__ import annotations

import pytest

from novacron.alert.amconfig import parse_config
from novacron.notify.dispatch import Dispatcher, Notifier, OutcomeStatus
from novacron.notify.email import EmailNotifier
from novacron.notify.inbox import InboxNotifier
from novacron.notify.opsgenie import OpsgenieNotifier
from novacron.notify.pagerduty import PagerDutyNotifier
from novacron.notify.receivers import (
    DEFAULT_CONFIG,
    DEFAULT_RECEIVER,
    KeyedNotifier,
    Outlets,
    UnusableNotifier,
    notifiers_for,
)
from novacron.notify.slack import SlackNotifier
from novacron.notify.webhook import WebhookNotifier
from tests.unit.notify.conftest import BOT_TOKEN, GENIE_KEY, ROUTING_KEY, WEBHOOK_SECRET, incident
from tests.unit.notify.memory import ListDeadLetters, MemoryInbox, MemoryMessageRefs, ScriptedPublisher
from tests.unit.notify.receivers import SlackApi

EMAIL_TOPIC = "arn:aws:sns:us-east-1:123456789012:novacron-email"
HOOK_URL = "https://hooks.slack.com/services/T000/B000/SECRETPATH"

CONFIG = f"""\
route:
  receiver: everything
receivers:
  - name: everything
    slack_configs:
      - api_url: {HOOK_URL}
      - api_url: https://slack.example.com/api/chat.postMessage
        channel: "#incidents"
        http_config:
          authorization:
            credentials: {BOT_TOKEN}
    pagerduty_configs:
      - routing_key: {ROUTING_KEY}
      - service_key: v1-service-key-0123456789
    opsgenie_configs:
      - api_key: {GENIE_KEY}
        api_url: https://api.eu.opsgenie.com/
        tags: "team:db, tier:1"
    webhook_configs:
      - url: https://hooks.acme.example/novacron
        hmac_secret: {WEBHOOK_SECRET}
      - url: https://hooks.acme.example/unsigned
    email_configs:
      - to: oncall@acme.example
        from: novacron@acme.example
        smarthost: smtp.acme.example:587
    inbox_configs:
      - inbox: ops
"""


@pytest.fixture
def outlets() -> Outlets:
    return Outlets(MemoryMessageRefs(), MemoryInbox(), ScriptedPublisher(), EMAIL_TOPIC)


@pytest.fixture
def notifiers(outlets: Outlets) -> dict[str, Notifier]:
    found = notifiers_for(parse_config(CONFIG), "everything", incident(), outlets)
    return {n.name: n for n in found}


def test_each_integration_is_one_notifier_named_after_its_receiver_and_place(notifiers: dict[str, Notifier]) -> None:
    kinds = {name: type(n) for name, n in notifiers.items()}
    assert kinds == {
        "everything/slack[0]": SlackNotifier,
        "everything/slack[1]": SlackNotifier,
        "everything/pagerduty[0]": PagerDutyNotifier,
        "everything/pagerduty[1]": UnusableNotifier,
        "everything/opsgenie[0]": OpsgenieNotifier,
        "everything/webhook[0]": WebhookNotifier,
        "everything/webhook[1]": UnusableNotifier,
        "everything/email[0]": EmailNotifier,
        "everything/inbox[0]": KeyedNotifier,
    }


def test_slack_is_a_webhook_unless_a_chat_post_message_url_comes_with_a_bot_token(
    notifiers: dict[str, Notifier],
) -> None:
    hook, bot = notifiers["everything/slack[0]"], notifiers["everything/slack[1]"]
    assert isinstance(hook, SlackNotifier)
    assert isinstance(bot, SlackNotifier)
    assert (hook.receiver.webhook_url, hook.receiver.bot_token) == (HOOK_URL, None)
    assert (bot.receiver.bot_token, bot.receiver.channel) == (BOT_TOKEN, "#incidents")
    assert bot.receiver.api_url == "https://slack.example.com/api"


def test_the_other_integrations_get_their_keys_urls_and_tags(notifiers: dict[str, Notifier]) -> None:
    pagerduty, opsgenie = notifiers["everything/pagerduty[0]"], notifiers["everything/opsgenie[0]"]
    webhook, inbox = notifiers["everything/webhook[0]"], notifiers["everything/inbox[0]"]
    assert isinstance(pagerduty, PagerDutyNotifier)
    assert (pagerduty.receiver.routing_key, pagerduty.receiver.url) == (
        ROUTING_KEY,
        "https://events.pagerduty.com/v2/enqueue",
    )
    assert isinstance(opsgenie, OpsgenieNotifier)
    assert (opsgenie.receiver.api_key, opsgenie.receiver.api_url) == (GENIE_KEY, "https://api.eu.opsgenie.com/")
    assert opsgenie.receiver.tags == ("team:db", "tier:1")
    assert isinstance(webhook, WebhookNotifier)
    assert webhook.receiver.secret == WEBHOOK_SECRET
    assert isinstance(inbox, KeyedNotifier)
    assert isinstance(inbox.inner, InboxNotifier)
    assert inbox.inner.name == "ops"


def test_no_secret_shows_in_a_notifiers_repr(notifiers: dict[str, Notifier]) -> None:
    shown = repr([getattr(n, "receiver", n) for n in notifiers.values()])
    for secret in (HOOK_URL, BOT_TOKEN, ROUTING_KEY, GENIE_KEY, WEBHOOK_SECRET):
        assert secret not in shown


def test_unusable_integrations_are_dead_lettered_with_what_to_fix(
    notifiers: dict[str, Notifier], dispatcher: Dispatcher, dead_letters: ListDeadLetters
) -> None:
    unusable = [notifiers["everything/pagerduty[1]"], notifiers["everything/webhook[1]"]]
    outcomes = dispatcher.dispatch(incident(), unusable)
    assert [o.status for o in outcomes] == [OutcomeStatus.DEAD_LETTERED] * 2
    assert [(letter.reason, letter.retryable) for letter in dead_letters.letters] == [
        ("PagerDuty Events API v1 (service_key) is not supported: give routing_key", False),
        ("webhooks are signed: give hmac_secret (at least 16 characters)", False),
    ]


def test_a_too_short_webhook_secret_is_unusable_and_says_so_without_the_secret(outlets: Outlets) -> None:
    text = CONFIG.replace(f"hmac_secret: {WEBHOOK_SECRET}", "hmac_secret: short-one")
    (notifier,) = notifiers_for(parse_config(text), "everything", incident(), outlets, ["webhook[0]"])
    assert isinstance(notifier, UnusableNotifier)
    assert "at least 16 characters" in notifier.reason
    assert "short-one" not in notifier.reason


def test_the_slack_bot_updates_its_message_in_place(outlets: Outlets, dispatcher: Dispatcher, slack: SlackApi) -> None:
    # Given the bot integration pointed at the local Slack API
    text = CONFIG.replace("https://slack.example.com/api", slack.api_url)
    config = parse_config(text)
    # When the incident opens and is then updated
    for n in (incident(), incident(sequence=2)):
        (bot,) = notifiers_for(config, "everything", n, outlets, ["slack[1]"])
        assert dispatcher.dispatch(n, [bot])[0].status is OutcomeStatus.DELIVERED
    # Then the channel shows one message, edited once, with the change in its thread
    assert slack.problems() == []
    (message,) = slack.messages.values()
    assert (message.edits, len(message.replies)) == (1, 1)


def test_the_default_configuration_routes_everything_to_the_inbox() -> None:
    assert DEFAULT_CONFIG.route.receiver == DEFAULT_RECEIVER
    (integration,) = DEFAULT_CONFIG.receivers[DEFAULT_RECEIVER].integrations
    assert (integration.name, integration.send_resolved) == ("inbox[0]", True)
