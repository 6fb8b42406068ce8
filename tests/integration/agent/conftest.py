"""Fixtures for the agent against the local stack: the stack, a recording proxy, agent subprocesses."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cramjam
import pytest

from novacron.agent.queue import DiskQueue, Kind, Position
from novacron.auth import generate_key, register_key
from novacron.local.resources import physical_name
from novacron.local.runtime import LocalRuntime
from novacron.protocols.remote_write_pb import WriteRequest
from novacron.wiring import KEYS_TABLE

# A sample as stored: (metric name, the other labels, timestamp ms).
SampleKey = tuple[str, frozenset[tuple[str, str]], int]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    """The local stack and the keys of the tenant the agent writes to."""

    runtime: LocalRuntime
    url: str
    ingest_key: str
    read_key: str

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result list."""
        params = urllib.parse.urlencode({"query": promql, "time": f"{time.time():.3f}"})
        request = urllib.request.Request(
            f"{self.url}/api/v1/query?{params}", headers={"Authorization": f"Bearer {self.read_key}"}
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            result: list[dict[str, Any]] = json.loads(response.read())["data"]["result"]
        return result

    def counts(self, metric: str) -> dict[frozenset[tuple[str, str]], int]:
        """Samples per series of ``metric`` over the last 30 minutes, by the series' labels."""
        found = self.query(f"count_over_time({metric}[30m])")
        return {frozenset(r["metric"].items()): int(float(r["value"][1])) for r in found}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    runtime = LocalRuntime(port=free_port()).start()
    try:
        ingest, read = generate_key(), generate_key()
        register_key(ingest, "agent", "ingest", physical_name(KEYS_TABLE))
        register_key(read, "agent", "read", physical_name(KEYS_TABLE))
        yield Stack(runtime, runtime.url, ingest, read)
    finally:
        runtime.stop()


class Proxy:
    """An HTTP proxy in front of the stack that records what it forwarded and can fail on purpose.

    ``down()`` closes its port (connection refused), ``up()`` opens it again on the same port;
    ``stall(when)`` lets the next matching request reach the stack but withholds the answer from the agent.
    """

    def __init__(self, target: str) -> None:
        self.target = urllib.parse.urlsplit(target)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.forwarded: list[tuple[str, bytes, int]] = []  # (path, body, stack's status)
        self.stalled: list[bytes] = []
        self._stall_when: Callable[[bytes], bool] | None = None
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    def up(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, reply, headers = proxy._forward(self.path, dict(self.headers), body)
                with proxy._lock:
                    proxy.forwarded.append((self.path, body, status))
                    stall = proxy._stall_when is not None and proxy._stall_when(body)
                    if stall:
                        proxy._stall_when = None
                if stall:
                    proxy.stalled.append(body)
                    proxy._release.wait(60)
                    self.close_connection = True
                    return
                self.send_response(status)
                for name, value in headers:
                    if name.lower() in ("content-type", "retry-after"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, list[tuple[str, str]]]:
        conn = http.client.HTTPConnection(self.target.hostname or "", self.target.port, timeout=30)
        try:
            keep = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
            conn.request("POST", path, body=body, headers=keep)
            response = conn.getresponse()
            return response.status, response.read(), response.getheaders()
        finally:
            conn.close()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def stall(self, when: Callable[[bytes], bool]) -> None:
        """Withhold the answer to the next request whose body satisfies ``when``."""
        self._stall_when = when

    def release(self) -> None:
        self._release.set()

    def delivered_bodies(self, path: str = "/api/v1/write") -> list[bytes]:
        """Bodies the stack accepted (2xx) through this proxy."""
        with self._lock:
            return [body for p, body, status in self.forwarded if p == path and 200 <= status < 300]


@pytest.fixture
def proxy(stack: Stack) -> Iterator[Proxy]:
    p = Proxy(stack.url)
    p.up()
    yield p
    p.release()
    p.down()


def samples_of(body: bytes, prefix: str) -> dict[SampleKey, float]:
    """The samples of a remote write body whose metric name starts with ``prefix``, keyed as stored.

    The labels leave ``__name__`` out, as ``count_over_time`` results do.
    """
    request = WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body)))
    out: dict[SampleKey, float] = {}
    for ts in request.timeseries:
        labels = {label.name: label.value for label in ts.labels}
        if not labels["__name__"].startswith(prefix):
            continue
        name = labels.pop("__name__")
        for sample in ts.samples:
            out[(name, frozenset(labels.items()), sample.timestamp)] = sample.value
    return out


def queued_bodies(queue_dir: Path) -> list[bytes]:
    """The undelivered remote write bodies in a (stopped) agent's queue, read without changing it."""
    with DiskQueue(queue_dir, max_bytes=64 * 1024**2, segment_bytes=1024**2) as queue:
        bodies: list[bytes] = []
        after: Position | None = None
        while batch := queue.peek(max_entries=100, after=after):
            bodies += [q.entry.body for q in batch if q.entry.kind is Kind.REMOTE_WRITE]
            after = batch[-1].end
        return bodies


@dataclass
class AgentProcess:
    """``novacron agent`` running as a subprocess."""

    process: subprocess.Popen[bytes]
    log: Path

    def kill9(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> int:
        self.process.terminate()
        return self.process.wait(30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class AgentFiles:
    """Where an agent's config and queue live, and its ports."""

    config: Path
    queue_dir: Path
    statsd_port: int
    api_key: str


@pytest.fixture
def agent_files(tmp_path: Path, stack: Stack, proxy: Proxy) -> AgentFiles:
    statsd_port = free_port(socket.SOCK_DGRAM)
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"""
endpoint: {proxy.url}
api_key_env: AGENT_TEST_KEY
labels: {{source: agent-test, environment: test, owner: agent-tests}}
statsd: {{listen: "127.0.0.1:{statsd_port}", flush_interval_s: 0.2}}
otlp: {{enabled: false}}
queue: {{dir: queue, max_bytes: 67108864, segment_bytes: 1048576}}
send: {{min_backoff_s: 0.05, max_backoff_s: 0.5, timeout_s: 30, shutdown_grace_s: 2}}
health: {{interval_s: 1, log_interval_s: 5}}
"""
    )
    return AgentFiles(config, tmp_path / "queue", statsd_port, stack.ingest_key)


@pytest.fixture
def start_agent(agent_files: AgentFiles) -> Iterator[Callable[[], AgentProcess]]:
    started: list[AgentProcess] = []

    def start() -> AgentProcess:
        log = agent_files.config.parent / f"agent-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "novacron.cli", "agent", "--config", str(agent_files.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "AGENT_TEST_KEY": agent_files.api_key},
            )
        agent = AgentProcess(process, log)
        started.append(agent)
        wait_for(lambda: "agent started" in agent.output() or process.poll() is not None, 30, "the agent to start")
        assert process.poll() is None, agent.output()
        return agent

    yield start
    for agent in started:
        if agent.process.poll() is None:
            agent.process.kill()
            agent.process.wait(10)


def wait_for(condition: Callable[[], Any], timeout: float, message: str, interval: float = 0.2) -> Any:
    """Poll ``condition`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
