"""The shared results cache table against moto: round trips, tenant separation, expiry and oversize."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.adapters.results_table import DynamoResultsStore
from novacron.local.resources import physical_name
from novacron.query.results_cache import ChunkKey
from novacron.series import SeriesSamples
from novacron.wiring import RESULTS_TABLE

HOUR = 3_600_000


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def table(moto_wiring: None) -> str:
    return physical_name(RESULTS_TABLE)


def _key(tenant: str, chunk: int, query: str = "sum(rate(x[5m]))") -> ChunkKey:
    return ChunkKey(tenant, query, 60_000, 0, HOUR, chunk * HOUR, 300_000)


def _series(n: int, seed: int = 0) -> list[SeriesSamples]:
    rng = np.random.default_rng(seed)
    return [SeriesSamples((("job", "api"),), np.arange(n, dtype=np.int64) * 60_000, rng.normal(size=n))]


def test_chunks_round_trip_by_key_and_tenant(table: str) -> None:
    # Given two chunks of tenant a and one of tenant b under the same query
    store = DynamoResultsStore(table)
    store.put_many([(_key("a", 0), _series(60, 1)), (_key("a", 1), _series(60, 2)), (_key("b", 0), _series(60, 3))])
    # When a asks for its two chunks, one chunk of another query, and b's chunk under a's name is not asked
    found = store.get_many([_key("a", 0), _key("a", 1), _key("a", 0, "other")])
    # Then exactly a's two chunks come back, with their values
    assert set(found) == {_key("a", 0), _key("a", 1)}
    assert found[_key("a", 1)][0].values.tolist() == _series(60, 2)[0].values.tolist()
    assert store.get_many([_key("b", 0)])[_key("b", 0)][0].values.tolist() == _series(60, 3)[0].values.tolist()


def test_expired_chunks_are_misses_before_ttl_deletes_them(table: str) -> None:
    # Given a chunk stored with a one hour TTL
    clock = Clock()
    store = DynamoResultsStore(table, ttl_s=3600, clock=clock)
    store.put_many([(_key("a", 0), _series(10))])
    # When read just before and just after it expires (DynamoDB deletes expired items only eventually)
    clock.now += 3599
    before = store.get_many([_key("a", 0)])
    clock.now += 2
    after = store.get_many([_key("a", 0)])
    # Then it is a hit, then a miss
    assert list(before) == [_key("a", 0)]
    assert after == {}


def test_chunks_too_large_for_an_item_are_not_shared(table: str) -> None:
    # Given a chunk of random values far over DynamoDB's 400 KB item limit once encoded
    store = DynamoResultsStore(table)
    # When stored beside a small one
    store.put_many([(_key("a", 0), _series(100_000)), (_key("a", 1), _series(10))])
    # Then only the small one is in the table, and the large one was counted
    assert list(store.get_many([_key("a", 0), _key("a", 1)])) == [_key("a", 1)]
    assert store.oversized == 1


def test_an_empty_lookup_reads_nothing(table: str) -> None:
    assert DynamoResultsStore(table).get_many([]) == {}
