"""The aligned results cache: same answers as the engine, and only new chunks evaluated."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.promql import Engine, QueryResult
from novacron.query import prom_api
from novacron.query.memory_reader import InMemorySeriesReader
from novacron.query.results_cache import (
    ChunkKey,
    LruResultsStore,
    ResultsCache,
    TieredResultsStore,
    decode_chunk,
    encode_chunk,
)
from novacron.series import SeriesSamples

HOUR = 3_600_000
MINUTE = 60_000
NOW = 1_700_000_000_000 // HOUR * HOUR + 17 * MINUTE  # 17 minutes into an hour
START = NOW - 6 * HOUR


class FakeClock:
    """A settable clock in milliseconds."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def reader() -> InMemorySeriesReader:
    """Counters, gauges, a histogram, a series with a gap and one ending in a staleness marker, 8 h at 15 s."""
    rng = np.random.default_rng(7)
    ts = np.arange(START - 2 * HOUR + 3_000, NOW, 15_000, dtype=np.int64)
    r = InMemorySeriesReader()
    for i in range(4):
        job = "api" if i % 2 else "web"
        r.add({"__name__": "req_total", "job": job, "i": str(i)}, ts, np.cumsum(rng.poisson(5, len(ts))).astype(float))
        r.add({"__name__": "mem", "job": job, "i": str(i)}, ts, rng.normal(100, 10, len(ts)))
        cumulative = np.cumsum(np.cumsum(rng.poisson(2, (3, len(ts))), axis=1), axis=0).astype(float)
        for le, row in zip(("0.1", "1", "+Inf"), cumulative, strict=True):
            r.add({"__name__": "lat_bucket", "job": job, "i": str(i), "le": le}, ts, row)
    gap = (ts < START + HOUR) | (ts > START + 2 * HOUR)
    r.add({"__name__": "gappy", "job": "x"}, ts[gap], rng.normal(0, 1, int(gap.sum())))
    stale = np.array([0x7FF0000000000002], dtype=np.uint64).view(np.float64)[0]
    cut = START + 3 * HOUR
    r.add({"__name__": "gone", "job": "x"}, [*ts[ts < cut].tolist(), cut], [*[1.0] * int((ts < cut).sum()), stale])
    return r


@pytest.fixture
def engine(reader: InMemorySeriesReader) -> Engine:
    return Engine(reader)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def cache(clock: FakeClock) -> ResultsCache:
    return ResultsCache(LruResultsStore(), "t1", clock_ms=clock)


QUERIES = [
    "req_total",
    "rate(req_total[5m])",
    "increase(req_total[1h])",
    "sum by (job) (rate(req_total[5m]))",
    "histogram_quantile(0.9, sum by (job, le) (rate(lat_bucket[5m])))",
    "avg_over_time(mem[2h])",
    "quantile_over_time(0.5, mem[30m])",
    "mem offset 1h",
    "rate(req_total[10m] offset 30m)",
    "mem @ 1699990000",
    "max_over_time(rate(req_total[5m])[1h:1m])",
    "avg_over_time(mem[20m:3m] offset 7m)",
    "topk(2, mem)",
    "mem / on (i) group_left () rate(req_total[5m])",
    "gappy",
    "absent(gappy)",
    "absent_over_time(gone[10m])",
    "changes(gone[1h])",
    "deriv(mem[15m])",
    "timestamp(mem)",
    "time()",
    "1 + 2",
    'label_replace(mem, "x", "$1", "job", "(.*)")',
    "resets(req_total[3h])",
    "predict_linear(mem[1h], 3600)",
    'count_values("v", round(mem / 50))',
    "sort_desc(mem)",
    "absent(nonexistent)",
    "mem and on (i) (rate(req_total[5m]) > 0)",
    "quantile by (job) (0.9, mem)",
    "increase(req_total[3h] @ 1699990000)",
    "last_over_time(gone[1h])",
    "rate(req_total[5m] offset -30m)",
    "mem > bool 100",
]


