"""Exponential (native) histograms as classic cumulative buckets.

NovaCron stores histograms the way ``histogram_quantile`` reads classic ones: a ``_bucket`` series per
upper bound ``le`` holding the cumulative count, plus ``_sum`` and ``_count``. Prometheus native
histograms (remote write) and OpenTelemetry exponential histograms (OTLP) both arrive as exponential
buckets and are turned into those bounds here, so both protocols store the same shape.

Index conventions differ, and this module uses Prometheus's: at schema (scale) ``s`` the base is
``2 ** 2 ** -s`` and positive bucket ``i`` covers ``(base**(i-1), base**i]``; negative bucket ``i``
covers ``[-base**i, -base**(i-1))``. OpenTelemetry's bucket ``i`` covers ``(base**i, base**(i+1)]``,
so an OTLP offset is one less than the Prometheus index of the same bucket: pass ``offset + 1``.
At the ends of the float range Prometheus's spec caps bounds: the bucket holding ``MaxFloat64`` ends
there, and the bucket after it (up to ``+Inf``) is counted only in ``le="+Inf"``, which is ``count``.

Remote write's native histograms (``Histogram`` messages, the same in 1.0 and 2.0) go through
``classic_point`` (one sample: schema checks, spans, delta decoding, custom buckets) and
``classic_series`` (all samples of one series → 1.0 ``TimeSeries`` encodings of the derived series);
``to_classic`` does that for a request's histogram series and decides, per series, whether it is
stored whole or rejected whole.
"""

from __future__ import annotations

import functools
import math
import struct
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from novacron.ingest.validate import RejectReason
from novacron.protocols import remote_write_v2_pb as pb
from novacron.protocols.remote_write_pb import RawLabels, RawTimeSeries
from novacron.protocols.remote_write_v2 import NativeSeries, describe, label_field, uvarint
from novacron.protocols.wire import WireFormatError
from novacron.series import STALE_NAN, STALE_NAN_BITS

Bounds = list[tuple[float, float]]
Float64Array = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]

CUSTOM_BUCKETS_SCHEMA = -53  # bounds listed in custom_values (NHCB)
MIN_SCHEMA, MAX_SCHEMA = -4, 8  # the standard exponential schemas
# A histogram with more populated buckets than this is refused: Prometheus's instrumentation limits
# native histograms to 160 buckets by default, and each populated bucket costs up to two series here.
MAX_POPULATED_BUCKETS = 160
# Listed buckets include explicit empty ones; bounding them bounds the work per histogram.
MAX_LISTED_BUCKETS = 4096
_MAX_FLOAT = sys.float_info.max
_NAME = b"__name__"
_LE = b"le"
_SAMPLE_TAG = b"\x12"  # TimeSeries.samples: field 2, length-delimited
_ZERO_DOUBLE = bytes(8)
_INF_FIELD = label_field(_LE, b"+Inf")


class HistogramError(ValueError):
    """A native histogram that cannot be stored; the message says why."""


def format_bound(bound: float) -> str:
    """An ``le`` label value: the shortest decimal that reads back as ``bound``, no exponent, ``+Inf``."""
    if math.isinf(bound):
        return "+Inf" if bound > 0 else "-Inf"
    return str(np.format_float_positional(bound, trim="-"))


def upper_bounds(scale: int, first_index: int, count: int) -> npt.NDArray[np.float64]:
    """Upper bounds ``base**i`` of positive buckets ``first_index .. first_index + count - 1``."""
    return _powers(scale, np.arange(first_index, first_index + count, dtype=np.int64))


def _powers(scale: int, indexes: Int64Array) -> Float64Array:
    """``base**i`` for each index (``inf`` past the float range), exact at whole powers of two."""
    # base**i = 2**(i / 2**scale): a whole power of two times 2**(fraction), as Prometheus computes it.
    if scale <= 0:
        mantissa: Float64Array = np.ones(indexes.size, dtype=np.float64)
        whole = indexes << -scale
    else:
        whole, fraction = np.divmod(indexes, 1 << scale)
        mantissa = np.exp2(fraction / float(1 << scale))
    with np.errstate(over="ignore"):
        powers: Float64Array = np.ldexp(mantissa, np.clip(whole, -2000, 2000).astype(np.int32))
    return powers


