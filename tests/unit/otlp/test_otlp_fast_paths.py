"""The fast paths of OTLP metrics give exactly what the general paths give.

Gauges and sums are read from the wire (``otlp_wire.number_points``) and mapped through caches;
OTLP/JSON metrics requests are written as protobuf bytes instead of going through ``ParseDict``.
Here each is compared with the general path it stands in for: the per-point protobuf objects, and
``json_format``, on requests of random shapes (and, for JSON, on documents it must decline).
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from novacron.protocols import otlp_metrics
from novacron.protocols.otlp_json import OtlpJsonError, parse_json, parse_metrics_json
from novacron.protocols.otlp_json_metrics import metrics_request_bytes
from novacron.protocols.otlp_metrics import MappedMetrics, map_metrics_request

T0 = 1_790_000_000_000
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
UNSPECIFIED = AggregationTemporality.AGGREGATION_TEMPORALITY_UNSPECIFIED


def kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def random_point(rng: random.Random) -> NumberDataPoint:
    attributes = [
        kv(
            rng.choice(["host", "path", "a.b", "a_b", "__x", "9lives", "le"]),
            rng.choice(["h1", "", "/x", 3, True, 0.5]),
        )
        for _ in range(rng.choice([0, 1, 3]))
    ]
    point = NumberDataPoint(attributes=attributes, time_unix_nano=rng.choice([T0 * 1_000_000, T0 * 1_000_000 + 7, 0]))
    value = rng.randrange(5)
    if value == 1:
        point.as_int = rng.choice([0, -3, 2**53 + 1])
    elif value in (2, 3):
        point.as_double = rng.choice([0.0, 1.5, float("nan")])
    if rng.random() < 0.15:
        point.flags = 1  # no recorded value: the staleness marker
    return point


def random_request(rng: random.Random) -> ExportMetricsServiceRequest:
    resources = []
    for r in range(rng.choice([1, 2])):
        resource = Resource(attributes=[kv("service.name", rng.choice(["api", "db"])), kv("team", f"t{r}")])
        metrics = []
        for _ in range(rng.choice([1, 3])):
            points = [random_point(rng) for _ in range(rng.choice([1, 4]))]
            name = rng.choice(["requests", "queue.depth", "bytes", "?"])
            if rng.random() < 0.5:
                metrics.append(Metric(name=name, unit=rng.choice(["", "By", "1"]), gauge=Gauge(data_points=points)))
            else:
                temporality = rng.choice([CUMULATIVE, UNSPECIFIED])
                data = Sum(data_points=points, aggregation_temporality=temporality, is_monotonic=rng.random() < 0.5)
                metrics.append(Metric(name=name, sum=data))
        scope = InstrumentationScope(name=rng.choice(["", "lib"]), version="1")
        resources.append(ResourceMetrics(resource=resource, scope_metrics=[ScopeMetrics(scope=scope, metrics=metrics)]))
    return ExportMetricsServiceRequest(resource_metrics=resources)


def reading(mapped: MappedMetrics) -> tuple[object, ...]:
    return mapped.contents, mapped.points, mapped.rejected_points, mapped.errors


@pytest.mark.parametrize("seed", range(10))
def test_gauges_and_sums_read_from_the_wire_map_as_their_protobuf_objects(seed: int) -> None:
    # Given requests of random points (rejected ones included), encoded as a sender sends them
    rng = random.Random(seed)
    for _ in range(20):
        request = random_request(rng)
        body = request.SerializeToString()
        # When they are mapped from the body, from the parsed message, and twice (caches warm)
        from_body = reading(map_metrics_request(request, body=body))
        from_message = reading(map_metrics_request(request))
        again = reading(map_metrics_request(request, body=body))
        # Then every way gives what mapping each point's protobuf object gives
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(otlp_metrics, "number_points", lambda data: None)
            expected = reading(map_metrics_request(request))
        assert from_body == from_message == again == expected


def test_a_gauge_sent_in_two_parts_is_read_merged() -> None:
    # Given a metric whose gauge field is sent twice (protobuf merges the two)
    point = NumberDataPoint(time_unix_nano=T0 * 1_000_000, as_double=1.0, attributes=[kv("k", "a")])
    other = NumberDataPoint(time_unix_nano=T0 * 1_000_000, as_double=2.0, attributes=[kv("k", "b")])
    metric = Metric(name="m").SerializeToString()
    metric += b"\x2a" + bytes([len(g := Gauge(data_points=[point]).SerializeToString())]) + g
    metric += b"\x2a" + bytes([len(h := Gauge(data_points=[other]).SerializeToString())]) + h
    scope = b"\x12" + bytes([len(metric)]) + metric
    resource = b"\x12" + bytes([len(scope)]) + scope
    body = b"\x0a" + bytes([len(resource)]) + resource
    request = ExportMetricsServiceRequest.FromString(body)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(otlp_metrics, "number_points", lambda data: None)
        expected = reading(map_metrics_request(request))
    # When it is mapped with the body at hand
    merged = reading(map_metrics_request(request, body=body))
    # Then both points are there, as in the parsed message
    assert merged == expected
    assert len(merged[0]) == 2  # type: ignore[arg-type]


# --- OTLP/JSON --------------------------------------------------------------------------------------


def as_document(request: ExportMetricsServiceRequest, proto_names: bool = False) -> dict[str, Any]:
    document: dict[str, Any] = json_format.MessageToDict(request, preserving_proto_field_name=proto_names)
    return document


@pytest.mark.parametrize("seed", range(6))
def test_plain_json_documents_are_written_as_the_message_parsedict_builds(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(20):
        request = random_request(rng)
        for proto_names in (False, True):
            # Given a request as OTLP/JSON (NaN values are not plain JSON numbers: json_format quotes them)
            document = as_document(request, proto_names)
            body = json.dumps(document).encode()
            # When it is parsed
            message, encoded = parse_metrics_json(body)
            # Then it is the message json_format builds, and the encoding written on the way is that message
            expected = ExportMetricsServiceRequest()
            json_format.ParseDict(json.loads(body), expected, ignore_unknown_fields=True)
            assert message == expected or _same_with_nan(message, expected)
            if encoded is not None:
                assert ExportMetricsServiceRequest.FromString(encoded) == message or _same_with_nan(
                    ExportMetricsServiceRequest.FromString(encoded), message
                )


def _same_with_nan(a: ExportMetricsServiceRequest, b: ExportMetricsServiceRequest) -> bool:
    # NaN != NaN, so messages holding one compare by their (deterministic) encodings.
    return bool(a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True))


def test_a_typical_export_takes_the_fast_path() -> None:
    # Given what an SDK exports: gauges and sums with string, int, bool and double attributes
    point = NumberDataPoint(
        time_unix_nano=T0 * 1_000_000,
        start_time_unix_nano=T0 * 1_000_000 - 10,
        as_int=5,
        attributes=[kv("s", "x"), kv("i", -7), kv("b", False), kv("d", 2.5)],
    )
    request = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource(attributes=[kv("service.name", "api")]),
                scope_metrics=[
                    ScopeMetrics(metrics=[Metric(name="m", sum=Sum(data_points=[point], is_monotonic=True))])
                ],
            )
        ]
    )
    # When it is parsed from JSON
    message, encoded = parse_metrics_json(json.dumps(as_document(request)).encode())
    # Then it was written as protobuf on the way (not through ParseDict), and is the request
    assert encoded is not None
    assert message == request


POINT = {
    "timeUnixNano": str(T0 * 1_000_000),
    "asDouble": 1.5,
    "attributes": [{"key": "k", "value": {"stringValue": "v"}}],
}


def document_with(**point: Any) -> dict[str, Any]:
    return {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "m", "gauge": {"dataPoints": [point]}}]}]}]}


UNUSUAL = {
    "a null": document_with(**POINT, flags=None),
    "an unknown field": document_with(**POINT, colour="red"),
    "both spellings": document_with(**POINT, time_unix_nano=str(T0 * 1_000_000)),
    "both oneof members": document_with(**POINT, asInt="3"),
    "a bool for an integer": document_with(timeUnixNano=True, asDouble=1.0),
    "a float for an integer": document_with(timeUnixNano=1.0e18, asDouble=1.0),
    "a quoted NaN": document_with(timeUnixNano="1", asDouble="NaN"),
    "a quoted double": document_with(timeUnixNano="1", asDouble="1.5"),
    "a signed string": document_with(timeUnixNano="+1", asDouble=1.0),
    "a bool for a double": document_with(timeUnixNano="1", asDouble=True),
    "an exemplar": document_with(**POINT, exemplars=[{"spanId": "0102030405060708", "asDouble": 1.0}]),
    "a bad hex id": document_with(**POINT, exemplars=[{"traceId": "zz"}]),
    "a bytes attribute": document_with(timeUnixNano="1", attributes=[{"key": "k", "value": {"bytesValue": "AQI="}}]),
    "an array attribute": document_with(timeUnixNano="1", attributes=[{"key": "k", "value": {"arrayValue": {}}}]),
    "a bool int attribute": document_with(timeUnixNano="1", attributes=[{"key": "k", "value": {"intValue": True}}]),
    "an out-of-range flag": document_with(timeUnixNano="1", flags=2**32),
    "a negative time": document_with(timeUnixNano="-1"),
    "a list for a message": {"resourceMetrics": [[]]},
    "a histogram": {"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "h", "histogram": {}}]}]}]},
    "an enum name": {
        "resourceMetrics": [
            {
                "scopeMetrics": [
                    {"metrics": [{"name": "s", "sum": {"aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA"}}]}
                ]
            }
        ]
    },
    "an unknown enum name": {
        "resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "s", "sum": {"aggregationTemporality": "NOPE"}}]}]}]
    },
}


@pytest.mark.parametrize("case", list(UNUSUAL))
def test_documents_out_of_the_plain_case_get_parsedicts_answer(case: str) -> None:
    # Given a document the writer must not second-guess (or that it may write, like an enum name)
    body = json.dumps(UNUSUAL[case]).encode()
    # When it is parsed as a metrics request and as any OTLP/JSON message
    try:
        expected: object = parse_json(body, ExportMetricsServiceRequest)
    except OtlpJsonError as exc:
        expected = ("error", str(exc))
    try:
        message, _ = parse_metrics_json(body)
        got: object = message
    except OtlpJsonError as exc:
        got = ("error", str(exc))
    # Then the answer is ParseDict's: the same message, or the same error
    assert got == expected


def test_the_writer_declines_what_is_not_plain() -> None:
    declined = [case for case, document in UNUSUAL.items() if metrics_request_bytes(document) is None]
    assert set(UNUSUAL) - set(declined) == {"an enum name"}
