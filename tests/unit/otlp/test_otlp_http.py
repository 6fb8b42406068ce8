"""OTLP/HTTP transport: content types, gzip, OTLP/JSON quirks, partial success, failure statuses."""

from __future__ import annotations

import base64
import gzip
import json
import time
from dataclasses import dataclass

import cramjam
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from novacron.ingest.otlp import OtlpReceiver, OtlpResponse, Status, TraceService
from novacron.ingest.pii import Scrubber
from novacron.ingest.service import IngestService, StreamUnavailable
from novacron.spans import decode_span_record
from tests.builders_otlp import JSON, PROTOBUF, all_spans, attributes, gauge_request, span, trace_request
from tests.fakes import ListSink

LIMIT = 1_000_000
TRACE_ID = "5b8efff798038103d269b633813fc60c"
SPAN_ID = "eee19b7ec3c1b174"
PARENT_ID = "eee19b7ec3c1b173"


@dataclass
class Receiver:
    otlp: OtlpReceiver
    metrics_sink: ListSink
    spans_sink: ListSink

    def stored_spans(self) -> list:  # type: ignore[type-arg]
        return [s for r in self.spans_sink.records for s in all_spans(decode_span_record(r.data).request())]


@pytest.fixture
def receiver() -> Receiver:
    metrics_sink, spans_sink = ListSink(), ListSink()
    otlp = OtlpReceiver(IngestService(metrics_sink), TraceService(spans_sink), LIMIT)
    return Receiver(otlp, metrics_sink, spans_sink)


def status_of(response: OtlpResponse) -> Status:
    """The google.rpc.Status body of a failure, in the response's encoding."""
    if response.content_type == "application/json":
        return json_format.Parse(response.body, Status())
    return Status.FromString(response.body)


def json_trace(**span_fields: object) -> bytes:
    """An OTLP/JSON trace export of one span, as the OTLP specification's example writes it."""
    now = time.time_ns()
    fields = {
        "traceId": TRACE_ID,
        "spanId": SPAN_ID,
        "parentSpanId": PARENT_ID,
        "name": "GET /cart",
        "kind": 2,
        "startTimeUnixNano": str(now),
        "endTimeUnixNano": str(now + 1000),
        "attributes": [{"key": "http.route", "value": {"stringValue": "/cart"}}],
        **span_fields,
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]}
    document = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {"name": "t"}, "spans": [fields]}]}]}
    return json.dumps(document).encode()


# --- content negotiation ----------------------------------------------------------------------


def test_protobuf_traces_are_stored_and_answered_in_protobuf(receiver: Receiver) -> None:
    # Given a protobuf export of three spans
    request = trace_request([span(name=f"s{i}") for i in range(3)])
    # When it is posted
    response = receiver.otlp.export_traces(request.SerializeToString(), PROTOBUF, "acme")
    # Then 200, an empty protobuf ExportTraceServiceResponse, and the spans on the stream
    assert (response.status, response.content_type) == (200, "application/x-protobuf")
    assert ExportTraceServiceResponse.FromString(response.body) == ExportTraceServiceResponse()
    assert sorted(s.name for s in receiver.stored_spans()) == ["s0", "s1", "s2"]


def test_json_traces_are_answered_in_json(receiver: Receiver) -> None:
    # Given an OTLP/JSON export with a charset parameter on its Content-Type
    headers = {"content-type": "application/json; charset=utf-8"}
    # When it is posted
    response = receiver.otlp.export_traces(json_trace(), headers, "acme")
    # Then the answer is a JSON ExportTraceServiceResponse
    assert (response.status, response.content_type) == (200, "application/json")
    assert json.loads(response.body) == {}


@pytest.mark.parametrize("content_type", ["", "text/plain", "application/protobuf", "application/grpc"])
def test_other_content_types_are_415(receiver: Receiver, content_type: str) -> None:
    # Given a body with an unsupported Content-Type / When posted
    response = receiver.otlp.export_traces(b"{}", {"content-type": content_type} if content_type else {}, "acme")
    # Then 415 with a Status naming the supported types, nothing stored
    assert response.status == 415
    message = status_of(response).message
    assert "unsupported Content-Type" in message
    assert "'application/x-protobuf' or 'application/json'" in message
    assert receiver.spans_sink.records == []


