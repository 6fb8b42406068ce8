"""Columnar decoding of Prometheus ``TimeSeries`` protobuf messages.

Building a Python object per sample caps decoding at a few hundred thousand samples a second, so
this module reads the wire format with numpy instead: it walks all series' label fields in lock-step
(one numpy step per label position, not per series) and reads samples in the layout Prometheus
clients emit (``Sample{value, timestamp}`` with a millisecond timestamp, 18 bytes on the wire) as
fixed-width rows. Any series that does not fit that layout (zero values, which proto3 omits,
exemplars, unusual timestamps, long labels) is decoded by the protobuf runtime instead, so the fast
path is an optimisation, never a different answer.

When the optional C extension ``novacron.protocols._wirec`` is built (``pip install`` compiles it
where a C compiler exists; the Lambda layer ships it), ``decode_series`` and ``decode_write_request``
use it instead: it walks the protobuf once per body with no Python object per sample and the same
acceptance rules as the protobuf runtime. The numpy code here stays the reference and the fallback;
set ``NOVACRON_WIRE_NATIVE=0`` (before import) or call ``use_native(False)`` to force it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import numpy.typing as npt

from novacron.protocols.remote_write_pb import RawTimeSeries, RawWriteRequest


def _load_native() -> ModuleType | None:
    if os.environ.get("NOVACRON_WIRE_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    try:
        from novacron.protocols import _wirec
    except ImportError:
        return None
    return _wirec


_NATIVE_MODULE = _load_native()
_native = _NATIVE_MODULE

_LABEL_TAG = 0x0A  # field 1, length-delimited
_SAMPLE_TAG = 0x12  # field 2, length-delimited
_SAMPLE_WIDTH = 18  # tag, len=16, 0x09 + 8-byte double, 0x10 + 6-byte varint
_ZERO_SAMPLE_WIDTH = 9  # tag, len=7, 0x10 + 6-byte varint (a 0.0 value is not encoded)
# Six-byte varints cover timestamps in [2^35, 2^42) ms: 1971-02-03 .. 2109-05-15.
_MAX_LABELS = 128

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


class WireFormatError(ValueError):
    """A series is not valid protobuf."""


@dataclass
class DecodedSeries:
    """Series of one message, columnar. Series ``i`` owns samples ``offsets[i]:offsets[i+1]``."""

    contents: list[bytes]  # each series' TimeSeries encoding, as received
    lengths: Int64Array  # len() of each content
    label_bytes: list[bytes]  # the label fields of each series: its identity on the wire
    offsets: Int64Array
    timestamps: Int64Array
    values: Float64Array
    histogram_series: list[int]  # indexes of series carrying native histograms

    def __len__(self) -> int:
        return len(self.contents)

    @property
    def sample_count(self) -> int:
        return int(self.offsets[-1])


def native_available() -> bool:
    """Whether the C extension was built and imported (``NOVACRON_WIRE_NATIVE=0`` hides it)."""
    return _NATIVE_MODULE is not None


def native_enabled() -> bool:
    """Whether the decoders currently use the C extension."""
    return _native is not None


def native_module() -> ModuleType | None:
    """The C extension while the decoders use it, else None (for the other wire readers to follow)."""
    return _native


def use_native(enabled: bool) -> bool:
    """Use the C extension (when available) or the numpy reference; returns the previous setting."""
    global _native
    previous = _native is not None
    _native = _NATIVE_MODULE if enabled else None
    return previous


def decode_write_request(raw: bytes | bytearray | memoryview) -> DecodedSeries:
    """Decode a whole (decompressed) remote-write ``WriteRequest`` into columnar series.

    Raises ``WireFormatError`` if the body or one of its series is not valid protobuf.
    """
    native = _native
    if native is None:
        try:
            request = RawWriteRequest.FromString(raw)
        except Exception as exc:  # the protobuf runtime's DecodeError
            raise WireFormatError(f"body is not a valid remote write WriteRequest protobuf: {exc}") from None
        return _decode_series_numpy(list(request.timeseries))
    try:
        contents, labels, lengths, offsets, stamps, values, histograms = native.split_write_request(raw)
    except ValueError as exc:
        raise WireFormatError(str(exc)) from None
    return _columns(contents, labels, lengths, offsets, stamps, values, histograms)


def decode_series(contents: list[bytes]) -> DecodedSeries:
    """Decode a list of TimeSeries encodings into labels-on-the-wire and columnar samples."""
    native = _native
    if native is None:
        return _decode_series_numpy(contents)
    try:
        labels, lengths, offsets, stamps, values, histograms = native.decode_series_list(contents)
    except ValueError as exc:
        raise WireFormatError(str(exc)) from None
    return _columns(contents, labels, lengths, offsets, stamps, values, histograms)


def _columns(
    contents: list[bytes],
    labels: list[bytes],
    lengths: bytearray,
    offsets: bytearray,
    stamps: bytearray,
    values: bytearray,
    histograms: list[int],
) -> DecodedSeries:
    """Wrap the C extension's buffers (native-endian int64 / float64) as numpy columns, without copies."""
    return DecodedSeries(
        contents,
        np.frombuffer(lengths, dtype=np.int64),
        labels,
        np.frombuffer(offsets, dtype=np.int64),
        np.frombuffer(stamps, dtype=np.int64),
        np.frombuffer(values, dtype=np.float64),
        histograms,
    )


