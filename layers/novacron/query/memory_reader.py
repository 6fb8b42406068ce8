"""An in-memory ``SeriesReader`` over numpy arrays, for tests, benchmarks and local experiments."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from novacron.series import Labels, Matcher, SeriesSamples, matches_all


class InMemorySeriesReader:
    """Holds whole series in memory; ``select`` slices them with ``searchsorted``.

    An inverted index (label name -> value -> series) narrows a selection to the series its
    matchers can match before any label set is tested, as Prometheus's postings do.
    """

    def __init__(self) -> None:
        self._series: dict[Labels, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
        self._postings: dict[str, dict[str, set[Labels]]] = {}
        self._arena: _Arena | None = None

    def add(
        self,
        labels: Mapping[str, str],
        timestamps_ms: Iterable[int] | npt.NDArray[np.int64],
        values: Iterable[float] | npt.NDArray[np.float64],
    ) -> None:
        """Add samples to a series (created on first use); samples are kept sorted, last write wins."""
        key: Labels = tuple(sorted((k, v) for k, v in labels.items() if v != ""))
        ts = np.asarray(list(timestamps_ms) if not isinstance(timestamps_ms, np.ndarray) else timestamps_ms)
        vs = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
        if ts.shape != vs.shape:
            raise ValueError("timestamps and values must have the same length")
        if key in self._series:
            old_ts, old_vs = self._series[key]
            ts, vs = np.concatenate((old_ts, ts)), np.concatenate((old_vs, vs))
        else:
            for name, value in key:
                self._postings.setdefault(name, {}).setdefault(value, set()).add(key)
        # Stable sort then keep the last of equal timestamps, so later writes win.
        order = np.argsort(ts, kind="stable")
        ts, vs = ts[order].astype(np.int64), vs[order]
        last = np.append(ts[1:] != ts[:-1], True) if len(ts) else np.zeros(0, dtype=bool)
        self._series[key] = (ts[last], vs[last])
        self._arena = None

    def _matching(self, matchers: Sequence[Matcher]) -> list[Labels]:
        """Sorted label sets matching every matcher, found through the postings."""
        candidates: set[Labels] | None = None
        rest = []
        for m in matchers:
            if m.matches(""):
                # Also matches series without the label: the postings cannot enumerate those.
                rest.append(m)
                continue
            values = self._postings.get(m.name, {})
            named = [values[m.value]] if m.op == "=" and m.value in values else []
            if m.op != "=":
                named = [series for value, series in values.items() if m.matches(value)]
            found = set().union(*named)
            candidates = found if candidates is None else candidates & found
            if not candidates:
                return []
        pool = self._series.keys() if candidates is None else candidates
        matched = [lb for lb in pool if not rest or matches_all(lb, rest)]
        # Integers compare much faster than label tuples: sort by each series' precomputed rank.
        rank = self._ranks()
        return sorted(matched, key=rank.__getitem__)

    def _ranks(self) -> dict[Labels, int]:
        if self._arena is None:
            self._arena = _Arena(self._series)
        return self._arena.rank

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesSamples]:
        """Samples with ``start_ms <= t <= end_ms`` of every matching series that has any."""
        matching = self._matching(matchers)
        if not matching:
            return []
        self._ranks()
        assert self._arena is not None
        return self._arena.slice(matching, start_ms, end_ms)

    def series(
        self,
        matcher_sets: Sequence[Sequence[Matcher]],
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Labels]:
        """Label sets matching any of the matcher sets with samples within the bounds, sorted."""
        found: set[Labels] = set()
        for matchers in matcher_sets:
            found.update(lb for lb in self._matching(matchers) if self._within(lb, start_ms, end_ms))
        return sorted(found)

    def _within(self, labels: Labels, start_ms: int | None, end_ms: int | None) -> bool:
        ts = self._series[labels][0]
        lo = int(np.searchsorted(ts, start_ms, side="left")) if start_ms is not None else 0
        hi = int(np.searchsorted(ts, end_ms, side="right")) if end_ms is not None else len(ts)
        return hi > lo

    def _scope(
        self, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int | None, end_ms: int | None
    ) -> list[Labels]:
        if matcher_sets:
            return self.series(matcher_sets, start_ms, end_ms)
        return [lb for lb in self._series if self._within(lb, start_ms, end_ms)]

    def label_names(
        self,
        matcher_sets: Sequence[Sequence[Matcher]],
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[str]:
        """Sorted label names of the matching series (of all series without matcher sets)."""
        return sorted({name for lb in self._scope(matcher_sets, start_ms, end_ms) for name, _ in lb})

    def label_values(
        self,
        name: str,
        matcher_sets: Sequence[Sequence[Matcher]],
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[str]:
        """Sorted values of label ``name`` among the matching series (or all series)."""
        return sorted({v for lb in self._scope(matcher_sets, start_ms, end_ms) for n, v in lb if n == name})


class _Arena:
    """Every series laid end to end in two arrays, so one selection slices all of its series at once.

    Built on the first ``select`` after a change; series ``i`` owns ``[start[i], start[i+1])``.
    """

    def __init__(self, series: Mapping[Labels, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]) -> None:
        self.row = {labels: i for i, labels in enumerate(series)}
        self.rank = {labels: i for i, labels in enumerate(sorted(series))}
        sizes = np.fromiter((len(ts) for ts, _ in series.values()), dtype=np.int64, count=len(series))
        self.start = np.concatenate(([0], np.cumsum(sizes)))
        parts = list(series.values())
        self.ts = np.concatenate([ts for ts, _ in parts]) if parts else np.zeros(0, dtype=np.int64)
        self.vs = np.concatenate([vs for _, vs in parts]) if parts else np.zeros(0)

    def slice(self, labels: list[Labels], start_ms: int, end_ms: int) -> list[SeriesSamples]:
        """Copies of each series' samples within ``[start_ms, end_ms]``, for the series that have any."""
        rows = np.fromiter((self.row[lb] for lb in labels), dtype=np.int64, count=len(labels))
        first, stop = self.start[rows], self.start[rows + 1]
        lo = _bound(self.ts, first, stop, start_ms, "left")
        hi = _bound(self.ts, first, stop, end_ms, "right")
        sizes = hi - lo
        keep = np.nonzero(sizes > 0)[0]
        if len(keep) == 0:
            return []
        lo, sizes = lo[keep], sizes[keep]
        ends = np.cumsum(sizes)
        idx = np.arange(int(ends[-1]), dtype=np.int64) + np.repeat(lo - (ends - sizes), sizes)
        ts, vs = self.ts[idx], self.vs[idx]
        bounds = np.concatenate(([0], ends)).tolist()
        return [
            SeriesSamples(labels[k], ts[a:b], vs[a:b])
            for k, a, b in zip(keep.tolist(), bounds[:-1], bounds[1:], strict=True)
        ]


def _bound(
    ts: npt.NDArray[np.int64], first: npt.NDArray[np.int64], stop: npt.NDArray[np.int64], t: int, side: str
) -> npt.NDArray[np.int64]:
    """``searchsorted(ts[first[i]:stop[i]], t, side) + first[i]`` for every ``i`` in one binary search."""
    lo, hi = first.copy(), stop.copy()
    active = lo < hi
    while active.any():
        mid = (lo + hi) // 2
        probe = ts[np.where(active, mid, 0)]
        right = active & ((probe < t) if side == "left" else (probe <= t))
        lo = np.where(right, mid + 1, lo)
        hi = np.where(active & ~right, mid, hi)
        active = lo < hi
    return lo
