"""OTLP/HTTP: request bodies in, Export*ServiceResponse or google.rpc.Status out.

What the OTLP specification asks of a server, and how this module answers:

- ``Content-Type`` is ``application/x-protobuf`` or ``application/json`` (415 otherwise); the
  response uses the request's encoding. ``Content-Encoding: gzip`` is accepted (415 for any other
  coding, 400 for a broken gzip stream, 413 past the decompressed size limit).
- A request whose valid part was stored is a success: 200, and ``partial_success`` counts what
  was rejected and why. Rejected items are never answered with a 4xx/5xx, since the sender would
  resend (or drop) the valid part too.
- A request that cannot be read at all is a 400 with a ``google.rpc.Status`` body (code 3,
  INVALID_ARGUMENT); "retry later" is 429 or 503 with ``Retry-After``, the only statuses that the
  spec's clients retry together with 502 and 504.
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, TypeVar

from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from novacron.ingest.service import (
    IngestError,
    IngestResult,
    IngestService,
    KeyLabels,
    StreamSink,
    StreamUnavailable,
)
from novacron.protocols import descriptors as d
from novacron.protocols.otlp_json import OtlpJsonError, parse_json, parse_metrics_json, to_json
from novacron.protocols.otlp_metrics import map_metrics_request
from novacron.spans import PackedSpans, pack_spans

M = TypeVar("M", bound=Message)

# google.rpc.Code values
INVALID_ARGUMENT = 3
RESOURCE_EXHAUSTED = 8
UNAVAILABLE = 14
_GZIP_WBITS = 16 + zlib.MAX_WBITS

# google.rpc.Status, declared here: googleapis-common-protos is not one of the layer's packages.
# ``details`` (field 3, repeated google.protobuf.Any) is never sent, so it is left out.
Status = d.message_classes(
    "novacron/rpc_status.proto",
    "google.rpc",
    [
        d.message(
            "Status",
            d.field("google.rpc", "code", 1, d.F.TYPE_INT32),
            d.field("google.rpc", "message", 2, d.F.TYPE_STRING),
        )
    ],
)("Status")


class Encoding(StrEnum):
    """The two OTLP/HTTP encodings, named by their media type."""

    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"


class OtlpError(Exception):
    """The whole request is refused with ``status``; ``encoding`` is the one to answer in, if known."""

    def __init__(
        self, status: int, message: str, encoding: Encoding | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.encoding = encoding
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class OtlpResponse:
    """What to answer: the handler copies it into the HTTP response as is."""

    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    accepted: int = 0  # data points or spans stored
    rejected: int = 0  # data points or spans refused (partial success)
    ingest: IngestResult | None = None  # what the metrics path stored and refused, series by series


class AttributeScrubber(Protocol):
    """Replaces PII in attribute values (``novacron.ingest.pii.Scrubber`` is one)."""

    def scrub_attribute(self, name: str, value: str) -> str:
        """``value`` of attribute ``name``, scrubbed."""
        ...


# --- the transport ------------------------------------------------------------------------------


def request_encoding(headers: Mapping[str, str]) -> Encoding:
    """The request's encoding from its ``Content-Type`` (headers with lower-case names); 415 otherwise."""
    content_type = headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    for encoding in Encoding:
        if media == encoding.value:
            return encoding
    raise OtlpError(
        415,
        f"unsupported Content-Type {content_type or '(none)'!r}: OTLP/HTTP bodies are "
        f"'{Encoding.PROTOBUF.value}' or '{Encoding.JSON.value}'",
    )


def read_body(body: bytes, headers: Mapping[str, str], encoding: Encoding, max_decoded_bytes: int) -> bytes:
    """The request body, gunzipped when ``Content-Encoding`` says gzip, within ``max_decoded_bytes``."""
    coding = headers.get("content-encoding", "").strip().lower()
    if coding in ("", "identity"):
        if len(body) > max_decoded_bytes:
            raise OtlpError(413, _too_large(max_decoded_bytes), encoding)
        return body
    if coding not in ("gzip", "x-gzip"):
        raise OtlpError(
            415, f"unsupported Content-Encoding {coding!r}: OTLP/HTTP bodies are gzip-compressed or plain", encoding
        )
    return gunzip(body, max_decoded_bytes, encoding)


