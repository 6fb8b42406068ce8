"""The writer's per-tenant, per-day cardinality summary: exact recounts when series are new."""

from __future__ import annotations

import pytest

from novacron.records import encode_record
from novacron.storage.writer import MetricsWriter, WriterSettings, day_of
from tests.builders import timeseries
from tests.fakes import MemoryBlockStore, MemoryIndexStore

NOW = 1_790_000_000_000
DAY = day_of(NOW)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def index() -> MemoryIndexStore:
    return MemoryIndexStore()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def writer(index: MemoryIndexStore, clock: Clock) -> MetricsWriter:
    settings = WriterSettings(cardinality_recount_s=10)
    return MetricsWriter(MemoryBlockStore(), index, settings, cardinality=index, clock=clock)


def record(tenant: str, metric: str, instances: range, at: int = NOW) -> bytes:
    series = [timeseries({"__name__": metric, "instance": f"i{i}"}, [(at, 1.0)]) for i in instances]
    return encode_record(tenant, at, [s.SerializeToString() for s in series])


def test_new_series_are_counted_per_metric_and_tenant(writer: MetricsWriter, index: MemoryIndexStore) -> None:
    # Given records of two tenants and metrics
    writer.write_batch(
        [
            ("1", record("acme", "up", range(5))),
            ("2", record("acme", "load", range(2))),
            ("3", record("globex", "up", range(1))),
        ]
    )
    # Then each tenant's day has the exact count of each metric
    assert index.cardinality("acme", DAY) == {"up": 5, "load": 2}
    assert index.cardinality("globex", DAY) == {"up": 1}


def test_known_series_cost_no_recount(writer: MetricsWriter, index: MemoryIndexStore, clock: Clock) -> None:
    # Given a metric counted once
    writer.write_batch([("1", record("acme", "up", range(5)))])
    counted = index.counted
    # When the same series come again, later
    clock.now = 100.0
    writer.write_batch([("2", record("acme", "up", range(5)))])
    # Then nothing is recounted
    assert index.counted == counted


def test_recounts_are_exact_and_spaced_out(writer: MetricsWriter, index: MemoryIndexStore, clock: Clock) -> None:
    # Given a metric counted at 5
    writer.write_batch([("1", record("acme", "up", range(5)))])
    # When 3 new series arrive within the recount interval
    clock.now = 5.0
    writer.write_batch([("2", record("acme", "up", range(8)))])
    # Then the count waits
    assert index.cardinality("acme", DAY) == {"up": 5}
    # And the next batch after the interval, even with nothing new, records the exact count
    clock.now = 11.0
    writer.write_batch([("3", record("acme", "up", range(8)))])
    assert index.cardinality("acme", DAY) == {"up": 8}


def test_a_fresh_writer_recounts_rather_than_adds(index: MemoryIndexStore) -> None:
    # Given series indexed by one writer instance
    MetricsWriter(MemoryBlockStore(), index, cardinality=index).write_batch([("1", record("acme", "up", range(4)))])
    # When a cold writer receives some of them again (a replayed batch) and one new
    MetricsWriter(MemoryBlockStore(), index, cardinality=index).write_batch([("1", record("acme", "up", range(5)))])
    # Then the count is the number of distinct series, not a sum
    assert index.cardinality("acme", DAY) == {"up": 5}


def test_days_are_counted_separately(writer: MetricsWriter, index: MemoryIndexStore) -> None:
    # Given series on two days
    yesterday = NOW - 86_400_000
    writer.write_batch([("1", record("acme", "up", range(3), at=yesterday)), ("2", record("acme", "up", range(1)))])
    # Then each day has its own count
    assert index.cardinality("acme", day_of(yesterday)) == {"up": 3}
    assert index.cardinality("acme", DAY) == {"up": 1}


def test_without_a_cardinality_store_nothing_is_counted(index: MemoryIndexStore) -> None:
    # Given a writer not told where the summary goes
    MetricsWriter(MemoryBlockStore(), index).write_batch([("1", record("acme", "up", range(3)))])
    # Then no summary is written
    assert (index.summary, index.counted) == ({}, 0)
