"""End-to-end fixtures: the local stack in-process, and real third-party servers beside it."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from novacron.auth import generate_key, register_key
from novacron.local.resources import physical_name
from novacron.local.runtime import LocalRuntime
from novacron.wiring import KEYS_TABLE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalStack:
    """A running ``novacron local`` equivalent and keys of two tenants."""

    runtime: LocalRuntime
    url: str
    ingest_key: str
    read_key: str
    other_ingest_key: str
    other_read_key: str


def query(stack: LocalStack, promql: str, key: str | None = None) -> list[Any]:
    """An instant query's result vector, with the stack's read key unless told otherwise."""
    url = f"{stack.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key or stack.read_key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        result: list[Any] = json.loads(response.read())["data"]["result"]
    return result


@pytest.fixture(scope="module")
def local_stack() -> Iterator[LocalStack]:
    runtime = LocalRuntime(port=free_port()).start()
    try:
        table = physical_name(KEYS_TABLE)
        keys = {}
        for name, tenant, role in [
            ("ingest", "e2e", "ingest"),
            ("read", "e2e", "read"),
            ("other_ingest", "other", "ingest"),
            ("other_read", "other", "read"),
        ]:
            keys[name] = generate_key()
            register_key(keys[name], tenant, role, table)
        yield LocalStack(runtime, runtime.url, keys["ingest"], keys["read"], keys["other_ingest"], keys["other_read"])
    finally:
        runtime.stop()


class ScrapeTarget:
    """A /metrics endpoint with known values: a gauge and a counter that grows by 5 per scrape."""

    def __init__(self) -> None:
        self.scrapes = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target.scrapes += 1
                body = (
                    "# TYPE e2e_temperature_celsius gauge\n"
                    'e2e_temperature_celsius{room="lab"} 21.5\n'
                    "# TYPE e2e_requests_total counter\n"
                    f'e2e_requests_total{{path="/checkout"}} {5 * target.scrapes}\n'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class PrometheusServer:
    """A running Prometheus and where its log goes."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """A Prometheus API response body (errors included)."""
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # 4xx/5xx answers carry the error envelope
            body = json.loads(exc.read())
        return body


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"LOUD SKIP: {name} is not installed; .ci/run installs Debian's 'prometheus' package "
            f"(apt-get install prometheus) so that this end-to-end test runs"
        )
    return path


@pytest.fixture(scope="module")
def scrape_target() -> Iterator[ScrapeTarget]:
    target = ScrapeTarget()
    yield target
    target.close()


@contextlib.contextmanager
def launched_prometheus(
    binary: str, workdir: Path, config: str, flags: tuple[str, ...] = ()
) -> Iterator[PrometheusServer]:
    """A Prometheus process on a free port with ``config`` and its TSDB in ``workdir``; stopped on exit."""
    config_file = workdir / "prometheus.yml"
    config_file.write_text(config)
    port = free_port()
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                *flags,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield PrometheusServer(f"http://127.0.0.1:{port}", process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_prometheus(
    workdir: Path, stack: LocalStack, target: str, job: str, remote_write_extra: str = "", flags: tuple[str, ...] = ()
) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping ``target`` every second and remote-writing to ``stack``."""
    config = f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: {job}
    static_configs:
      - targets: ["{target}"]
remote_write:
  - url: {stack.url}/api/v1/write{remote_write_extra}
    authorization:
      credentials: {stack.ingest_key}
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
"""
    with launched_prometheus(require_binary("prometheus"), workdir, config, flags) as server:
        yield server


@pytest.fixture(scope="module")
def prometheus(local_stack: LocalStack, scrape_target: ScrapeTarget, tmp_path_factory) -> Iterator[PrometheusServer]:
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), local_stack, scrape_target.address, "e2e") as server:
        yield server


def wait_for(condition, timeout: float, message: str, interval: float = 0.5):  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