class _Cumulative:
    """Ascending ``(le, cumulative count)`` pairs, built bucket by bucket from the lowest."""

    def __init__(self, lower_edges: bool) -> None:
        self.bounds: Bounds = []
        self.total = 0.0
        self.lower_edges = lower_edges

    def add(self, upper: float | None, count: float, lower: float | None = None) -> None:
        """Count a bucket ``(lower, upper]``; ``upper`` None: above every finite bound (only ``+Inf`` holds it)."""
        out = self.bounds
        if self.lower_edges and lower is not None and (upper is None or lower < upper):
            lower += 0.0  # -0.0 → 0.0: one "0" bound, not two
            if not out or lower > out[-1][0]:
                out.append((lower, self.total))
        self.total += count
        if upper is None:
            return
        upper += 0.0
        if out and upper <= out[-1][0]:
            # A bucket at or below a bound already placed (a zero bucket wider than the lowest regular
            # buckets, bounds equal after rounding): its observations count at that bound.
            out[-1] = (out[-1][0], self.total)
        else:
            out.append((upper, self.total))


def cumulative_buckets(
    scale: int,
    zero_threshold: float,
    zero_count: float,
    positive_first: int,
    positive_counts: npt.ArrayLike,
    negative_first: int = 0,
    negative_counts: npt.ArrayLike = (),
    lower_edges: bool = False,
) -> Bounds:
    """``(le, cumulative count)`` for every populated bound, ascending; the ``+Inf`` bucket is left out.

    ``*_counts`` are absolute per-bucket counts of consecutive Prometheus indexes starting at
    ``*_first`` (expand spans and delta-decode before calling). Empty buckets are dropped, so a
    sparse histogram stays small. ``lower_edges`` also places each populated bucket's lower edge
    (with the cumulative count below it) when no bound sits there yet: without it an empty bucket
    below a populated one merges into it, and ``histogram_quantile`` interpolates over the merged,
    wider range (buckets (1,2]=5 (2,4]=0 (4,8]=5 give a median of 2 either way, but a 0.75-quantile
    of 5 instead of 6). Remote write's native histograms are stored with lower edges.
    """
    positive = np.asarray(positive_counts, dtype=np.float64)
    negative = np.asarray(negative_counts, dtype=np.float64)
    acc = _Cumulative(lower_edges)
    _exponential(
        acc,
        scale,
        zero_threshold,
        zero_count,
        np.arange(positive_first, positive_first + positive.size, dtype=np.int64),
        positive,
        np.arange(negative_first, negative_first + negative.size, dtype=np.int64),
        negative,
    )
    return acc.bounds


def _exponential(
    acc: _Cumulative,
    scale: int,
    zero_threshold: float,
    zero_count: float,
    positive_indexes: Int64Array,
    positive: Float64Array,
    negative_indexes: Int64Array,
    negative: Float64Array,
) -> None:
    """Add a standard-schema histogram's buckets (indexes ascending per side) to ``acc``."""
    if negative.size:
        keep = negative > 0
        idx, counts = negative_indexes[keep][::-1], negative[keep][::-1]  # most negative (highest index) first
        inner, outer = _powers(scale, idx - 1), _powers(scale, idx)  # |upper|, |lower|
        for k in range(idx.size):
            finite_inner = math.isfinite(inner[k])
            if math.isfinite(outer[k]):
                start: float | None = -float(outer[k])
            else:
                start = -_MAX_FLOAT if finite_inner else None  # the bucket holding MinFloat64 starts there
            acc.add(-float(inner[k]) if finite_inner else -_MAX_FLOAT, float(counts[k]), start)
    # An empty zero bucket's bound adds nothing once lower edges are placed (client_golang sends a
    # threshold of 2**-128 with every histogram, which would otherwise be a series of its own).
    if zero_count > 0 or (zero_threshold > 0 and not acc.lower_edges):
        acc.add(float(zero_threshold), float(zero_count), -float(zero_threshold) if zero_count > 0 else None)
    if positive.size:
        keep = positive > 0
        idx, counts = positive_indexes[keep], positive[keep]
        lows, highs = _powers(scale, idx - 1), _powers(scale, idx)
        for k in range(idx.size):
            finite_low = math.isfinite(lows[k])
            if math.isfinite(highs[k]):
                end: float | None = float(highs[k])
            else:
                end = _MAX_FLOAT if finite_low else None  # the bucket holding MaxFloat64 ends there
            acc.add(end, float(counts[k]), float(lows[k]) if finite_low else _MAX_FLOAT)


def _custom(acc: _Cumulative, bounds: Float64Array, indexes: Int64Array, counts: Float64Array) -> None:
    """Add a custom-bucket (schema -53) histogram's buckets: bucket ``i`` is ``(bounds[i-1], bounds[i]]``."""
    for i, count in zip(indexes.tolist(), counts.tolist(), strict=True):
        if count <= 0:
            continue
        upper = float(bounds[i]) if i < bounds.size else None  # index len(bounds): the +Inf bucket
        acc.add(upper, count, float(bounds[i - 1]) if i > 0 else None)


