"""Exponential (native) histograms as classic cumulative buckets.

NovaCron stores histograms the way ``histogram_quantile`` reads classic ones: a ``_bucket`` series per
upper bound ``le`` holding the cumulative count, plus ``_sum`` and ``_count``. Prometheus native
histograms (remote write) and OpenTelemetry exponential histograms (OTLP) both arrive as exponential
buckets and are turned into those bounds here, so both protocols store the same shape.

Index conventions differ, and this module uses Prometheus's: at schema (scale) ``s`` the base is
``2 ** 2 ** -s`` and positive bucket ``i`` covers ``(base**(i-1), base**i]``; negative bucket ``i``
covers ``[-base**i, -base**(i-1))``. OpenTelemetry's bucket ``i`` covers ``(base**i, base**(i+1)]``,
so an OTLP offset is one less than the Prometheus index of the same bucket: pass ``offset + 1``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Bounds = list[tuple[float, float]]


def format_bound(bound: float) -> str:
    """An ``le`` label value: the shortest decimal that reads back as ``bound``, no exponent, ``+Inf``."""
    if math.isinf(bound):
        return "+Inf" if bound > 0 else "-Inf"
    return str(np.format_float_positional(bound, trim="-"))


def upper_bounds(scale: int, first_index: int, count: int) -> npt.NDArray[np.float64]:
    """Upper bounds ``base**i`` of positive buckets ``first_index .. first_index + count - 1``."""
    indexes = np.arange(first_index, first_index + count, dtype=np.float64)
    with np.errstate(over="ignore"):
        return np.exp2(indexes * 2.0 ** float(-scale))


def cumulative_buckets(
    scale: int,
    zero_threshold: float,
    zero_count: float,
    positive_first: int,
    positive_counts: npt.ArrayLike,
    negative_first: int = 0,
    negative_counts: npt.ArrayLike = (),
) -> Bounds:
    """``(le, cumulative count)`` for every populated bound, ascending; the ``+Inf`` bucket is left out.

    ``*_counts`` are absolute per-bucket counts of consecutive Prometheus indexes starting at
    ``*_first`` (expand spans and delta-decode before calling). Empty buckets are dropped: their
    bound adds nothing ``histogram_quantile`` can use, and a sparse histogram stays small.
    """
    out: Bounds = []
    total = 0.0
    negative = np.asarray(negative_counts, dtype=np.float64)
    if negative.size:
        # Most negative first: the highest index, whose upper bound is -base**(index-1).
        lows = upper_bounds(scale, negative_first - 1, negative.size)
        for k in range(negative.size - 1, -1, -1):
            if negative[k] > 0:
                total += float(negative[k])
                out.append((-float(lows[k]), total))
    if zero_count > 0 or zero_threshold > 0:
        total += float(zero_count)
        out.append((float(zero_threshold), total))
    positive = np.asarray(positive_counts, dtype=np.float64)
    if positive.size:
        highs = upper_bounds(scale, positive_first, positive.size)
        for k in range(positive.size):
            if positive[k] > 0:
                total += float(positive[k])
                out.append((float(highs[k]), total))
    return out
