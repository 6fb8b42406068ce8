"""Label-set helpers shared by aggregations, binary operators and functions."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from novacron.promql.errors import ExecutionError
from novacron.promql.values import I64, Mask, Vector
from novacron.series import METRIC_NAME, Labels


def keep_only(labels: Labels, names: Iterable[str]) -> Labels:
    """Only the named labels (``by``/``on``); empty values count as absent."""
    wanted = set(names)
    return tuple(p for p in labels if p[0] in wanted and p[1] != "")


def drop(labels: Labels, names: Iterable[str], name_too: bool = True) -> Labels:
    """All labels but the named ones (``without``/``ignoring``), and by default ``__name__``."""
    unwanted = set(names)
    if name_too:
        unwanted.add(METRIC_NAME)
    return tuple(p for p in labels if p[0] not in unwanted)


def with_label(labels: Labels, name: str, value: str) -> Labels:
    """The label set with one label set (or removed when ``value`` is empty)."""
    rest = [p for p in labels if p[0] != name]
    if value != "":
        rest.append((name, value))
    return tuple(sorted(rest))


def group_ids(keys: list[Labels]) -> tuple[npt.NDArray[np.intp], list[Labels]]:
    """Dense group numbers for a list of keys, and the distinct keys in first-seen order."""
    index: dict[Labels, int] = {}
    ids = np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.intp, count=len(keys))
    return ids, list(index)


def collisions(ids: npt.NDArray[np.intp], present: Mask, groups: int) -> I64:
    """Per group and step, how many rows are present (to find two series with one identity)."""
    counts = np.zeros((groups, present.shape[1]), dtype=np.int64)
    np.add.at(counts, ids, present.astype(np.int64))
    return counts


def merge_same_labels(vec: Vector, whole_range: bool = False) -> Vector:
    """Merge rows that ended up with identical labels, as Prometheus does across steps.

    Two such rows present at the same step is Prometheus's "same labelset" error; with
    ``whole_range`` (functions of range vectors) any two non-empty rows with equal labels are.
    """
    rows = np.nonzero(vec.present.any(axis=1))[0]
    vec = vec.take(rows) if len(rows) != len(vec) else vec
    ids, keys = group_ids(vec.labels)
    if len(keys) == len(vec):
        return vec
    counts = collisions(ids, vec.present, len(keys))
    if whole_range or np.any(counts > 1):
        raise ExecutionError("vector cannot contain metrics with the same labelset")
    values = np.zeros((len(keys), vec.values.shape[1]))
    present = np.zeros(values.shape, dtype=bool)
    for row, gid in enumerate(ids):
        m = vec.present[row]
        values[gid, m] = vec.values[row, m]
        present[gid] |= m
    return Vector(keys, values, present)