# --- compression ----------------------------------------------------------------------------


def test_gzip_bodies_are_accepted(receiver: Receiver) -> None:
    # Given a gzip'd protobuf export
    body = gzip.compress(trace_request([span(name="zipped")]).SerializeToString())
    # When posted with Content-Encoding gzip
    response = receiver.otlp.export_traces(body, {**PROTOBUF, "content-encoding": "gzip"}, "acme")
    # Then it is stored
    assert response.status == 200
    assert [s.name for s in receiver.stored_spans()] == ["zipped"]


def test_multi_member_gzip_is_read_whole(receiver: Receiver) -> None:
    # Given a JSON body gzip'd as two concatenated members
    body = json_trace()
    zipped = gzip.compress(body[:40]) + gzip.compress(body[40:])
    # When posted / Then the whole document was read
    response = receiver.otlp.export_traces(zipped, {**JSON, "content-encoding": "gzip"}, "acme")
    assert response.status == 200
    assert len(receiver.stored_spans()) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"definitely not gzip", "body is not valid gzip data"),
        (gzip.compress(b"x" * 1000)[:-30], "the stream is truncated"),
    ],
)
def test_broken_gzip_is_400(receiver: Receiver, body: bytes, message: str) -> None:
    # Given a body that claims gzip but is not valid gzip / When posted
    response = receiver.otlp.export_traces(body, {**PROTOBUF, "content-encoding": "gzip"}, "acme")
    # Then 400 in the request's encoding, code INVALID_ARGUMENT
    assert (response.status, response.content_type) == (400, "application/x-protobuf")
    status = status_of(response)
    assert status.code == 3
    assert message in status.message


def test_other_content_encodings_are_415(receiver: Receiver) -> None:
    # Given a brotli body / When posted / Then 415 naming the encoding
    response = receiver.otlp.export_traces(b"...", {**JSON, "content-encoding": "br"}, "acme")
    assert response.status == 415
    assert "unsupported Content-Encoding 'br'" in status_of(response).message


def test_a_gzip_bomb_is_413(receiver: Receiver) -> None:
    # Given 20 MB of zeros gzip'd into a few KB (the limit is 1 MB)
    bomb = gzip.compress(b"\0" * 20_000_000)
    # When posted
    response = receiver.otlp.export_traces(bomb, {**PROTOBUF, "content-encoding": "gzip"}, "acme")
    # Then 413 naming the limit
    assert response.status == 413
    assert f"more than {LIMIT} bytes" in status_of(response).message


def test_a_plain_body_over_the_limit_is_413(receiver: Receiver) -> None:
    response = receiver.otlp.export_traces(b"\0" * (LIMIT + 1), PROTOBUF, "acme")
    assert response.status == 413


# --- OTLP/JSON ------------------------------------------------------------------------------


def test_json_ids_are_hex(receiver: Receiver) -> None:
    # Given an OTLP/JSON span with hex ids, its kind as a name and int64 times as numbers
    now = time.time_ns()
    body = json_trace(kind="SPAN_KIND_CLIENT", startTimeUnixNano=now, endTimeUnixNano=now + 5)
    # When posted
    response = receiver.otlp.export_traces(body, JSON, "acme")
    # Then the stored span carries the ids' bytes and the decoded fields
    assert response.status == 200
    [stored] = receiver.stored_spans()
    assert (stored.trace_id.hex(), stored.span_id.hex(), stored.parent_span_id.hex()) == (TRACE_ID, SPAN_ID, PARENT_ID)
    assert (stored.kind, stored.end_time_unix_nano - stored.start_time_unix_nano) == (3, 5)


