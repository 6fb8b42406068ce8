"""The NCB3 sample codec: per-series timestamp and value columns → compact bytes, and back.

Every step is a numpy operation over all samples of a block at once (no Python loop per sample or
per series), so blocks of one sample per series (the writer's) and blocks of long per-series runs
(compaction's) go through the same code.

Timestamps are delta-of-delta per series: regular scrapes give zeros. Each series' first timestamp
and first interval are stored once per series, as differences from the previous series' (series
scraped together give zeros there too).

Values are coded per series in one of three modes, chosen by an estimate of their size:

* ``DEC1`` — decimal scaling (as in ALP): the smallest exponent ``e`` ≤ 12 such that every value is
  exactly ``k / 10**e`` for an integer ``k``; the integers are delta coded (gauges).
* ``DEC2`` — the same integers, delta-of-delta coded (counters growing at a steady rate).
* ``XOR`` — the bits XOR-ed with the previous value's (Gorilla's idea; any double).

Values a decimal series cannot represent (NaN, the staleness marker, ±Inf, -0.0, a stray
full-precision float) are *exceptions*: stored as their exact bits beside the integers, which
carry the previous integer in their place so that the deltas stay small.

Residuals (zigzag coded, so small negatives are small) are packed per series at the smallest byte
width that holds the series' largest one (0 bytes: a constant series or a perfectly regular
scrape), grouped by width and byte-shuffled, and zstd compresses the whole block on top.

Body layout (after the block header; ``S`` series, ``N`` samples, ``X`` exceptions)::

    u32 count[S] | u8 mode[S] | u8 exponent[S] | u8 ts_width[S] | u8 value_width[S]
    | shuffled u64: first ts Δ[S], first interval Δ[S], first value[S], first value delta[S]
    | timestamp residuals by width 1..8, shuffled | value residuals by width 1..8, shuffled
    | u32 exception position[X] | shuffled u64 exception bits[X]
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Arr = npt.NDArray[Any]

DEC1, DEC2, XOR = 0, 1, 2
# A decoder refuses bodies claiming more samples than this (a corrupt count must not allocate gigabytes).
MAX_SAMPLES = 1 << 22
MAX_EXPONENT = 12
# Integers up to 2**53 convert to doubles exactly, so k / 10**e is one correctly rounded division.
_MAX_EXACT = float(2**53)
_POWERS = np.array([10.0**e for e in range(MAX_EXPONENT + 1)], dtype=np.float64)
# A value's byte width is the number of these thresholds it reaches.
_WIDTH_STEPS = np.array([1 << (8 * k) for k in range(8)], dtype=np.uint64)
# What an exception costs against a residual byte: 4 bytes of position and 8 of bits.
_EXCEPTION_COST = 12
_NO_EXPONENT = 255
# Up to this many samples, the exponent search tries all exponents in one pass.
_MATRIX_LIMIT = 2048
# Powers by exponent byte in the one-sample layout; 255 (raw bits) divides by one and is then ignored.
_SINGLE_POWERS = np.ones(256, dtype=np.float64)
_SINGLE_POWERS[: MAX_EXPONENT + 1] = _POWERS
# The first byte of a body says how it is laid out.
_RUNS, _SINGLES = b"\x00", b"\x01"
_META_LIMITS = np.array([[XOR], [MAX_EXPONENT], [8], [8]], dtype=np.uint8)


class CodecError(ValueError):
    """Bytes that do not decode as NCB3 columns."""


def zigzag(r: I64) -> U64:
    """Signed → unsigned so that small magnitudes stay small: 0, -1, 1, -2 → 0, 1, 2, 3."""
    return ((r << 1) ^ (r >> 63)).view(np.uint64)


def unzigzag(z: U64) -> I64:
    """The inverse of :func:`zigzag`."""
    return ((z >> np.uint64(1)) ^ (-(z & np.uint64(1)))).view(np.int64)


def byte_width(u: U64) -> npt.NDArray[np.intp]:
    """Bytes needed for each unsigned value (0 for zero)."""
    return np.searchsorted(_WIDTH_STEPS, u, side="right")


def shuffle(words: U64) -> bytes:
    """The n-th byte of every word together: similar words turn into runs zstd compresses."""
    return np.ascontiguousarray(words.astype("<u8").view(np.uint8).reshape(-1, 8).T).tobytes()


def unshuffle(raw: bytes, count: int, offset: int) -> U64:
    """The inverse of :func:`shuffle`, reading ``count`` words at ``offset``."""
    planes = np.frombuffer(raw, dtype=np.uint8, count=8 * count, offset=offset).reshape(8, count)
    return np.ascontiguousarray(planes.T).view("<u8").reshape(-1).astype(np.uint64)


@dataclass(frozen=True)
class _Layout:
    """Where each sample sits in its series; shared by encoder and decoder."""

    counts: I64
    offsets: I64
    starts: I64  # first sample of each non-empty series
    ne_counts: I64  # counts of the non-empty series
    position: I64  # index of each sample within its series

    @staticmethod
    def of(counts: I64) -> _Layout:
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        nonempty = counts > 0
        starts = offsets[:-1][nonempty]
        ne_counts = counts[nonempty]
        position = np.arange(offsets[-1], dtype=np.int64) - np.repeat(starts, ne_counts)
        return _Layout(counts, offsets, starts, ne_counts, position)

    def per_sample(self, column: Arr) -> Arr:
        """A per-series column repeated for each sample of its series."""
        return np.repeat(column[self.counts > 0], self.ne_counts)

    def series_sum(self, per_sample: Arr) -> npt.NDArray[np.int64]:
        out = np.zeros(len(self.counts), dtype=np.int64)
        if len(self.starts):
            out[self.counts > 0] = np.add.reduceat(per_sample.astype(np.int64), self.starts)
        return out

    def series_max(self, per_sample: Arr) -> npt.NDArray[np.int64]:
        out = np.zeros(len(self.counts), dtype=np.int64)
        if len(self.starts):
            out[self.counts > 0] = np.maximum.reduceat(per_sample.astype(np.int64), self.starts)
        return out

    def first(self, per_sample: Arr, empty: int = 0) -> Arr:
        """Each series' first sample (``empty`` for a series without samples)."""
        out = np.full(len(self.counts), empty, dtype=per_sample.dtype)
        out[self.counts > 0] = per_sample[self.starts]
        return out

    def second(self, per_sample: Arr) -> Arr:
        """Each series' second sample (0 for a series with fewer than two)."""
        out = np.zeros(len(self.counts), dtype=per_sample.dtype)
        two = self.counts >= 2
        out[two] = per_sample[self.offsets[:-1][two] + 1]
        return out

    def segment_cumsum(self, x: I64) -> I64:
        """Running sums restarting at each series (``x`` is zero at series starts)."""
        total = np.cumsum(x)
        return total - np.repeat(total[self.starts], self.ne_counts)


