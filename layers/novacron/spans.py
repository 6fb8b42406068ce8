"""Spans: validation, the spans stream's record format, and the archive objects built from it.

A record holds spans of one tenant whose trace ids fall in one partition bucket, as one serialized
``ExportTraceServiceRequest`` (resources and scopes kept), so that a consumer reads OTLP directly
and the spans of a trace stay on one shard. Layout (LZ4 block-compressed as a whole, like the
metrics records of ``novacron.records``)::

    b"NCS1" | u8 version=1 | u16 tenant length | tenant | i64 received_ms | ExportTraceServiceRequest

An archive object holds the records of one tenant from one batch as length-delimited messages (a
protobuf varint length, then that many bytes of ``ExportTraceServiceRequest``), gzip-compressed.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from novacron.protocols.remote_write_v2 import uvarint
from novacron.records import MAX_RECORD_PAYLOAD, RecordFormatError, StreamRecord, compress_framed, open_framed
from novacron.storage.writer import ArchiveStore

MAGIC = b"NCS1"
# Partition buckets per tenant: spreads traces over shards while a trace's spans share one.
TRACE_BUCKETS = 16
# A length-delimited field costs at most a tag byte and a 5-byte length on top of its content.
_FIELD_OVERHEAD = 6
_MAX_LISTED_REJECTIONS = 5


@dataclass(frozen=True)
class SpanRecord:
    """A decoded spans-stream record; ``payload`` is a serialized ExportTraceServiceRequest."""

    tenant: str
    received_ms: int
    payload: bytes
    spans: int

    def request(self) -> ExportTraceServiceRequest:
        """The spans, parsed again."""
        request = ExportTraceServiceRequest()
        request.ParseFromString(self.payload)
        return request


@dataclass
class PackedSpans:
    """Spans of one request sorted into stream records, and the spans refused."""

    records: list[StreamRecord] = field(default_factory=list)
    accepted: int = 0
    rejected: list[str] = field(default_factory=list)

    def rejection_message(self) -> str:
        """The partial-success ``error_message``: how many were refused, and the first few reasons."""
        if not self.rejected:
            return ""
        shown = "; ".join(self.rejected[:_MAX_LISTED_REJECTIONS])
        more = len(self.rejected) - _MAX_LISTED_REJECTIONS
        suffix = f"; ... and {more} more" if more > 0 else ""
        return f"{len(self.rejected)} spans rejected ({self.accepted} accepted): {shown}{suffix}"


def span_error(span: Span) -> str | None:
    """Why ``span`` cannot be stored, or None when it can."""
    if len(span.trace_id) != 16 or not any(span.trace_id):
        problem = f"trace_id must be 16 bytes, not all zero (got {len(span.trace_id)} bytes)"
    elif len(span.span_id) != 8 or not any(span.span_id):
        problem = f"span_id must be 8 bytes, not all zero (got {len(span.span_id)} bytes)"
    elif span.parent_span_id and len(span.parent_span_id) != 8:
        problem = f"parent_span_id must be empty or 8 bytes (got {len(span.parent_span_id)} bytes)"
    elif not span.name:
        problem = "name is empty"
    elif span.end_time_unix_nano < span.start_time_unix_nano:
        problem = f"ends ({span.end_time_unix_nano}) before it starts ({span.start_time_unix_nano})"
    else:
        return None
    return f"{_describe(span)}: {problem}"


def trace_bucket(trace_id: bytes, buckets: int = TRACE_BUCKETS) -> int:
    """The partition bucket of a trace (CRC-32: some id generators put a timestamp in the first bytes)."""
    return zlib.crc32(trace_id) % buckets


class _Chunk:
    """One record's worth of spans being gathered, with an upper bound of its encoded size."""

    def __init__(self) -> None:
        self.request = ExportTraceServiceRequest()
        self.size = 0
        self.resources: dict[int, ResourceSpans] = {}
        self.scopes: dict[tuple[int, int], ScopeSpans] = {}

    def cost(self, r: int, s: int, span_size: int, resource_head: int, scope_head: int) -> int:
        """What adding a span of ``span_size`` under resource ``r``, scope ``s`` adds, at most."""
        extra = span_size + _FIELD_OVERHEAD
        if (r, s) not in self.scopes:
            extra += scope_head + _FIELD_OVERHEAD
        if r not in self.resources:
            extra += resource_head + _FIELD_OVERHEAD
        return extra

    def add(self, r: int, s: int, source: ResourceSpans, scope: ScopeSpans, span: Span, cost: int) -> None:
        target_resource = self.resources.get(r)
        if target_resource is None:
            target_resource = self.request.resource_spans.add(schema_url=source.schema_url)
            target_resource.resource.CopyFrom(source.resource)
            self.resources[r] = target_resource
        target_scope = self.scopes.get((r, s))
        if target_scope is None:
            target_scope = target_resource.scope_spans.add(schema_url=scope.schema_url)
            target_scope.scope.CopyFrom(scope.scope)
            self.scopes[(r, s)] = target_scope
        target_scope.spans.append(span)
        self.size += cost