def _decode_series_numpy(contents: list[bytes]) -> DecodedSeries:
    """The numpy decoder: the reference implementation, and the path without the C extension."""
    n = len(contents)
    if n == 0:
        empty_i = np.zeros(0, dtype=np.int64)
        return DecodedSeries([], empty_i, [], np.zeros(1, dtype=np.int64), empty_i, np.zeros(0, dtype=np.float64), [])
    lengths = np.fromiter(map(len, contents), dtype=np.int64, count=n)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    buf = np.frombuffer(b"".join(contents), dtype=np.uint8)
    # Reads past the end (a row, a length byte) stay in bounds.
    padded = np.concatenate([buf, np.zeros(_SAMPLE_WIDTH, dtype=np.uint8)])

    label_end, regular = _walk_labels(padded, starts, ends)
    sample_start = label_end
    region = ends - sample_start
    # The first sample's length byte tells the layout: 16 for value + timestamp, 7 when the value
    # is 0.0 (proto3 leaves zero fields out, so zero-valued counters are 9 bytes on the wire).
    first_len = padded[np.minimum(sample_start + 1, buf.size)]
    width = np.where(first_len == 16, _SAMPLE_WIDTH, np.where(first_len == 7, _ZERO_SAMPLE_WIDTH, 0))
    has_samples = region > 0
    regular &= ~has_samples | ((width > 0) & (region % np.maximum(width, 1) == 0))
    counts = np.where(regular & has_samples, region // np.maximum(width, 1), 0)

    parts = [
        _fixed_rows(padded, sample_start, counts, regular & (width == w), w)
        for w in (_SAMPLE_WIDTH, _ZERO_SAMPLE_WIDTH)
    ]
    for bad in (p.bad_series for p in parts):
        regular[bad] = False
    counts = np.where(regular, counts, 0)
    row_series = np.concatenate([p.series[regular[p.series]] for p in parts])
    timestamps: Int64Array = np.concatenate([p.timestamps[regular[p.series]] for p in parts])
    values: Float64Array = np.concatenate([p.values[regular[p.series]] for p in parts])
    if parts[1].series.size:
        # Each series sits wholly in one layout group; a stable sort puts rows back in series order.
        order = np.argsort(row_series, kind="stable")
        row_series, timestamps, values = row_series[order], timestamps[order], values[order]

    label_bytes = [c[:k] for c, k in zip(contents, (label_end - starts).tolist(), strict=True)]
    irregular = np.flatnonzero(~regular)
    histogram_series: list[int] = []
    if irregular.size:
        ts_parts: list[Int64Array] = []
        val_parts: list[Float64Array] = []
        counts = counts.copy()
        for i in irregular.tolist():
            labels, ts, vals, has_histograms = _decode_slow(contents[i])
            label_bytes[i] = labels
            counts[i] = len(ts)
            ts_parts.append(ts)
            val_parts.append(vals)
            if has_histograms:
                histogram_series.append(i)
        timestamps, values = _merge_rows(
            n, counts, regular, row_series, timestamps, values, irregular, ts_parts, val_parts
        )
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return DecodedSeries(contents, lengths, label_bytes, offsets, timestamps, values, histogram_series)


@dataclass
class _Rows:
    """Samples read as fixed-width rows for one layout, and the series that did not fit it."""

    series: Int64Array
    timestamps: Int64Array
    values: Float64Array
    bad_series: Int64Array


def _fixed_rows(
    padded: npt.NDArray[np.uint8], sample_start: Int64Array, counts: Int64Array, mask: npt.NDArray[np.bool_], width: int
) -> _Rows:
    """Read the samples of the ``mask``-ed series as rows of ``width`` bytes, checking every tag."""
    n_rows = np.where(mask, counts, 0)
    row_series = np.repeat(np.arange(len(counts)), n_rows)
    row_in_series = np.arange(int(n_rows.sum())) - np.repeat(np.cumsum(n_rows) - n_rows, n_rows)
    row_start = sample_start[row_series] + row_in_series * width
    # A zero-copy view of every ``width``-byte window of the buffer: gathering rows then costs one
    # index per sample rather than one per byte.
    rows = np.lib.stride_tricks.sliding_window_view(padded, width)[row_start]
    ts_at = 12 if width == _SAMPLE_WIDTH else 3
    continuation = rows[:, ts_at]
    for k in range(ts_at + 1, ts_at + 5):
        continuation = continuation & rows[:, k]
    ok = (
        (rows[:, 0] == _SAMPLE_TAG)
        & (rows[:, 1] == width - 2)
        & (rows[:, ts_at - 1] == 0x10)
        & (continuation >= 0x80)
        & (rows[:, ts_at + 5] < 0x80)
    )
    if width == _SAMPLE_WIDTH:
        ok &= rows[:, 2] == 0x09
        values: Float64Array = np.ascontiguousarray(rows[:, 3:11]).view("<f8").reshape(-1).astype(np.float64)
    else:
        values = np.zeros(len(rows), dtype=np.float64)
    timestamps: Int64Array = rows[:, ts_at].astype(np.int64) & 0x7F
    for k in range(1, 6):
        timestamps |= (rows[:, ts_at + k].astype(np.int64) & 0x7F) << (7 * k)
    return _Rows(row_series, timestamps, values, np.unique(row_series[~ok]))


def _walk_labels(
    padded: npt.NDArray[np.uint8], starts: Int64Array, ends: Int64Array
) -> tuple[Int64Array, npt.NDArray[np.bool_]]:
    """Advance every series past its label fields in lock-step; flag series needing the slow path."""
    pos = starts.copy()
    regular = np.ones(len(starts), dtype=bool)
    active = np.flatnonzero(pos < ends)
    for _ in range(_MAX_LABELS + 1):
        if active.size == 0:
            break
        p = pos[active]
        is_label = padded[p] == _LABEL_TAG
        active, p = active[is_label], p[is_label]
        b1 = padded[p + 1].astype(np.int64)
        b2 = padded[p + 2].astype(np.int64)
        two_byte = b1 >= 0x80
        # Label fields longer than 16 KiB (three-byte lengths) are left to the slow path, and so are
        # non-minimal two-byte lengths (their canonical label bytes are shorter than the slice).
        too_long = two_byte & ((b2 >= 0x80) | (b2 == 0))
        regular[active[too_long]] = False
        length = np.where(two_byte, (b1 & 0x7F) | (b2 << 7), b1)
        new_pos = p + 2 + two_byte + length
        overflow = new_pos > ends[active]
        regular[active[overflow]] = False
        ok = ~(too_long | overflow)
        active = active[ok]
        pos[active] = new_pos[ok]
        active = active[pos[active] < ends[active]]
    else:
        regular[active] = False
    return pos, regular


def _decode_slow(content: bytes) -> tuple[bytes, Int64Array, Float64Array, bool]:
    try:
        ts = RawTimeSeries.FromString(content)
    except Exception as exc:  # the protobuf runtime's DecodeError
        raise WireFormatError(f"series is not a valid TimeSeries message: {exc}") from None
    # Label strings stay bytes here: UTF-8 is the validator's concern, so it can name the label.
    labels = RawTimeSeries(labels=ts.labels).SerializeToString()
    stamps = np.fromiter((s.timestamp for s in ts.samples), dtype=np.int64, count=len(ts.samples))
    values = np.fromiter((s.value for s in ts.samples), dtype=np.float64, count=len(ts.samples))
    return labels, stamps, values, len(ts.histograms) > 0


def _merge_rows(
    n: int,
    counts: Int64Array,
    regular: npt.NDArray[np.bool_],
    row_series: Int64Array,
    fast_ts: Int64Array,
    fast_vals: Float64Array,
    irregular: Int64Array,
    ts_parts: list[Int64Array],
    val_parts: list[Float64Array],
) -> tuple[Int64Array, Float64Array]:
    """Place fast-path rows and slow-path samples in series order."""
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    timestamps = np.empty(total, dtype=np.int64)
    values = np.empty(total, dtype=np.float64)
    if fast_ts.size:
        fast_counts = np.where(regular, counts, 0)
        within = np.arange(fast_ts.size) - np.repeat(np.cumsum(fast_counts) - fast_counts, fast_counts)
        dest = offsets[row_series] + within
        timestamps[dest] = fast_ts
        values[dest] = fast_vals
    for i, ts, vals in zip(irregular.tolist(), ts_parts, val_parts, strict=True):
        timestamps[offsets[i] : offsets[i + 1]] = ts
        values[offsets[i] : offsets[i + 1]] = vals
    return timestamps, values
