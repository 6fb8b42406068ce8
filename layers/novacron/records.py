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
_RECEIVED = struct.Struct("<q")
_COUNT = struct.Struct("<I")
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
    if lengths is None:
        lengths = np.fromiter(map(len, contents), dtype=np.int64, count=len(contents))
    return compress_framed(
        MAGIC, tenant, received_ms, [_COUNT.pack(len(contents)), lengths.astype("<u4").tobytes(), *contents]
    )


def compress_framed(magic: bytes, tenant: str, received_ms: int, body: Sequence[bytes]) -> bytes:
    """A stream record: ``magic | u8 version | u16 tenant length | tenant | i64 received_ms | body``, LZ4-compressed.

    The framing every NovaCron stream shares (metrics ``NCR1``, spans ``NCS1``); ``body`` is the kind's own.
    """
    tenant_b = tenant.encode()
    head = [_HEAD.pack(magic, _VERSION, len(tenant_b)), tenant_b, _RECEIVED.pack(received_ms)]
    return bytes(cramjam.lz4.compress_block(b"".join([*head, *body])))


def open_framed(data: bytes, magic: bytes, kind: str = "record") -> tuple[str, int, bytes, int]:
    """Decompress a framed record and read its header: (tenant, received_ms, raw, where the body starts).

    RecordFormatError when it is not one of ours (a poison record); ``kind`` names it in messages.
    """
    try:
        raw = bytes(cramjam.lz4.decompress_block(data))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise RecordFormatError(f"{kind} is not LZ4-compressed: {exc}") from None
    if len(raw) < _HEAD.size or raw[:4] != magic:
        raise RecordFormatError(f"{kind} does not start with the {magic.decode()} magic")
    _, version, tenant_len = _HEAD.unpack_from(raw)
    if version != _VERSION:
        raise RecordFormatError(f"unknown {kind} version {version}")
    pos = _HEAD.size + tenant_len
    if len(raw) < pos + _RECEIVED.size:
        raise RecordFormatError(f"{kind} header is truncated")
    tenant = raw[_HEAD.size : pos].decode(errors="replace")
    (received_ms,) = _RECEIVED.unpack_from(raw, pos)
    return tenant, received_ms, raw, pos + _RECEIVED.size


def decode_record(data: bytes) -> SeriesRecord:
    """Decode one record; RecordFormatError when it is not one of ours."""
    tenant, received_ms, raw, pos = open_framed(data, MAGIC)
    if len(raw) < pos + _COUNT.size:
        raise RecordFormatError("record header is truncated")
    (n,) = _COUNT.unpack_from(raw, pos)
    pos += _COUNT.size
    if len(raw) < pos + 4 * n:
        raise RecordFormatError("record length table does not match its body")
    lengths = np.frombuffer(raw, dtype="<u4", count=n, offset=pos).astype(np.int64)
    pos += 4 * n
    if pos + int(lengths.sum()) != len(raw):
        raise RecordFormatError("record length table does not match its body")
    bounds = (pos + np.concatenate([[0], np.cumsum(lengths)])).tolist()
    return SeriesRecord(tenant, received_ms, [raw[a:b] for a, b in itertools.pairwise(bounds)])
