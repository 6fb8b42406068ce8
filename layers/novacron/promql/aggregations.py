"""Aggregation operators (``sum``, ``topk``, ``quantile``…), vectorised over groups and steps."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from novacron.promql.errors import ExecutionError
from novacron.promql.format import format_float
from novacron.promql.labels import drop, group_ids, keep_only, with_label
from novacron.promql.values import F64, I64, Mask, Scalar, String, Value, Vector
from novacron.promql.windows import kahan_inc
from novacron.series import Labels


def _grouping(labels: Labels, names: list[str], without: bool) -> Labels:
    return drop(labels, names) if without else keep_only(labels, names)


# Grouping keys of label sets seen recently, per (names, without): dashboards aggregate the same
# series again and again, and a dictionary hit costs a fraction of building the key.
_KEYS: dict[tuple[tuple[str, ...], bool], dict[Labels, Labels]] = {}
_KEYS_LIMIT = 200_000


def grouping_keys(labels: list[Labels], names: list[str], without: bool) -> list[Labels]:
    """Each label set's group: only ``names`` (``by``), or all but ``names`` and ``__name__`` (``without``)."""
    known = _KEYS.setdefault((tuple(names), without), {})
    if len(known) > _KEYS_LIMIT:
        known.clear()
    out = []
    for lb in labels:
        key = known.get(lb)
        if key is None:
            key = known[lb] = _grouping(lb, names, without)
        out.append(key)
    return out


class _Groups:
    """Rows grouped, with each row's rank inside its group, for level-by-level loops or padded arrays."""

    def __init__(self, vec: Vector, keys: list[Labels]) -> None:
        self.ids, self.keys = group_ids(keys)
        self.order = np.argsort(self.ids, kind="stable")
        sorted_ids = self.ids[self.order]
        starts = np.searchsorted(sorted_ids, np.arange(len(self.keys)))
        self.rank = np.empty(len(vec), dtype=np.intp)
        self.rank[self.order] = np.arange(len(vec)) - starts[sorted_ids]
        self.starts = starts
        self.sizes = np.bincount(self.ids, minlength=len(self.keys))
        self.shape = (len(self.keys), vec.values.shape[1])

    def levels(self) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]]:
        """Per rank ``j``: the rows of rank ``j`` and their group ids (each group at most once)."""
        out = []
        for j in range(int(self.rank.max(initial=-1)) + 1):
            rows = np.nonzero(self.rank == j)[0]
            out.append((rows, self.ids[rows]))
        return out

    def padded(self, cells: F64, fill: float) -> list[tuple[npt.NDArray[np.intp], F64]]:
        """Groups of similar size, each as ``(group ids, cells)`` of shape (rank, group, step).

        Member ``j`` of a group (in input order) sits at index ``j`` of the first axis and the
        padding holds ``fill``. Bucketing groups by size class (powers of two) keeps the padding
        under half of each array however skewed the group sizes are.
        """
        size_class = np.ceil(np.log2(np.maximum(self.sizes, 1))).astype(np.intp)
        slot = np.empty(len(self.keys), dtype=np.intp)
        out: list[tuple[npt.NDArray[np.intp], F64]] = []
        for cls in np.unique(size_class):
            groups = np.nonzero(size_class == cls)[0]
            slot[groups] = np.arange(len(groups))
            rows = np.nonzero(size_class[self.ids] == cls)[0]
            width = int(self.sizes[groups].max())
            flat = np.full((width * len(groups), self.shape[1]), fill)
            flat[self.rank[rows] * len(groups) + slot[self.ids[rows]]] = (
                cells if len(rows) == len(cells) else cells[rows]
            )
            out.append((groups, flat.reshape(width, len(groups), self.shape[1])))
        return out


def _compensated_sum(values: F64) -> F64:
    """Neumaier-compensated sums along axis 0 in index order, as Prometheus's ``kahanSumInc`` loop.

    Absent cells must hold ``-0.0``, which leaves a total unchanged and adds a zero correction.
    Narrow arrays (instant queries) are summed all ranks at once, wide ones (range queries) rank
    by rank, where whole-row operations beat ``cumsum``'s scalar accumulation; both give the bits
    of the member-by-member loop. (Prometheus 3 compensates; 2.42 adds plainly with ``+=``, and
    averages with a running mean, which agrees within 1e-9 unless the sum cancels catastrophically.)
    """
    total, comp = _sum_all_ranks(values) if values[0].size < 256 else _sum_rank_by_rank(values)
    result: F64 = np.where(np.isinf(total), total, total + comp)
    return result


