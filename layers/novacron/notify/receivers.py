"""A tenant's Alertmanager-style receivers (novacron.alert.amconfig) as notifiers (novacron.notify).

Each integration of a receiver (``slack[0]``, ``pagerduty[1]``, …) becomes one notifier, named
``<receiver>/<integration>``: that name is its idempotency key's last part (the DeliveryLog), its
rate-limit bucket and, for Slack, the key of the incident's message. Secrets are revealed here, into
the receiver dataclasses, whose ``repr`` leaves them out; they are never logged.

How the integrations map:

- ``slack_configs``: ``api_url`` is an incoming webhook, unless it is a Web API
  ``…/chat.postMessage`` URL with a bot token in ``http_config`` (``authorization.credentials`` or
  ``bearer_token``) and a ``channel``: then the incident's message is posted once and updated in place;
- ``pagerduty_configs``: Events API v2 with ``routing_key`` (a v1 ``service_key`` alone is refused);
- ``opsgenie_configs``: ``api_key``, ``api_url``, comma-separated ``tags``;
- ``webhook_configs``: ``url``, signed with ``hmac_secret``, which NovaCron requires (16+ characters);
- ``email_configs``: published to the deployment's ``email`` topic, with ``receiver`` and ``to`` message
  attributes for the subscriptions' filter policies (SNS sends the mail: ``smarthost`` is not used);
- ``inbox_configs``: the local inbox (entries carry the ``inbox`` name, by default the receiver's).

An integration that cannot be used as configured becomes an :class:`UnusableNotifier`: its delivery
fails for good with the reason, so the dispatcher dead-letters it where an operator sees it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from novacron.alert.amconfig import (
    DEFAULT_CONFIG_TEXT,
    DEFAULT_RECEIVER,
    AlertmanagerConfig,
    EmailConfig,
    InboxConfig,
    Integration,
    OpsgenieConfig,
    PagerDutyConfig,
    SlackConfig,
    WebhookConfig,
    parse_config,
)
from novacron.notify.delivery import Channel, DeliveryFailed
from novacron.notify.dispatch import Notifier, notifier_name
from novacron.notify.email import EmailNotifier, EmailReceiver, Publisher
from novacron.notify.inbox import InboxNotifier, InboxReceiver, InboxStore
from novacron.notify.model import Action, IncidentNotification
from novacron.notify.opsgenie import OpsgenieNotifier, OpsgenieReceiver
from novacron.notify.pagerduty import PagerDutyNotifier, PagerDutyReceiver
from novacron.notify.ratelimit import RateLimit
from novacron.notify.slack import MessageRefs, SlackNotifier, SlackReceiver
from novacron.notify.webhook import WebhookNotifier, WebhookReceiver

DEFAULT_CONFIG = parse_config(DEFAULT_CONFIG_TEXT)
SLACK_POST_METHOD = "/chat.postMessage"


@dataclass(frozen=True)
class Outlets:
    """What notifiers deliver through besides HTTP: Slack message refs, the inbox, the e-mail topic."""

    refs: MessageRefs
    inbox: InboxStore
    publisher: Publisher
    email_topic_arn: str


class UnusableNotifier:
    """An integration that cannot be delivered to as configured: every delivery fails for good, with why."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        self.rate_limit: RateLimit | None = None

    def deliver(self, notification: IncidentNotification, channel: Channel) -> str:
        """Refuse, so that the dispatcher dead-letters the notification with the reason."""
        raise DeliveryFailed(self.reason, attempts=0, retryable=False)


class KeyedNotifier:
    """A notifier delivered under another name (its idempotency key and rate-limit bucket)."""

    def __init__(self, name: str, inner: Notifier) -> None:
        self.name = name
        self.inner = inner

    @property
    def rate_limit(self) -> RateLimit | None:
        """The inner notifier's rate limit."""
        return self.inner.rate_limit

    def deliver(self, notification: IncidentNotification, channel: Channel) -> str:
        """Deliver through the inner notifier."""
        return self.inner.deliver(notification, channel)


class AddressedPublisher:
    """A Publisher adding the e-mail receiver's own attributes (``receiver``, ``to``) to every message."""

    def __init__(self, publisher: Publisher, extra: Mapping[str, str]) -> None:
        self.publisher = publisher
        self.extra = dict(extra)

    def publish(self, topic_arn: str, subject: str, message: str, attributes: Mapping[str, str]) -> str:
        """Publish with the extra attributes."""
        return self.publisher.publish(topic_arn, subject, message, {**attributes, **self.extra})


