"""Fixtures for PromQL engine tests: an in-memory reader, an engine, and result helpers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from novacron.promql import Engine
from novacron.query.memory_reader import InMemorySeriesReader

Instant = Callable[[str, int], dict[tuple[tuple[str, str], ...], float]]


@pytest.fixture
def reader() -> InMemorySeriesReader:
    return InMemorySeriesReader()


@pytest.fixture
def engine(reader: InMemorySeriesReader) -> Engine:
    return Engine(reader)


@pytest.fixture
def instant(engine: Engine) -> Instant:
    """Run an instant query and return ``{labels: value}`` for a vector result."""

    def run(query: str, time_ms: int) -> dict[tuple[tuple[str, str], ...], float]:
        result = engine.instant(query, time_ms)
        assert result.result_type == "vector", result.result_type
        return {s.labels: float(s.values[0]) for s in result.series}

    return run


def _lb(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(("__name__" if k == "name" else k, v) for k, v in labels.items()))


@pytest.fixture
def lb() -> Callable[..., tuple[tuple[str, str], ...]]:
    """Build a label-set key from keywords; ``name`` stands for ``__name__``."""
    return _lb