def expand_spans(spans: Sequence[tuple[int, int]], n: int, side: str = "positive") -> Int64Array:
    """Prometheus bucket indexes of the ``n`` listed buckets that ``(offset, length)`` spans describe.

    The first span's offset is the first bucket's index; each later offset is the gap after the
    previous span's end.
    """
    offsets = np.fromiter((offset for offset, _ in spans), dtype=np.int64, count=len(spans))
    lengths = np.fromiter((length for _, length in spans), dtype=np.int64, count=len(spans))
    if int(lengths.sum()) != n:
        raise HistogramError(f"native histogram {side} spans cover {int(lengths.sum())} buckets but {n} are listed")
    if offsets.size > 1 and bool((offsets[1:] < 0).any()):
        raise HistogramError(f"native histogram has a {side} span with a negative offset after the first span")
    ends = np.cumsum(lengths)
    starts = np.cumsum(offsets) + ends - lengths
    return np.repeat(starts, lengths) + np.arange(n, dtype=np.int64) - np.repeat(ends - lengths, lengths)


@dataclass(frozen=True)
class ClassicPoint:
    """One native histogram sample as classic values."""

    timestamp: int
    buckets: Bounds  # (le, cumulative count), ascending, without +Inf (which is ``count``)
    count: float
    sum: float
    stale: bool = False  # a staleness marker: the series ended here


def classic_point(histogram: Any) -> ClassicPoint:
    """Check and convert one ``Histogram`` message (or its encoding); raise ``HistogramError`` if unusable."""
    h = _parsed(histogram)
    if struct.pack("<d", h.sum) == struct.pack("<Q", STALE_NAN_BITS):
        return ClassicPoint(h.timestamp, [], 0.0, STALE_NAN, stale=True)
    schema: int = h.schema
    if schema != CUSTOM_BUCKETS_SCHEMA and not MIN_SCHEMA <= schema <= MAX_SCHEMA:
        raise HistogramError(
            f"native histogram schema {schema} is not supported "
            f"({MIN_SCHEMA} to {MAX_SCHEMA}, or {CUSTOM_BUCKETS_SCHEMA} for custom buckets)"
        )
    is_float = h.WhichOneof("count") == "count_float"
    count = float(h.count_float if is_float else h.count_int)
    zero_count = float(h.zero_count_float if is_float else h.zero_count_int)
    positive, negative = _bucket_counts(h, "positive", is_float), _bucket_counts(h, "negative", is_float)
    if positive.size + negative.size > MAX_LISTED_BUCKETS:
        raise HistogramError(
            f"native histogram lists {positive.size + negative.size} buckets, "
            f"more than the {MAX_LISTED_BUCKETS} allowed"
        )
    if not all(x >= 0 for x in (count, zero_count, h.zero_threshold)) or bool(
        (~(positive >= 0)).any() or (~(negative >= 0)).any()
    ):
        raise HistogramError("native histogram has a negative or NaN count or zero threshold")
    populated = int(np.count_nonzero(positive)) + int(np.count_nonzero(negative)) + (zero_count > 0)
    if populated > MAX_POPULATED_BUCKETS:
        raise HistogramError(
            f"native histogram has {populated} populated buckets, more than the {MAX_POPULATED_BUCKETS} "
            "NovaCron stores per histogram (lower the resolution: a smaller schema or a bucket limit)"
        )
    positive_indexes = expand_spans([(s.offset, s.length) for s in h.positive_spans], positive.size, "positive")
    negative_indexes = expand_spans([(s.offset, s.length) for s in h.negative_spans], negative.size, "negative")
    acc = _Cumulative(lower_edges=True)
    if schema == CUSTOM_BUCKETS_SCHEMA:
        bounds = _custom_bounds(h, negative.size > 0 or zero_count > 0, positive_indexes)
        _custom(acc, bounds, positive_indexes, positive)
    else:
        _exponential(acc, schema, h.zero_threshold, zero_count, positive_indexes, positive, negative_indexes, negative)
    if count < acc.total * (1 - 1e-9):
        raise HistogramError(f"native histogram count {count:g} is less than its buckets hold ({acc.total:g})")
    return ClassicPoint(h.timestamp, acc.bounds, count, h.sum)


def _parsed(histogram: Any) -> Any:
    if not isinstance(histogram, bytes | bytearray | memoryview):
        return histogram
    try:
        return pb.Histogram.FromString(histogram)
    except Exception as exc:  # the protobuf runtime's DecodeError
        raise HistogramError(f"native histogram is not a valid Histogram message: {exc}") from None


