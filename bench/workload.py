"""Workloads shared by the benchmarks: the simulated estate's series, as senders would send them."""

from __future__ import annotations

import time
from collections.abc import Sequence

from novacron.series import Labels
from novacron.simulate.estate import Estate, EstateSimulator
from novacron.simulate.remote_write import RemoteWriteClient

SCRAPE_INTERVAL_MS = 15_000


def estate_series(min_series: int, seed: int = 1) -> EstateSimulator:
    """A simulated estate scaled until one scrape has at least ``min_series`` series."""
    scale = 1
    while len(EstateSimulator(Estate(seed=seed, scale=scale)).scrape(time.time()).samples) < min_series:
        scale += 1
    return EstateSimulator(Estate(seed=seed, scale=scale))


def scrapes(simulator: EstateSimulator, count: int, end_ms: int) -> list[list[tuple[Labels, float]]]:
    """``count`` consecutive scrapes ending at ``end_ms``, each a list of (labels, value)."""
    first = end_ms - (count - 1) * SCRAPE_INTERVAL_MS
    return [simulator.scrape((first + i * SCRAPE_INTERVAL_MS) / 1000).samples for i in range(count)]


def remote_write_body(
    scrape_list: Sequence[list[tuple[Labels, float]]], end_ms: int, limit: int | None = None
) -> tuple[bytes, int, int]:
    """One remote-write body holding the given scrapes (series times scrapes samples).

    Returns (body, series, samples). ``limit`` keeps the first N series of each scrape.
    """
    first = end_ms - (len(scrape_list) - 1) * SCRAPE_INTERVAL_MS
    by_series: dict[Labels, list[tuple[int, float]]] = {}
    for i, samples in enumerate(scrape_list):
        for labels, value in samples[:limit]:
            by_series.setdefault(labels, []).append((first + i * SCRAPE_INTERVAL_MS, value))
    body = RemoteWriteClient.encode(list(by_series.items()))
    return body, len(by_series), sum(len(v) for v in by_series.values())
