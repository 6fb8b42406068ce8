"""The agent's forwarder against a tiny local HTTP server: delivery, retries, Retry-After, rejects."""

from __future__ import annotations

import email.utils
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cramjam
import pytest

from novacron.agent.forward import REMOTE_WRITE_HEADERS, Forwarder, HttpTransport, Stopped, remote_write_entries
from novacron.agent.queue import Entry, Kind
from novacron.protocols.remote_write_pb import WriteRequest
from novacron.protocols.timeseries import encode_labels, encode_sample


@dataclass
class Server:
    """Answers each POST with the next scripted (status, headers); records what it got."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append((self.path, dict(self.headers), body))
            status, headers = state.script.pop(0) if state.script else (204, {})
            text = b"" if status < 300 else f"status {status}".encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/base"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


class Waits:
    """A recording ``wait``: no real sleeping; ``stop_after`` waits, it reports a stop."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.delays: list[float] = []
        self.stop_after = stop_after

    def __call__(self, seconds: float) -> bool:
        self.delays.append(seconds)
        return self.stop_after is not None and len(self.delays) >= self.stop_after


def forwarder(url: str, waits: Waits, **kwargs: float) -> Forwarder:
    return Forwarder(HttpTransport(url, "k3y", timeout_s=5), wait=waits, **kwargs)


def rw_entry(samples: int = 3) -> Entry:
    return Entry(Kind.REMOTE_WRITE, b"snappy-body", REMOTE_WRITE_HEADERS, samples, 1)


def test_2xx_is_delivered_with_the_protocol_headers_and_key(server: Server) -> None:
    waits = Waits()
    fwd = forwarder(server.url, waits)
    # When a remote write entry and an OTLP entry are delivered
    assert fwd.deliver(rw_entry())
    otlp = Entry(Kind.OTLP_METRICS, b"\x1f\x8b", {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
    assert fwd.deliver(otlp)
    # Then each went to its path under the endpoint, with its headers and the key, unchanged
    (path1, headers1, body1), (path2, headers2, body2) = server.received
    assert (path1, body1) == ("/base/api/v1/write", b"snappy-body")
    assert headers1["Content-Encoding"] == "snappy"
    assert headers1["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert headers1["Authorization"] == "Bearer k3y"
    assert (path2, body2) == ("/base/otlp/v1/metrics", b"\x1f\x8b")
    assert headers2["Content-Encoding"] == "gzip"
    assert fwd.stats.sent_requests == 2
    assert fwd.stats.sent_samples == 3
    assert fwd.stats.latency_count == 2
    assert waits.delays == []


def test_429_with_retry_after_seconds_is_honoured(server: Server) -> None:
    server.script = [(429, {"Retry-After": "7"}), (204, {})]
    waits = Waits()
    fwd = forwarder(server.url, waits, max_backoff_s=1)
    assert fwd.deliver(rw_entry())
    # Then it waited what the server asked (more than max_backoff), and resent the same bytes
    assert waits.delays == [7.0]
    assert [r[2] for r in server.received] == [b"snappy-body", b"snappy-body"]
    assert fwd.stats.retries == 1


def test_503_with_an_http_date_retry_after_is_honoured(server: Server) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    server.script = [(503, {"Retry-After": when}), (204, {})]
    waits = Waits()
    assert forwarder(server.url, waits).deliver(rw_entry())
    assert 25 <= waits.delays[0] <= 31


def test_5xx_without_retry_after_backs_off_exponentially_with_a_cap(server: Server) -> None:
    server.script = [(503, {}), (500, {}), (502, {}), (503, {}), (504, {}), (204, {})]
    waits = Waits()
    fwd = forwarder(server.url, waits, min_backoff_s=1, max_backoff_s=4)
    assert fwd.deliver(rw_entry())
    # Each delay lies in [ceiling/2, ceiling] with ceiling 1, 2, 4, 4, 4
    for delay, ceiling in zip(waits.delays, [1, 2, 4, 4, 4], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert fwd.stats.retries == 5
    assert fwd.stats.sent_requests == 1


def test_a_permanent_4xx_drops_the_entry_and_counts_it(server: Server) -> None:
    server.script = [(400, {})]
    waits = Waits()
    fwd = forwarder(server.url, waits)
    # When the server says the data is wrong
    assert fwd.deliver(rw_entry(samples=9)) is False
    # Then there is no retry, and the rejection is counted with its samples and the server's message
    assert len(server.received) == 1
    assert waits.delays == []
    assert fwd.stats.rejected_requests == 1
    assert fwd.stats.rejected_samples == 9
    assert "status 400" in fwd.stats.last_error


def test_auth_failures_keep_the_data_and_retry(server: Server) -> None:
    server.script = [(401, {}), (403, {}), (204, {})]
    waits = Waits()
    fwd = forwarder(server.url, waits)
    assert fwd.deliver(rw_entry())
    assert len(waits.delays) == 2
    assert fwd.stats.rejected_requests == 0


def test_connection_refused_retries_until_stopped() -> None:
    # Given an endpoint where nothing listens
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    waits = Waits(stop_after=12)
    fwd = forwarder(f"http://127.0.0.1:{port}", waits, min_backoff_s=0.5, max_backoff_s=8)
    # When delivering: it keeps retrying (an outage), with capped backoff, until the agent stops
    with pytest.raises(Stopped):
        fwd.deliver(rw_entry())
    assert len(waits.delays) == 12
    assert max(waits.delays) <= 8
    assert fwd.stats.retries == 12
    assert fwd.stats.rejected_requests == 0
    assert "connection error" in fwd.stats.last_error


def test_outage_then_recovery_delivers_the_same_bytes() -> None:
    # Given an endpoint that is down, and comes up on the same port after three failed attempts
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    got: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    servers: list[ThreadingHTTPServer] = []

    def wait(seconds: float) -> bool:
        if len(got) == 0 and not servers and wait.calls == 2:  # type: ignore[attr-defined]
            servers.append(ThreadingHTTPServer(("127.0.0.1", port), Handler))
            threading.Thread(target=servers[0].serve_forever, daemon=True).start()
        wait.calls += 1  # type: ignore[attr-defined]
        return False

    wait.calls = 0  # type: ignore[attr-defined]
    fwd = Forwarder(HttpTransport(f"http://127.0.0.1:{port}", "k"), wait=wait)
    try:
        # When delivering through the outage
        assert fwd.deliver(rw_entry())
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    # Then it arrived once, after three retries
    assert got == [b"snappy-body"]
    assert fwd.stats.retries == 3


def test_remote_write_entries_batch_by_size_and_keep_timestamps() -> None:
    # Given 100 series with one sample each, stamped at a fixed time
    series = [
        encode_labels([("__name__", "m"), ("i", str(i))]) + encode_sample(float(i), 1_700_000_000_123)
        for i in range(100)
    ]
    # When packed into entries of about 1 KB
    entries = remote_write_entries(series, 1000, 42)
    # Then there are several, each a valid snappy WriteRequest, together holding every series once
    assert len(entries) > 3
    decoded = [WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(e.body))) for e in entries]
    values = [ts.samples[0].value for req in decoded for ts in req.timeseries]
    assert values == [float(i) for i in range(100)]
    assert {ts.samples[0].timestamp for req in decoded for ts in req.timeseries} == {1_700_000_000_123}
    assert sum(e.samples for e in entries) == 100
    assert all(e.enqueued_ms == 42 and e.headers == REMOTE_WRITE_HEADERS for e in entries)