def _sum_all_ranks(values: F64) -> tuple[F64, F64]:
    """Totals and compensations with numpy steps over all ranks at once.

    The loop's running totals are plain sequential sums, which ``cumsum`` computes in the same
    order; each step's correction depends only on the totals before and after it, so the
    corrections are vectorised too and summed the same way. The loop's reset of the compensation
    on an infinite total needs no counterpart: once a total is infinite it stays infinite or NaN,
    and then the compensation is not used.
    """
    totals = np.cumsum(values, axis=0)
    if len(values) < 2:
        return totals[-1], np.zeros_like(totals[-1])
    # Each rank's correction alone (added to a zero compensation), then summed in rank order.
    _, corr = kahan_inc(values[1:], totals[:-1], np.zeros_like(values[1:]))
    return totals[-1], np.cumsum(corr, axis=0)[-1]


def _sum_rank_by_rank(values: F64) -> tuple[F64, F64]:
    """Totals and compensations with one set of whole-row numpy steps per rank."""
    total, comp = values[0], np.zeros_like(values[0])
    for inc in values[1:]:
        total, comp = kahan_inc(inc, total, comp)
    return total, comp


def _sum_like(vec: Vector, g: _Groups, avg: bool) -> tuple[F64, Mask]:
    result = np.zeros(g.shape)
    with np.errstate(all="ignore"):  # Inf - Inf is NaN here as in Prometheus
        for groups, values in g.padded(np.where(vec.present, vec.values, -0.0), fill=-0.0):
            result[groups] = _compensated_sum(values)
    count, present = _count(vec, g)
    if avg:
        result = result / np.maximum(count, 1)
    return result, present


def _variance(vec: Vector, g: _Groups) -> tuple[F64, Mask]:
    # Welford's online algorithm, in Prometheus's order.
    mean, m2, count = np.zeros(g.shape), np.zeros(g.shape), np.zeros(g.shape)
    for rows, ids in g.levels():
        v, p = vec.values[rows], vec.present[rows]
        first = p & (count[ids] == 0)
        n = count[ids] + p
        delta = v - mean[ids]
        new_mean = mean[ids] + delta / np.maximum(n, 1)
        new_m2 = m2[ids] + delta * (v - new_mean)
        mean[ids] = np.where(first, v, np.where(p, new_mean, mean[ids]))
        m2[ids] = np.where(first, 0.0, np.where(p, new_m2, m2[ids]))
        count[ids] = n
    return m2 / np.maximum(count, 1), count > 0


def _extreme(vec: Vector, g: _Groups, pick: Callable[[F64, F64], F64]) -> tuple[F64, Mask]:
    result = np.full(g.shape, np.nan)
    seen = np.zeros(g.shape, dtype=bool)
    for rows, ids in g.levels():
        v, p = vec.values[rows], vec.present[rows]
        cur = result[ids]
        result[ids] = np.where(p, np.where(seen[ids], pick(cur, v), v), cur)
        seen[ids] |= p
    return result, seen


def _count(vec: Vector, g: _Groups) -> tuple[F64, Mask]:
    if len(vec) == 0:
        return np.zeros(g.shape), np.zeros(g.shape, dtype=bool)
    count = np.add.reduceat(vec.present[g.order], g.starts, axis=0, dtype=np.int64).astype(np.float64)
    return count, count > 0


def _sorted_columns(
    vec: Vector, rows: npt.NDArray[np.intp], descending: bool, nan_first: bool = False
) -> npt.NDArray[np.intp]:
    """Per step, the rows ordered by value (NaN after numbers unless ``nan_first``), absent last."""
    v, p = vec.values[rows], vec.present[rows]
    category = np.where(~p, 2, np.where(np.isnan(v), -1 if nan_first else 1, 0))
    key = np.where(category == 0, -v if descending else v, 0.0)
    order: npt.NDArray[np.intp] = np.lexsort((key, category), axis=0)  # the stubs type lexsort's result as Any
    return order


def _param_ints(param: Value | None, steps: int) -> I64:
    if not isinstance(param, Scalar):
        raise ExecutionError("expected a scalar parameter")
    values = param.values
    if np.any(np.isnan(values)):
        raise ExecutionError("Parameter value is NaN")
    big = np.abs(values) >= 2.0**63
    if np.any(big):
        raise ExecutionError(f"Scalar value {format_float(float(values[big][0]))} overflows int64")
    return np.trunc(values).astype(np.int64)