def test_json_unknown_fields_are_ignored(receiver: Receiver) -> None:
    # Given a span with a field this version of OTLP does not know / Then it is accepted
    response = receiver.otlp.export_traces(json_trace(futureField={"x": 1}), JSON, "acme")
    assert response.status == 200
    assert len(receiver.stored_spans()) == 1


def test_base64_ids_are_refused_with_their_path(receiver: Receiver) -> None:
    # Given ids in base64 (the proto3 JSON mapping, which OTLP/JSON does not use)
    body = json_trace(spanId=base64.b64encode(bytes.fromhex(SPAN_ID)).decode())
    # When posted
    response = receiver.otlp.export_traces(body, JSON, "acme")
    # Then 400 naming the field and the rule
    assert (response.status, response.content_type) == (400, "application/json")
    message = status_of(response).message
    assert "resourceSpans[0].scopeSpans[0].spans[0].spanId" in message
    assert "OTLP/JSON encodes trace and span ids as hex" in message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"[]", "body must be a JSON object"),
        (b'{"resourceSpans": 7}', "body is not a valid ExportTraceServiceRequest"),
    ],
)
def test_malformed_json_is_400(receiver: Receiver, body: bytes, message: str) -> None:
    response = receiver.otlp.export_traces(body, JSON, "acme")
    assert response.status == 400
    status = status_of(response)
    assert status.code == 3
    assert message in status.message


def test_malformed_protobuf_is_400(receiver: Receiver) -> None:
    # Given bytes that are not a protobuf message / When posted
    response = receiver.otlp.export_traces(b"\xff\xff\xff\xff", PROTOBUF, "acme")
    # Then 400 with a protobuf Status
    assert response.status == 400
    assert "not a valid protobuf ExportTraceServiceRequest" in status_of(response).message


# --- partial success ------------------------------------------------------------------------


def test_invalid_spans_are_a_partial_success_in_protobuf(receiver: Receiver) -> None:
    # Given two good spans and one with an all-zero trace id
    request = trace_request([span(name="a"), span(name="bad", trace_id=b"\0" * 16), span(name="b")])
    # When posted
    response = receiver.otlp.export_traces(request.SerializeToString(), PROTOBUF, "acme")
    # Then 200 (not retryable), rejected_spans 1 with the reason, the good spans stored
    assert response.status == 200
    partial = ExportTraceServiceResponse.FromString(response.body).partial_success
    assert partial.rejected_spans == 1
    assert "span 'bad'" in partial.error_message
    assert "trace_id must be 16 bytes" in partial.error_message
    assert sorted(s.name for s in receiver.stored_spans()) == ["a", "b"]


