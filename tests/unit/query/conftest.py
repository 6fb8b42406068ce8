"""Fixtures for the Prometheus HTTP API tests."""

from __future__ import annotations

import pytest

from novacron.query.memory_reader import InMemorySeriesReader

NOW_S = 1_700_000_000.0


@pytest.fixture
def reader() -> InMemorySeriesReader:
    """Two series of ``up`` and one of ``http_total``, sampled at NOW - 10 s and NOW."""
    r = InMemorySeriesReader()
    t = int(NOW_S * 1000)
    r.add({"__name__": "up", "job": "api", "instance": "a:9090"}, [t - 10_000, t], [1.0, 1.0])
    r.add({"__name__": "up", "job": "web", "instance": "b:9090"}, [t - 10_000, t], [0.0, 0.5])
    r.add({"__name__": "http_total", "job": "api"}, [t - 10_000, t], [10.0, 20.0])
    return r


@pytest.fixture
def now():
    """A fixed clock."""
    return lambda: NOW_S
