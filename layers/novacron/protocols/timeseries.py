"""Prometheus ``TimeSeries`` encodings built field by field, for the paths that make series themselves.

The agent's StatsD aggregator and scrape parser, the OTLP and CloudWatch mappings all turn their input
into remote-write ``TimeSeries`` bytes; they build them here without a protobuf object per sample.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from novacron.protocols.remote_write_pb import Label, TimeSeries
from novacron.protocols.remote_write_v2 import uvarint

_DOUBLE = struct.Struct("<d")
_ZERO_DOUBLE = bytes(8)
_INT64_MASK = 0xFFFFFFFFFFFFFFFF


def encode_labels(pairs: Sequence[tuple[str, str]]) -> bytes:
    """The ``TimeSeries.labels`` fields of a label set, already sorted by name (``__name__`` included)."""
    encoded: bytes = TimeSeries(labels=[Label(name=n, value=v) for n, v in pairs]).SerializeToString()
    return encoded


def encode_sample(value: float, timestamp_ms: int) -> bytes:
    """One ``TimeSeries.samples`` field, byte for byte what protobuf writes (zero fields left out)."""
    body = b""
    packed = _DOUBLE.pack(value)
    if packed != _ZERO_DOUBLE:
        body = b"\x09" + packed
    if timestamp_ms:
        body += b"\x10" + uvarint(timestamp_ms & _INT64_MASK)
    return b"\x12" + uvarint(len(body)) + body