def _bucket_counts(h: Any, side: str, is_float: bool) -> Float64Array:
    """Absolute counts of one side's listed buckets: float counts as sent, integer deltas summed up."""
    deltas, counts = getattr(h, f"{side}_deltas"), getattr(h, f"{side}_counts")
    if is_float:
        if len(deltas):
            raise HistogramError(f"float native histogram (count_float) has {side}_deltas; it must use {side}_counts")
        return np.asarray(counts, dtype=np.float64)
    if len(counts):
        raise HistogramError(f"integer native histogram has {side}_counts; it must use {side}_deltas")
    # Summed as floats: the stored values are float64 anyway, and adversarial int64 deltas cannot wrap.
    return np.cumsum(np.asarray(deltas, dtype=np.float64))


def _custom_bounds(h: Any, uses_other_buckets: bool, indexes: Int64Array) -> Float64Array:
    """The checked upper bounds of a custom-bucket histogram whose listed buckets have ``indexes``."""
    bounds = np.asarray(h.custom_values, dtype=np.float64)
    if uses_other_buckets:
        raise HistogramError("custom-bucket native histogram (schema -53) may use neither negative nor zero buckets")
    if not bool(np.isfinite(bounds).all()) or bool((np.diff(bounds) <= 0).any()):
        raise HistogramError("custom-bucket native histogram needs finite custom_values in increasing order")
    if indexes.size and (int(indexes.min()) < 0 or int(indexes.max()) > bounds.size):
        raise HistogramError(
            f"custom-bucket native histogram has a bucket index outside 0..{bounds.size} (its custom_values)"
        )
    return bounds


@dataclass
class ClassicSeries:
    """A native histogram series as classic series: 1.0 ``TimeSeries`` encodings, one per derived series."""

    label_bytes: list[bytes] = field(default_factory=list)  # each content's label fields
    contents: list[bytes] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)  # per content
    timestamps: list[int] = field(default_factory=list)  # of the histogram samples


def classic_series(
    labels: Sequence[tuple[bytes, bytes]], histograms: Sequence[Any], created_ms: int = 0
) -> ClassicSeries:
    """The ``<name>_bucket{le=…}``, ``<name>_count`` and ``<name>_sum`` series of one histogram series.

    Each histogram sample at ``T`` gives, at ``T``: one ``_bucket`` sample per populated bound (and
    lower edge), ``le="+Inf"`` = ``_count`` = count, and ``_sum``. A staleness marker (the stale NaN
    as sum) gives stale markers to ``_count``, ``_sum``, ``+Inf`` and every bound seen before it in
    these samples. ``created_ms`` > 0 adds a 0 at that time to every derived series.
    """
    name = next((value for key, value in labels if key == _NAME), b"")
    if not name:
        raise HistogramError("series has no metric name (__name__ label)")
    if any(key == _LE for key, _ in labels):
        raise HistogramError("native histogram series has an 'le' label, which its _bucket series need")
    rest = [(key, value) for key, value in labels if key != _NAME]
    buckets: dict[float, list[tuple[int, float]]] = {}
    inf: list[tuple[int, float]] = []
    count: list[tuple[int, float]] = []
    total: list[tuple[int, float]] = []
    out = ClassicSeries()
    for histogram in histograms:
        point = classic_point(histogram)
        stamp = point.timestamp
        out.timestamps.append(stamp)
        if point.stale:
            for series in (*buckets.values(), inf, count, total):
                series.append((stamp, STALE_NAN))
            continue
        for le, cumulative in point.buckets:
            buckets.setdefault(le, []).append((stamp, cumulative))
        inf.append((stamp, point.count))
        count.append((stamp, point.count))
        total.append((stamp, point.sum))
    # Label fields encoded once per series (le values once per process): encoding dominates otherwise.
    rest_fields = [(key, label_field(key, value)) for key, value in rest]
    bucket = (_NAME, label_field(_NAME, name + b"_bucket"))
    derived = [([bucket, _le_field(le)], samples) for le, samples in sorted(buckets.items())]
    derived += [
        ([bucket, (_LE, _INF_FIELD)], inf),
        ([(_NAME, label_field(_NAME, name + b"_count"))], count),
        ([(_NAME, label_field(_NAME, name + b"_sum"))], total),
    ]
    zero = [(created_ms, 0.0)] if created_ms > 0 else []
    for fields, samples in derived:
        label_bytes = b"".join(encoded for _, encoded in sorted(rest_fields + fields))
        points = zero + samples
        out.label_bytes.append(label_bytes)
        out.contents.append(label_bytes + b"".join(sample_field(stamp, value) for stamp, value in points))
        out.samples.append(len(points))
    return out


