"""Slack: a Block Kit message per incident, kept up to date in place when a bot token is configured.

With an incoming webhook, every notification posts a new message (webhooks cannot edit). With a bot
token and a channel, the first notification is posted with ``chat.postMessage`` and its channel and
``ts`` remembered (MessageRefs); later ones rewrite that message with ``chat.update`` and add a thread
reply saying what changed, so the channel shows one message per incident with its history beneath.
A notification older than the one the message shows (its sequence number is not higher) is skipped,
so out-of-order delivery never rolls the message back.

Web API answers are HTTP 200 with ``{"ok": false, "error": …}`` on failure; 429 carries Retry-After.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from novacron.notify.delivery import AttemptFailed, Channel, DeliveryFailed, classify_http
from novacron.notify.dispatch import ConfiguredNotifier
from novacron.notify.http_client import HttpRequest, HttpResponse
from novacron.notify.model import Action, IncidentNotification, Severity, Status
from novacron.notify.ratelimit import RateLimit
from novacron.notify.text import alert_line, headline, priority_label, top_alerts

API_URL = "https://slack.com/api"
MAX_HEADER = 150  # Block Kit limits
MAX_SECTION = 3000
MAX_FIELD = 2000
# Web API errors worth retrying; the others (channel_not_found, invalid_auth, …) will not go away.
RETRIED_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})

_SEVERITY_ICON = {
    Severity.CRITICAL: ":red_circle:",
    Severity.ERROR: ":large_orange_circle:",
    Severity.WARNING: ":large_yellow_circle:",
    Severity.INFO: ":large_blue_circle:",
}

SLACK_RATE = RateLimit(per_second=1.0, burst=3)


@dataclass(frozen=True)
class SlackReceiver:
    """An incoming webhook URL, or a bot token and a channel (then messages are updated in place)."""

    name: str
    webhook_url: str | None = None
    bot_token: str | None = None
    channel: str | None = None
    api_url: str = API_URL
    # Slack allows about one message per second per channel.
    rate_limit: RateLimit | None = SLACK_RATE

    def __post_init__(self) -> None:
        if bool(self.webhook_url) == bool(self.bot_token):
            raise ValueError(f"Slack receiver {self.name!r}: give either webhook_url or bot_token (with channel)")
        if self.bot_token and not self.channel:
            raise ValueError(f"Slack receiver {self.name!r}: a bot token needs a channel")

    def __repr__(self) -> str:  # the webhook URL and the token are secrets
        return f"SlackReceiver(name={self.name!r}, channel={self.channel!r})"


@dataclass(frozen=True)
class MessageRef:
    """Where an incident's message is, and which update it shows."""

    channel: str
    ts: str
    sequence: int


class MessageRefs(Protocol):
    """Remembers each incident's Slack message (a DynamoDB item in AWS)."""

    def get(self, key: str) -> MessageRef | None: ...

    def put(self, key: str, ref: MessageRef) -> None: ...


def message_key(notification: IncidentNotification, receiver: str) -> str:
    """The MessageRefs key of an incident's message in one receiver."""
    return f"{notification.tenant}/{notification.incident_id}/{receiver}"


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_blocks(notification: IncidentNotification) -> list[dict[str, Any]]:
    """Header, severity/priority/status/services fields, summary, top alerts, link, context."""
    n = notification
    icon = ":white_check_mark:" if n.status is Status.RESOLVED else _SEVERITY_ICON[n.severity]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{icon} {headline(n)}"[:MAX_HEADER], "emoji": True}},
        {
            "type": "section",
            "fields": [
                _field("Severity", n.severity.value),
                _field("Priority", priority_label(n)),
                _field("Status", n.status.value),
                _field("Services", ", ".join(n.services) or "(none recorded)"),
            ],
        },
    ]
    if n.summary:
        blocks.append(_section(escape(n.summary)))
    shown, more = top_alerts(n)
    if shown:
        lines = [f"• `{escape(alert_line(alert))}`" for alert in shown]
        if more:
            lines.append(f"… and {more} more")
        blocks.append(_section(f"*Top alerts ({len(n.alerts)})*\n" + "\n".join(lines)))
    if n.url:
        button = {"type": "button", "text": {"type": "plain_text", "text": "Open incident"}, "url": n.url}
        blocks.append({"type": "actions", "elements": [{**button, "action_id": "open_incident"}]})
    context = f"Incident `{escape(n.incident_id)}` · tenant {n.tenant} · update #{n.sequence}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return blocks