def _previous(x: Arr) -> Arr:
    """``x`` shifted by one, with a zero in front."""
    out = np.empty_like(x)
    out[1:] = x[:-1]
    out[:1] = 0
    return out


def _pack_tails(residuals: U64, tail: Mask, widths: Arr, layout: _Layout) -> bytes:
    """Residuals at ``tail`` positions, grouped by their series' byte width and byte-shuffled."""
    sample_width = layout.per_sample(widths)
    chosen = tail & (sample_width > 0)
    keys = sample_width[chosen]
    order = np.argsort(keys, kind="stable")
    values = residuals[chosen][order]
    sizes = np.bincount(keys, minlength=9)
    parts, low = [], 0
    for width in range(1, 9):
        size = int(sizes[width])
        if size:
            chunk = values[low : low + size].astype("<u8").view(np.uint8).reshape(size, 8)
            parts.append(np.ascontiguousarray(chunk[:, :width].T).tobytes())
            low += size
    return b"".join(parts)


def _unpack_tails(raw: bytes, pos: int, tail: Mask, widths: Arr, layout: _Layout) -> tuple[U64, int]:
    """The inverse of :func:`_pack_tails`: residuals (zero outside the tails) and the next position."""
    n = len(tail)
    out = np.zeros(n, dtype=np.uint64)
    sample_width = layout.per_sample(widths)
    chosen = tail & (sample_width > 0)
    keys = sample_width[chosen]
    if not len(keys):
        return out, pos
    sizes = np.bincount(keys, minlength=9)
    values = np.empty(len(keys), dtype=np.uint64)
    low = 0
    for width in range(1, 9):
        size = int(sizes[width])
        if size:
            planes = np.frombuffer(raw, dtype=np.uint8, count=width * size, offset=pos).reshape(width, size)
            words = np.zeros((size, 8), dtype=np.uint8)
            words[:, :width] = planes.T
            values[low : low + size] = words.view("<u8").reshape(-1)
            low += size
            pos += width * size
    order = np.argsort(keys, kind="stable")
    out[np.flatnonzero(chosen)[order]] = values
    return out, pos


