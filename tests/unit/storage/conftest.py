"""Stored data for compaction and rollup tests: five hours of twelve series written by the writer."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.records import encode_record
from novacron.series import STALE_NAN
from novacron.storage.compaction import WINDOW_MS
from novacron.storage.writer import MetricsWriter
from tests.builders import timeseries
from tests.fakes import MemoryBlockStore, MemoryIndexStore

HOUR = 3_600_000
T0 = 1_790_000_000_000 // WINDOW_MS * WINDOW_MS  # a window boundary
END = T0 + 5 * HOUR  # data spans two full windows and half of a third


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def series_labels(i: int) -> dict[str, str]:
    return {"__name__": "requests_total" if i % 2 else "temperature", "job": "api", "instance": f"i{i}"}


def _values(i: int, ts: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(i)
    if i % 2:  # a counter with a reset in the middle
        values = np.cumsum(rng.integers(0, 10, len(ts))).astype(float)
        values[len(ts) // 2 :] -= values[len(ts) // 2]
        return values
    return np.round(rng.normal(20, 3, len(ts)), 2)


@pytest.fixture
def store() -> MemoryBlockStore:
    return MemoryBlockStore()


@pytest.fixture
def index() -> MemoryIndexStore:
    return MemoryIndexStore()


@pytest.fixture
def written(store: MemoryBlockStore, index: MemoryIndexStore) -> dict[str, list[tuple[int, float]]]:
    """Twelve series at 15 s over five hours (one record per minute), one ending in a staleness marker."""
    writer = MetricsWriter(store, index, now_ms=lambda: T0)  # written as they arrived: none late
    ts = np.arange(T0 + 3_000, END, 15_000)
    expected: dict[str, list[tuple[int, float]]] = {}
    for i in range(12):
        values = _values(i, ts)
        if i == 4:
            values[-1] = STALE_NAN
        expected[f"i{i}"] = list(zip(ts.tolist(), values.tolist(), strict=True))
    records = []
    for n, minute in enumerate(range(T0, END, 60_000)):
        series = [
            timeseries(series_labels(i), [(t, v) for t, v in samples if minute <= t < minute + 60_000])
            for i, samples in ((int(k[1:]), s) for k, s in expected.items())
        ]
        records.append((f"{n:08d}", encode_record("acme", minute, [s.SerializeToString() for s in series])))
    assert not [o for o in writer.write_batch(records) if isinstance(o, Exception)]
    return expected
