"""Columnar decoding of Prometheus ``TimeSeries`` protobuf messages.

Building a Python object per sample caps decoding at a few hundred thousand samples a second, so
this module reads the wire format with numpy instead: it walks all series' label fields in lock-step
(one numpy step per label position, not per series) and reads samples in the layout Prometheus
clients emit (``Sample{value, timestamp}`` with a millisecond timestamp, 18 bytes on the wire) as
fixed-width rows. Any series that does not fit that layout (zero values, which proto3 omits,
exemplars, unusual timestamps, long labels) is decoded by the protobuf runtime instead, so the fast
path is an optimisation, never a different answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from novacron.protocols.remote_write_pb import RawTimeSeries

_LABEL_TAG = 0x0A  # field 1, length-delimited
_SAMPLE_TAG = 0x12  # field 2, length-delimited
_SAMPLE_WIDTH = 18  # tag, len=16, 0x09 + 8-byte double, 0x10 + 6-byte varint
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


def decode_series(contents: list[bytes]) -> DecodedSeries:
    """Decode a list of TimeSeries encodings into labels-on-the-wire and columnar samples."""
    n = len(contents)
    if n == 0:
        empty_i = np.zeros(0, dtype=np.int64)
        return DecodedSeries([], [], np.zeros(1, dtype=np.int64), empty_i, np.zeros(0, dtype=np.float64), [])
    lengths = np.fromiter(map(len, contents), dtype=np.int64, count=n)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    buf = np.frombuffer(b"".join(contents), dtype=np.uint8)
    padded = np.concatenate([buf, np.zeros(8, dtype=np.uint8)])  # reads past the end stay in bounds

    label_end, regular = _walk_labels(padded, starts, ends)
    sample_start = label_end
    region = ends - sample_start
    regular &= region % _SAMPLE_WIDTH == 0
    counts = np.where(regular, region // _SAMPLE_WIDTH, 0)

    row_series = np.repeat(np.arange(n), counts)
    row_in_series = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    row_start = sample_start[row_series] + row_in_series * _SAMPLE_WIDTH
    rows = padded[row_start[:, None] + np.arange(_SAMPLE_WIDTH)]
    row_ok = (
        (rows[:, 0] == _SAMPLE_TAG)
        & (rows[:, 1] == 16)
        & (rows[:, 2] == 0x09)
        & (rows[:, 11] == 0x10)
        & np.all(rows[:, 12:17] >= 0x80, axis=1)
        & (rows[:, 17] < 0x80)
    )
    if not row_ok.all():
        bad_series = np.unique(row_series[~row_ok])
        regular[bad_series] = False
        keep = regular[row_series]
        rows, row_series = rows[keep], row_series[keep]
        counts = np.where(regular, counts, 0)

    values: Float64Array = np.ascontiguousarray(rows[:, 3:11]).view("<f8").reshape(-1).astype(np.float64, copy=False)
    varint = rows[:, 12:18].astype(np.int64) & 0x7F
    timestamps = (varint << (7 * np.arange(6, dtype=np.int64))).sum(axis=1)

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
    return DecodedSeries(contents, label_bytes, offsets, timestamps, values, histogram_series)


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
        # Label fields longer than 16 KiB (three-byte lengths) are left to the slow path.
        too_long = two_byte & (b2 >= 0x80)
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
