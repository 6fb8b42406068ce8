"""A CloudWatch metric stream → Firehose sender, written from the published formats, for tests.

- Firehose HTTP endpoint delivery 1.0: headers ``X-Amz-Firehose-Request-Id``, ``-Access-Key``,
  ``-Common-Attributes``, ``-Protocol-Version``; body ``{"requestId", "timestamp", "records": [{"data"}]}``
  with base64 data, gzip-compressed when the stream is so configured.
- Metric stream JSON: newline-delimited objects with metric_stream_name, account_id, region, namespace,
  metric_name, dimensions, timestamp (ms), value {max, min, sum, count, extra statistics}, unit.
- Metric stream OpenTelemetry 1.0.0: length-delimited (varint) ExportMetricsServiceRequests whose
  metrics are Summary points: quantile 0.0 = min, 1.0 = max, count, sum, attributes Namespace,
  MetricName and Dimensions (kvlist); resource attributes cloud.provider, cloud.account.id,
  cloud.region, aws.exporter.arn; metric name ``amazonaws.com/<namespace>/<metric>``, UCUM units.
"""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from google.protobuf.internal.encoder import _VarintBytes
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Metric,
    ResourceMetrics,
    ScopeMetrics,
    Summary,
    SummaryDataPoint,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

ACCOUNT = "123456789012"
REGION = "eu-west-1"
STREAM = "NovaCronStream"
_UCUM = {"Percent": "%", "Count": "{Count}", "Bytes": "By", "Seconds": "s", "None": "1", "Bytes/Second": "By/s"}


@dataclass
class Point:
    """One CloudWatch data point as a metric stream sends it (timestamp = start of the period)."""

    namespace: str
    metric: str
    timestamp_ms: int
    dimensions: dict[str, str] = field(default_factory=dict)
    sum: float = 10.0
    count: float = 4.0
    min: float = 1.0
    max: float = 5.0
    percentiles: dict[str, float] = field(default_factory=dict)  # "p99" -> value
    unit: str = "Percent"
    period_ms: int = 60_000


def json_record(points: Iterable[Point]) -> bytes:
    """One record of a JSON-format metric stream: one object per line."""
    lines = []
    for p in points:
        value = {"count": p.count, "sum": p.sum, "max": p.max, "min": p.min, **p.percentiles}
        doc = {
            "metric_stream_name": STREAM,
            "account_id": ACCOUNT,
            "region": REGION,
            "namespace": p.namespace,
            "metric_name": p.metric,
            "dimensions": p.dimensions,
            "timestamp": p.timestamp_ms,
            "value": value,
            "unit": p.unit,
        }
        lines.append(json.dumps(doc, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def otel_request(points: Iterable[Point]) -> ExportMetricsServiceRequest:
    """One ExportMetricsServiceRequest as a metric stream builds it (one metric per point)."""
    resource = Resource(
        attributes=[
            _kv("cloud.provider", "aws"),
            _kv("cloud.account.id", ACCOUNT),
            _kv("cloud.region", REGION),
            _kv("aws.exporter.arn", f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:metric-stream/{STREAM}"),
        ]
    )
    metrics = []
    for p in points:
        quantiles = [SummaryDataPoint.ValueAtQuantile(quantile=0.0, value=p.min)]
        for name, value in p.percentiles.items():
            quantiles.append(SummaryDataPoint.ValueAtQuantile(quantile=float(name[1:]) / 100, value=value))
        quantiles.append(SummaryDataPoint.ValueAtQuantile(quantile=1.0, value=p.max))
        dimensions = KeyValueList(values=[_kv(k, v) for k, v in p.dimensions.items()])
        point = SummaryDataPoint(
            attributes=[
                _kv("Namespace", p.namespace),
                _kv("MetricName", p.metric),
                KeyValue(key="Dimensions", value=AnyValue(kvlist_value=dimensions)),
            ],
            start_time_unix_nano=p.timestamp_ms * 1_000_000,
            time_unix_nano=(p.timestamp_ms + p.period_ms) * 1_000_000,
            count=int(p.count),
            sum=p.sum,
            quantile_values=quantiles,
        )
        metrics.append(
            Metric(
                name=f"amazonaws.com/{p.namespace}/{p.metric}",
                unit=_UCUM.get(p.unit, p.unit),
                summary=Summary(data_points=[point]),
            )
        )
    return ExportMetricsServiceRequest(
        resource_metrics=[ResourceMetrics(resource=resource, scope_metrics=[ScopeMetrics(metrics=metrics)])]
    )


def length_delimited(*messages: bytes) -> bytes:
    """Messages each prefixed with its length as an UnsignedVarInt32."""
    return b"".join(_VarintBytes(len(m)) + m for m in messages)


def otel_record(points: Iterable[Point], per_message: int = 2) -> bytes:
    """One record of an OpenTelemetry 1.0.0 metric stream: several length-delimited requests."""
    points = list(points)
    messages = [
        otel_request(points[i : i + per_message]).SerializeToString() for i in range(0, len(points), per_message)
    ]
    return length_delimited(*messages)


def firehose_body(records: Iterable[bytes], request_id: str, timestamp_ms: int = 1_790_000_000_000) -> bytes:
    """A Firehose HTTP endpoint request body (uncompressed)."""
    doc = {
        "requestId": request_id,
        "timestamp": timestamp_ms,
        "records": [{"data": base64.b64encode(r).decode()} for r in records],
    }
    return json.dumps(doc).encode()


@dataclass
class FirehoseDelivery:
    """What Firehose sends: headers and body of one POST."""

    headers: dict[str, str]
    body: bytes
    request_id: str


def delivery(
    records: Iterable[bytes],
    key: str | None,
    *,
    compress: bool = True,
    common_attributes: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> FirehoseDelivery:
    """A delivery request as Firehose sends it (header names lower-cased, as API Gateway passes them)."""
    request_id = request_id or str(uuid.uuid4())
    body = firehose_body(records, request_id)
    headers = {
        "content-type": "application/json",
        "x-amz-firehose-protocol-version": "1.0",
        "x-amz-firehose-request-id": request_id,
        "x-amz-firehose-source-arn": f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/novacron",
    }
    if key is not None:
        headers["x-amz-firehose-access-key"] = key
    if compress:
        body = gzip.compress(body)
        headers["content-encoding"] = "gzip"
    if common_attributes is not None:
        headers["x-amz-firehose-common-attributes"] = json.dumps({"commonAttributes": dict(common_attributes)})
    return FirehoseDelivery(headers=headers, body=body, request_id=request_id)
