"""Generic webhooks, signed with HMAC-SHA256 so the receiver can check who sent them and when.

Each POST carries:

- ``X-NovaCron-Timestamp``: Unix seconds when this attempt was signed (each retry is signed anew);
- ``X-NovaCron-Signature``: ``v1=<hex>``, the HMAC-SHA256 under the shared secret of
  ``<timestamp>.<raw body>``; several comma-separated values may appear while a secret is rotated;
- ``X-NovaCron-Delivery``: the delivery's idempotency key, the same on every retry, for the receiver
  to drop a repeat.

To verify (``verify_signature`` below is the reference): refuse a timestamp more than five minutes
from your clock (replays), compute the HMAC over the timestamp, a dot and the body bytes exactly as
received, and compare it in constant time with each ``v1=`` value.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from novacron.notify.delivery import Channel
from novacron.notify.dispatch import ConfiguredNotifier
from novacron.notify.http_client import HttpRequest
from novacron.notify.model import IncidentNotification
from novacron.notify.ratelimit import RateLimit

TIMESTAMP_HEADER = "X-NovaCron-Timestamp"
SIGNATURE_HEADER = "X-NovaCron-Signature"
DELIVERY_HEADER = "X-NovaCron-Delivery"
SCHEME = "v1"
REPLAY_WINDOW_S = 300
PAYLOAD_VERSION = "1"


class SignatureError(ValueError):
    """A webhook request whose signature does not verify (says why)."""


WEBHOOK_RATE = RateLimit(per_second=5.0, burst=10)


@dataclass(frozen=True)
class WebhookReceiver:
    """An HTTPS endpoint and the secret shared with it."""

    name: str
    url: str
    secret: str
    rate_limit: RateLimit | None = WEBHOOK_RATE

    def __post_init__(self) -> None:
        if not self.url.startswith(("https://", "http://")):
            raise ValueError(f"webhook receiver {self.name!r}: url must be http(s)")
        if len(self.secret) < 16:
            raise ValueError(f"webhook receiver {self.name!r}: the secret must have at least 16 characters")

    def __repr__(self) -> str:  # keep the secret out of logs
        return f"WebhookReceiver(name={self.name!r})"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value, ``v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def verify_signature(
    secret: str, headers: Mapping[str, str], body: bytes, now: float, window_s: int = REPLAY_WINDOW_S
) -> None:
    """Raise SignatureError unless ``body`` was signed with ``secret`` within ``window_s`` of ``now``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    stamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    if not stamp.isdigit():
        raise SignatureError(f"missing or malformed {TIMESTAMP_HEADER}")
    if abs(now - int(stamp)) > window_s:
        raise SignatureError(f"timestamp outside the {window_s}s replay window")
    expected = sign(secret, int(stamp), body)
    offered = [part.strip() for part in lowered.get(SIGNATURE_HEADER.lower(), "").split(",")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered if candidate):
        raise SignatureError("signature does not match")


def build_body(notification: IncidentNotification) -> dict[str, Any]:
    """The JSON body: a version, the event name and the notification."""
    return {
        "version": PAYLOAD_VERSION,
        "event": f"incident.{notification.action.value}",
        "notification": notification.to_dict(),
    }


class WebhookNotifier(ConfiguredNotifier[WebhookReceiver]):
    """POSTs each notification, signed, to one endpoint."""

    def deliver(self, notification: IncidentNotification, channel: Channel) -> str:
        """POST; any 2xx is success."""
        unsigned = HttpRequest.json_post(self.receiver.url, build_body(notification))
        delivery = notification.delivery_key(self.receiver.name)
        clock = channel.clock

        def signed() -> HttpRequest:
            stamp = int(clock.now())
            headers = {
                **unsigned.headers,
                TIMESTAMP_HEADER: str(stamp),
                SIGNATURE_HEADER: sign(self.receiver.secret, stamp, unsigned.body),
                DELIVERY_HEADER: delivery,
            }
            return HttpRequest(unsigned.method, unsigned.url, headers, unsigned.body)

        response = channel.send(signed)
        return f"POST: HTTP {response.status}"
