"""The hot tier's block: many series' samples in one DynamoDB item, columnar and compressed.

Samples are sorted by (series, timestamp). Blocks are written as NCB3 (``novacron.storage.codec``):
delta-of-delta timestamps per series, values as decimal-scaled integers (delta or delta-of-delta
coded) or XOR-ed bits per series, residuals packed by byte width and byte-shuffled, zstd on top.
Blocks written before NCB3 (NCB2: delta timestamps and XOR-ed values over the whole block,
byte-shuffled, zstd) are still read.

The series ids of a block are not in the block: the same series arrive together scrape after
scrape, so their sorted id list is stored once as a *series table* (keyed by its hash) and blocks
refer to it. With one sample per series per block, that removes 8 of every ~13 bytes per sample.

Layout of a block before compression::

    b"NCB3" | 8-byte series-table key | u32 n_series | u32 n_samples | u32 n_exceptions | codec body
    b"NCB2" | 8-byte series-table key | u32 n_series | u32 n_samples | u32 count[n_series]
            | shuffled i64 timestamp deltas | shuffled u64 value xors

and of a series table: zstd of the little-endian u64 ids.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass

import cramjam
import numpy as np
import numpy.typing as npt

from novacron.storage.codec import CodecError, decode_columns, encode_columns, shuffle, unshuffle

_MAGIC = b"NCB2"
_HEAD = struct.Struct("<4s8sII")
_MAGIC_V3 = b"NCB3"
_HEAD_V3 = struct.Struct("<4s8sIII")

# A block spans at most this much time, so a range read knows how far back to look for blocks
# that overlap its start (blocks are keyed by their first timestamp).
MAX_BLOCK_SPAN_MS = 10 * 60 * 1000
# DynamoDB items are limited to 400 KB; this many samples stay well below it even uncompressed.
MAX_BLOCK_SAMPLES = 16_000


class BlockFormatError(ValueError):
    """Bytes that are not a block."""


@dataclass
class Block:
    """Decoded block contents. Series ``i`` owns samples ``offsets[i]:offsets[i+1]``."""

    series: npt.NDArray[np.uint64]
    offsets: npt.NDArray[np.int64]
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    @property
    def min_ts(self) -> int:
        return int(self.timestamps.min())

    @property
    def max_ts(self) -> int:
        return int(self.timestamps.max())


def series_table_key(series: npt.NDArray[np.uint64]) -> str:
    """The key of a series table: 16 hex digits of a hash of the ids."""
    return hashlib.blake2b(series.astype("<u8").tobytes(), digest_size=8).hexdigest()


def encode_series_table(series: npt.NDArray[np.uint64]) -> bytes:
    """A block's series ids, stored once for every block that has the same ones."""
    return bytes(cramjam.zstd.compress(series.astype("<u8").tobytes(), level=3))


def decode_series_table(data: bytes) -> npt.NDArray[np.uint64]:
    """The ids of a series table."""
    try:
        raw = bytes(cramjam.zstd.decompress(data))
    except Exception as exc:
        raise BlockFormatError(f"not a series table: {exc}") from None
    if len(raw) % 8:
        raise BlockFormatError("series table length is not a multiple of 8")
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64)


def encode_block(block: Block) -> tuple[bytes, str]:
    """Serialize and compress a block (samples sorted by series, then time); returns its series-table key.

    The caller stores the series table (``encode_series_table(block.series)``) under that key.
    """
    table_key = series_table_key(block.series)
    counts = np.diff(block.offsets).astype(np.int64)
    timestamps = np.ascontiguousarray(block.timestamps, dtype=np.int64)
    values = np.ascontiguousarray(block.values, dtype=np.float64)
    body, n_exceptions = encode_columns(counts, timestamps, values)
    head = _HEAD_V3.pack(_MAGIC_V3, bytes.fromhex(table_key), len(block.series), len(timestamps), n_exceptions)
    return bytes(cramjam.zstd.compress(head + body, level=3)), table_key