def _decimal_exponents(values: F64, bits: U64) -> tuple[npt.NDArray[np.uint8], I64]:
    """Per sample, the smallest exponent that represents it exactly (255: none) and its integer."""
    if len(values) <= _MATRIX_LIMIT:
        # Few samples: every exponent at once costs fewer numpy calls than narrowing down.
        k, ok = _exact_at(values[:, None], bits[:, None], _POWERS[None, :])
        first = ok.argmax(axis=1)
        rows = np.arange(len(values))
        return np.where(ok[rows, first], first, _NO_EXPONENT).astype(np.uint8), k[rows, first]
    smallest = np.full(len(values), _NO_EXPONENT, dtype=np.uint8)
    integers = np.zeros(len(values), dtype=np.int64)
    todo: I64 = np.arange(len(values))
    for exponent in range(MAX_EXPONENT + 1):
        k, ok = _exact_at(values[todo], bits[todo], _POWERS[exponent])
        smallest[todo[ok]] = exponent
        integers[todo[ok]] = k[ok]
        todo = todo[~ok]
        if not len(todo):
            break
    return smallest, integers


def _exact_at(values: F64, bits: U64, power: F64 | float) -> tuple[I64, Mask]:
    """Integers ``k = round(v * power)`` and where ``k / power`` gives back exactly ``v`` (same bits)."""
    with np.errstate(all="ignore"):
        scaled = np.round(values * power)
        fits = np.abs(scaled) <= _MAX_EXACT
        k = np.where(fits, scaled, 0.0).astype(np.int64)
        ok = fits & ((k.astype(np.float64) / power).view(np.uint64) == bits)
    return k, ok


@dataclass(frozen=True)
class _Series:
    """What the encoder decided per series, in the order the body stores it."""

    counts: I64
    mode: npt.NDArray[np.uint8]
    exponent: Arr
    ts_width: Arr
    value_width: Arr
    heads: U64  # (4, series): first ts Δ, first interval Δ, first value, first value delta


def _body(series: _Series, exception_at: I64, exception_bits: U64, tails: bytes) -> tuple[bytes, int]:
    meta = np.stack([series.mode, series.exponent, series.ts_width, series.value_width]).astype(np.uint8)
    heads = np.ascontiguousarray(series.heads.astype("<u8").view(np.uint8).reshape(4, -1, 8).transpose(0, 2, 1))
    body = b"".join(
        [
            series.counts.astype("<u4").tobytes(),
            meta.tobytes(),
            heads.tobytes(),
            tails,
            exception_at.astype("<u4").tobytes(),
            shuffle(exception_bits),
        ]
    )
    return body, len(exception_at)


def _across(column: I64) -> U64:
    """A per-series column as zigzag differences from the previous series' value."""
    return zigzag(column - _previous(column))


def encode_columns(counts: I64, timestamps: I64, values: F64) -> tuple[bytes, int]:
    """The NCB3 body of samples sorted by series then time; returns it and its exception count."""
    if len(timestamps) == len(counts) and (counts == 1).all():
        return _encode_singles(timestamps, values), 0
    body, exceptions = _encode_runs(counts, timestamps, values)
    return _RUNS + body, exceptions


def _encode_singles(timestamps: I64, values: F64) -> bytes:
    """One sample per series (the writer's blocks): exact decimals, or raw bits where there is none."""
    bits = values.view(np.uint64)
    smallest, k = _decimal_exponents(values, bits)
    base = timestamps.min() if len(timestamps) else np.int64(0)
    columns = np.stack(
        [(timestamps - base).view(np.uint64), np.where(smallest != _NO_EXPONENT, k.view(np.uint64), bits)]
    )
    planes = columns.astype("<u8").view(np.uint8).reshape(2, -1, 8).transpose(0, 2, 1)
    return b"".join([_SINGLES, struct.pack("<q", base), smallest.tobytes(), np.ascontiguousarray(planes).tobytes()])


