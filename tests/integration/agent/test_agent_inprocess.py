"""The agent in-process with a recording sender: local OTLP, scrapes, rejects, export and import."""

from __future__ import annotations

import gzip
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cramjam
import pytest

from novacron.agent.config import AgentConfig
from novacron.agent.forward import Answer
from novacron.agent.queue import DiskQueue, Entry, Kind
from novacron.agent.runtime import Agent
from novacron.cli import main
from novacron.protocols.remote_write_pb import WriteRequest
from tests.integration.agent.conftest import wait_for


class Recorder:
    """A sender that records each request and answers with ``status``."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    def post(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        self.requests.append((path, headers, body))
        return Answer(self.status, None, "bad series" if self.status >= 400 else "")

    def series(self) -> list[dict[str, Any]]:
        out = []
        for path, _, body in self.requests:
            if path == "/api/v1/write":
                for ts in WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body))).timeseries:
                    labels = {label.name: label.value for label in ts.labels}
                    out.append({**labels, "value": ts.samples[0].value, "ts": ts.samples[0].timestamp})
        return out


def make_config(tmp_path: Path, **sections: Any) -> AgentConfig:
    raw = {
        "endpoint": "http://unused",
        "labels": {"environment": "test"},
        "statsd": {"listen": "127.0.0.1:0", "flush_interval_s": 0.1},
        "otlp": {"listen": "127.0.0.1:0"},
        "queue": {"dir": str(tmp_path / "queue")},
        "health": {"interval_s": 0.2},
        **sections,
    }
    return AgentConfig.model_validate(raw)


@pytest.fixture
def metrics_target() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'# TYPE temp_celsius gauge\ntemp_celsius{room="lab"} 21.5\n'
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_local_otlp_is_queued_and_forwarded_unchanged(tmp_path: Path) -> None:
    recorder = Recorder()
    with Agent(make_config(tmp_path), "k", transport=recorder) as agent:
        base = f"http://{agent.otlp_address}"
        body = gzip.compress(b"\x0a\x02\x0a\x00")
        # When an SDK posts gzip protobuf metrics and JSON traces
        assert (
            post(f"{base}/v1/metrics", body, {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})[0]
            == 200
        )
        assert post(f"{base}/v1/traces", b"{}", {"Content-Type": "application/json"}) == (200, b"{}")
        # And bad requests get the matching 4xx
        assert post(f"{base}/v1/metrics", b"x", {"Content-Type": "text/plain"})[0] == 415
        assert post(f"{base}/v1/logs", b"x", {"Content-Type": "application/json"})[0] == 404
        wait_for(lambda: len([r for r in recorder.requests if r[0].startswith("/otlp")]) == 2, 10, "forwarding")
    # Then both were forwarded byte for byte, with their content type and encoding
    otlp = [r for r in recorder.requests if r[0].startswith("/otlp")]
    assert otlp[0] == ("/otlp/v1/metrics", {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}, body)
    assert otlp[1] == ("/otlp/v1/traces", {"Content-Type": "application/json"}, b"{}")


def test_scrapes_become_series_with_up_and_default_labels(tmp_path: Path, metrics_target: str) -> None:
    recorder = Recorder()
    scrape = [
        {"url": metrics_target, "job": "lab", "interval_s": 0.2, "labels": {"rack": "r1"}},
        {"url": "http://127.0.0.1:1/metrics", "job": "gone", "interval_s": 0.2, "timeout_s": 1},
    ]
    with Agent(make_config(tmp_path, scrape=scrape), "k", transport=recorder):
        wait_for(lambda: any(s["__name__"] == "temp_celsius" for s in recorder.series()), 10, "a scrape")
        wait_for(lambda: any(s.get("job") == "gone" for s in recorder.series()), 10, "the failed scrape")
    series = recorder.series()
    temp = next(s for s in series if s["__name__"] == "temp_celsius")
    assert (temp["room"], temp["job"], temp["rack"], temp["environment"], temp["value"]) == (
        "lab",
        "lab",
        "r1",
        "test",
        21.5,
    )
    assert temp["instance"] == metrics_target.split("/")[2]
    ups = {s["job"]: s["value"] for s in series if s["__name__"] == "up"}
    assert ups == {"lab": 1.0, "gone": 0.0}
    assert any(s["__name__"] == "novacron_agent_scrape_duration_seconds" and s["job"] == "lab" for s in series)


def test_a_rejected_entry_is_dropped_counted_and_does_not_block(tmp_path: Path) -> None:
    # Given a server that rejects everything with 400
    recorder = Recorder(status=400)
    agent = Agent(make_config(tmp_path), "k", transport=recorder).start()
    try:
        agent.queue.append([Entry(Kind.REMOTE_WRITE, b"x", {}, 5), Entry(Kind.REMOTE_WRITE, b"y", {}, 7)])
        # Then both are tried once each, counted, and leave the queue
        wait_for(lambda: agent.forwarder.stats.rejected_samples >= 12, 10, "both rejected")
        wait_for(lambda: agent.queue.stats.depth_entries == 0, 10, "the queue to empty")
        assert agent.forwarder.stats.retries == 0
        health = {s.get("result", s["__name__"]): s for s in _decode(agent.health_series(1))}
        assert health["novacron_agent_rejected_requests_total"]["value"] >= 2
    finally:
        agent.stop()


def _decode(series: list[bytes]) -> list[dict[str, Any]]:
    from novacron.protocols.remote_write_pb import TimeSeries

    out = []
    for one in series:
        ts = TimeSeries.FromString(one)
        out.append({**{label.name: label.value for label in ts.labels}, "value": ts.samples[0].value})
    return out


def test_export_then_import_delivers_the_queue_elsewhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a stopped agent's queue with undelivered entries
    with DiskQueue(tmp_path / "queue") as queue:
        queue.append(
            [Entry(Kind.REMOTE_WRITE, f"body-{i}".encode(), {"Content-Encoding": "snappy"}, 1) for i in range(5)]
        )
        queue.append([Entry(Kind.OTLP_TRACES, b"trace", {"Content-Type": "application/json"})])
    # When it is exported with --drain
    assert (
        main(["agent", "export", "--queue-dir", str(tmp_path / "queue"), "--output", str(tmp_path / "out"), "--drain"])
        == 0
    )
    files = capsys.readouterr().out.split()
    assert files
    with DiskQueue(tmp_path / "queue") as queue:
        assert queue.stats.depth_entries == 0  # drained
    # And imported into a NovaCron (a recording server here)
    received: list[tuple[str, bytes, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(
                (self.path, self.rfile.read(int(self.headers["Content-Length"])), self.headers["Authorization"])
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert main(["import", *files, "--url", url, "--api-key", "imp"]) == 0
    finally:
        server.shutdown()
        server.server_close()
    # Then every entry arrived, in order, at its path, with the key
    assert [(p, b) for p, b, _ in received] == [("/api/v1/write", f"body-{i}".encode()) for i in range(5)] + [
        ("/otlp/v1/traces", b"trace")
    ]
    assert {auth for _, _, auth in received} == {"Bearer imp"}
    assert "imported 6 requests" in capsys.readouterr().out


def test_a_second_agent_on_the_same_queue_is_refused(tmp_path: Path) -> None:
    config_path = tmp_path / "agent.yaml"
    config_path.write_text(
        "endpoint: http://127.0.0.1:1\napi_key: k\nqueue: {dir: queue}\n"
        "statsd: {listen: '127.0.0.1:0'}\notlp: {enabled: false}\n"
    )
    with DiskQueue(tmp_path / "queue"):
        started = time.monotonic()
        assert main(["agent", "--config", str(config_path)]) == 1
        assert time.monotonic() - started < 10