def test_invalid_spans_are_a_partial_success_in_json(receiver: Receiver) -> None:
    # Given an OTLP/JSON span without a name / When posted
    response = receiver.otlp.export_traces(json_trace(name=""), JSON, "acme")
    # Then 200 and a JSON partialSuccess with lowerCamelCase keys
    assert response.status == 200
    partial = json.loads(response.body)["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 1
    assert "name is empty" in partial["errorMessage"]
    assert receiver.stored_spans() == []


def test_metrics_are_mapped_and_stored(receiver: Receiver) -> None:
    # Given a gauge with two data points
    request = gauge_request("queue_depth", {"a": 3.0, "b": 4.0})
    # When posted
    response = receiver.otlp.export_metrics(request.SerializeToString(), PROTOBUF, "acme")
    # Then 200, an empty response, and the points on the metrics stream as series
    assert response.status == 200
    assert ExportMetricsServiceResponse.FromString(response.body) == ExportMetricsServiceResponse()
    stored = {dict(labels)["host"]: samples for labels, samples in receiver.metrics_sink.stored_samples().items()}
    assert {host: samples[0][1] for host, samples in stored.items() if host} == {"a": 3.0, "b": 4.0}
    assert response.accepted == 2


def test_points_outside_the_accepted_window_are_a_partial_success(receiver: Receiver) -> None:
    # Given one fresh point and one from yesterday (outside the ingest window)
    fresh = gauge_request("queue_depth", {"a": 1.0})
    old = gauge_request("queue_depth", {"b": 2.0}, at_ns=time.time_ns() - 86_400 * 10**9)
    fresh.resource_metrics.extend(old.resource_metrics)
    # When posted as JSON
    body = json_format.MessageToJson(fresh).encode()
    response = receiver.otlp.export_metrics(body, JSON, "acme")
    # Then 200 with rejectedDataPoints and the reason; the fresh point is stored
    assert response.status == 200
    partial = json.loads(response.body)["partialSuccess"]
    assert int(partial["rejectedDataPoints"]) == 1
    assert "outside the accepted window" in partial["errorMessage"]
    hosts = {dict(labels).get("host") for labels in receiver.metrics_sink.stored_samples()}
    assert "a" in hosts
    assert "b" not in hosts


# --- retryable answers ----------------------------------------------------------------------


@pytest.mark.parametrize(("throttled", "status", "code"), [(True, 429, 8), (False, 503, 14)])
@pytest.mark.parametrize("signal", ["traces", "metrics"])
def test_a_refusing_stream_is_retryable(signal: str, throttled: bool, status: int, code: int) -> None:
    # Given streams that refuse every record
    failing = ListSink(fail_with=StreamUnavailable("stream busy", throttled=throttled, retry_after_s=2))
    otlp = OtlpReceiver(IngestService(failing), TraceService(failing), LIMIT)
    # When data is posted
    if signal == "traces":
        response = otlp.export_traces(trace_request([span()]).SerializeToString(), PROTOBUF, "acme")
    else:
        response = otlp.export_metrics(gauge_request("m", {"a": 1.0}).SerializeToString(), PROTOBUF, "acme")
    # Then a retryable status with Retry-After and a Status body saying to retry
    assert response.status == status
    assert response.headers == {"Retry-After": "2"}
    assert status_of(response).code == code
    assert "retry later" in status_of(response).message


def test_an_empty_export_is_a_success(receiver: Receiver) -> None:
    # Given an empty protobuf body (a valid, empty request) / Then 200 and nothing stored
    assert receiver.otlp.export_traces(b"", PROTOBUF, "acme").status == 200
    assert receiver.otlp.export_metrics(b"", PROTOBUF, "acme").status == 200
    assert receiver.spans_sink.records == []
    assert receiver.metrics_sink.records == []


# --- PII ------------------------------------------------------------------------------------


def test_an_email_in_span_attributes_never_reaches_the_stream() -> None:
    # Given the trace path with the tenant's PII scrubber, and a span carrying an e-mail address in an
    # attribute, in an event attribute and inside a map value
    sink = ListSink()
    otlp = OtlpReceiver(
        IngestService(ListSink()),
        TraceService(sink, scrubber_for=lambda tenant: Scrubber.for_tenant(tenant, b"k" * 32)),
        LIMIT,
    )
    leaky = span(name="signup", attrs={"user.email": "jane.doe@example.com", "plan": "pro"})
    leaky.events.add(name="mail sent", attributes=attributes({"to": "jane.doe@example.com"}))
    nested = leaky.attributes.add(key="user")
    nested.value.kvlist_value.values.add(key="contact").value.string_value = "mail jane.doe@example.com"
    # When it is exported
    response = otlp.export_traces(trace_request([leaky]).SerializeToString(), PROTOBUF, "acme")
    # Then the stored records hold no trace of the address, tokens stand in its place, the rest is kept
    assert response.status == 200
    raw = b"".join(bytes(cramjam.lz4.decompress_block(r.data)) for r in sink.records)
    assert b"jane.doe@example.com" not in raw
    [stored] = [s for r in sink.records for s in all_spans(decode_span_record(r.data).request())]
    values = {kv.key: kv.value.string_value for kv in stored.attributes}
    assert values["user.email"].startswith("<email:")
    assert values["plan"] == "pro"
    assert stored.events[0].attributes[0].value.string_value == values["user.email"]