def pack_spans(
    request: ExportTraceServiceRequest,
    tenant: str,
    received_ms: int,
    *,
    max_payload: int = MAX_RECORD_PAYLOAD,
    buckets: int = TRACE_BUCKETS,
) -> PackedSpans:
    """Validate the spans of ``request`` and pack the valid ones into stream records.

    Records hold one trace bucket each (partition key ``tenant:bucket``) and are split, keeping
    resources and scopes, so that each payload stays under ``max_payload``; a span that alone
    would not fit is rejected.
    """
    packed = PackedSpans()
    chunks: dict[int, list[_Chunk]] = {}
    for r, resource_spans in enumerate(request.resource_spans):
        resource_head = ResourceSpans(resource=resource_spans.resource, schema_url=resource_spans.schema_url)
        resource_size = resource_head.ByteSize()
        for s, scope_spans in enumerate(resource_spans.scope_spans):
            scope_size = ScopeSpans(scope=scope_spans.scope, schema_url=scope_spans.schema_url).ByteSize()
            for span in scope_spans.spans:
                error = span_error(span)
                if error is not None:
                    packed.rejected.append(error)
                    continue
                bucket_chunks = chunks.setdefault(trace_bucket(span.trace_id, buckets), [_Chunk()])
                chunk = bucket_chunks[-1]
                span_size = span.ByteSize()
                cost = chunk.cost(r, s, span_size, resource_size, scope_size)
                if chunk.size + cost > max_payload and chunk.size:
                    chunk = _Chunk()
                    bucket_chunks.append(chunk)
                    cost = chunk.cost(r, s, span_size, resource_size, scope_size)
                if cost > max_payload:
                    packed.rejected.append(
                        f"{_describe(span)}: encodes to {span_size} bytes with its resource and scope, more than "
                        f"the {max_payload} a stream record holds; split its attributes or events"
                    )
                    continue
                chunk.add(r, s, resource_spans, scope_spans, span, cost)
                packed.accepted += 1
    for bucket, bucket_chunks in sorted(chunks.items()):
        key = f"{tenant}:{bucket}"
        for chunk in bucket_chunks:
            if chunk.size:
                data = encode_span_record(tenant, received_ms, chunk.request.SerializeToString())
                packed.records.append(StreamRecord(key, data))
    return packed


def encode_span_record(tenant: str, received_ms: int, payload: bytes) -> bytes:
    """Encode (and compress) one record holding a serialized ExportTraceServiceRequest."""
    return compress_framed(MAGIC, tenant, received_ms, [payload])


def decode_span_record(data: bytes) -> SpanRecord:
    """Decode one record; RecordFormatError when it is not a spans record of ours (a poison record)."""
    tenant, received_ms, raw, pos = open_framed(data, MAGIC, "spans record")
    payload = raw[pos:]
    try:
        request = ExportTraceServiceRequest.FromString(payload)
    except DecodeError as exc:
        raise RecordFormatError(f"spans record payload is not an ExportTraceServiceRequest: {exc}") from None
    spans = sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
    return SpanRecord(tenant, received_ms, payload, spans)


def archive_span_records(
    archive: ArchiveStore, shard_id: str, batch: Sequence[tuple[str, bytes]]
) -> list[int | RecordFormatError]:
    """Archive a batch of (sequence number, data) records, one object per tenant; the outcome of each record.

    An outcome is the record's span count, or the RecordFormatError of a poison record, which the
    caller reports as a batch item failure. The other records are archived all the same: holding
    them back would hand them to the on-failure destination with the poison record once retries
    run out. The price is that while a poison record is retried, the records after it are archived
    again under another key (readers dedupe spans by trace and span id); a batch redelivered
    unchanged rewrites the same objects. An archive write that fails raises: the batch is retried.
    """
    outcomes: list[int | RecordFormatError] = []
    decoded: list[tuple[str, SpanRecord]] = []
    for sequence, data in batch:
        try:
            record = decode_span_record(data)
        except RecordFormatError as exc:
            outcomes.append(exc)
            continue
        decoded.append((sequence, record))
        outcomes.append(record.spans)
    by_tenant: dict[str, list[tuple[str, SpanRecord]]] = {}
    for sequence, record in decoded:
        by_tenant.setdefault(record.tenant, []).append((sequence, record))
    for tenant, records in sorted(by_tenant.items()):
        key = archive_key(tenant, records[0][1].received_ms, shard_id, records[0][0], records[-1][0])
        archive.put(key, archive_object([record.payload for _, record in records]))
    return outcomes


def archive_key(tenant: str, received_ms: int, shard_id: str, first_sequence: str, last_sequence: str) -> str:
    """The archive object of one tenant's records of one batch.

    Made of the first record's receive hour, the shard and the sequence range only, so that a
    retried batch rewrites the same object instead of adding a second copy.
    """
    hour = datetime.fromtimestamp(received_ms / 1000, UTC).strftime("%Y/%m/%d/%H")
    return f"spans/{tenant}/{hour}/{shard_id}-{first_sequence}-{last_sequence}.otlp.pb.gz"


def archive_object(payloads: Sequence[bytes]) -> bytes:
    """Length-delimited ExportTraceServiceRequest messages, gzip-compressed (mtime 0: same input, same bytes)."""
    framed = b"".join(uvarint(len(p)) + p for p in payloads)
    return gzip.compress(framed, compresslevel=6, mtime=0)


def read_archive_object(data: bytes) -> list[ExportTraceServiceRequest]:
    """The messages of an archive object (for readers and tests)."""
    raw = gzip.decompress(data)
    messages = []
    pos = 0
    while pos < len(raw):
        length, pos = _read_uvarint(raw, pos)
        messages.append(ExportTraceServiceRequest.FromString(raw[pos : pos + length]))
        pos += length
    return messages


def _describe(span: Span) -> str:
    return f"span {span.name[:80]!r} (trace_id {span.trace_id.hex() or '-'}, span_id {span.span_id.hex() or '-'})"


def _read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("archive object ends inside a length prefix")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
