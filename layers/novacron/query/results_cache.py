"""An aligned results cache for range queries: a refreshed dashboard evaluates only what is new.

A range query's evaluation timestamps ``start + k * step`` are cut into chunks aligned to multiples of
the chunk size (1 hour by default). Each PromQL step is evaluated independently of the others, so the
steps of a chunk give the same values whatever range they were evaluated in, and a range result is
the concatenation of its chunks' results. A chunk is cached only once it is complete and older than
a freshness margin (late samples may still arrive for the last minutes), so the chunk holding "now"
is always evaluated. Runs of chunks that are not cached are evaluated in one engine call, then split.

Keys hold the tenant, the query text, the step and the phase of the steps (``start mod step``:
Grafana aligns ``start`` to the step, so consecutive refreshes share a phase), the chunk and the
engine's lookback. Queries using ``@ start()``/``@ end()`` depend on the whole range and bypass the
cache. Known differences from evaluating the whole range at once: samples written later than
``freshness_ms`` after their timestamp (backfills) are not seen by chunks cached before they arrived;
limits (samples loaded, timeout) apply per evaluation; and a function of a range vector whose
results collide on labels at *different* steps ("vector cannot contain metrics with the same
labelset", which the engine checks over the whole range) fails only if the collision falls within
one evaluation — as with Prometheus behind a splitting query frontend.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from novacron.promql import Engine, QueryResult
from novacron.promql.engine import parse
from novacron.series import Labels, SeriesSamples

CHUNK_MS = 3_600_000
FRESHNESS_MS = 300_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class ChunkKey:
    """What a cached chunk result depends on."""

    tenant: str
    # The query text as sent (dashboards resend the same text). Not the parser's printed form: it
    # loses distinctions, e.g. it prints the subquery ``x[5m:]`` as the range selector ``x[5m]``.
    query: str
    step_ms: int
    phase_ms: int  # start mod step: which grid of evaluation timestamps
    chunk_ms: int
    chunk_start_ms: int
    lookback_ms: int


class ResultsStore(Protocol):
    """Where chunk results live: a per-process LRU now, a shared table later."""

    def get(self, key: ChunkKey) -> list[SeriesSamples] | None:
        """The series of a cached chunk, or None."""
        ...

    def put(self, key: ChunkKey, series: list[SeriesSamples]) -> None:
        """Cache a complete chunk's series."""
        ...


def _size(series: list[SeriesSamples]) -> int:
    """Approximate bytes held by a chunk result."""
    return sum(
        s.timestamps.nbytes + s.values.nbytes + 100 + sum(len(k) + len(v) + 50 for k, v in s.labels) for s in series
    )


