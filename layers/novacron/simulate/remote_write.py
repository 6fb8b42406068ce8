"""A Prometheus remote write 1.0 sender: protobuf ``WriteRequest``, snappy block compression, retries.

Retry rules follow the remote write spec and DESIGN.md decision 5: 5xx and 429 mean "resend later"
(exponential backoff, or the server's ``Retry-After``), any other 4xx means "this data will never be
accepted" and is dropped at once, with the server's message logged.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime

import cramjam
import requests

from novacron import __version__
from novacron.protocols.remote_write_pb import WriteRequest

log = logging.getLogger("novacron.simulate")

USER_AGENT = f"novacron-simulate/{__version__}"
WRITE_PATH = "/api/v1/write"
MAX_SERIES_PER_REQUEST = 2000
MAX_SAMPLES_PER_REQUEST = 20_000

LabelPairs = Mapping[str, str] | Iterable[tuple[str, str]]
# One series to send: its labels (``__name__`` included) and its (timestamp ms, value) samples.
SeriesData = tuple[LabelPairs, Sequence[tuple[int, float]]]


@dataclass
class WriteStats:
    """What a client has done so far."""

    requests: int = 0  # HTTP attempts, retries included
    samples_sent: int = 0  # samples in requests the server accepted
    series_sent: int = 0
    bytes_sent: int = 0  # compressed body bytes accepted
    retries: int = 0
    failures: int = 0  # requests given up on: a 4xx, or retries exhausted
    samples_dropped: int = 0
    last_error: str = ""


class RemoteWriteClient:
    """Sends series to ``<url>/api/v1/write`` (the path is added unless ``url`` already ends with it)."""

    def __init__(
        self,
        url: str,
        api_key: str,
        timeout: float = 10.0,
        *,
        max_series_per_request: int = MAX_SERIES_PER_REQUEST,
        max_samples_per_request: int = MAX_SAMPLES_PER_REQUEST,
        max_retries: int = 6,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        max_retry_after_s: float = 300.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], object] = time.sleep,
        abort: threading.Event | None = None,
    ) -> None:
        base = url.rstrip("/")
        self.url = base if base.endswith(WRITE_PATH) else base + WRITE_PATH
        self.timeout = timeout
        self.max_series_per_request = max_series_per_request
        self.max_samples_per_request = max_samples_per_request
        self.max_retries = max_retries
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_retry_after_s = max_retry_after_s
        self._sleep = sleep
        self._abort = abort
        self._session = session or requests.Session()
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
            "User-Agent": USER_AGENT,
            "Authorization": f"Bearer {api_key}",
        }
        self._stats = WriteStats()
        self._lock = threading.Lock()

    @property
    def stats(self) -> WriteStats:
        """A snapshot of the counters."""
        with self._lock:
            return replace(self._stats)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._session.close()

    # encoding

    def batches(self, series: Sequence[SeriesData]) -> Iterator[list[SeriesData]]:
        """Split series into request-sized groups (by series and by samples; a series is never split)."""
        batch: list[SeriesData] = []
        samples = 0
        for item in series:
            n = len(item[1])
            if batch and (len(batch) >= self.max_series_per_request or samples + n > self.max_samples_per_request):
                yield batch
                batch, samples = [], 0
            batch.append(item)
            samples += n
        if batch:
            yield batch

    @staticmethod
    def encode(series: Sequence[SeriesData]) -> bytes:
        """A snappy-block-compressed ``WriteRequest``: labels sorted by name, samples by time."""
        request = WriteRequest()
        for labels, samples in series:
            pairs = labels.items() if isinstance(labels, Mapping) else labels
            ts = request.timeseries.add()
            for name, value in sorted(pairs):
                ts.labels.add(name=name, value=value)
            for timestamp, value in sorted(samples):
                ts.samples.add(value=value, timestamp=timestamp)
        return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))

    # sending

    def write(self, series: Sequence[SeriesData]) -> bool:
        """Send series in as many requests as needed; True when the server accepted all of them."""
        ok = True
        for batch in self.batches(series):
            n_samples = sum(len(samples) for _, samples in batch)
            ok = self.send(self.encode(batch), len(batch), n_samples) and ok
        return ok

    def send(self, body: bytes, n_series: int, n_samples: int) -> bool:
        """POST one encoded body, retrying what the protocol says to retry. Never raises for HTTP trouble."""
        attempt = 0
        while True:
            with self._lock:
                self._stats.requests += 1
            try:
                response = self._session.post(self.url, data=body, headers=self._headers, timeout=self.timeout)
            except requests.RequestException as exc:
                status, message, retry_after = 0, f"{type(exc).__name__}: {exc}", None
            else:
                status, message = response.status_code, response.text.strip()[:500]
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                response.close()
            if 200 <= status < 300:
                with self._lock:
                    self._stats.samples_sent += n_samples
                    self._stats.series_sent += n_series
                    self._stats.bytes_sent += len(body)
                return True
            retryable = status == 0 or status == 429 or status >= 500
            what = f"HTTP {status}" if status else "connection error"
            if not retryable:
                # The server will never take this data; resending would only loop. Drop it, say why.
                log.error("remote write rejected (%s), dropping %d samples: %s", what, n_samples, message)
                return self._give_up(f"{what}: {message}", n_samples)
            if attempt >= self.max_retries:
                log.error(
                    "remote write failed %d times (%s), dropping %d samples: %s", attempt + 1, what, n_samples, message
                )
                return self._give_up(f"{what} after {attempt} retries: {message}", n_samples)
            delay = self._delay(attempt, retry_after)
            log.warning("remote write got %s, retrying in %.1fs: %s", what, delay, message)
            with self._lock:
                self._stats.retries += 1
                self._stats.last_error = f"{what}: {message}"
            attempt += 1
            self._sleep(delay)
            if self._abort is not None and self._abort.is_set():
                return self._give_up("stopped while retrying", n_samples)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # The server knows best when it can take the data again; do not come back sooner.
            return min(max(retry_after, 0.0), self.max_retry_after_s)
        backoff = min(self.max_backoff_s, self.min_backoff_s * math.pow(2, attempt))
        return backoff * random.uniform(0.8, 1.2)  # jitter keeps many senders from retrying in step

    def _give_up(self, error: str, n_samples: int) -> bool:
        with self._lock:
            self._stats.failures += 1
            self._stats.samples_dropped += n_samples
            self._stats.last_error = error
        return False


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
