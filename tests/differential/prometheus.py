"""A real Prometheus 2.42 loaded with the data set, and the same data in NovaCron's in-memory reader.

Loading: everything goes through Prometheus's remote write receiver, because OpenMetrics text (the
input of ``promtool tsdb create-blocks-from openmetrics``) cannot carry staleness markers. The head
block rejects samples older than one hour before its newest sample, so the data is sent in time
order, ten minutes of every series per request; two hours of data stay below the head's compaction
span, so nothing is compacted while the test runs. The samples are from 2023: Prometheus keeps them
(retention counts from the newest block, not from the wall clock).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from novacron.query.memory_reader import InMemorySeriesReader
from novacron.simulate.remote_write import RemoteWriteClient
from tests.differential.data import T0_MS, Series
from tests.e2e.conftest import PrometheusServer, launched_prometheus

SLICE_MS = 600_000


def _wait_ready(server: PrometheusServer, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {server.log.read_text()[-2000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{server.url}/-/ready", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"prometheus not ready after {timeout_s}s: {server.log.read_text()[-2000:]}")


@contextlib.contextmanager
def running_prometheus(binary: str, workdir: Path) -> Iterator[PrometheusServer]:
    """Prometheus with no scrape targets, an empty TSDB and the remote write receiver on."""
    config = "global:\n  evaluation_interval: 1m\nscrape_configs: []\n"
    with launched_prometheus(binary, workdir, config, ("--web.enable-remote-write-receiver",)) as server:
        _wait_ready(server)
        yield server


def load_prometheus(server: PrometheusServer, data: list[Series]) -> None:
    """Remote-write every sample, in time-ordered slices, failing loudly on any rejection."""
    client = RemoteWriteClient(server.url, "unused", max_retries=0, max_samples_per_request=1_000_000)
    try:
        last = max(t for s in data for t, _ in s.samples)
        for lo in range(T0_MS, last + 1, SLICE_MS):
            batch = [(s.labels, [(t, v) for t, v in s.samples if lo <= t < lo + SLICE_MS]) for s in data]
            batch = [(labels, samples) for labels, samples in batch if samples]
            if not client.write(batch):
                raise RuntimeError(f"prometheus refused remote write: {client.stats.last_error}")
    finally:
        client.close()


def load_novacron(data: list[Series]) -> InMemorySeriesReader:
    """The same samples in NovaCron's in-memory reader."""
    reader = InMemorySeriesReader()
    for s in data:
        reader.add(s.labels, [t for t, _ in s.samples], [v for _, v in s.samples])
    return reader
