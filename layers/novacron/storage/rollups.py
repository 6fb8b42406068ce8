"""Rollups: per series and fixed interval (1 minute, 5 minutes, 1 hour), the aggregates queries need.

Intervals are left-open, ``(k * R, (k + 1) * R]``, like PromQL's range windows ``(t - range, t]``: a
window whose range and end are multiples of ``R`` is exactly a union of intervals.

Each interval of a series with samples holds ``count``, ``sum``, ``min``, ``max``, ``first``, ``last``,
``inc`` (the counter increase between consecutive samples *within* the interval; a drop is a counter
reset: the new value counts, as in PromQL) and ``first_ts`` (when its first sample was), stamped with
the time of its last sample.
Intervals depend on nothing outside themselves, so a window can be rolled up (or rolled up again
after late samples) on its own, and the same function serves the compactor and the read path's
on-the-fly rollup of data not compacted yet. Staleness markers are not samples here (range
functions never see them).

Queries read rollups through *views* (see ``view_samples``): samples a range function can be
evaluated over as if they were raw, e.g. a counter rebuilt from ``first``/``last``/``inc`` for
``rate``, or the interval maxima for ``max_over_time``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from novacron.series import STALE_NAN_BITS, SeriesSamples
from novacron.storage.blocks import Block, BlockFormatError, decode_parsed, encode_block, parse_block

RESOLUTIONS_MS = {"1m": 60_000, "5m": 300_000, "1h": 3_600_000}
COLUMNS = ("count", "sum", "min", "max", "first", "last", "inc", "first_ts")

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]


@dataclass
class Rollup:
    """Rolled-up intervals of many series, sorted by (series, interval); series ``i`` owns rows
    ``offsets[i]:offsets[i+1]``. ``timestamps`` are each interval's last sample time."""

    resolution_ms: int
    series: U64
    offsets: I64
    timestamps: I64
    columns: dict[str, F64]

    def __len__(self) -> int:
        return len(self.timestamps)


def roll_up(block: Block, resolution_ms: int) -> Rollup:
    """The rollup of a block's samples (sorted by series, then time) at ``resolution_ms``."""
    counts = np.diff(block.offsets)
    owner = np.repeat(np.arange(len(block.series)), counts)
    keep = block.values.view(np.uint64) != np.uint64(STALE_NAN_BITS)
    owner, ts, values = owner[keep], block.timestamps[keep], block.values[keep]
    if len(ts) == 0:
        return Rollup(resolution_ms, block.series[:0], np.zeros(1, np.int64), ts, {c: values for c in COLUMNS})
    interval = (ts - 1) // resolution_ms  # (k*R, (k+1)*R]: left-open, as PromQL's windows
    # A new group starts wherever the series or the interval changes (rows are sorted by both).
    starts = np.flatnonzero(np.concatenate([[True], (owner[1:] != owner[:-1]) | (interval[1:] != interval[:-1])]))
    ends = np.append(starts[1:], len(ts))
    steps = np.diff(values)
    # A step counts toward its interval's increase only if both samples are in that group.
    within = np.ones(len(values), dtype=bool)
    within[starts] = False
    gains = np.zeros(len(values))
    gains[1:] = np.where(steps >= 0, steps, values[1:])  # a drop is a reset: the new value is the increase
    gains[~within] = 0.0
    group_owner = owner[starts]
    series_ids, first_group = np.unique(group_owner, return_index=True)
    offsets = np.append(first_group, len(starts)).astype(np.int64)
    return Rollup(
        resolution_ms,
        block.series[series_ids],
        offsets,
        ts[ends - 1],
        {
            "count": (ends - starts).astype(np.float64),
            "sum": np.add.reduceat(values, starts),
            "min": np.fmin.reduceat(values, starts),
            "max": np.fmax.reduceat(values, starts),
            "first": values[starts],
            "last": values[ends - 1],
            "inc": np.add.reduceat(gains, starts),
            "first_ts": ts[starts].astype(np.float64),  # exact: milliseconds stay below 2**53
        },
    )


# --- views --------------------------------------------------------------------------------------

# Range functions that can be answered from rollups, and the view each reads. count_over_time and
# avg_over_time are evaluated as sums of the count (and sum) views by the engine.
VIEW_OF_FUNCTION = {
    "rate": "counter",
    "increase": "counter",
    "max_over_time": "max",
    "min_over_time": "min",
    "sum_over_time": "sum",
    "count_over_time": "count",
    "avg_over_time": "sum",
    "last_over_time": "last",
}


def view_samples(rollup: Rollup, view: str) -> tuple[I64, F64, I64]:
    """Every series' samples under ``view``, laid end to end: (timestamps, values, offsets per series).

    A plain view (``sum``, ``max``, ...) is one sample per interval, at the interval's last sample time.
    ``counter`` gives each interval's first and last sample as they were, so that ``rate`` and
    ``increase`` over whole intervals see the raw answer's first and last samples (with their values,
    which the extrapolation to a counter's zero point reads) and the same increase between them: the
    engine's own reset handling bridges intervals, and an interval with a reset inside gets two
    points before its last sample carrying its increase (up by ``inc - last``, then a reset to 0).
    """
    ts = rollup.timestamps
    if view != "counter":
        return ts, rollup.columns[view], rollup.offsets
    first, last, inc = (rollup.columns[c] for c in ("first", "last", "inc"))
    first_ts = rollup.columns["first_ts"].astype(np.int64)
    plain_gain = np.where(last >= first, last - first, last)
    reset = ~np.isclose(inc, plain_gain, rtol=1e-9, atol=0.0) & (ts - first_ts >= 3)
    stamps = np.column_stack([first_ts, ts - 2, ts - 1, ts])
    values = np.column_stack([first, first + inc - last, np.zeros(len(ts)), last])
    keep = np.column_stack([first_ts < ts, reset, reset, np.ones(len(ts), dtype=bool)])
    # Row r's samples start at row_starts[r]; a series' rows are offsets[i]..offsets[i + 1].
    row_starts = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int64)
    return stamps[keep], values[keep], row_starts[rollup.offsets]