def same(a: QueryResult, b: QueryResult) -> None:
    assert a.result_type == b.result_type == "matrix"
    assert [s.labels for s in a.series] == [s.labels for s in b.series]
    for x, y in zip(a.series, b.series, strict=True):
        np.testing.assert_array_equal(x.timestamps, y.timestamps)
        np.testing.assert_array_equal(x.values, y.values)


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize(("start", "step"), [(START, MINUTE), (START + 20_000, 45_000), (START - 7 * MINUTE, 4 * HOUR)])
def test_cached_and_chunked_results_equal_the_engine_s(
    engine: Engine, cache: ResultsCache, clock: FakeClock, query: str, start: int, step: int
) -> None:
    # Given a range query over 6 hours, aligned to the step or not, with steps small or larger than a chunk
    expected = engine.range(query, start, NOW, step)
    # When it is evaluated through the cache, cold and then warm, and through a cache filled one hour at a time
    cold = cache.range(engine, query, start, NOW, step)
    warm = cache.range(engine, query, start, NOW, step)
    pieced = ResultsCache(LruResultsStore(), "t1", clock_ms=clock)
    for hour in range(start // HOUR * HOUR, NOW, HOUR):
        first, last = max(start, hour + (start - hour) % step), min(NOW, hour + HOUR - 1)
        if first <= last:
            pieced.range(engine, query, first, last, step)
    evaluated = pieced.evaluations
    from_pieces = pieced.range(engine, query, start, NOW, step)
    # Then all equal the direct evaluation, point for point, the last one made of separately evaluated chunks
    same(cold, expected)
    same(warm, expected)
    same(from_pieces, expected)
    assert pieced.evaluations - evaluated <= 1


def test_a_refreshed_dashboard_evaluates_only_the_new_chunk(
    engine: Engine, cache: ResultsCache, clock: FakeClock
) -> None:
    # Given a dashboard panel queried once (one engine evaluation for the whole range)
    query = "sum by (job) (rate(req_total[5m]))"
    cache.range(engine, query, START, NOW, MINUTE)
    assert cache.evaluations == 1
    # When it refreshes a minute later, start and end moved by one step
    clock.now_ms += MINUTE
    result = cache.range(engine, query, START + MINUTE, NOW + MINUTE, MINUTE)
    # Then one more evaluation covers only the chunk holding "now", and the answer is still exact
    assert cache.evaluations == 2
    same(result, engine.range(query, START + MINUTE, NOW + MINUTE, MINUTE))


class RecordingEngine(Engine):
    """An engine remembering the ranges it evaluated."""

    ranges: list[tuple[int, int]]

    def range(self, query: str, start_ms: int, end_ms: int, step_ms: int, timeout_ms: int | None = None) -> QueryResult:
        self.ranges.append((start_ms, end_ms))
        return super().range(query, start_ms, end_ms, step_ms, timeout_ms)


def test_the_refresh_evaluates_only_steps_of_the_unfinished_chunk(
    reader: InMemorySeriesReader, cache: ResultsCache, clock: FakeClock
) -> None:
    # Given a warm cache for a 6 hour panel
    engine = RecordingEngine(reader)
    engine.ranges = []
    cache.range(engine, "rate(req_total[5m])", START, NOW, MINUTE)
    # When the panel refreshes
    clock.now_ms += MINUTE
    cache.range(engine, "rate(req_total[5m])", START + MINUTE, NOW + MINUTE, MINUTE)
    # Then the second evaluation starts at the hour holding "now" (which is never cached)
    assert engine.ranges[-1] == (NOW // HOUR * HOUR, NOW + MINUTE)


def test_chunks_within_the_freshness_margin_are_not_cached(engine: Engine, clock: FakeClock) -> None:
    # Given "now" 2 minutes after an hour boundary and a 5 minute freshness margin
    clock.now_ms = NOW // HOUR * HOUR + 2 * MINUTE
    store = LruResultsStore()
    cache = ResultsCache(store, "t1", clock_ms=clock)
    # When a 3 hour range is evaluated
    cache.range(engine, "mem", clock.now_ms - 3 * HOUR, clock.now_ms, MINUTE)
    # Then the two complete hours ending more than 5 minutes ago are cached, the last hour and "now"'s are not
    assert sorted(k.chunk_start_ms for k in store._entries) == [
        clock.now_ms // HOUR * HOUR - 3 * HOUR,
        clock.now_ms // HOUR * HOUR - 2 * HOUR,
    ]


def test_late_data_in_an_uncached_chunk_is_seen(reader: InMemorySeriesReader, cache: ResultsCache) -> None:
    # Given a cached range
    engine = Engine(reader)
    cache.range(engine, "mem", START, NOW, MINUTE)
    # When a sample arrives late for the current (unfinished) hour
    reader.add({"__name__": "mem", "job": "api", "i": "1"}, [NOW - MINUTE - 1], [12345.0])
    result = cache.range(engine, "mem", START, NOW, MINUTE)
    # Then the answer shows it
    same(result, engine.range("mem", START, NOW, MINUTE))


@pytest.mark.parametrize("query", ["mem @ start()", "mem @ end()", "max_over_time(rate(req_total[5m] @ end())[1h:])"])
def test_queries_at_start_or_end_bypass_the_cache(engine: Engine, cache: ResultsCache, query: str) -> None:
    # Given a query whose value at every step depends on the range's start or end
    # When evaluated twice over different ranges
    first = cache.range(engine, query, START, NOW, MINUTE)
    second = cache.range(engine, query, START + HOUR, NOW, MINUTE)
    # Then nothing was cached and each answer is the engine's
    assert len(cache.store) == 0  # type: ignore[arg-type]
    same(first, engine.range(query, START, NOW, MINUTE))
    same(second, engine.range(query, START + HOUR, NOW, MINUTE))


def test_negative_offsets_push_the_freshness_horizon_back(engine: Engine, clock: FakeClock) -> None:
    # Given a query reading one hour after each step, and the same query without the offset
    store = LruResultsStore()
    cache = ResultsCache(store, "t1", clock_ms=clock)
    # When both are evaluated over the last 3 hours
    cache.range(engine, "mem offset -1h", NOW - 3 * HOUR, NOW, MINUTE)
    cache.range(engine, "mem", NOW - 3 * HOUR, NOW, MINUTE)
    # Then the shifted query caches only chunks ending more than 1 h + the margin before now: one hour less
    shifted = [k.chunk_start_ms for k in store._entries if "offset" in k.query]
    plain = [k.chunk_start_ms for k in store._entries if "offset" not in k.query]
    assert all(chunk + HOUR - 1 < NOW - HOUR - 5 * MINUTE for chunk in shifted)
    assert (len(shifted), len(plain)) == (2, 3)


def test_an_at_time_in_the_fresh_window_bypasses_the_cache(engine: Engine, cache: ResultsCache) -> None:
    # Given a query pinned to a time within the freshness margin
    query = f"mem @ {(NOW - MINUTE) / 1000}"
    # When evaluated
    result = cache.range(engine, query, START, NOW, MINUTE)
    # Then nothing is cached (the pinned samples may still change) and the answer is exact
    assert len(cache.store) == 0  # type: ignore[arg-type]
    same(result, engine.range(query, START, NOW, MINUTE))


def test_keys_separate_tenants_queries_steps_and_phases(engine: Engine, clock: FakeClock) -> None:
    # Given one store shared by two tenants' caches
    store = LruResultsStore()
    a, b = ResultsCache(store, "a", clock_ms=clock), ResultsCache(store, "b", clock_ms=clock)
    # When tenant a fills it and tenant b asks the same query, then a asks another step and phase
    a.range(engine, "mem", START, NOW, MINUTE)
    b.range(engine, "mem", START, NOW, MINUTE)
    a.range(engine, "mem", START + 1000, NOW, MINUTE)
    a.range(engine, "mem", START, NOW, 2 * MINUTE)
    # Then none of them reused another's chunks
    assert (a.evaluations, b.evaluations) == (3, 1)
    assert {(k.tenant, k.step_ms, k.phase_ms) for k in store._entries} == {
        ("a", MINUTE, START % MINUTE),
        ("b", MINUTE, START % MINUTE),
        ("a", MINUTE, (START + 1000) % MINUTE),
        ("a", 2 * MINUTE, START % (2 * MINUTE)),
    }


def test_queries_the_parser_prints_alike_do_not_share_chunks(engine: Engine, cache: ResultsCache) -> None:
    # Given a cached query over a subquery without a step (which the parser prints as a range selector)
    subquery, selector = "max_over_time(mem[5m:])", "max_over_time(mem[5m])"
    cache.range(engine, subquery, START, NOW, MINUTE)
    # When the range-selector query is asked
    result = cache.range(engine, selector, START, NOW, MINUTE)
    # Then it was evaluated on its own, and its answer is its own
    assert cache.evaluations == 2
    same(result, engine.range(selector, START, NOW, MINUTE))


def test_invalid_ranges_get_the_engine_s_errors(engine: Engine, cache: ResultsCache) -> None:
    # Given a range with a zero step / a bad query
    # When evaluated through the cache, then the engine's own errors come out
    with pytest.raises(Exception, match="zero or negative"):
        cache.range(engine, "mem", START, NOW, 0)
    with pytest.raises(Exception, match="parse error"):
        cache.range(engine, "mem[", START, NOW, MINUTE)


def _series(n: int) -> list[SeriesSamples]:
    return [SeriesSamples((("a", "b"),), np.arange(n, dtype=np.int64), np.zeros(n))]


def _key(chunk: int) -> ChunkKey:
    return ChunkKey("t", "q", MINUTE, 0, HOUR, chunk, 300_000)


def test_the_lru_store_stays_within_its_byte_budget_evicting_the_least_recent() -> None:
    # Given a store with room for about two chunks of 100 points
    store = LruResultsStore(max_bytes=4000)
    store.put(_key(0), _series(100))
    store.put(_key(1), _series(100))
    # When the first is read (now most recent) and a third is added
    assert store.get(_key(0)) is not None
    store.put(_key(2), _series(100))
    # Then the second was evicted and the budget holds
    assert store.get(_key(1)) is None
    assert store.get(_key(0)) is not None
    assert store.get(_key(2)) is not None
    assert store.bytes <= 4000


def test_a_chunk_larger_than_the_budget_is_not_kept() -> None:
    # Given a tiny store
    store = LruResultsStore(max_bytes=100)
    # When a large chunk is put
    store.put(_key(0), _series(1000))
    # Then it is not cached and nothing is counted
    assert store.get(_key(0)) is None
    assert store.bytes == 0


def test_the_query_range_api_answers_through_the_cache(reader: InMemorySeriesReader, cache: ResultsCache) -> None:
    # Given query_range parameters as Grafana sends them
    params = {"query": "sum by (job) (rate(req_total[5m]))", "start": str(START // 1000), "end": str(NOW // 1000)}
    params["step"] = "60"
    # When the API answers them with and without the cache, twice with it
    cached = prom_api.query_range(reader, params, results_cache=cache)
    again = prom_api.query_range(reader, params, results_cache=cache)
    plain = prom_api.query_range(reader, params)
    # Then the bodies are identical and the second cached answer evaluated only the unfinished chunk
    assert cached == again == plain
    assert cached[0] == 200
    assert cache.evaluations == 2


class FailingStore:
    """A far store that is down."""

    def get_many(self, keys: object) -> dict[ChunkKey, list[SeriesSamples]]:
        raise ConnectionError("throttled")

    def put_many(self, entries: object) -> None:
        raise ConnectionError("throttled")


def test_a_chunk_computed_by_one_instance_serves_another_through_the_shared_store(
    engine: Engine, clock: FakeClock
) -> None:
    # Given two function instances, each with its own near store, sharing one far store
    shared = LruResultsStore()
    first = ResultsCache(TieredResultsStore(LruResultsStore(), shared), "t1", clock_ms=clock)
    second_near = LruResultsStore()
    second = ResultsCache(TieredResultsStore(second_near, shared), "t1", clock_ms=clock)
    query = "sum by (job) (rate(req_total[5m]))"
    # When the first answers a 6 hour range and the second is asked the same range
    first.range(engine, query, START, NOW, MINUTE)
    result = second.range(engine, query, START, NOW, MINUTE)
    # Then the second evaluated only the unfinished hour, kept the shared chunks near, and answered exactly
    assert second.evaluations == 1
    assert len(second_near) == 6
    same(result, engine.range(query, START, NOW, MINUTE))


def test_a_failing_shared_store_degrades_to_evaluation(engine: Engine, clock: FakeClock) -> None:
    # Given a tiered store whose far store raises on every call
    tiered = TieredResultsStore(LruResultsStore(), FailingStore())
    cache = ResultsCache(tiered, "t1", clock_ms=clock)
    # When a range is asked twice
    first = cache.range(engine, "mem", START, NOW, MINUTE)
    second = cache.range(engine, "mem", START, NOW, MINUTE)
    # Then both answers are exact, the near store served the second, and the failures were counted
    same(first, engine.range("mem", START, NOW, MINUTE))
    same(second, first)
    assert cache.evaluations == 2  # the first range, then only the unfinished hour
    assert tiered.far_errors == 2  # the first range's lookup and its put; the second hit the near store


def test_encoded_chunks_round_trip_bit_exactly() -> None:
    # Given series with NaN, a staleness marker, infinities, -0.0 and an empty series list
    stale = np.array([0x7FF0000000000002], dtype=np.uint64).view(np.float64)[0]
    series = [
        SeriesSamples(
            (("__name__", "a"), ("job", 'é"x')), np.array([1, 2, 3], np.int64), np.array([np.nan, stale, -0.0])
        ),
        SeriesSamples((("job", "y"),), np.array([5], np.int64), np.array([np.inf])),
    ]
    # When encoded and decoded
    back = decode_chunk(encode_chunk(series))
    # Then labels, timestamps and value bits are identical
    assert [s.labels for s in back] == [s.labels for s in series]
    for got, want in zip(back, series, strict=True):
        assert got.timestamps.tolist() == want.timestamps.tolist()
        assert got.values.view(np.uint64).tolist() == want.values.view(np.uint64).tolist()
    assert decode_chunk(encode_chunk([])) == []


@pytest.mark.parametrize("data", [b"", b"junk", encode_chunk(_series(3))[:-4]])
def test_bytes_that_are_not_a_chunk_are_refused(data: bytes) -> None:
    # Given bytes that are not (or no longer) an encoded chunk, when decoded, then a ValueError names it
    with pytest.raises(ValueError, match="not a cached chunk"):
        decode_chunk(data)
