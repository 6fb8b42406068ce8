"""The running agent: intake threads feeding the disk queue, one sender thread draining it.

    StatsD UDP ──▶ aggregator ──flush──┐
    scrape targets ────────────────────┼──▶ DiskQueue (fsync) ──▶ sender ──▶ NovaCron
    local OTLP/HTTP (answers after fsync)┘        ▲
    health metrics (every interval) ──────────────┘

Every sample gets its timestamp before it is queued (flush time, scrape time, the OTLP sender's own),
and queued bodies are sent byte for byte, so a resend after a crash stores nothing twice.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from novacron.agent.config import AgentConfig, ConfigError, ScrapeTarget, split_host_port
from novacron.agent.exposition import ExpositionError, parse_exposition
from novacron.agent.forward import LATENCY_BUCKETS, Forwarder, HttpTransport, Poster, Stopped, remote_write_entries
from novacron.agent.queue import DiskQueue, Entry, Kind, QueueError
from novacron.agent.statsd import StatsdAggregator, StatsdSettings
from novacron.protocols.histograms import format_bound
from novacron.protocols.remote_write_pb import Label, TimeSeries
from novacron.protocols.timeseries import encode_labels, encode_sample

log = logging.getLogger(__name__)

SCRAPE_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
OTLP_PATHS = {"/v1/metrics": Kind.OTLP_METRICS, "/v1/traces": Kind.OTLP_TRACES}
OTLP_CONTENT_TYPES = ("application/x-protobuf", "application/json")
OTLP_ENCODINGS = ("", "identity", "gzip")
_RECV_BYTES = 65535


def with_default_labels(series: Sequence[bytes], defaults: Mapping[str, str]) -> list[bytes]:
    """``series`` with each label of ``defaults`` added where the series does not have it."""
    if not defaults:
        return list(series)
    out: list[bytes] = []
    for one in series:
        ts = TimeSeries.FromString(one)
        present = {label.name for label in ts.labels}
        missing = [(n, v) for n, v in defaults.items() if n not in present and v]
        if not missing:
            out.append(one)
            continue
        pairs = sorted([(label.name, label.value) for label in ts.labels] + missing)
        del ts.labels[:]
        ts.labels.extend(Label(name=n, value=v) for n, v in pairs)
        out.append(ts.SerializeToString())
    return out


def gauge(name: str, labels: Mapping[str, str], value: float, now_ms: int) -> bytes:
    """One ``TimeSeries`` encoding holding one sample."""
    return encode_labels(sorted({"__name__": name, **labels}.items())) + encode_sample(value, now_ms)


def statsd_settings(raw: Mapping[str, Any]) -> StatsdSettings:
    """``StatsdSettings`` from the config's ``statsd.settings`` mapping (YAML lists become tuples)."""
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    known = {f.name for f in dataclasses.fields(StatsdSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"statsd.settings: unknown keys {unknown}; known: {sorted(known)}")
    try:
        return dataclasses.replace(StatsdSettings(), **values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"statsd.settings: {exc}") from None


@dataclasses.dataclass
class _ScrapeState:
    target: ScrapeTarget
    instance: str
    up: bool = False
    duration_s: float = 0.0
    scrapes: int = 0
    failures: int = 0


class Agent:
    """The collection agent. ``start()``, then ``stop()`` (final flush, fsync, short send grace).

    ``transport`` replaces the HTTP sender (tests); ``clock`` gives the time samples are stamped with.
    """

    def __init__(
        self,
        config: AgentConfig,
        api_key: str,
        *,
        transport: Poster | None = None,
        clock: Callable[[], float] = time.time,
        hostname: str | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self.queue = DiskQueue(
            config.queue.dir, max_bytes=config.queue.max_bytes, segment_bytes=config.queue.segment_bytes
        )
        self._intake_stop = threading.Event()
        self._sender_stop = threading.Event()
        send = config.send
        self.forwarder = Forwarder(
            transport or HttpTransport(config.endpoint, api_key, send.timeout_s),
            min_backoff_s=send.min_backoff_s,
            max_backoff_s=send.max_backoff_s,
            max_retry_after_s=send.max_retry_after_s,
            wait=self._sender_stop.wait,
        )
        # The config's labels are defaults (a series' own tag wins), so they are added after each flush
        # rather than handed to the aggregator, which would let them override tags.
        self.aggregator = StatsdAggregator(statsd_settings(config.statsd.settings))
        self._agent_labels = {"job": "novacron-agent", "instance": hostname or socket.gethostname()}
        self._scrapes = [_ScrapeState(t, urllib.parse.urlsplit(t.url).netloc or t.url) for t in config.scrape]
        self._lock = threading.Lock()  # guards the counters below
        self.enqueue_failures = 0  # batches the queue refused (larger than the whole queue)
        self._threads: list[threading.Thread] = []
        self._udp: socket.socket | None = None
        self._otlp: ThreadingHTTPServer | None = None
        self._started = False

    # --- lifecycle ---

    def start(self) -> Agent:
        """Open the queue (recovering from a crash), bind the listeners, start the threads."""
        self.queue.open()
        self._started = True
        if self.config.statsd.enabled:
            self._udp = self._bind_udp()
            self._spawn("statsd", self._statsd_loop)
        if self.config.otlp.enabled:
            self._otlp = self._bind_otlp()
            self._spawn("otlp", self._otlp.serve_forever)
        for state in self._scrapes:
            self._spawn(f"scrape-{state.target.job}-{state.instance}", functools.partial(self._scrape_loop, state))
        if self.config.health.enabled:
            self._spawn("health", self._health_loop)
        self._spawn("sender", self._send_loop)
        log.info(
            "agent started: statsd %s, otlp %s, %d scrape targets, sending to %s",
            self.statsd_address or "off",
            self.otlp_address or "off",
            len(self._scrapes),
            self.config.endpoint,
        )
        return self

    def stop(self) -> None:
        """Stop intake, flush StatsD and health into the queue, send for a grace period, fsync, close."""
        if not self._started:
            return
        self._started = False
        self._intake_stop.set()
        if self._otlp is not None:
            self._otlp.shutdown()
            self._otlp.server_close()
        sender = [t for t in self._threads if t.name == "agent-sender"]
        for thread in self._threads:
            if thread not in sender:
                thread.join(timeout=30)
        if self.config.health.enabled:
            self._enqueue(self.health_series(self._now_ms()))
        deadline = time.monotonic() + self.config.send.shutdown_grace_s
        while self.queue.stats.depth_entries and time.monotonic() < deadline:
            time.sleep(0.05)
        self._sender_stop.set()
        for thread in sender:
            thread.join(timeout=self.config.send.timeout_s + 1)
        if self._udp is not None:
            self._udp.close()
        left = self.queue.stats.depth_entries
        self.queue.close()
        log.info("agent stopped; %d entries stay queued for the next start", left)

    def __enter__(self) -> Agent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def statsd_address(self) -> str | None:
        """``host:port`` the StatsD listener is bound to (the real port when configured as 0)."""
        if self._udp is None:
            return None
        host, port = self._udp.getsockname()[:2]
        return f"{host}:{port}"

    @property
    def otlp_address(self) -> str | None:
        """``host:port`` of the local OTLP/HTTP receiver."""
        if self._otlp is None:
            return None
        host, port = self._otlp.server_address[:2]
        return f"{host!s}:{port}"

    def _spawn(self, name: str, target: Callable[[], object]) -> None:
        thread = threading.Thread(target=target, name=f"agent-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _enqueue(self, series: Sequence[bytes]) -> None:
        if not series:
            return
        entries = remote_write_entries(series, self.config.send.batch_bytes, self._now_ms())
        self._append(entries)

    def _append(self, entries: Sequence[Entry]) -> None:
        try:
            self.queue.append(entries)
        except QueueError as exc:
            with self._lock:
                self.enqueue_failures += 1
            log.error("could not queue %d entries: %s", len(entries), exc)

    # --- StatsD ---

    def _bind_udp(self) -> socket.socket:
        host, port = split_host_port(self.config.statsd.listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.config.statsd.receive_buffer_bytes)
        sock.bind((host, port))
        return sock

    def _statsd_loop(self) -> None:
        """Receive and aggregate; this thread alone owns the aggregator, so it also flushes it."""
        assert self._udp is not None
        sock, ingest, interval = self._udp, self.aggregator.ingest, self.config.statsd.flush_interval_s
        next_flush = time.monotonic() + interval
        monotonic = time.monotonic
        while not self._intake_stop.is_set():
            sock.settimeout(max(0.001, min(0.25, next_flush - monotonic())))
            try:
                # A steady stream never times out: check the flush deadline between datagrams too.
                while monotonic() < next_flush:
                    ingest(sock.recv(_RECV_BYTES))
            except TimeoutError:
                pass
            except OSError as exc:
                if self._intake_stop.is_set():
                    break
                log.warning("statsd receive failed: %s", exc)
            if time.monotonic() >= next_flush:
                self._flush_statsd()
                next_flush += interval
                if next_flush < time.monotonic():  # fell behind (a slow disk): do not flush in a burst
                    next_flush = time.monotonic() + interval
        # What arrived before the stop is accepted too: read what the kernel holds, then flush.
        sock.setblocking(False)
        try:
            while True:
                ingest(sock.recv(_RECV_BYTES))
        except (BlockingIOError, OSError):
            pass
        self._flush_statsd()

    def _flush_statsd(self) -> None:
        self._enqueue(with_default_labels(self.aggregator.flush(self._now_ms()), self.config.labels))

    # --- scraping ---

    def _scrape_loop(self, state: _ScrapeState) -> None:
        interval = state.target.interval_s
        next_at = time.monotonic()
        while not self._intake_stop.is_set():
            self._enqueue(self.scrape_once(state))
            next_at += interval
            if next_at < time.monotonic():
                next_at = time.monotonic() + interval
            if self._intake_stop.wait(max(0.0, next_at - time.monotonic())):
                break

    def scrape_once(self, state: _ScrapeState) -> list[bytes]:
        """Scrape one target: its series, plus ``up`` and the scrape duration, stamped at scrape time."""
        target = state.target
        scrape_ms = self._now_ms()
        began = time.monotonic()
        series: list[bytes] = []
        request = urllib.request.Request(  # noqa: S310 (http(s) checked by the config)
            target.url, headers={"Accept": SCRAPE_ACCEPT, "User-Agent": "novacron-agent"}
        )
        try:
            with urllib.request.urlopen(request, timeout=target.timeout_s) as response:  # noqa: S310
                body = response.read()
                content_type = response.headers.get("Content-Type", "")
            target_labels = {**target.labels, "job": target.job, "instance": state.instance}
            series = parse_exposition(body, content_type, scrape_ms, target_labels)
            state.up = True
        except (OSError, urllib.error.URLError, ExpositionError, ValueError) as exc:
            state.failures += 1
            if state.up or state.failures == 1:
                log.warning("scrape %s (job %s) failed: %s", target.url, target.job, exc)
            state.up = False
        state.scrapes += 1
        state.duration_s = time.monotonic() - began
        labels = {**target.labels, "job": target.job, "instance": state.instance}
        series.append(gauge("up", labels, 1.0 if state.up else 0.0, scrape_ms))
        series.append(gauge("novacron_agent_scrape_duration_seconds", labels, state.duration_s, scrape_ms))
        return with_default_labels(series, self.config.labels)

    # --- local OTLP ---

    def _bind_otlp(self) -> ThreadingHTTPServer:
        host, port = split_host_port(self.config.otlp.listen)
        agent = self
        limit = self.config.otlp.max_body_bytes

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                kind = OTLP_PATHS.get(self.path.split("?", 1)[0])
                if kind is None:
                    return self._answer(404, f"no such path {self.path}; use /v1/metrics or /v1/traces")
                content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
                encoding = self.headers.get("Content-Encoding", "").strip().lower()
                if content_type not in OTLP_CONTENT_TYPES:
                    return self._answer(415, f"Content-Type must be one of {', '.join(OTLP_CONTENT_TYPES)}")
                if encoding not in OTLP_ENCODINGS:
                    return self._answer(415, "Content-Encoding must be gzip or absent")
                body = self._body(limit)
                if body is None:
                    return None
                headers = {"Content-Type": content_type}
                if encoding == "gzip":
                    headers["Content-Encoding"] = "gzip"
                try:
                    agent.queue.append([Entry(kind, body, headers, 0, agent._now_ms())])
                except QueueError as exc:
                    return self._answer(503, f"cannot queue: {exc}", retry_after=5)
                # Answered only now: the body is on disk and will be delivered.
                reply = b"{}" if content_type == "application/json" else b""
                self._send(200, reply, content_type)
                return None

            def _body(self, limit: int) -> bytes | None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks: list[bytes] = []
                    total = 0
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        total += size
                        if total > limit:
                            self._answer(413, f"body larger than {limit} bytes")
                            return None
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                if length > limit:
                    self._answer(413, f"body larger than {limit} bytes")
                    return None
                return self.rfile.read(length)

            def _answer(self, status: int, message: str, retry_after: int | None = None) -> None:
                self.close_connection = True
                extra = {"Retry-After": str(retry_after)} if retry_after else {}
                self._send(status, message.encode(), "text/plain", extra)

            def _send(self, status: int, body: bytes, content_type: str, extra: Mapping[str, str] = {}) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("otlp: " + format, *args)

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        return server

    # --- sending ---

    def _send_loop(self) -> None:
        while not self._sender_stop.is_set():
            batch = self.queue.peek(max_entries=32)
            if not batch:
                self.queue.wait(0.5)
                continue
            for queued in batch:
                try:
                    self.forwarder.deliver(queued.entry)
                except Stopped:
                    return
                # Delivered, or rejected for good (counted and logged): either way it leaves the queue.
                self.queue.ack(queued)

    # --- health ---

    def _health_loop(self) -> None:
        interval = self.config.health.interval_s
        next_log = time.monotonic() + self.config.health.log_interval_s
        shown_errors = 0
        while not self._intake_stop.wait(interval):
            self._enqueue(self.health_series(self._now_ms()))
            if time.monotonic() >= next_log:
                next_log += self.config.health.log_interval_s
                self._log_status()
                malformed = self.aggregator.stats.get("lines_malformed", 0)
                if malformed > shown_errors:
                    for message in self.aggregator.last_errors()[-3:]:
                        log.warning("statsd: %s", message)
                    shown_errors = malformed

    def health_series(self, now_ms: int) -> list[bytes]:
        """The agent's own metrics, as ``TimeSeries`` encodings stamped ``now_ms``."""
        q, f = self.queue.stats, self.forwarder.stats
        base = {**self.config.labels, **self._agent_labels}

        def one(name: str, value: float, **extra: str) -> bytes:
            return gauge(f"novacron_agent_{name}", {**base, **extra}, value, now_ms)

        out = [
            one("queue_depth_bytes", q.depth_bytes),
            one("queue_entries", q.depth_entries),
            one("queue_samples", q.depth_samples),
            one("queue_appended_entries_total", q.appended_entries),
            one("queue_corrupt_regions_total", q.corrupt_regions),
            one("dropped_entries_total", q.dropped_entries),
            one("dropped_samples_total", q.dropped_samples),
            one("enqueue_failures_total", self.enqueue_failures),
            one("sent_requests_total", f.sent_requests),
            one("sent_samples_total", f.sent_samples),
            one("retries_total", f.retries),
            one("rejected_requests_total", f.rejected_requests),
            one("rejected_samples_total", f.rejected_samples),
            one("send_latency_seconds_count", f.latency_count),
            one("send_latency_seconds_sum", f.latency_sum_s),
        ]
        for bound, count in zip(LATENCY_BUCKETS, f.latency_buckets, strict=True):
            out.append(one("send_latency_seconds_bucket", count, le=format_bound(bound)))
        out.append(one("send_latency_seconds_bucket", f.latency_count, le="+Inf"))
        if self.config.statsd.enabled:
            stats = dict(self.aggregator.stats)
            results = {
                "accepted": stats.get("lines_accepted", 0),
                "malformed": stats.get("lines_malformed", 0),
                "over_limit": stats.get("series_dropped_limit", 0),
                "ignored": stats.get("events_ignored", 0) + stats.get("service_checks_ignored", 0),
            }
            out += [one("statsd_lines_total", float(n), result=result) for result, n in results.items()]
        return out

    def _log_status(self) -> None:
        q, f = self.queue.stats, self.forwarder.stats
        log.info(
            "status: queue %d entries (%d bytes); sent %d requests (%d samples), %d retries, %d rejected; "
            "dropped %d entries (%d samples); statsd lines %d accepted, %d malformed",
            q.depth_entries,
            q.depth_bytes,
            f.sent_requests,
            f.sent_samples,
            f.retries,
            f.rejected_requests,
            q.dropped_entries,
            q.dropped_samples,
            self.aggregator.stats.get("lines_accepted", 0),
            self.aggregator.stats.get("lines_malformed", 0),
        )