def _topk(vec: Vector, g: _Groups, k: I64, descending: bool) -> Vector:
    keep = np.zeros(vec.present.shape, dtype=bool)
    for gid in range(len(g.keys)):
        rows = np.nonzero(g.ids == gid)[0]
        order = _sorted_columns(vec, rows, descending)
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(len(rows))[:, None], axis=0)
        keep[rows] = (rank < k[None, :]) & vec.present[rows]
    return Vector(list(vec.labels), vec.values, keep)


def _quantile(vec: Vector, g: _Groups, q: F64) -> tuple[F64, Mask]:
    result = np.full(g.shape, np.nan)
    seen = np.zeros(g.shape, dtype=bool)
    for gid in range(len(g.keys)):
        rows = np.nonzero(g.ids == gid)[0]
        order = _sorted_columns(vec, rows, descending=False, nan_first=True)
        ordered = np.take_along_axis(vec.values[rows], order, axis=0)
        n = vec.present[rows].sum(axis=0)
        rank = q * (n - 1)
        lower = np.clip(np.floor(rank), 0, None).astype(np.int64)
        upper = np.minimum(np.maximum(n - 1, 0), lower + 1)
        lower = np.minimum(lower, np.maximum(n - 1, 0))
        weight = rank - np.floor(rank)
        cols = np.arange(g.shape[1])
        value = ordered[lower, cols] * (1 - weight) + ordered[upper, cols] * weight
        value = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, value))
        result[gid] = np.where(np.isnan(q), np.nan, value)
        seen[gid] = n > 0
    return result, seen


def _count_values(vec: Vector, label: str, names: list[str], without: bool) -> Vector:
    if not _valid_label_name(label):
        raise ExecutionError(f'invalid label name "{label}"')
    names = [n for n in names if n != label] if without else [*names, label]
    rows, cols = np.nonzero(vec.present)
    uniq, inverse = np.unique(vec.values[rows, cols], return_inverse=True)
    text = [format_float(float(v)) for v in uniq]
    pair_keys: dict[tuple[int, int], int] = {}
    out_keys: dict[Labels, int] = {}
    cell_out = np.empty(len(rows), dtype=np.intp)
    for i, pair in enumerate(zip(rows.tolist(), inverse.tolist(), strict=True)):
        if pair not in pair_keys:
            labels = _grouping(with_label(vec.labels[pair[0]], label, text[pair[1]]), names, without)
            pair_keys[pair] = out_keys.setdefault(labels, len(out_keys))
        cell_out[i] = pair_keys[pair]
    counts = np.zeros((len(out_keys), vec.values.shape[1]))
    np.add.at(counts, (cell_out, cols), 1.0)
    return Vector(list(out_keys), counts, counts > 0)


def _valid_label_name(name: str) -> bool:
    # Prometheus 3 accepts any non-empty UTF-8 label name.
    return name != ""


def aggregate(op: str, vec: Vector, names: list[str], without: bool, param: Value | None) -> Vector:
    """Apply aggregation ``op`` grouping by ``names`` (or all but ``names`` when ``without``)."""
    steps = vec.values.shape[1]
    if op == "count_values":
        if not isinstance(param, String):
            raise ExecutionError("count_values expects a string parameter")
        return _count_values(vec, param.value, names, without)
    g = _Groups(vec, grouping_keys(vec.labels, names, without))
    if op in ("topk", "bottomk"):
        return _topk(vec, g, _param_ints(param, steps), descending=op == "topk")
    if op == "limitk":
        k = _param_ints(param, steps)
        keep = (g.rank[:, None] < k[None, :]) & vec.present
        return Vector(list(vec.labels), vec.values, keep)
    if op == "sum":
        values, present = _sum_like(vec, g, avg=False)
    elif op == "avg":
        values, present = _sum_like(vec, g, avg=True)
    elif op == "count":
        values, present = _count(vec, g)
    elif op == "group":
        _, present = _count(vec, g)
        values = np.ones(g.shape)
    elif op == "min":
        values, present = _extreme(vec, g, np.fmin)
    elif op == "max":
        values, present = _extreme(vec, g, np.fmax)
    elif op in ("stddev", "stdvar"):
        values, present = _variance(vec, g)
        if op == "stddev":
            values = np.sqrt(values)
    elif op == "quantile":
        if not isinstance(param, Scalar):
            raise ExecutionError("quantile expects a scalar parameter")
        values, present = _quantile(vec, g, param.values)
    else:
        raise ExecutionError(f"aggregation {op!r} is not supported yet")
    return Vector(list(g.keys), values, present)