class LruResultsStore:
    """An in-memory store bounded in bytes, evicting the least recently used chunks."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[ChunkKey, tuple[list[SeriesSamples], int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: ChunkKey) -> list[SeriesSamples] | None:
        """The series of a cached chunk (now the most recently used), or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: ChunkKey, series: list[SeriesSamples]) -> None:
        """Cache a chunk; chunks larger than the whole budget are not kept."""
        size = _size(series)
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        self._entries[key] = (series, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.bytes -= evicted


@dataclass(frozen=True)
class _TimeReach:
    """How far from its evaluation time a query reads: what decides when a chunk is final."""

    depends_on_range: bool  # uses @ start() or @ end()
    ahead_ms: int  # upper bound of how far after a step data is read (negative offsets)
    fixed_at_ms: int | None  # the latest @ <time> used, if any


def _children(node: Any) -> Iterator[Any]:
    for name in ("expr", "lhs", "rhs", "param", "vector_selector"):
        child = getattr(node, name, None)
        if child is not None and type(child).__module__ == type(node).__module__:
            yield child
    if type(node).__name__ == "Call":
        yield from node.args


def _reach(node: Any) -> _TimeReach:
    depends, ahead, fixed = False, 0, None
    stack = [node]
    while stack:
        current = stack.pop()
        offset = getattr(current, "offset", None)
        if isinstance(offset, timedelta) and offset < timedelta(0):
            ahead += int(-offset // _MS)  # summed over nested modifiers: an upper bound
        at = getattr(current, "at", None)
        if at is not None:
            kind = str(at.type)
            if kind.endswith(("Start", "End")):
                depends = True
            else:
                at_ms = int((at.at - _EPOCH) // _MS)
                fixed = at_ms if fixed is None else max(fixed, at_ms)
        stack.extend(_children(current))
    return _TimeReach(depends, ahead, fixed)


@dataclass(frozen=True)
class _Piece:
    """One chunk of a range query: its cached series, or the steps to evaluate and whether to store them."""

    key: ChunkKey
    cached: list[SeriesSamples] | None
    first_ms: int
    last_ms: int
    store: bool


@dataclass
class ResultsCache:
    """Range evaluation through a chunk cache for one tenant (see the module docstring)."""

    store: ResultsStore
    tenant: str
    clock_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    chunk_ms: int = CHUNK_MS
    freshness_ms: int = FRESHNESS_MS
    evaluations: int = 0  # engine calls made, for tests and benchmarks

    def range(
        self, engine: Engine, query: str, start_ms: int, end_ms: int, step_ms: int, timeout_ms: int | None = None
    ) -> QueryResult:
        """Like ``engine.range``, the same result, reusing cached chunks."""
        if step_ms <= 0 or end_ms < start_ms:
            return self._evaluate(engine, query, start_ms, end_ms, step_ms, timeout_ms)  # the engine's own error
        node = parse(query)
        reach = _reach(node)
        if reach.depends_on_range:
            return self._evaluate(engine, query, start_ms, end_ms, step_ms, timeout_ms)
        horizon = self.clock_ms() - self.freshness_ms - reach.ahead_ms
        if reach.fixed_at_ms is not None and reach.fixed_at_ms >= horizon:
            return self._evaluate(engine, query, start_ms, end_ms, step_ms, timeout_ms)
        size = -(-max(step_ms, self.chunk_ms) // self.chunk_ms) * self.chunk_ms
        phase = start_ms % step_ms

        def key(chunk: int) -> ChunkKey:
            return ChunkKey(self.tenant, query, step_ms, phase, size, chunk, engine.lookback_ms)

        pieces: list[_Piece] = []
        for chunk in range(start_ms // size * size, end_ms // size * size + 1, size):
            chunk_first = chunk + (phase - chunk) % step_ms
            chunk_last = chunk_first + (chunk + size - 1 - chunk_first) // step_ms * step_ms
            if chunk_first > chunk_last:
                continue  # no step of this grid falls in the chunk
            if chunk + size - 1 >= horizon:  # not final: evaluate just the steps asked for, keep nothing
                pieces.append(_Piece(key(chunk), None, max(chunk_first, start_ms), min(chunk_last, end_ms), False))
                continue
            cached = self.store.get(key(chunk))
            pieces.append(_Piece(key(chunk), cached, chunk_first, chunk_last, cached is None))

        parts: list[list[SeriesSamples]] = []
        i = 0
        while i < len(pieces):
            cached = pieces[i].cached
            if cached is not None:
                parts.append(cached)
                i += 1
                continue
            j = i
            while j + 1 < len(pieces) and pieces[j + 1].cached is None:
                j += 1
            # One evaluation for the run of chunks i..j, split back into chunks for the store.
            result = self._evaluate(engine, query, pieces[i].first_ms, pieces[j].last_ms, step_ms, timeout_ms)
            for piece in pieces[i : j + 1]:
                series = _slice(result.series, piece.first_ms, piece.last_ms)
                if piece.store:  # copies, so that a cached chunk does not keep the whole evaluation alive
                    self.store.put(
                        piece.key, [SeriesSamples(s.labels, s.timestamps.copy(), s.values.copy()) for s in series]
                    )
                parts.append(series)
            i = j + 1
        return QueryResult("matrix", series=_slice(_concatenate(parts), start_ms, end_ms))

    def _evaluate(
        self, engine: Engine, query: str, start_ms: int, end_ms: int, step_ms: int, timeout_ms: int | None
    ) -> QueryResult:
        self.evaluations += 1
        return engine.range(query, start_ms, end_ms, step_ms, timeout_ms=timeout_ms)


def _slice(series: list[SeriesSamples], first_ms: int, last_ms: int) -> list[SeriesSamples]:
    """The points of each series within [first_ms, last_ms]; series left empty are dropped."""
    out = []
    for s in series:
        lo = int(np.searchsorted(s.timestamps, first_ms, side="left"))
        hi = int(np.searchsorted(s.timestamps, last_ms, side="right"))
        if hi > lo:
            out.append(
                s
                if (lo, hi) == (0, len(s.timestamps))
                else SeriesSamples(s.labels, s.timestamps[lo:hi], s.values[lo:hi])
            )
    return out


def _concatenate(parts: list[list[SeriesSamples]]) -> list[SeriesSamples]:
    """Chunk results in time order joined into one matrix, series sorted by labels."""
    by_labels: dict[Labels, list[SeriesSamples]] = {}
    for part in parts:
        for s in part:
            by_labels.setdefault(s.labels, []).append(s)
    return [
        pieces[0]
        if len(pieces) == 1
        else SeriesSamples(
            labels, np.concatenate([p.timestamps for p in pieces]), np.concatenate([p.values for p in pieces])
        )
        for labels, pieces in sorted(by_labels.items())
    ]
