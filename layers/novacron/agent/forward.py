"""Sending queued entries to NovaCron: remote write 1.0 and OTLP/HTTP, with retries that lose nothing.

What an answer means (DESIGN.md decision 5):

- 2xx: delivered.
- 429, 503 and other 5xx, 408, a network error: "resend later". The forwarder waits (``Retry-After``
  when the server gives one, in seconds or as an HTTP date; else exponential backoff with jitter,
  capped) and resends the same bytes, forever, until delivered or the agent stops. The queue keeps
  taking new data meanwhile (the sender runs on its own thread).
- 401, 403: the agent's key is wrong or lacks the role; the data itself is fine, so it is kept and
  retried like an outage (with an error in the log) rather than thrown away.
- any other 4xx: the server says this data will never be accepted: log the answer, count it
  ``rejected``, drop the entry, go on (resending would loop forever).
"""

from __future__ import annotations

import http.client
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import cramjam

from novacron import __version__
from novacron.agent.queue import Entry, Kind
from novacron.protocols.remote_write_pb import RawTimeSeries
from novacron.protocols.remote_write_v2 import uvarint
from novacron.simulate.remote_write import parse_retry_after

log = logging.getLogger(__name__)

USER_AGENT = f"novacron-agent/{__version__}"
PATHS = {
    Kind.REMOTE_WRITE: "/api/v1/write",
    Kind.OTLP_METRICS: "/otlp/v1/metrics",
    Kind.OTLP_TRACES: "/otlp/v1/traces",
}
REMOTE_WRITE_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
# Upper bounds (seconds) of the send latency histogram.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_TIMESERIES_TAG = b"\x0a"  # WriteRequest field 1, length-delimited


# --- encoding remote write entries --------------------------------------------------------------


def sample_count(series: bytes) -> int:
    """How many samples one encoded ``TimeSeries`` holds."""
    return len(RawTimeSeries.FromString(series).samples)


def remote_write_entries(series: Sequence[bytes], batch_bytes: int, enqueued_ms: int) -> list[Entry]:
    """Encoded ``TimeSeries`` packed into snappy ``WriteRequest`` entries of about ``batch_bytes`` each.

    The bodies are final: a resend after a crash sends the same bytes, so the same timestamps.
    """
    entries: list[Entry] = []
    parts: list[bytes] = []
    size = samples = 0

    def close() -> None:
        body = bytes(cramjam.snappy.compress_raw(b"".join(parts)))
        entries.append(Entry(Kind.REMOTE_WRITE, body, REMOTE_WRITE_HEADERS, samples, enqueued_ms))

    for one in series:
        framed = _TIMESERIES_TAG + uvarint(len(one)) + one
        if parts and size + len(framed) > batch_bytes:
            close()
            parts, size, samples = [], 0, 0
        parts.append(framed)
        size += len(framed)
        samples += sample_count(one)
    if parts:
        close()
    return entries


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What one attempt got: an HTTP status (0 for a network error), ``Retry-After`` and a message."""

    status: int
    retry_after_s: float | None = None
    message: str = ""

    @property
    def delivered(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status in (0, 401, 403, 408, 429) or self.status >= 500


class HttpTransport:
    """POSTs to one NovaCron endpoint over a kept-alive connection (reopened after any error)."""

    def __init__(self, endpoint: str, api_key: str, timeout_s: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be an http:// or https:// URL, not {endpoint!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._timeout = timeout_s
        self._auth = f"Bearer {api_key}"
        self._conn: http.client.HTTPConnection | None = None

    def post(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """One attempt; never raises for network or HTTP trouble."""
        try:
            conn = self._connection()
            conn.request(
                "POST",
                self._base + path,
                body=body,
                headers={**headers, "Authorization": self._auth, "User-Agent": USER_AGENT},
            )
            response = conn.getresponse()
            text = response.read()[:500].decode(errors="replace").strip()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Answer(0, None, f"{type(exc).__name__}: {exc}")
        if response.will_close:
            self.close()
        return Answer(response.status, parse_retry_after(response.getheader("Retry-After")), text)

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def close(self) -> None:
        """Drop the kept-alive connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


# --- the forwarder ------------------------------------------------------------------------------


@dataclass
class ForwardStats:
    """What the forwarder has done since it started."""

    sent_requests: int = 0  # delivered (2xx)
    sent_samples: int = 0
    retries: int = 0
    rejected_requests: int = 0  # permanent 4xx, dropped
    rejected_samples: int = 0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_count: int = 0
    latency_sum_s: float = 0.0
    last_error: str = ""

    def observe(self, seconds: float) -> None:
        """Record the latency of one delivered request."""
        self.latency_count += 1
        self.latency_sum_s += seconds
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_buckets[i] += 1


class Stopped(Exception):
    """The agent is stopping while an entry waits to be resent (it stays queued)."""


class Poster(Protocol):
    """Anything with ``post(path, headers, body) -> Answer``: ``HttpTransport``, or a test double."""

    def post(self, path: str, headers: dict[str, str], body: bytes) -> Answer: ...


class Forwarder:
    """Delivers one entry at a time, retrying as the protocol says.

    ``wait(seconds)`` sleeps and returns True when the agent is stopping (``threading.Event.wait``).
    """

    def __init__(
        self,
        transport: Poster,
        *,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        max_retry_after_s: float = 600.0,
        wait: Callable[[float], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.transport = transport
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_retry_after_s = max_retry_after_s
        self._wait = wait or threading.Event().wait
        self._clock = clock
        self._rng = rng or random.Random()
        self.stats = ForwardStats()
        self._lock = threading.Lock()

    def deliver(self, entry: Entry) -> bool:
        """Send ``entry`` until it is delivered (True) or permanently rejected (False).

        Raises ``Stopped`` when asked to stop while waiting to resend.
        """
        path = PATHS[entry.kind]
        headers = dict(entry.headers)
        attempt = 0
        while True:
            began = self._clock()
            answer = self.transport.post(path, headers, entry.body)
            if answer.delivered:
                with self._lock:
                    self.stats.sent_requests += 1
                    self.stats.sent_samples += entry.samples
                    self.stats.observe(self._clock() - began)
                if attempt:
                    log.info("delivered to %s after %d retries", path, attempt)
                return True
            what = f"HTTP {answer.status}" if answer.status else "connection error"
            if not answer.retryable:
                with self._lock:
                    self.stats.rejected_requests += 1
                    self.stats.rejected_samples += entry.samples
                    self.stats.last_error = f"{what}: {answer.message}"
                log.error(
                    "%s rejected an entry (%s, %d samples); dropping it: %s",
                    path,
                    what,
                    entry.samples,
                    answer.message,
                )
                return False
            delay = self.delay(attempt, answer.retry_after_s)
            with self._lock:
                self.stats.retries += 1
                self.stats.last_error = f"{what}: {answer.message}"
            level = logging.ERROR if answer.status in (401, 403) else logging.WARNING
            # An outage retries forever: say so on the first failures, then only now and then.
            if attempt < 3 or attempt % 20 == 0:
                log.log(level, "%s: %s (%s); retry %d in %.1fs", path, what, answer.message, attempt + 1, delay)
            attempt += 1
            if self._wait(delay):
                raise Stopped

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        """Seconds before resend number ``attempt + 1``."""
        if retry_after_s is not None:
            # The server knows when it can take the data again; never come back sooner.
            return min(retry_after_s, self.max_retry_after_s)
        ceiling = min(self.max_backoff_s, self.min_backoff_s * 2.0 ** min(attempt, 30))
        # "Equal jitter": at least half the backoff, so senders spread out without retrying at once.
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)