def gunzip(data: bytes, limit: int, encoding: Encoding) -> bytes:
    """Decompress a gzip body (one member or several), refusing more than ``limit`` bytes of output."""
    out = bytearray()
    pending = data
    while True:
        stream = zlib.decompressobj(_GZIP_WBITS)
        try:
            # Never more than one byte past the limit: a gzip bomb stops here.
            out += stream.decompress(pending, limit + 1 - len(out))
        except zlib.error as exc:
            raise OtlpError(400, f"body is not valid gzip data: {exc}", encoding) from None
        if len(out) > limit:
            raise OtlpError(413, _too_large(limit), encoding)
        if not stream.eof:
            raise OtlpError(400, "body is not valid gzip data: the stream is truncated", encoding)
        pending = stream.unused_data
        if not pending.strip(b"\0"):  # trailing zero padding, as gzip(1) tolerates
            return bytes(out)


def parse_message(raw: bytes, encoding: Encoding, message_type: type[M]) -> M:
    """Decode a body of ``encoding`` into ``message_type``; 400 when it is not one."""
    if encoding is Encoding.JSON:
        try:
            return parse_json(raw, message_type)
        except OtlpJsonError as exc:
            raise OtlpError(400, str(exc), encoding) from None
    message: M = message_type()
    try:
        message.ParseFromString(raw)
    except DecodeError as exc:
        raise OtlpError(400, f"body is not a valid protobuf {message_type.DESCRIPTOR.name}: {exc}", encoding) from None
    return message


def parse_metrics(raw: bytes, encoding: Encoding) -> tuple[ExportMetricsServiceRequest, bytes | None]:
    """``parse_message`` of a metrics export, with its protobuf encoding when at hand (the mapper reads it)."""
    if encoding is Encoding.JSON:
        try:
            return parse_metrics_json(raw)
        except OtlpJsonError as exc:
            raise OtlpError(400, str(exc), encoding) from None
    return parse_message(raw, encoding, ExportMetricsServiceRequest), raw


def encode_message(message: Message, encoding: Encoding) -> bytes:
    """``message`` in ``encoding``."""
    return to_json(message) if encoding is Encoding.JSON else message.SerializeToString()


def success_response(message: Message, encoding: Encoding, accepted: int, rejected: int) -> OtlpResponse:
    """200 with an Export*ServiceResponse."""
    return OtlpResponse(200, encoding.value, encode_message(message, encoding), {}, accepted, rejected)


def failure_response(exc: OtlpError) -> OtlpResponse:
    """The status with a google.rpc.Status body; JSON when the request's encoding is unknown (readable)."""
    encoding = exc.encoding or Encoding.JSON
    status = Status(code=_rpc_code(exc.status), message=exc.message)
    return OtlpResponse(exc.status, encoding.value, encode_message(status, encoding), exc.headers)


def _rpc_code(http_status: int) -> int:
    # The google.rpc.Code gRPC servers would answer with: RESOURCE_EXHAUSTED for throttling,
    # UNAVAILABLE for the other retryable answers, INVALID_ARGUMENT for what must not be resent.
    if http_status == 429:
        return RESOURCE_EXHAUSTED
    return UNAVAILABLE if http_status >= 500 else INVALID_ARGUMENT


def _too_large(limit: int) -> str:
    return f"body decompresses to more than {limit} bytes; send smaller batches"


# --- traces -------------------------------------------------------------------------------------