def encode_block_v2(block: Block) -> tuple[bytes, str]:
    """The NCB2 encoding of a block: kept to compare against and to test that old blocks still read."""
    n_series = len(block.series)
    n_samples = len(block.timestamps)
    table_key = series_table_key(block.series)
    deltas = np.diff(block.timestamps, prepend=np.int64(0)).astype(np.int64)
    bits = block.values.view(np.uint64)
    xors = bits ^ np.concatenate([np.zeros(1, dtype=np.uint64), bits[:-1]])
    counts = np.diff(block.offsets).astype("<u4")
    raw = b"".join(
        [
            _HEAD.pack(_MAGIC, bytes.fromhex(table_key), n_series, n_samples),
            counts.tobytes(),
            shuffle(deltas.view(np.uint64)),
            shuffle(xors),
        ]
    )
    return bytes(cramjam.zstd.compress(raw, level=3)), table_key


@dataclass(frozen=True)
class ParsedBlock:
    """A decompressed block whose header has been read: enough to know which series table it needs."""

    raw: bytes
    table_key: str
    n_series: int
    n_samples: int


def decode_block(data: bytes, series_table: Callable[[str], npt.NDArray[np.uint64]]) -> Block:
    """Decompress and deserialize a block; ``series_table`` returns the ids of a table key."""
    return decode_parsed(parse_block(data), series_table)


def decode_parsed(parsed: ParsedBlock, series_table: Callable[[str], npt.NDArray[np.uint64]]) -> Block:
    """Deserialize a parsed block with the ids of its series table."""
    raw, table_key, n_series, n_samples = parsed.raw, parsed.table_key, parsed.n_series, parsed.n_samples
    series = series_table(table_key)
    if len(series) != n_series:
        raise BlockFormatError(f"series table {table_key} has {len(series)} ids, the block needs {n_series}")
    if raw[:4] == _MAGIC_V3:
        n_exceptions = _HEAD_V3.unpack_from(raw)[4]
        try:
            counts, timestamps, values = decode_columns(raw, _HEAD_V3.size, n_series, n_samples, n_exceptions)
        except CodecError as exc:
            raise BlockFormatError(str(exc)) from None
        return Block(series, _offsets(counts), timestamps, values)
    counts = np.frombuffer(raw, dtype="<u4", count=n_series, offset=_HEAD.size).astype(np.int64)
    pos = _HEAD.size + 4 * n_series
    deltas = unshuffle(raw, n_samples, pos).view(np.int64)
    xors = unshuffle(raw, n_samples, pos + 8 * n_samples)
    values = np.bitwise_xor.accumulate(xors).view(np.float64) if n_samples else np.zeros(0, dtype=np.float64)
    return Block(series, _offsets(counts), np.cumsum(deltas), values)


