"""Fixtures of the simulator tests: a seeded estate, scraping helpers and a tiny remote-write server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from novacron.simulate.estate import Estate, EstateSimulator, Scrape
from novacron.simulate.faults import Fault, FaultSchedule
from tests.unit.simulate.support import Received


@pytest.fixture
def estate() -> Estate:
    return Estate(seed=7)


@pytest.fixture
def scrape_run(estate: Estate) -> Callable[..., list[Scrape]]:
    """Scrape the estate every ``step`` seconds from ``start`` for ``count`` scrapes, with faults."""

    def run(start: float, count: int, step: float = 15.0, faults: Sequence[Fault] = ()) -> list[Scrape]:
        simulator = EstateSimulator(estate, FaultSchedule(list(faults)))
        return [simulator.scrape(start + i * step) for i in range(count)]

    return run


@dataclass
class WriteServer:
    """A remote-write endpoint answering from a script of (status, headers, body); 204 when it runs out."""

    url: str
    received: list[Received] = field(default_factory=list)
    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def write_server() -> Iterator[WriteServer]:
    state = WriteServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                state.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status, headers, text = state.script.pop(0) if state.script else (204, {}, "")
            payload = text.encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