class TraceService:
    """Spans in: scrub, validate, pack into spans-stream records, put."""

    def __init__(
        self,
        sink: StreamSink,
        scrubber_for: Callable[[str], AttributeScrubber | None] | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.sink = sink
        self.scrubber_for = scrubber_for
        self.clock_ms = clock_ms

    def export(self, request: ExportTraceServiceRequest, tenant: str) -> PackedSpans:
        """Store the valid spans of ``request``; IngestError 429/503 when the stream refuses them."""
        scrubber = self.scrubber_for(tenant) if self.scrubber_for is not None else None
        if scrubber is not None:
            scrub_spans(request, scrubber)
        packed = pack_spans(request, tenant, self.clock_ms())
        if packed.records:
            try:
                self.sink.put(packed.records)
            except StreamUnavailable as exc:
                raise IngestError(
                    429 if exc.throttled else 503,
                    f"the spans stream did not accept the data ({exc}); retry later",
                    {"Retry-After": str(exc.retry_after_s)},
                ) from None
        return packed


def scrub_spans(request: ExportTraceServiceRequest, scrubber: AttributeScrubber) -> None:
    """Scrub, in place, the string attributes of every span, span event and span link."""
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                _scrub_span(span, scrubber)


def _scrub_span(span: Span, scrubber: AttributeScrubber) -> None:
    _scrub_attributes(span.attributes, scrubber)
    for event in span.events:
        _scrub_attributes(event.attributes, scrubber)
    for link in span.links:
        _scrub_attributes(link.attributes, scrubber)


def _scrub_attributes(attributes: list[KeyValue], scrubber: AttributeScrubber) -> None:
    # Iterative: array and kvlist values nest arbitrarily deep.
    pending: list[tuple[str, AnyValue]] = [(kv.key, kv.value) for kv in attributes]
    while pending:
        name, value = pending.pop()
        kind = value.WhichOneof("value")
        if kind == "string_value":
            value.string_value = scrubber.scrub_attribute(name, value.string_value)
        elif kind == "array_value":
            pending.extend((name, item) for item in value.array_value.values)
        elif kind == "kvlist_value":
            pending.extend((f"{name}.{kv.key}", kv.value) for kv in value.kvlist_value.values)


# --- the receiver -------------------------------------------------------------------------------


class OtlpReceiver:
    """The two OTLP/HTTP endpoints: a body and its headers in, the response to send out."""

    def __init__(self, metrics: IngestService, traces: TraceService, max_decoded_bytes: int) -> None:
        self.metrics = metrics
        self.traces = traces
        self.max_decoded_bytes = max_decoded_bytes

    def export_metrics(
        self, body: bytes, headers: Mapping[str, str], tenant: str, key_labels: KeyLabels = None
    ) -> OtlpResponse:
        """Handle one ``POST /v1/metrics`` (headers with lower-case names; ``key_labels`` from the API key)."""
        encoding: Encoding | None = None
        try:
            encoding = request_encoding(headers)
            raw = read_body(body, headers, encoding, self.max_decoded_bytes)
            request, encoded = parse_metrics(raw, encoding)
            mapped = map_metrics_request(request, body=encoded)
            result = (
                self.metrics.ingest_encoded(mapped.contents, tenant, key_labels) if mapped.contents else IngestResult()
            )
        except OtlpError as exc:
            return failure_response(exc)
        except IngestError as exc:
            return failure_response(OtlpError(exc.status, exc.message, encoding, exc.headers))
        # A series the ingest policy refused counts as one rejected point: its samples may come from
        # several points, but the count only has to be non-zero exactly when something was refused.
        rejected = mapped.rejected_points + len(result.rejected)
        response = ExportMetricsServiceResponse()
        if rejected:
            response.partial_success.rejected_data_points = rejected
            response.partial_success.error_message = _metrics_rejection(rejected, mapped.errors, result)
        answer = success_response(response, encoding, max(0, mapped.points - rejected), rejected)
        return dataclasses.replace(answer, ingest=result)

    def export_traces(self, body: bytes, headers: Mapping[str, str], tenant: str) -> OtlpResponse:
        """Handle one ``POST /v1/traces`` (headers with lower-case names)."""
        encoding: Encoding | None = None
        try:
            encoding = request_encoding(headers)
            raw = read_body(body, headers, encoding, self.max_decoded_bytes)
            request = parse_message(raw, encoding, ExportTraceServiceRequest)
            packed = self.traces.export(request, tenant)
        except OtlpError as exc:
            return failure_response(exc)
        except IngestError as exc:
            return failure_response(OtlpError(exc.status, exc.message, encoding, exc.headers))
        response = ExportTraceServiceResponse()
        if packed.rejected:
            response.partial_success.rejected_spans = len(packed.rejected)
            response.partial_success.error_message = packed.rejection_message()
        return success_response(response, encoding, packed.accepted, len(packed.rejected))


def _metrics_rejection(rejected: int, mapping_errors: list[str], result: IngestResult) -> str:
    reasons = [*mapping_errors, *result.rejected]
    more = "; ..." if len(reasons) > 5 else ""
    return f"{rejected} data points rejected: {'; '.join(reasons[:5])}{more}"