def notifiers_for(
    config: AlertmanagerConfig,
    receiver: str,
    notification: IncidentNotification,
    outlets: Outlets,
    integrations: Sequence[str] = (),
) -> list[Notifier]:
    """The notifiers of ``receiver``'s integrations (only those named in ``integrations`` when given).

    A resolution skips integrations with ``send_resolved: false``, as Alertmanager does. A receiver or
    integration missing from the configuration (it changed since the notification was routed) is an
    UnusableNotifier, so that the notification is dead-lettered rather than dropped unseen.
    """
    found = config.receivers.get(receiver)
    if found is None:
        return [UnusableNotifier(receiver, f"receiver {receiver!r} is not in the tenant's Alertmanager configuration")]
    by_name = {integration.name: integration for integration in found.integrations}
    wanted = list(integrations) or list(by_name)
    out: list[Notifier] = []
    for name in wanted:
        key = notifier_name(receiver, name)
        integration = by_name.get(name)
        if integration is None:
            out.append(UnusableNotifier(key, f"receiver {receiver!r} has no integration {name}"))
        elif notification.action is not Action.RESOLVED or integration.send_resolved:
            out.append(notifier_for(key, integration, outlets))
    return out


def notifier_for(name: str, integration: Integration, outlets: Outlets) -> Notifier:
    """One integration as a notifier called ``name``; an UnusableNotifier saying why if it cannot be one."""
    try:
        return _notifier(name, integration, outlets)
    except ValueError as exc:  # the receiver dataclasses' own checks (their messages hold no secret)
        return UnusableNotifier(name, str(exc))


def _notifier(name: str, integration: Integration, outlets: Outlets) -> Notifier:
    if isinstance(integration, SlackConfig):
        return SlackNotifier(slack_receiver(name, integration), outlets.refs)
    if isinstance(integration, PagerDutyConfig):
        if integration.routing_key is None:
            return UnusableNotifier(name, "PagerDuty Events API v1 (service_key) is not supported: give routing_key")
        return PagerDutyNotifier(PagerDutyReceiver(name, integration.routing_key.reveal(), integration.url))
    if isinstance(integration, OpsgenieConfig):
        tags = tuple(t.strip() for t in str(integration.options.get("tags") or "").split(",") if t.strip())
        return OpsgenieNotifier(OpsgenieReceiver(name, integration.api_key.reveal(), integration.api_url, tags))
    if isinstance(integration, WebhookConfig):
        if integration.hmac_secret is None:
            return UnusableNotifier(name, "webhooks are signed: give hmac_secret (at least 16 characters)")
        return WebhookNotifier(WebhookReceiver(name, integration.url, integration.hmac_secret.reveal()))
    if isinstance(integration, EmailConfig):
        receiver_name = name.split("/", 1)[0]
        publisher = AddressedPublisher(outlets.publisher, {"receiver": receiver_name, "to": integration.to})
        return EmailNotifier(EmailReceiver(name, outlets.email_topic_arn), publisher)
    if isinstance(integration, InboxConfig):
        return KeyedNotifier(name, InboxNotifier(outlets.inbox, InboxReceiver(integration.inbox or DEFAULT_RECEIVER)))
    return UnusableNotifier(name, f"{integration.kind} integrations are not supported")


def slack_receiver(name: str, config: SlackConfig) -> SlackReceiver:
    """A webhook receiver, or a bot (updating messages in place) for a chat.postMessage URL with a token."""
    url = config.api_url.reveal()
    token = _bearer_token(config.options.get("http_config"))
    if url.rstrip("/").endswith(SLACK_POST_METHOD) and token:
        api_url = url.rstrip("/").removesuffix(SLACK_POST_METHOD)
        return SlackReceiver(name, bot_token=token, channel=config.channel or None, api_url=api_url)
    return SlackReceiver(name, webhook_url=url)


def _bearer_token(http_config: Any) -> str | None:
    """The token of Alertmanager's ``http_config`` (``authorization.credentials`` or ``bearer_token``)."""
    if not isinstance(http_config, Mapping):
        return None
    authorization = http_config.get("authorization")
    if isinstance(authorization, Mapping) and isinstance(authorization.get("credentials"), str):
        return str(authorization["credentials"])
    token = http_config.get("bearer_token")
    return token if isinstance(token, str) else None
