"""The metrics stream's record format, shared by the ingest function (writer side) and the consumers.

One record holds the series of one tenant that fall in one partition bucket, as Prometheus
``TimeSeries`` encodings, so that decoding on the consumer side is the same columnar decoder the
ingest side uses. Layout (LZ4 block-compressed as a whole: it costs less than half of zstd's time on
the ingest path for a slightly larger record, and records are billed per 25 KB unit anyway)::

    b"NCR1" | u8 version=1 | u16 tenant length | tenant | i64 received_ms | u32 n | u32 length[n] | series…
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import cramjam
import numpy as np
import numpy.typing as npt

MAGIC = b"NCR1"
_VERSION = 1
_HEAD = struct.Struct("<4sBH")
_MID = struct.Struct("<qI")
# Kinesis accepts 1 MiB per record; leave headroom for the header.
MAX_RECORD_PAYLOAD = 1_000_000


class RecordFormatError(ValueError):
    """A stream record is not in NovaCron's format (a poison record)."""


@dataclass(frozen=True)
class StreamRecord:
    """A record ready for ``PutRecords``."""

    partition_key: str
    data: bytes


@dataclass(frozen=True)
class SeriesRecord:
    """A decoded record."""

    tenant: str
    received_ms: int
    contents: list[bytes]


def encode_record(
    tenant: str, received_ms: int, contents: Sequence[bytes], lengths: npt.NDArray[np.int64] | None = None
) -> bytes:
    """Encode (and compress) one record's series; ``lengths`` saves measuring them again."""
    tenant_b = tenant.encode()
    if lengths is None:
        lengths = np.fromiter(map(len, contents), dtype=np.int64, count=len(contents))
    raw = b"".join(
        [
            _HEAD.pack(MAGIC, _VERSION, len(tenant_b)),
            tenant_b,
            _MID.pack(received_ms, len(contents)),
            lengths.astype("<u4").tobytes(),
            *contents,
        ]
    )
    return bytes(cramjam.lz4.compress_block(raw))


def decode_record(data: bytes) -> SeriesRecord:
    """Decode one record; RecordFormatError when it is not one of ours."""
    try:
        raw = bytes(cramjam.lz4.decompress_block(data))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise RecordFormatError(f"record is not LZ4-compressed: {exc}") from None
    if len(raw) < _HEAD.size or raw[:4] != MAGIC:
        raise RecordFormatError("record does not start with the NCR1 magic")
    _, version, tenant_len = _HEAD.unpack_from(raw)
    if version != _VERSION:
        raise RecordFormatError(f"unknown record version {version}")
    pos = _HEAD.size
    if len(raw) < pos + tenant_len + _MID.size:
        raise RecordFormatError("record header is truncated")
    tenant = raw[pos : pos + tenant_len].decode(errors="replace")
    pos += tenant_len
    received_ms, n = _MID.unpack_from(raw, pos)
    pos += _MID.size
    if len(raw) < pos + 4 * n:
        raise RecordFormatError("record length table does not match its body")
    lengths = np.frombuffer(raw, dtype="<u4", count=n, offset=pos).astype(np.int64)
    pos += 4 * n
    if pos + int(lengths.sum()) != len(raw):
        raise RecordFormatError("record length table does not match its body")
    bounds = (pos + np.concatenate([[0], np.cumsum(lengths)])).tolist()
    return SeriesRecord(tenant, received_ms, [raw[a:b] for a, b in itertools.pairwise(bounds)])