def _encode_runs(counts: I64, timestamps: I64, values: F64) -> tuple[bytes, int]:
    layout = _Layout.of(counts)
    n = len(timestamps)
    position = layout.position
    head = position == 0

    # Timestamps: first timestamp and first interval per series, then delta-of-delta.
    delta = timestamps - _previous(timestamps)
    dod = delta - _previous(delta)
    ts_residual = np.where(position >= 2, zigzag(dod), np.uint64(0))
    ts_width = layout.series_max(byte_width(ts_residual))

    # Values: the decimal candidate for every series, with exceptions where it cannot be exact.
    bits = values.view(np.uint64)
    smallest, _ = _decimal_exponents(values, bits)
    representable = smallest != _NO_EXPONENT
    exponent = layout.series_max(np.where(representable, smallest, 0))
    k, exact = _exact_at(values, bits, _POWERS[layout.per_sample(exponent)])
    filled = np.where(exact, np.arange(n), 0)
    np.maximum.accumulate(filled, out=filled)
    k = np.where(exact[filled], k[filled], 0)
    k_delta = k - _previous(k)
    k_dod = k_delta - _previous(k_delta)
    dec1 = np.where(head, np.uint64(0), zigzag(k_delta))
    dec2 = np.where(position >= 2, zigzag(k_dod), np.uint64(0))
    xor = np.where(head, np.uint64(0), bits ^ _previous(bits))

    # Estimated bytes per mode (zstd does better on small residuals, but the ranking holds).
    first_k = zigzag(layout.first(k))
    first_k_delta = zigzag(layout.second(k_delta))
    exceptions = layout.series_sum(~exact)
    head_cost = byte_width(first_k) + _EXCEPTION_COST * exceptions
    costs = np.stack(
        [
            head_cost + layout.series_sum(byte_width(dec1)),
            head_cost + byte_width(first_k_delta) + layout.series_sum(byte_width(dec2)),
            8 + layout.series_sum(byte_width(xor)),
        ]
    )
    costs[:2, exceptions == counts] = np.iinfo(np.int64).max
    mode = np.argmin(costs, axis=0).astype(np.uint8)

    sample_mode = layout.per_sample(mode)
    value_residual = np.where(sample_mode == DEC1, dec1, np.where(sample_mode == DEC2, dec2, xor))
    value_width = layout.series_max(byte_width(value_residual))
    heads = np.stack(
        [
            _across(layout.first(timestamps)),
            _across(layout.second(delta)),
            np.where(mode == XOR, layout.first(bits), first_k),
            np.where(mode == DEC2, first_k_delta, np.uint64(0)),
        ]
    )
    exception_at = np.flatnonzero(~exact & (sample_mode != XOR))
    value_tail = np.where(sample_mode == DEC2, position >= 2, position >= 1)
    tails = _pack_tails(ts_residual, position >= 2, ts_width, layout) + _pack_tails(
        value_residual, value_tail, value_width, layout
    )
    series = _Series(counts, mode, np.where(mode == XOR, 0, exponent), ts_width, value_width, heads)
    return _body(series, exception_at, bits[exception_at], tails)


def decode_columns(raw: bytes, pos: int, n_series: int, n_samples: int, n_exceptions: int) -> tuple[I64, I64, F64]:
    """Sample counts per series, timestamps and values of an NCB3 body starting at ``pos``.

    Raises CodecError if the bytes are not a well-formed body.
    """
    try:
        if raw[pos : pos + 1] == _SINGLES and n_samples == n_series and not n_exceptions:
            return _decode_singles(raw, pos + 1, n_series)
        if raw[pos : pos + 1] != _RUNS:
            raise CodecError("unknown body layout")
        return _decode_columns(raw, pos + 1, n_series, n_samples, n_exceptions)
    except (ValueError, IndexError) as exc:
        raise CodecError(f"malformed block body: {exc}") from None


def _decode_singles(raw: bytes, pos: int, n: int) -> tuple[I64, I64, F64]:
    (base,) = struct.unpack_from("<q", raw, pos)
    exponent = np.frombuffer(raw, dtype=np.uint8, count=n, offset=pos + 8)
    planes = np.frombuffer(raw, dtype=np.uint8, count=16 * n, offset=pos + 8 + n)
    if pos + 8 + 17 * n != len(raw):
        raise CodecError("block body has trailing or missing bytes")
    columns = np.ascontiguousarray(planes.reshape(2, 8, n).transpose(0, 2, 1)).view("<i8")[..., 0]
    decimal = columns[1].astype(np.float64) / _SINGLE_POWERS[exponent]
    values = np.where(exponent == _NO_EXPONENT, columns[1].view(np.float64), decimal)
    return np.ones(n, dtype=np.int64), columns[0] + base, values


