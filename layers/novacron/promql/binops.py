"""Binary operators: arithmetic, comparisons and set operators, with Prometheus's vector matching."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from novacron.promql.errors import ExecutionError
from novacron.promql.labels import collisions, drop, group_ids, keep_only, merge_same_labels, with_label
from novacron.promql.values import F64, Mask, Scalar, Vector, drop_name
from novacron.series import Labels

COMPARISONS = ("==", "!=", ">", "<", ">=", "<=")
SET_OPS = ("and", "or", "unless")


@dataclass(frozen=True)
class Matching:
    """``on``/``ignoring`` and ``group_left``/``group_right`` of one binary expression."""

    card: str = "one-to-one"  # one-to-one, many-to-one, one-to-many, many-to-many
    on: bool = False
    labels: tuple[str, ...] = ()
    include: tuple[str, ...] = field(default=())  # the group_x labels

    def signature(self, labels: Labels) -> Labels:
        """The part of a label set that must be equal for two samples to match."""
        return keep_only(labels, self.labels) if self.on else drop(labels, self.labels)


def arith(op: str, a: F64, b: F64) -> F64:
    """Element-wise arithmetic with Go's float semantics (``%`` is ``math.Mod``)."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    if op == "%":
        return np.fmod(a, b)
    if op == "^":
        return np.power(a, b)
    if op == "atan2":
        return np.arctan2(a, b)
    raise ExecutionError(f"operator {op!r} not allowed here")


def compare(op: str, a: F64, b: F64) -> Mask:
    """Element-wise comparison."""
    ops = {
        "==": np.equal,
        "!=": np.not_equal,
        ">": np.greater,
        "<": np.less,
        ">=": np.greater_equal,
        "<=": np.less_equal,
    }
    return np.asarray(ops[op](a, b), dtype=bool)


def scalar_scalar(op: str, a: Scalar, b: Scalar) -> Scalar:
    """Scalar op scalar (comparisons here always carry ``bool``; the parser enforces it)."""
    if op in COMPARISONS:
        return Scalar(compare(op, a.values, b.values).astype(np.float64))
    return Scalar(arith(op, a.values, b.values))


def vector_scalar(op: str, vec: Vector, sc: Scalar, scalar_left: bool, return_bool: bool) -> Vector:
    """Vector op scalar (or scalar op vector when ``scalar_left``)."""
    s = sc.values[None, :]
    lhs, rhs = (s, vec.values) if scalar_left else (vec.values, s)
    present = vec.present
    if op in COMPARISONS:
        keep = compare(op, lhs, rhs)
        if return_bool:
            values = keep.astype(np.float64)
        else:
            # A filter: the vector's own value survives, whichever side it is on.
            values, present = vec.values, present & keep
    else:
        values = arith(op, lhs, rhs)
    labels = vec.labels
    if return_bool or op not in COMPARISONS:
        labels = [drop_name(lb) for lb in labels]
    return merge_same_labels(Vector(labels, values, present & np.ones_like(values, dtype=bool)))


def _result_labels(many: Labels, one: Labels, op: str, m: Matching, return_bool: bool) -> Labels:
    labels = many
    if op not in COMPARISONS or return_bool:
        labels = drop_name(labels)
    if m.card == "one-to-one":
        labels = keep_only(labels, m.labels) if m.on else drop(labels, m.labels, name_too=False)
    one_map = dict(one)
    for name in m.include:
        labels = with_label(labels, name, one_map.get(name, ""))
    return labels


def _one_side_check(vec: Vector, sigs: list[Labels], side: str) -> None:
    ids, keys = group_ids(sigs)
    counts = collisions(ids, vec.present, len(keys))
    bad = np.argwhere(counts > 1)
    if len(bad):
        gid, col = int(bad[0][0]), int(bad[0][1])
        rows = [r for r in range(len(vec)) if ids[r] == gid and vec.present[r, col]]
        a, b = (_fmt(vec.labels[r]) for r in rows[:2])
        raise ExecutionError(
            f"found duplicate series for the match group {_fmt(keys[gid])} on the {side} hand-side "
            f"of the operation: [{a}, {b}];many-to-many matching not allowed: matching labels must "
            "be unique on one side"
        )


