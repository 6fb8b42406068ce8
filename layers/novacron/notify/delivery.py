"""Sending to a receiver: retries with exponential backoff and jitter, Retry-After, a deadline, rate limits.

A Sender holds what all deliveries share (the HTTP client, the clock, the retry policy, the rate-limit
buckets); a Channel is one notification's conversation with one receiver: its requests share the
attempt count and the deadline, and each waits for a token of the receiver's bucket.

What is retried: no answer at all, 408, 429 and 5xx (waiting as long as ``Retry-After`` says, in
seconds or as an HTTP date, else a jittered exponential backoff). Any other 4xx is final: the same
request would be refused again. A delivery that cannot succeed raises DeliveryFailed, whose reason
the dispatcher puts on the dead letter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

from novacron.notify.http_client import HttpClient, HttpRequest, HttpResponse, TransportError
from novacron.notify.ratelimit import MemoryRateLimits, RateLimit, RateLimitStore, release, reserve

T = TypeVar("T")

RETRIED_STATUSES = frozenset({408, 429})


class Clock(Protocol):
    """Wall time in epoch seconds, and waiting (tests inject one that only records the waits)."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """Epoch seconds."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        time.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one request is tried, and how long one notification may take per receiver."""

    max_attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    deadline_s: float = 120.0  # keep below the notifier function's timeout

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max, base·2^(attempt-1))], so retrying senders spread out."""
        return rng.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))


class AttemptFailed(Exception):
    """One attempt did not succeed; ``retryable`` says whether the same request may succeed later."""

    def __init__(self, reason: str, retryable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class DeliveryFailed(Exception):
    """A delivery given up: permanently refused, or still failing at the attempt limit or deadline."""

    def __init__(self, reason: str, attempts: int, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.retryable = retryable


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent or bad.

    (novacron.simulate.remote_write has one for its client, measured from the wall clock; this one
    takes ``now`` from the injected clock and stays free of that module's ``requests`` dependency,
    which the Lambda layers do not ship.)
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # "-0000" dates parse naive; HTTP dates are GMT
        return None
    return max(0.0, moment.timestamp() - now)


def classify_http(response: HttpResponse, now: float) -> AttemptFailed | None:
    """None for a 2xx; otherwise the failure, retryable for 408, 429 and 5xx."""
    if 200 <= response.status < 300:
        return None
    retryable = response.status in RETRIED_STATUSES or response.status >= 500
    retry_after = parse_retry_after(response.headers.get("retry-after"), now) if retryable else None
    return AttemptFailed(f"HTTP {response.status}: {body_excerpt(response)}", retryable, retry_after)


def body_excerpt(response: HttpResponse, limit: int = 200) -> str:
    """The start of an answer's body, on one line, for a failure reason."""
    text = response.body[:limit].decode(errors="replace").replace("\n", " ").strip()
    return text or "(empty body)"


Classifier = Callable[[HttpResponse, float], AttemptFailed | None]


class Sender:
    """What every delivery shares: the HTTP client, clock, retry policy, rate-limit buckets, randomness."""

    def __init__(
        self,
        http: HttpClient,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        limits: RateLimitStore | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.http = http
        self.clock = clock or SystemClock()
        self.policy = policy or RetryPolicy()
        self.limits = limits or MemoryRateLimits()
        self.rng = rng or random.Random()

    def channel(self, receiver_key: str, limit: RateLimit | None) -> Channel:
        """Start one notification's delivery to one receiver (its deadline starts now)."""
        return Channel(self, receiver_key, limit)


class Channel:
    """One notification's requests to one receiver: shared attempt count, deadline and rate limit."""

    def __init__(self, sender: Sender, receiver_key: str, limit: RateLimit | None) -> None:
        self._sender = sender
        self.receiver_key = receiver_key
        self.limit = limit
        self.clock = sender.clock
        self.deadline = sender.clock.now() + sender.policy.deadline_s
        self.attempts = 0

    def send(
        self, request: HttpRequest | Callable[[], HttpRequest], classify: Classifier = classify_http
    ) -> HttpResponse:
        """Send until the answer is a success; ``request`` may be a factory (re-signed on each attempt)."""
        clock, http = self._sender.clock, self._sender.http

        def attempt() -> HttpResponse:
            prepared = request() if callable(request) else request
            try:
                response = http.send(prepared)
            except TransportError as exc:
                raise AttemptFailed(str(exc), retryable=True) from exc
            failure = classify(response, clock.now())
            if failure is not None:
                raise failure
            return response

        return self.run(attempt)

    def run(self, attempt: Callable[[], T]) -> T:
        """Call ``attempt`` until it returns, retrying what raises a retryable AttemptFailed."""
        policy, clock = self._sender.policy, self._sender.clock
        tries = 0
        while True:
            self._take_token()
            tries += 1
            self.attempts += 1
            try:
                return attempt()
            except AttemptFailed as failure:
                if not failure.retryable:
                    raise DeliveryFailed(failure.reason, self.attempts, retryable=False) from failure
                if tries >= policy.max_attempts:
                    raise DeliveryFailed(
                        f"gave up after {tries} attempts: {failure.reason}", self.attempts, retryable=True
                    ) from failure
                delay = failure.retry_after_s
                if delay is None:
                    delay = policy.backoff(tries, self._sender.rng)
                if clock.now() + delay > self.deadline:
                    raise DeliveryFailed(
                        f"{failure.reason}; a retry in {delay:.1f}s would pass the {policy.deadline_s:g}s deadline",
                        self.attempts,
                        retryable=True,
                    ) from failure
                clock.sleep(delay)

    def _take_token(self) -> None:
        if self.limit is None:
            return
        sender = self._sender
        wait = reserve(sender.limits, self.receiver_key, self.limit, sender.clock.now())
        if wait <= 0:
            return
        if sender.clock.now() + wait > self.deadline:
            release(sender.limits, self.receiver_key, self.limit)
            raise DeliveryFailed(
                f"rate limit of {self.limit.per_second:g}/s reached: a {wait:.1f}s wait would pass the deadline",
                self.attempts,
                retryable=True,
            )
        sender.clock.sleep(wait)