def _decode_columns(raw: bytes, pos: int, n_series: int, n_samples: int, n_exceptions: int) -> tuple[I64, I64, F64]:
    counts = np.frombuffer(raw, dtype="<u4", count=n_series, offset=pos).astype(np.int64)
    meta = np.frombuffer(raw, dtype=np.uint8, count=4 * n_series, offset=pos + 4 * n_series).reshape(4, n_series)
    planes = np.frombuffer(raw, dtype=np.uint8, count=32 * n_series, offset=pos + 8 * n_series)
    heads = np.ascontiguousarray(planes.reshape(4, 8, n_series).transpose(0, 2, 1)).view("<u8")[..., 0]
    pos += 40 * n_series
    if (meta > _META_LIMITS).any():
        raise CodecError("series header out of range")
    mode, exponent, ts_width, value_width = meta
    first_ts = np.cumsum(unzigzag(heads[0]))
    first_value = heads[2].astype(np.uint64)
    if int(counts.sum()) != n_samples or n_samples > MAX_SAMPLES:
        raise CodecError("sample counts do not add up")
    runs = _Heads(mode, exponent, first_ts, np.cumsum(unzigzag(heads[1])), first_value, heads[3].astype(np.uint64))
    timestamps, bits, pos = _decode_runs(raw, pos, _Layout.of(counts), runs, ts_width, value_width)
    if n_exceptions:
        exception_at = np.frombuffer(raw, dtype="<u4", count=n_exceptions, offset=pos).astype(np.int64)
        exception_bits = unshuffle(raw, n_exceptions, pos + 4 * n_exceptions)
        pos += 12 * n_exceptions
        if exception_at.max() >= n_samples:
            raise CodecError("exception outside the block")
        bits[exception_at] = exception_bits
    if pos != len(raw):
        raise CodecError("block body has trailing or missing bytes")
    return counts, timestamps, bits.view(np.float64)


@dataclass(frozen=True)
class _Heads:
    """The per-series columns a run decoder starts from."""

    mode: npt.NDArray[np.uint8]
    exponent: npt.NDArray[np.uint8]
    first_ts: I64
    first_interval: I64
    first_value: U64
    first_value_delta: U64


def _decode_runs(
    raw: bytes,
    pos: int,
    layout: _Layout,
    heads: _Heads,
    ts_width: npt.NDArray[np.uint8],
    value_width: npt.NDArray[np.uint8],
) -> tuple[I64, U64, int]:
    position = layout.position
    with_two = layout.counts >= 2
    second_at = layout.offsets[:-1][with_two] + 1

    ts_residual, pos = _unpack_tails(raw, pos, position >= 2, ts_width, layout)
    dod = unzigzag(ts_residual)
    dod[second_at] = heads.first_interval[with_two]
    delta = layout.segment_cumsum(dod)
    timestamps = layout.segment_cumsum(delta) + layout.per_sample(heads.first_ts)

    sample_mode = layout.per_sample(heads.mode)
    value_tail = np.where(sample_mode == DEC2, position >= 2, position >= 1)
    value_residual, pos = _unpack_tails(raw, pos, value_tail, value_width, layout)
    is_xor = sample_mode == XOR
    any_xor = bool(is_xor.any())
    bits: U64 = np.empty(len(position), dtype=np.uint64)
    if any_xor:
        # Prefix XOR over the whole block, undone at each series start (residuals are 0 there).
        prefix = np.bitwise_xor.accumulate(value_residual)
        bits = prefix ^ np.repeat(prefix[layout.starts], layout.ne_counts) ^ layout.per_sample(heads.first_value)
    if not any_xor or not is_xor.all():
        steps = unzigzag(value_residual)
        two = with_two & (heads.mode == DEC2)
        steps[layout.offsets[:-1][two] + 1] = unzigzag(heads.first_value_delta[two])
        k = layout.segment_cumsum(steps)
        if (heads.mode == DEC2).any():
            k = np.where(sample_mode == DEC2, layout.segment_cumsum(k), k)
        k += layout.per_sample(unzigzag(heads.first_value))
        decimal = (k.astype(np.float64) / _POWERS[layout.per_sample(heads.exponent)]).view(np.uint64)
        bits = np.where(is_xor, bits, decimal) if any_xor else decimal
    return timestamps, bits, pos