def _offsets(counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def parse_block(data: bytes) -> ParsedBlock:
    """Decompress a block and read its header."""
    try:
        raw = bytes(cramjam.zstd.decompress(data))
        if raw[:4] == _MAGIC_V3:
            magic, table_key, n_series, n_samples, _ = _HEAD_V3.unpack_from(raw)
            return ParsedBlock(raw, table_key.hex(), n_series, n_samples)
        magic, table_key, n_series, n_samples = _HEAD.unpack_from(raw)
    except Exception as exc:
        raise BlockFormatError(f"not a block: {exc}") from None
    if magic != _MAGIC or len(raw) != _HEAD.size + 4 * n_series + 16 * n_samples:
        raise BlockFormatError("block header does not match its contents")
    return ParsedBlock(raw, table_key.hex(), n_series, n_samples)


def block_sort_key(min_ts: int, sequence: str, part: int) -> str:
    """The sort key of a block: its first timestamp, then where it came from (for idempotency)."""
    return f"{min_ts:013d}#{sequence}#{part:03d}"


def block_partition_key(tenant: str, bucket: int) -> str:
    """The partition key of a tenant's bucket in the hot tier."""
    return f"{tenant}#{bucket:02d}"


def compacted_partition_key(tenant: str, bucket: int) -> str:
    """The partition key of a bucket's compacted raw blocks (the compactor's, keyed by window start)."""
    return f"{tenant}#{bucket:02d}#raw"


# Compaction windows (storage/compaction.py) and when the writer treats a block as late for one.
COMPACTION_WINDOW_MS = 2 * 3_600_000
COMPACTION_GRACE_MS = 10 * 60_000
# A block whose window ended this long ago may be compacted before it is stored (the compactor waits
# the grace period; a writer invocation can take up to its 2-minute timeout): it goes to the late partition.
LATE_AFTER_MS = COMPACTION_GRACE_MS - 3 * 60_000
# How far the clocks of the writer, compactor and reader functions are assumed to disagree at most.
CLOCK_SKEW_MS = 60_000


def window_settled(window_start: int, now_ms: int) -> bool:
    """Whether the window starting at ``window_start`` may, at ``now_ms``, have been compacted or have
    late blocks. Before that only the writer's blocks hold its samples, so readers look nowhere else."""
    return window_start + COMPACTION_WINDOW_MS + LATE_AFTER_MS - CLOCK_SKEW_MS < now_ms


def window_starts(timestamps: npt.NDArray[np.int64], window_ms: int = COMPACTION_WINDOW_MS) -> npt.NDArray[np.int64]:
    """The start of the window of each timestamp. Windows, like rollup intervals and PromQL's range
    windows, are left-open: ``(start, start + window_ms]``, so a window of whole intervals is a union
    of them even for samples exactly on a boundary (CloudWatch's, at the start of each minute)."""
    return (timestamps - 1) // window_ms * window_ms


def late_partition_key(tenant: str, bucket: int) -> str:
    """The partition key of a bucket's late blocks: samples of windows the compactor may have done."""
    return f"{tenant}#{bucket:02d}#late"


def rollup_partition_key(tenant: str, bucket: int, resolution: str) -> str:
    """The partition key of a bucket's rollups at ``resolution`` (``1m``, ``5m``, ``1h``)."""
    return f"{tenant}#{bucket:02d}#{resolution}"


def table_partition_key(tenant: str, bucket: int) -> str:
    """The partition key of a bucket's series tables (beside its blocks, never matched by their reads)."""
    return f"{tenant}#{bucket:02d}#series"


def sort_key_range(start_ms: int, end_ms: int, span_ms: int = MAX_BLOCK_SPAN_MS) -> tuple[str, str]:
    """Sort-key bounds of the items keyed by their first time, spanning at most ``span_ms``, that can
    hold samples in [start_ms, end_ms]."""
    low = max(0, start_ms - span_ms)
    return f"{low:013d}", f"{max(0, end_ms):013d}#~"


# --- compacted blocks: the same encoding, carrying their own series ids ----------------------------

# The compactor's blocks hold hundreds of samples per series: 8 bytes of id per series cost little
# there, and keeping them inside saves a series-table lookup and a table that must outlive the block.
_MAGIC_STANDALONE = b"NCS1"


def encode_standalone_block(block: Block) -> bytes:
    """A block with its series ids inside (no series table)."""
    payload, _ = encode_block(block)
    return b"".join(
        [_MAGIC_STANDALONE, struct.pack("<I", len(block.series)), block.series.astype("<u8").tobytes(), payload]
    )


def decode_standalone_block(data: bytes) -> Block:
    """The block of ``encode_standalone_block``'s bytes; BlockFormatError if they are not one."""
    if data[:4] != _MAGIC_STANDALONE or len(data) < 8:
        raise BlockFormatError("not a standalone block")
    (n_series,) = struct.unpack_from("<I", data, 4)
    end = 8 + 8 * n_series
    if len(data) < end:
        raise BlockFormatError("standalone block shorter than its series ids")
    ids = np.frombuffer(data, dtype="<u8", count=n_series, offset=8).astype(np.uint64)
    return decode_parsed(parse_block(data[end:]), lambda _key: ids)
