"""E-mail through an SNS topic: subscribers of the topic (e-mail addresses) get a plain-text message.

The publish goes through the Publisher protocol (the SNS adapter implements it), which raises
AttemptFailed: retryable for throttling and service errors, not for a refused request. Message
attributes carry the tenant, severity and action, so a subscription filter policy can, for
example, send only critical incidents to a pager address.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from novacron.notify.delivery import Channel
from novacron.notify.dispatch import ConfiguredNotifier
from novacron.notify.model import IncidentNotification
from novacron.notify.ratelimit import RateLimit
from novacron.notify.text import headline, plain_text

MAX_SUBJECT = 99  # SNS: fewer than 100 characters
_NOT_IN_SUBJECT = re.compile(r"[^\x20-\x7e]+")  # SNS subjects are printable ASCII without line breaks

SNS_RATE = RateLimit(per_second=10.0, burst=20)


@dataclass(frozen=True)
class EmailReceiver:
    """An SNS topic whose subscriptions are e-mail addresses."""

    name: str
    topic_arn: str
    rate_limit: RateLimit | None = SNS_RATE

    def __post_init__(self) -> None:
        if not self.topic_arn.startswith("arn:"):
            raise ValueError(f"e-mail receiver {self.name!r}: topic_arn must be an SNS topic ARN")


@dataclass(frozen=True)
class EmailMessage:
    """What is published: subject, body and the attributes filter policies can match."""

    subject: str
    body: str
    attributes: Mapping[str, str]


class Publisher(Protocol):
    """Publishes to an SNS topic; returns the message id; raises AttemptFailed."""

    def publish(self, topic_arn: str, subject: str, message: str, attributes: Mapping[str, str]) -> str: ...


def subject_line(notification: IncidentNotification) -> str:
    """The headline as an SNS subject: printable ASCII, one line, under 100 characters."""
    text = _NOT_IN_SUBJECT.sub(" ", headline(notification)).strip()
    return text[:MAX_SUBJECT]


def build_email(notification: IncidentNotification) -> EmailMessage:
    """Subject, plain-text body and filterable attributes."""
    n = notification
    attributes = {"tenant": n.tenant, "severity": n.severity.value, "action": n.action.value}
    return EmailMessage(subject_line(n), plain_text(n), attributes)


class EmailNotifier(ConfiguredNotifier[EmailReceiver]):
    """Publishes each notification to the receiver's topic."""

    def __init__(self, receiver: EmailReceiver, publisher: Publisher) -> None:
        super().__init__(receiver)
        self.publisher = publisher

    def deliver(self, notification: IncidentNotification, channel: Channel) -> str:
        """Publish, retrying what the publisher says is retryable."""
        email = build_email(notification)
        message_id = channel.run(
            lambda: self.publisher.publish(self.receiver.topic_arn, email.subject, email.body, email.attributes)
        )
        return f"published message_id={message_id}"
