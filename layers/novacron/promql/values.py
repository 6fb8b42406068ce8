"""The value types an expression evaluates to, each holding every evaluation step at once."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from novacron.series import METRIC_NAME, STALE_NAN_BITS, Labels, SeriesSamples

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

# Prometheus marks a series as gone with this exact NaN payload.


def is_stale(values: F64) -> Mask:
    """Which values are Prometheus staleness markers (a NaN with a specific bit pattern)."""
    stale: Mask = np.asarray(values, dtype=np.float64).view(np.uint64) == np.uint64(STALE_NAN_BITS)
    return stale


def drop_name(labels: Labels) -> Labels:
    """The label set without ``__name__``."""
    if labels and labels[0][0] == METRIC_NAME:  # the usual place in a sorted label set: no scan
        return labels[1:]
    return tuple(p for p in labels if p[0] != METRIC_NAME)


@dataclass
class Scalar:
    """A scalar at every step."""

    values: F64  # (steps,)


@dataclass
class String:
    """A string literal (the same at every step)."""

    value: str


@dataclass
class Vector:
    """An instant vector at every step: one row per series, absent cells masked out.

    A mask and not NaN marks absence, because NaN is a legitimate sample value in PromQL.
    """

    labels: list[Labels]
    values: F64  # (series, steps)
    present: Mask  # (series, steps)
    # Timestamps of the samples a selector picked, kept only so that ``timestamp()`` is exact.
    sample_ts: I64 | None = None

    @staticmethod
    def empty(steps: int) -> Vector:
        """A vector with no series."""
        return Vector([], np.zeros((0, steps)), np.zeros((0, steps), dtype=bool))

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows: npt.NDArray[np.intp] | list[int]) -> Vector:
        """A vector of a subset of the rows."""
        idx = np.asarray(rows, dtype=np.intp)
        ts = None if self.sample_ts is None else self.sample_ts[idx]
        return Vector([self.labels[i] for i in idx], self.values[idx], self.present[idx], ts)


@dataclass
class RangeVector:
    """A range vector at every step: raw samples plus, per step, the window ``(end - range, end]``."""

    series: list[SeriesSamples]  # staleness markers already removed
    window_end: I64  # (steps,) evaluation time minus offset, or the ``@`` time minus offset
    range_ms: int
    # The matchers of the selector, for absent_over_time(); empty for subqueries.
    selector_labels: Labels = field(default=())


Value = Scalar | String | Vector | RangeVector


@dataclass
class QueryResult:
    """The outcome of a query, in the shape of Prometheus's API ``data`` object.

    ``result_type`` is ``vector``, ``matrix``, ``scalar`` or ``string``. For ``vector`` and
    ``matrix``, ``series`` holds one entry per series (a vector's entries hold exactly one point);
    for ``scalar`` and ``string``, ``scalar`` is ``(t_ms, value)``.
    """

    result_type: str
    series: list[SeriesSamples] = field(default_factory=list)
    scalar: tuple[int, float | str] | None = None

    @property
    def resultType(self) -> str:  # noqa: N802 - Prometheus's JSON spelling
        """Alias spelled as in Prometheus's JSON."""
        return self.result_type