def rollup_series(rollup: Rollup, view: str, labels_of: dict[int, tuple[tuple[str, str], ...]]) -> list[SeriesSamples]:
    """Every series of ``rollup`` with labels in ``labels_of`` (by numeric id), under ``view``."""
    ts, values, offsets = view_samples(rollup, view)
    bounds = offsets.tolist()
    out = []
    for i, sid in enumerate(rollup.series.tolist()):
        labels = labels_of.get(sid)
        lo, hi = bounds[i], bounds[i + 1]
        if labels is not None and hi > lo:
            out.append(SeriesSamples(labels, ts[lo:hi], values[lo:hi]))
    return out


def select_rows(rollup: Rollup, keep: npt.NDArray[np.bool_]) -> Rollup:
    """The rows of ``rollup`` where ``keep`` holds (series left without rows are dropped)."""
    owner = np.repeat(np.arange(len(rollup.series)), np.diff(rollup.offsets))
    counts = np.bincount(owner[keep], minlength=len(rollup.series))
    present = counts > 0
    offsets = np.concatenate([[0], np.cumsum(counts[present])]).astype(np.int64)
    columns = {name: values[keep] for name, values in rollup.columns.items()}
    return Rollup(rollup.resolution_ms, rollup.series[present], offsets, rollup.timestamps[keep], columns)


def empty_block() -> Block:
    """A block without series."""
    return Block(np.zeros(0, np.uint64), np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))


def concatenate(parts: list[Rollup]) -> Rollup:
    """Rollups of consecutive windows (in time order, same resolution) as one, sorted by (series, time)."""
    if len(parts) == 1:
        return parts[0]
    series = np.concatenate([np.repeat(p.series, np.diff(p.offsets)) for p in parts])
    ts = np.concatenate([p.timestamps for p in parts])
    order = np.lexsort((ts, series))
    series, ts = series[order], ts[order]
    ids, first = np.unique(series, return_index=True)
    columns = {c: np.concatenate([p.columns[c] for p in parts])[order] for c in COLUMNS}
    offsets = np.append(first, len(series)).astype(np.int64)
    return Rollup(parts[0].resolution_ms, ids.astype(np.uint64), offsets, ts, columns)


# --- storage --------------------------------------------------------------------------------------

_MAGIC = b"NCU1"
_HEAD = struct.Struct("<4sIIB")  # magic, resolution, series, columns
_PLAIN, _XORED = 0, 1

# Columns that mostly repeat another for counters (the minimum is the first value, the maximum the last,
# the increase the difference): stored, when it is smaller, as the XOR of their bits with that reference,
# which is all zeros then, and exact whatever the values.
_REFERENCE: dict[str, Callable[[dict[str, F64]], F64]] = {
    "min": lambda c: c["first"],
    "max": lambda c: c["last"],
    "inc": lambda c: c["last"] - c["first"],
}


def _xor(values: F64, reference: F64) -> F64:
    return (values.view(np.uint64) ^ reference.view(np.uint64)).view(np.float64)


def encode_rollup(rollup: Rollup) -> bytes:
    """A rollup as one item: the series ids, then each column as a block over the same rows."""
    ids = rollup.series.astype("<u8")
    parts = [_HEAD.pack(_MAGIC, rollup.resolution_ms // 1000, len(ids), len(COLUMNS)), ids.tobytes()]

    def block_of(values: F64) -> bytes:
        return encode_block(Block(rollup.series, rollup.offsets, rollup.timestamps, values))[0]

    for name in COLUMNS:
        mode, payload = _PLAIN, block_of(rollup.columns[name])
        if name in _REFERENCE:
            xored = block_of(_xor(rollup.columns[name], _REFERENCE[name](rollup.columns)))
            if len(xored) < len(payload):
                mode, payload = _XORED, xored
        parts += [struct.pack("<BI", mode, len(payload)), payload]
    return b"".join(parts)


def decode_rollup(data: bytes) -> Rollup:
    """The rollup of ``encode_rollup``'s bytes; BlockFormatError if they are not one."""
    try:
        magic, resolution_s, n_series, n_columns = _HEAD.unpack_from(data)
        ids = np.frombuffer(data, dtype="<u8", count=n_series, offset=_HEAD.size).astype(np.uint64)
    except (struct.error, ValueError) as exc:
        raise BlockFormatError(f"not a rollup: {exc}") from None
    if magic != _MAGIC or n_columns != len(COLUMNS):
        raise BlockFormatError("not a rollup: bad header")
    pos = _HEAD.size + 8 * n_series
    columns: dict[str, F64] = {}
    modes: dict[str, int] = {}
    block: Block | None = None
    for name in COLUMNS:
        try:
            modes[name], size = struct.unpack_from("<BI", data, pos)
        except struct.error as exc:
            raise BlockFormatError(f"not a rollup: {exc}") from None
        block = decode_parsed(parse_block(data[pos + 5 : pos + 5 + size]), lambda _key: ids)
        columns[name] = block.values
        pos += 5 + size
    assert block is not None
    if pos != len(data):
        raise BlockFormatError("not a rollup: trailing bytes")
    for name, mode in modes.items():  # references (first, last) are always plain
        if mode == _XORED:
            columns[name] = _xor(columns[name], _REFERENCE[name](columns))
    return Rollup(resolution_s * 1000, ids, block.offsets, block.timestamps, columns)
