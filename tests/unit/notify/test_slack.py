"""Slack: Block Kit through an incoming webhook, and a bot token's post-once-then-update flow."""

from __future__ import annotations

import pytest

from novacron.notify.dispatch import Dispatcher, OutcomeStatus
from novacron.notify.model import Action
from novacron.notify.slack import SlackNotifier, SlackReceiver, build_message, escape, message_key
from tests.unit.notify.conftest import BOT_TOKEN, incident
from tests.unit.notify.memory import FakeClock, ListDeadLetters, MemoryMessageRefs
from tests.unit.notify.receivers import Reply, SlackApi, check_blocks

LIFECYCLE = [incident(Action.OPENED, 1), incident(Action.ACKNOWLEDGED, 2), incident(Action.RESOLVED, 3)]


@pytest.fixture
def refs() -> MemoryMessageRefs:
    return MemoryMessageRefs()


@pytest.fixture
def bot(slack: SlackApi, refs: MemoryMessageRefs) -> SlackNotifier:
    return SlackNotifier(SlackReceiver("slack", bot_token=BOT_TOKEN, channel="#alerts", api_url=slack.api_url), refs)


@pytest.fixture
def hook(slack: SlackApi, refs: MemoryMessageRefs) -> SlackNotifier:
    return SlackNotifier(SlackReceiver("slack-hook", webhook_url=slack.webhook_url), refs)


def test_the_message_is_valid_block_kit_with_header_fields_alerts_and_link() -> None:
    message = build_message(incident())
    assert check_blocks(message["blocks"]) == []
    assert message["text"] == "[P1 critical] Opened: Checkout latency high: database slowdown suspected"
    kinds = [block["type"] for block in message["blocks"]]
    assert kinds == ["header", "section", "section", "section", "actions", "context"]
    fields = [f["text"] for f in message["blocks"][1]["fields"]]
    assert fields == [
        "*Severity*\ncritical",
        "*Priority*\nP1",
        "*Status*\nopen",
        "*Services*\ncheckout, payments, orders",
    ]
    assert message["blocks"][4]["elements"][0]["url"] == "https://novacron.example.com/incidents/inc-2026-0001"


def test_long_and_hostile_text_stays_within_limits_and_escaped() -> None:
    # Given a title far over the header limit and a summary with mrkdwn control characters
    message = build_message(incident(title="t" * 400, summary="<!channel> & <http://evil|click>" * 200))
    # Then the blocks still validate and nothing can mention @channel or forge a link
    assert check_blocks(message["blocks"]) == []
    assert "<!channel>" not in str(message["blocks"])
    assert escape("<a&b>") == "&lt;a&amp;b&gt;"


def test_with_a_webhook_each_action_posts_a_new_message(
    dispatcher: Dispatcher, hook: SlackNotifier, slack: SlackApi
) -> None:
    for notification in LIFECYCLE:
        assert dispatcher.dispatch(notification, [hook])[0].status is OutcomeStatus.DELIVERED
    assert slack.problems() == []
    assert [post["text"].split("]")[1].split(":")[0] for post in slack.webhook_posts] == [
        " Opened",
        " Acknowledged",
        " Resolved",
    ]


def test_with_a_bot_token_the_message_is_posted_once_then_updated_in_place_with_thread_replies(
    dispatcher: Dispatcher, bot: SlackNotifier, slack: SlackApi, refs: MemoryMessageRefs
) -> None:
    # When an incident is opened, acknowledged and resolved
    for notification in LIFECYCLE:
        assert dispatcher.dispatch(notification, [bot])[0].status is OutcomeStatus.DELIVERED
    # Then every call met the contract, and the channel has exactly one message
    assert slack.problems() == []
    (message,) = slack.messages.values()
    # Which was edited twice and now shows the resolution
    assert message.edits == 2
    assert message.text.startswith("[P1 critical] Resolved:")
    assert message.blocks[0]["text"]["text"].startswith(":white_check_mark:")
    # With one thread reply per change
    assert [reply["text"].split("*")[1] for reply in message.replies] == ["Acknowledged", "Resolved"]
    # And the reference remembers which update it shows
    assert refs.get(message_key(LIFECYCLE[0], "slack")).sequence == 3  # type: ignore[union-attr]
    methods = [request.path for request in slack.requests]
    assert methods == ["/api/chat.postMessage"] + ["/api/chat.update", "/api/chat.postMessage"] * 2