def build_message(notification: IncidentNotification) -> dict[str, Any]:
    """The message: Block Kit blocks and the plain ``text`` fallback (notifications, screen readers)."""
    return {"text": headline(notification), "blocks": build_blocks(notification)}


def change_line(notification: IncidentNotification) -> str:
    """The thread reply for an update: what happened and the state after it."""
    n = notification
    return (
        f"*{n.action.value.capitalize()}* (update #{n.sequence}): status {n.status.value}, "
        f"severity {n.severity.value}, priority {priority_label(n)}"
    )


def classify_web_api(response: HttpResponse, now: float) -> AttemptFailed | None:
    """Web API answers: HTTP errors as usual, then ``ok``/``error`` in the JSON body."""
    failure = classify_http(response, now)
    if failure is not None:
        return failure
    body = response.json()
    if not isinstance(body, dict):
        return AttemptFailed("Slack answered without a JSON object", retryable=True)
    if body.get("ok") is True:
        return None
    error = str(body.get("error", "unknown_error"))
    return AttemptFailed(f"Slack API error: {error}", retryable=error in RETRIED_ERRORS)


class SlackNotifier(ConfiguredNotifier[SlackReceiver]):
    """Posts (and, with a bot token, updates) the incident's message."""

    def __init__(self, receiver: SlackReceiver, refs: MessageRefs) -> None:
        super().__init__(receiver)
        self.refs = refs

    def deliver(self, notification: IncidentNotification, channel: Channel) -> str:
        """Post a new message, or update the incident's message and reply in its thread."""
        message = build_message(notification)
        if self.receiver.webhook_url:
            channel.send(HttpRequest.json_post(self.receiver.webhook_url, message))
            return "posted through the incoming webhook"
        key = message_key(notification, self.name)
        ref = self.refs.get(key)
        if ref is None:
            answer = self._call(channel, "chat.postMessage", {"channel": self.receiver.channel, **message})
            posted_channel, ts = answer.get("channel"), answer.get("ts")
            if not isinstance(posted_channel, str) or not isinstance(ts, str):
                raise DeliveryFailed("chat.postMessage answered ok without channel and ts", channel.attempts, False)
            self.refs.put(key, MessageRef(posted_channel, ts, notification.sequence))
            return f"posted ts={ts}"
        if notification.sequence <= ref.sequence:
            return f"skipped: the message already shows update #{ref.sequence}"
        self._call(channel, "chat.update", {"channel": ref.channel, "ts": ref.ts, **message})
        self.refs.put(key, MessageRef(ref.channel, ref.ts, notification.sequence))
        reply: dict[str, Any] = {"channel": ref.channel, "thread_ts": ref.ts, "text": change_line(notification)}
        if notification.action in (Action.ESCALATED, Action.REOPENED):
            reply["reply_broadcast"] = True  # worth the whole channel's attention, not only the thread's
        self._call(channel, "chat.postMessage", reply)
        return f"updated ts={ref.ts} and replied in its thread"

    def _call(self, channel: Channel, method: str, arguments: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.receiver.api_url.rstrip('/')}/{method}"
        auth = {"Authorization": f"Bearer {self.receiver.bot_token}"}
        answer = channel.send(HttpRequest.json_post(url, arguments, auth), classify_web_api).json()
        return answer if isinstance(answer, dict) else {}


def _field(label: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{label}*\n{escape(value)}"[:MAX_FIELD]}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SECTION]}}
