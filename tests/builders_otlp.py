"""Builders of OTLP payloads (traces and metrics) for tests."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}


def attributes(values: Mapping[str, str | int]) -> list[KeyValue]:
    """OTLP attributes of string or int values."""
    return [
        KeyValue(key=k, value=AnyValue(string_value=v) if isinstance(v, str) else AnyValue(int_value=v))
        for k, v in values.items()
    ]


def span(
    name: str = "GET /checkout",
    *,
    trace_id: bytes | None = None,
    span_id: bytes | None = None,
    parent_span_id: bytes = b"",
    start_ns: int | None = None,
    duration_ns: int = 5_000_000,
    attrs: Mapping[str, str | int] | None = None,
) -> Span:
    """A valid span (random ids, started now) unless told otherwise."""
    start = time.time_ns() if start_ns is None else start_ns
    return Span(
        trace_id=os.urandom(16) if trace_id is None else trace_id,
        span_id=os.urandom(8) if span_id is None else span_id,
        parent_span_id=parent_span_id,
        name=name,
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=start,
        end_time_unix_nano=start + duration_ns,
        attributes=attributes(attrs or {}),
    )


def trace_request(
    spans: Sequence[Span], service: str = "checkout", scope: str = "tests", resources: int = 1
) -> ExportTraceServiceRequest:
    """An ExportTraceServiceRequest of ``spans``, dealt over ``resources`` resources of one scope each."""
    request = ExportTraceServiceRequest()
    for r in range(resources):
        resource_spans = ResourceSpans(
            resource=Resource(attributes=attributes({"service.name": f"{service}-{r}" if resources > 1 else service})),
            scope_spans=[ScopeSpans(scope=InstrumentationScope(name=scope), spans=list(spans[r::resources]))],
        )
        request.resource_spans.append(resource_spans)
    return request


def all_spans(request: ExportTraceServiceRequest) -> list[Span]:
    """Every span of a request, in order."""
    return [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]


def gauge_request(name: str, points: Mapping[str, float], at_ns: int | None = None) -> ExportMetricsServiceRequest:
    """A gauge with one data point per ``host`` attribute value."""
    stamp = time.time_ns() if at_ns is None else at_ns
    data_points = [
        NumberDataPoint(time_unix_nano=stamp, as_double=value, attributes=attributes({"host": host}))
        for host, value in points.items()
    ]
    metric = Metric(name=name, gauge=Gauge(data_points=data_points))
    return ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource(attributes=attributes({"service.name": "checkout"})),
                scope_metrics=[ScopeMetrics(scope=InstrumentationScope(name="tests"), metrics=[metric])],
            )
        ]
    )
