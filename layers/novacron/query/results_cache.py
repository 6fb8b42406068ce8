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

import hashlib
import json
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import cramjam
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
    """Where chunk results live: a per-process LRU, a shared table, or both in tiers."""

    def get_many(self, keys: Sequence[ChunkKey]) -> dict[ChunkKey, list[SeriesSamples]]:
        """The series of the cached chunks among ``keys``; missing chunks are absent."""
        ...

    def put_many(self, entries: Sequence[tuple[ChunkKey, list[SeriesSamples]]]) -> None:
        """Cache complete chunks' series."""
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

    def get_many(self, keys: Sequence[ChunkKey]) -> dict[ChunkKey, list[SeriesSamples]]:
        """The cached chunks among ``keys``."""
        found = {key: self.get(key) for key in keys}
        return {key: series for key, series in found.items() if series is not None}

    def put_many(self, entries: Sequence[tuple[ChunkKey, list[SeriesSamples]]]) -> None:
        """Cache chunks (see ``put``)."""
        for key, series in entries:
            self.put(key, series)

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


@dataclass
class TieredResultsStore:
    """A near store (this process) in front of a far one (shared by every instance of the function).

    Reads try the near store first and copy what the far store had into it; writes go to both, so a
    chunk computed by one warm function serves every other one.
    """

    near: ResultsStore
    far: ResultsStore

    far_errors: int = 0  # far-store calls that failed (a cache never fails a query: they count as misses)

    def get_many(self, keys: Sequence[ChunkKey]) -> dict[ChunkKey, list[SeriesSamples]]:
        found = self.near.get_many(keys)
        missing = [key for key in keys if key not in found]
        if missing:
            try:
                shared = self.far.get_many(missing)
            except Exception:  # throttling, timeouts: a miss, evaluated instead
                self.far_errors += 1
                shared = {}
            if shared:
                self.near.put_many(list(shared.items()))
                found.update(shared)
        return found

    def put_many(self, entries: Sequence[tuple[ChunkKey, list[SeriesSamples]]]) -> None:
        self.near.put_many(entries)
        try:
            self.far.put_many(entries)
        except Exception:  # the answer is computed already: sharing it is best effort
            self.far_errors += 1


_CHUNK_MAGIC = b"NCQ1"


def chunk_digest(key: ChunkKey) -> str:
    """32 hex digits naming everything a chunk depends on except the tenant and its start."""
    text = json.dumps([key.query, key.step_ms, key.phase_ms, key.chunk_ms, key.lookback_ms])
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def encode_chunk(series: list[SeriesSamples]) -> bytes:
    """A chunk's series as bytes for a shared store: labels as JSON, then the arrays, zstd-compressed."""
    head = json.dumps([[list(pair) for pair in s.labels] for s in series], separators=(",", ":")).encode()
    counts = np.array([len(s.timestamps) for s in series], dtype="<u4")
    arrays = [np.concatenate([s.timestamps for s in series]) if series else np.zeros(0, np.int64)]
    arrays.append(np.concatenate([s.values for s in series]) if series else np.zeros(0, np.float64))
    raw = b"".join(
        [
            _CHUNK_MAGIC,
            struct.pack("<II", len(head), len(series)),
            head,
            counts.tobytes(),
            arrays[0].astype("<i8").tobytes(),
            arrays[1].astype("<f8").tobytes(),
        ]
    )
    return bytes(cramjam.zstd.compress(raw, level=3))


def decode_chunk(data: bytes) -> list[SeriesSamples]:
    """The series of ``encode_chunk``'s bytes; ValueError if they are not a chunk."""
    try:
        raw = bytes(cramjam.zstd.decompress(data))
        magic, (head_len, n_series) = raw[:4], struct.unpack_from("<II", raw, 4)
        pos = 12 + head_len
        labels = [tuple((str(k), str(v)) for k, v in pairs) for pairs in json.loads(raw[12:pos])]
        counts = np.frombuffer(raw, dtype="<u4", count=n_series, offset=pos).astype(np.int64)
        pos += 4 * n_series
        total = int(counts.sum())
        timestamps = np.frombuffer(raw, dtype="<i8", count=total, offset=pos).astype(np.int64)
        values = np.frombuffer(raw, dtype="<f8", count=total, offset=pos + 8 * total).astype(np.float64)
    except Exception as exc:
        raise ValueError(f"not a cached chunk: {exc}") from None
    if magic != _CHUNK_MAGIC or len(labels) != n_series or len(raw) != pos + 16 * total:
        raise ValueError("not a cached chunk: header does not match its contents")
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [
        SeriesSamples(labels[i], timestamps[bounds[i] : bounds[i + 1]], values[bounds[i] : bounds[i + 1]])
        for i in range(n_series)
    ]


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

        grid: list[tuple[ChunkKey, int, int, bool]] = []  # key, first step, last step, final
        for chunk in range(start_ms // size * size, end_ms // size * size + 1, size):
            chunk_first = chunk + (phase - chunk) % step_ms
            chunk_last = chunk_first + (chunk + size - 1 - chunk_first) // step_ms * step_ms
            if chunk_first > chunk_last:
                continue  # no step of this grid falls in the chunk
            grid.append((key(chunk), chunk_first, chunk_last, chunk + size - 1 < horizon))
        found = self.store.get_many([k for k, _, _, final in grid if final])
        pieces: list[_Piece] = []
        for chunk_key, chunk_first, chunk_last, final in grid:
            if not final:  # evaluate just the steps asked for, keep nothing
                pieces.append(_Piece(chunk_key, None, max(chunk_first, start_ms), min(chunk_last, end_ms), False))
            else:
                cached = found.get(chunk_key)
                pieces.append(_Piece(chunk_key, cached, chunk_first, chunk_last, cached is None))

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
            fresh = []
            for piece in pieces[i : j + 1]:
                series = _slice(result.series, piece.first_ms, piece.last_ms)
                if piece.store:  # copies, so that a cached chunk does not keep the whole evaluation alive
                    fresh.append(
                        (piece.key, [SeriesSamples(s.labels, s.timestamps.copy(), s.values.copy()) for s in series])
                    )
                parts.append(series)
            if fresh:
                self.store.put_many(fresh)
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