def test_an_escalation_reply_is_broadcast_to_the_channel(
    dispatcher: Dispatcher, bot: SlackNotifier, slack: SlackApi
) -> None:
    dispatcher.dispatch(incident(Action.OPENED, 1), [bot])
    dispatcher.dispatch(incident(Action.ESCALATED, 2), [bot])
    assert slack.requests[-1].json["reply_broadcast"] is True


def test_an_older_update_arriving_late_does_not_roll_the_message_back(
    dispatcher: Dispatcher, bot: SlackNotifier, slack: SlackApi
) -> None:
    # Given a message already showing update #3
    dispatcher.dispatch(incident(Action.OPENED, 1), [bot])
    dispatcher.dispatch(incident(Action.RESOLVED, 3), [bot])
    # When update #2 arrives late
    outcome = dispatcher.dispatch(incident(Action.ACKNOWLEDGED, 2), [bot])[0]
    # Then Slack is not called and the message still shows the resolution
    assert outcome.detail == "skipped: the message already shows update #3"
    assert len(slack.requests) == 3
    (message,) = slack.messages.values()
    assert "Resolved" in message.text


def test_ratelimited_429_is_honoured(
    dispatcher: Dispatcher, bot: SlackNotifier, slack: SlackApi, clock: FakeClock
) -> None:
    slack.script(Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}))
    assert dispatcher.dispatch(incident(), [bot])[0].status is OutcomeStatus.DELIVERED
    assert 30.0 in clock.sleeps
    assert len(slack.messages) == 1


def test_a_5xx_is_retried(dispatcher: Dispatcher, hook: SlackNotifier, slack: SlackApi) -> None:
    slack.script(Reply(500, "rollup_error"))
    outcome = dispatcher.dispatch(incident(), [hook])[0]
    assert (outcome.status, outcome.attempts) == (OutcomeStatus.DELIVERED, 2)


def test_an_api_error_in_a_200_answer_is_final_and_dead_lettered(
    dispatcher: Dispatcher, slack: SlackApi, refs: MemoryMessageRefs, dead_letters: ListDeadLetters
) -> None:
    # Given a bot whose token Slack does not accept (Slack answers 200 with ok=false)
    stranger = SlackNotifier(
        SlackReceiver("slack", bot_token="xoxb-wrong", channel="#alerts", api_url=slack.api_url), refs
    )
    # When notifying, Then it is tried once and dead-lettered with Slack's error code
    assert dispatcher.dispatch(incident(), [stranger])[0].status is OutcomeStatus.DEAD_LETTERED
    assert len(slack.requests) == 1
    assert dead_letters.letters[0].reason == "Slack API error: invalid_auth"


def test_a_webhook_400_is_dead_lettered(
    dispatcher: Dispatcher, hook: SlackNotifier, slack: SlackApi, dead_letters: ListDeadLetters
) -> None:
    slack.script(Reply(400, "invalid_payload"))
    assert dispatcher.dispatch(incident(), [hook])[0].status is OutcomeStatus.DEAD_LETTERED
    assert dead_letters.letters[0].reason == "HTTP 400: invalid_payload"


def test_a_burst_of_incidents_is_paced_by_the_rate_limit(
    dispatcher: Dispatcher, hook: SlackNotifier, slack: SlackApi, clock: FakeClock
) -> None:
    # Given Slack's default limit (1 message/s, burst of 3)
    # When ten incidents open at once
    for i in range(10):
        dispatcher.dispatch(incident(incident_id=f"inc-{i}"), [hook])
    # Then all are posted, the last seven each held back about a second
    assert len(slack.webhook_posts) == 10
    assert len(clock.sleeps) == 7
    assert all(0.99 <= s <= 1.01 for s in clock.sleeps)


def test_configuration_needs_a_webhook_or_a_bot_token_with_channel() -> None:
    with pytest.raises(ValueError, match="either webhook_url or bot_token"):
        SlackReceiver("s")
    with pytest.raises(ValueError, match="needs a channel"):
        SlackReceiver("s", bot_token=BOT_TOKEN)
    assert BOT_TOKEN not in repr(SlackReceiver("s", bot_token=BOT_TOKEN, channel="#c"))
    assert "hooks" not in repr(SlackReceiver("s", webhook_url="https://hooks.slack.com/services/T/B/secret"))