def _fmt(labels: Labels) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels) + "}"


def vector_vector(op: str, lhs: Vector, rhs: Vector, m: Matching, return_bool: bool) -> Vector:
    """Vector op vector with one-to-one or many-to-one/one-to-many matching, or a set operator."""
    if op in SET_OPS:
        return _set_op(op, lhs, rhs, m)
    swap = m.card == "one-to-many"
    many, one = (rhs, lhs) if swap else (lhs, rhs)
    many_sigs = [m.signature(lb) for lb in many.labels]
    one_sigs = [m.signature(lb) for lb in one.labels]
    _one_side_check(one, one_sigs, "left" if swap else "right")
    by_sig: dict[Labels, list[int]] = {}
    for row, sig in enumerate(one_sigs):
        by_sig.setdefault(sig, []).append(row)
    # Every (many row, one row) pair sharing a signature; one-side rows never overlap in time.
    pairs = [(i, j) for i, sig in enumerate(many_sigs) for j in by_sig.get(sig, ())]
    steps = lhs.values.shape[1]
    if not pairs:
        return Vector.empty(steps)
    mi = np.array([p[0] for p in pairs], dtype=np.intp)
    oi = np.array([p[1] for p in pairs], dtype=np.intp)
    present = many.present[mi] & one.present[oi]
    lv, rv = (one.values[oi], many.values[mi]) if swap else (many.values[mi], one.values[oi])
    if op in COMPARISONS:
        keep = compare(op, lv, rv)
        values = keep.astype(np.float64) if return_bool else lv
        if not return_bool:
            present = present & keep
    else:
        values = arith(op, lv, rv)
    labels = [_result_labels(many.labels[i], one.labels[j], op, m, return_bool) for i, j in pairs]
    if m.card == "one-to-one":
        ids, keys = group_ids([many_sigs[i] for i in mi])
        if np.any(collisions(ids, many.present[mi] & one.present[oi], len(keys)) > 1):
            raise ExecutionError(
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
            )
    else:
        ids, keys = group_ids(labels)
        if np.any(collisions(ids, present, len(keys)) > 1):
            raise ExecutionError("multiple matches for labels: grouping labels must ensure unique matches")
    return merge_same_labels(Vector(labels, values, present))


def _set_op(op: str, lhs: Vector, rhs: Vector, m: Matching) -> Vector:
    steps = lhs.values.shape[1]
    rhs_ids, rhs_keys = group_ids([m.signature(lb) for lb in rhs.labels])
    rhs_any = np.zeros((len(rhs_keys), steps), dtype=bool)
    np.logical_or.at(rhs_any, rhs_ids, rhs.present)
    index = {k: i for i, k in enumerate(rhs_keys)}
    lhs_rows = [index.get(m.signature(lb), -1) for lb in lhs.labels]
    # dtype: an empty left-hand side must still give a boolean (0, steps) mask.
    other = np.array([rhs_any[r] if r >= 0 else np.zeros(steps, dtype=bool) for r in lhs_rows], dtype=bool)
    other = other.reshape(len(lhs), steps)
    if op == "and":
        return Vector(list(lhs.labels), lhs.values, lhs.present & other, lhs.sample_ts)
    if op == "unless":
        return Vector(list(lhs.labels), lhs.values, lhs.present & ~other, lhs.sample_ts)
    # or: everything on the left, plus right-hand samples whose signature the left lacks at that step.
    lhs_ids, lhs_keys = group_ids([m.signature(lb) for lb in lhs.labels])
    lhs_any = np.zeros((len(lhs_keys), steps), dtype=bool)
    np.logical_or.at(lhs_any, lhs_ids, lhs.present)
    lindex = {k: i for i, k in enumerate(lhs_keys)}
    rows = [lindex.get(m.signature(lb), -1) for lb in rhs.labels]
    taken = np.array([lhs_any[r] if r >= 0 else np.zeros(steps, dtype=bool) for r in rows])
    taken = taken.reshape(len(rhs), steps)
    return merge_same_labels(
        Vector(
            list(lhs.labels) + list(rhs.labels),
            np.concatenate((lhs.values, rhs.values)),
            np.concatenate((lhs.present, rhs.present & ~taken)),
        )
    )
