"""The collection agent: sustained StatsD intake with no drops, and disk-queue write throughput.

StatsD: a sender process offers single-line DogStatsD datagrams over UDP at a fixed rate for a few
seconds; the agent (its receive + aggregate thread, on one core) must count every one. Rates go up
until datagrams are lost; the highest lossless rate is the figure. The reference, in the same run, is
a bare ``recv`` loop on the same socket setup: what Python can take off the socket doing nothing else.

Queue: appends of ready-to-send entries (fsynced per append, as the agent does), against plain
``os.write`` + ``fsync`` of the same bytes to one file.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from novacron.agent.config import AgentConfig
from novacron.agent.forward import Answer
from novacron.agent.queue import DiskQueue, Entry, Kind
from novacron.agent.runtime import Agent

SERIES = 1_000  # distinct StatsD series the datagrams cycle through
SECONDS = 4.0


class AcceptAll:
    """A sender transport that takes every request at once: the benchmark measures intake, not the network."""

    def post(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        return Answer(204)


def datagrams() -> list[bytes]:
    """Typical single-line DogStatsD datagrams: counters, timers and gauges with two tags."""
    out = []
    for i in range(SERIES):
        kind = ("c", "ms", "g")[i % 3]
        out.append(f"shop.requests.{i % 50}:{i % 7 + 1}|{kind}|#route:/r{i % 20},code:{200 + i % 3}".encode())
    return out


def offer(address: tuple[str, int], rate: float, seconds: float, sent: Any) -> None:
    """Send at ``rate`` datagrams/s for ``seconds``, paced per millisecond; store the count in ``sent``."""
    payloads = datagrams()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(rate * elapsed) + 1
        while count < due:
            sock.sendto(payloads[count % SERIES], address)
            count += 1
        time.sleep(0.0005)
    sent.value = count


def agent_intake(rate: float, root: Path) -> tuple[int, int]:
    """(offered, received) datagrams at ``rate`` through a running agent."""
    config = AgentConfig.model_validate(
        {
            "endpoint": "http://127.0.0.1:9",
            "statsd": {"listen": "127.0.0.1:0", "flush_interval_s": 1.0},
            "otlp": {"enabled": False},
            "health": {"enabled": False},
            "queue": {"dir": str(root / f"queue-{int(rate)}")},
        }
    )
    agent = Agent(config, "unused", transport=AcceptAll()).start()
    try:
        host, port = (agent.statsd_address or "").rsplit(":", 1)
        sent = multiprocessing.Value("q", 0)
        sender = multiprocessing.Process(target=offer, args=((host, int(port)), rate, SECONDS, sent))
        sender.start()
        sender.join()
        time.sleep(0.5)  # let the agent drain what the kernel holds
    finally:
        agent.stop()
    return int(sent.value), int(agent.aggregator.stats["lines_received"])


def bare_recv(rate: float) -> tuple[int, int]:
    """(offered, received) datagrams at ``rate`` by a loop that only calls ``recv``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    received = 0
    stop = threading.Event()

    def loop() -> None:
        nonlocal received
        while not stop.is_set():
            try:
                sock.recv(65536)
                received += 1
            except TimeoutError:
                continue

    thread = threading.Thread(target=loop)
    thread.start()
    sent = multiprocessing.Value("q", 0)
    sender = multiprocessing.Process(target=offer, args=(sock.getsockname(), rate, SECONDS, sent))
    sender.start()
    sender.join()
    time.sleep(0.5)
    stop.set()
    thread.join()
    sock.close()
    return int(sent.value), received


def highest_lossless(measure: Callable[[float], tuple[int, int]], rates: list[float], label: str) -> float:
    """Try ``rates`` in order; print each; return the highest with no loss."""
    best = 0.0
    for rate in rates:
        offered, received = measure(rate)
        lost = offered - received
        achieved = offered / SECONDS
        print(f"  {label:<10} offered {achieved:>9,.0f}/s  received {received:>9,}  lost {lost:>7,}")
        if lost > 0:
            break
        best = achieved
    return best


def queue_throughput(root: Path, entry_bytes: int, per_append: int, seconds: float = 2.0) -> tuple[float, float]:
    """(entries/s, MB/s) of DiskQueue appends, and of os.write+fsync of the same bytes."""
    body = os.urandom(entry_bytes)
    batch = [Entry(Kind.REMOTE_WRITE, body, samples=1) for _ in range(per_append)]
    queue = DiskQueue(root / f"q-{entry_bytes}-{per_append}", max_bytes=8 * 1024**3, segment_bytes=64 * 1024**2)
    with queue:
        appended = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            queue.append(batch)
            appended += per_append
        ours = appended / (time.perf_counter() - start)
    raw_path = root / f"raw-{entry_bytes}-{per_append}"
    fd = os.open(raw_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    chunk = body * per_append
    written = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        os.write(fd, chunk)
        os.fsync(fd)
        written += per_append
    raw = written / (time.perf_counter() - start)
    os.close(fd)
    return ours, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="50000,100000,150000,200000,300000,400000", help="datagrams/s to try")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="novacron-bench-agent-") as tmp:
        root = Path(tmp)
        print(f"StatsD intake: single-line DogStatsD datagrams, {SERIES:,} series, {SECONDS:.0f} s per rate")
        agent_best = highest_lossless(lambda rate: agent_intake(rate, root), rates, "agent")
        bare_best = highest_lossless(bare_recv, rates, "bare recv")
        ratio = agent_best / bare_best if bare_best else float("nan")
        print(
            f"highest lossless rate: agent {agent_best:,.0f} datagrams/s, bare recv loop {bare_best:,.0f}/s "
            f"(ratio {ratio:.2f})"
        )
        print("\ndisk queue appends (fsync per append), against os.write+fsync of the same bytes:")
        print(f"{'entry':>8} {'per append':>10} {'entries/s':>10} {'MB/s':>8} {'raw MB/s':>9} {'ratio':>6}")
        for entry_bytes, per_append in ((10_240, 100), (102_400, 10), (1_024, 1)):
            ours, raw = queue_throughput(root, entry_bytes, per_append)
            print(
                f"{entry_bytes // 1024:>6}KB {per_append:>10} {ours:>10,.0f} {ours * entry_bytes / 1e6:>8.1f}"
                f" {raw * entry_bytes / 1e6:>9.1f} {ours / raw:>6.2f}"
            )


if __name__ == "__main__":
    main()