@functools.lru_cache(maxsize=1 << 16)
def _le_field(bound: float) -> tuple[bytes, bytes]:
    """The ``le`` label of a bound: its name (for sorting) and its encoded label field."""
    return _LE, label_field(_LE, format_bound(bound).encode())


def sample_field(timestamp_ms: int, value: float) -> bytes:
    """A ``TimeSeries.samples`` entry, canonical as a protobuf encoder writes it (zero fields omitted)."""
    packed = struct.pack("<d", value)
    body = (b"\x09" + packed if packed != _ZERO_DOUBLE else b"") + (
        b"\x10" + uvarint(timestamp_ms & 0xFFFFFFFFFFFFFFFF) if timestamp_ms else b""
    )
    return _SAMPLE_TAG + uvarint(len(body)) + body


def native_series_v1(content: bytes, where: str = "") -> NativeSeries:
    """A 1.0 ``TimeSeries`` carrying native histograms (field 4), split into histograms and float samples."""
    try:
        series = RawTimeSeries.FromString(content)
        # Labels are kept as raw bytes by the outer parse: a corrupt label only shows when they are read.
        labels_only = RawTimeSeries(labels=series.labels).SerializeToString()
        labels = [(label.name, label.value) for label in RawLabels.FromString(labels_only).labels]
    except Exception as exc:  # the protobuf runtime's DecodeError
        raise WireFormatError(f"series is not a valid TimeSeries message: {exc}") from None
    floats = RawTimeSeries(labels=series.labels, samples=series.samples).SerializeToString() if series.samples else b""
    return NativeSeries(labels, list(series.histograms), where=where, floats=floats)


@dataclass
class ClassicBatch:
    """A request's histogram series as classic series, and the ones refused."""

    contents: list[bytes] = field(default_factory=list)  # TimeSeries encodings to validate and pack
    added_samples: list[int] = field(default_factory=list)  # per content: samples that are not sender floats
    histograms: int = 0  # histogram samples the contents hold
    rejected: list[tuple[RejectReason, str]] = field(default_factory=list)  # why, and the message


def to_classic(
    native: Sequence[NativeSeries],
    labels_problem: Callable[[bytes], str | None],
    window: tuple[int, int],
    max_content_bytes: int,
) -> ClassicBatch:
    """Convert histogram series; a series whose derived series would not all be stored is refused whole.

    ``labels_problem`` is the ingest validator (why label fields are unacceptable, or None),
    ``window`` the accepted sample window in ms, ``max_content_bytes`` the largest series encoding a
    stream record takes. Checking those here, before packing, keeps a histogram from being stored in
    part and lets the written-count headers count whole histograms.
    """
    batch = ClassicBatch()
    low, high = window
    for series in native:
        if series.floats:
            batch.contents.append(series.floats)
            batch.added_samples.append(0)
        shown = describe(series.labels)
        problem = labels_problem(b"".join(label_field(key, value) for key, value in series.labels))
        if problem is not None:
            batch.rejected.append((RejectReason.INVALID_LABELS, f"{series.where}{problem}"))
            continue
        try:
            classic = classic_series(series.labels, series.histograms, series.created_ms)
        except HistogramError as exc:
            batch.rejected.append((RejectReason.NATIVE_HISTOGRAM, f"{series.where}{exc}: {shown}"))
            continue
        outside = [stamp for stamp in classic.timestamps if not low <= stamp <= high]
        if outside:
            where = f"{series.where}native histogram sample at {_iso(outside[0])}"
            batch.rejected.append(
                (
                    RejectReason.OUT_OF_WINDOW,
                    f"{where} is outside the accepted window [{_iso(low)}, {_iso(high)}]: {shown}",
                )
            )
            continue
        derived_problem = next(filter(None, map(labels_problem, classic.label_bytes)), None)
        if derived_problem is not None:
            message = f"{series.where}{shown} cannot be stored as classic histogram series: {derived_problem}"
            batch.rejected.append((RejectReason.INVALID_LABELS, message))
            continue
        largest = max(map(len, classic.contents))
        if largest > max_content_bytes:
            message = (
                f"{series.where}native histogram series encodes to {largest} bytes per classic series, more than "
                f"the {max_content_bytes} a series may take in one request; send fewer samples per request: {shown}"
            )
            batch.rejected.append((RejectReason.OVERSIZED, message))
            continue
        batch.contents.extend(classic.contents)
        batch.added_samples.extend(classic.samples)
        batch.histograms += len(series.histograms)
    return batch


def _iso(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return f"{ms}ms"
