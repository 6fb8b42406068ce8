"""Retries, backoff, Retry-After, deadline and rate limits of a Channel (with a scripted HTTP client)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from novacron.notify.delivery import (
    AttemptFailed,
    DeliveryFailed,
    RetryPolicy,
    Sender,
    classify_http,
    parse_retry_after,
)
from novacron.notify.http_client import HttpRequest, HttpResponse, TransportError
from novacron.notify.ratelimit import BucketState, MemoryRateLimits, RateLimit, reserve
from tests.unit.notify.memory import FakeClock

REQUEST = HttpRequest.json_post("https://receiver.example/hook", {"x": 1})


class ScriptedHttp:
    """HttpClient answering from a script; an exception in the script is raised."""

    def __init__(self, *answers: HttpResponse | Exception) -> None:
        self.answers = list(answers)
        self.sent: list[HttpRequest] = []

    def send(self, request: HttpRequest) -> HttpResponse:
        self.sent.append(request)
        answer = self.answers.pop(0) if self.answers else HttpResponse(200)
        if isinstance(answer, Exception):
            raise answer
        return answer


def make_sender(http: ScriptedHttp, clock: FakeClock, **policy: float) -> Sender:
    settings = {"max_attempts": 4, "base_delay_s": 1.0, "max_delay_s": 8.0, "deadline_s": 60.0} | policy
    return Sender(http, clock, RetryPolicy(**settings), MemoryRateLimits(), random.Random(3))  # type: ignore[arg-type]


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    now = datetime(2026, 9, 21, 10, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(format_datetime(datetime(2026, 9, 21, 10, 0, 30, tzinfo=UTC), usegmt=True), now) == 30.0
    assert parse_retry_after("Mon, 21 Sep 2026 09:00:00 GMT", now) == 0.0  # in the past: retry now
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (401, False), (404, False), (408, True),
                                                    (429, True), (500, True), (503, True)])  # fmt: skip
def test_which_statuses_are_retried(status: int, retryable: bool) -> None:
    failure = classify_http(HttpResponse(status, {}, b"nope"), 0.0)
    assert failure is not None
    assert failure.retryable is retryable
    assert failure.reason == f"HTTP {status}: nope"
    assert classify_http(HttpResponse(202), 0.0) is None


def test_backoff_is_jittered_exponential_and_capped() -> None:
    policy, rng = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0), random.Random(1)
    for attempt in range(1, 8):
        delays = [policy.backoff(attempt, rng) for _ in range(200)]
        cap = min(8.0, 2 ** (attempt - 1))
        assert all(0.0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # the whole range is used: senders spread out


def test_429_waits_as_long_as_retry_after_says() -> None:
    # Given a receiver that throttles once with Retry-After: 7
    http, clock = ScriptedHttp(HttpResponse(429, {"retry-after": "7"}), HttpResponse(202)), FakeClock()
    channel = make_sender(http, clock).channel("acme/pd", None)
    # When a request is sent
    response = channel.send(REQUEST)
    # Then it waited exactly 7 s and the second attempt succeeded
    assert response.status == 202
    assert clock.sleeps == [7.0]
    assert channel.attempts == 2


def test_connection_failures_and_5xx_are_retried_with_backoff() -> None:
    http = ScriptedHttp(TransportError("refused"), HttpResponse(502), HttpResponse(200))
    clock = FakeClock()
    channel = make_sender(http, clock).channel("acme/hook", None)
    assert channel.send(REQUEST).status == 200
    assert len(http.sent) == 3
    assert len(clock.sleeps) == 2
    assert clock.sleeps[1] <= 2.0


def test_a_4xx_is_final_at_once() -> None:
    http, clock = ScriptedHttp(HttpResponse(400, {}, b"bad field")), FakeClock()
    with pytest.raises(DeliveryFailed) as failed:
        make_sender(http, clock).channel("acme/hook", None).send(REQUEST)
    assert (failed.value.retryable, failed.value.attempts, failed.value.reason) == (False, 1, "HTTP 400: bad field")
    assert clock.sleeps == []


def test_gives_up_after_max_attempts() -> None:
    http, clock = ScriptedHttp(*[HttpResponse(503)] * 10), FakeClock()
    with pytest.raises(DeliveryFailed, match="gave up after 4 attempts: HTTP 503") as failed:
        make_sender(http, clock).channel("acme/hook", None).send(REQUEST)
    assert failed.value.retryable
    assert len(http.sent) == 4


def test_a_retry_after_beyond_the_deadline_is_not_waited_for() -> None:
    # Given a receiver asking to come back in an hour, and a one-minute deadline
    http, clock = ScriptedHttp(HttpResponse(429, {"retry-after": "3600"})), FakeClock()
    # When sending, Then the delivery fails at once, saying why, without sleeping an hour
    with pytest.raises(DeliveryFailed, match=r"retry in 3600\.0s would pass the 60s deadline"):
        make_sender(http, clock).channel("acme/hook", None).send(REQUEST)
    assert clock.sleeps == []


def test_run_retries_what_the_attempt_says_is_retryable() -> None:
    clock = FakeClock()
    outcomes: list[AttemptFailed | str] = [AttemptFailed("Throttling", True, 2.0), "msg-1"]

    def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert make_sender(ScriptedHttp(), clock).channel("acme/mail", None).run(attempt) == "msg-1"
    assert clock.sleeps == [2.0]


def test_token_bucket_holds_back_a_burst() -> None:
    # Given a receiver limited to 2 per second with a burst of 3
    http, clock = ScriptedHttp(), FakeClock()
    sender = make_sender(http, clock)
    limit = RateLimit(per_second=2.0, burst=3)
    # When six notifications are sent at once
    for _ in range(6):
        sender.channel("acme/slack", limit).send(REQUEST)
    # Then three go at once and the next three each wait half a second
    assert clock.sleeps == [0.5, 0.5, 0.5]
    assert len(http.sent) == 6


def test_buckets_are_per_receiver_and_refill() -> None:
    store, limit, t = MemoryRateLimits(), RateLimit(per_second=1.0, burst=1), 100.0
    assert reserve(store, "acme/a", limit, t) == 0.0
    assert reserve(store, "acme/b", limit, t) == 0.0  # another receiver has its own bucket
    assert reserve(store, "acme/a", limit, t) == 1.0  # a's is empty
    assert reserve(store, "acme/a", limit, t + 10) == 0.0  # refilled (to the burst, not beyond)
    assert store.load("acme/a") == BucketState(0.0, t + 10)


def test_a_rate_limit_wait_past_the_deadline_fails_and_returns_the_token() -> None:
    http, clock = ScriptedHttp(), FakeClock()
    sender = make_sender(http, clock, deadline_s=1.0)
    limit = RateLimit(per_second=0.1, burst=1)
    sender.channel("acme/slow", limit).send(REQUEST)
    with pytest.raises(DeliveryFailed, match=r"rate limit of 0\.1/s reached") as failed:
        sender.channel("acme/slow", limit).send(REQUEST)
    assert failed.value.retryable
    assert len(http.sent) == 1
    assert sender.limits.load("acme/slow").tokens == 0.0  # type: ignore[union-attr]
