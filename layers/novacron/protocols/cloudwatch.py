"""CloudWatch metric streams: the JSON and OpenTelemetry 1.0.0 output formats, as Prometheus series.

A metric stream delivers, per Firehose record, either newline-delimited JSON objects (one data point
each) or a sequence of length-delimited (varint) OTLP ``ExportMetricsServiceRequest`` messages whose
metrics are Summary points. Both are decoded into the same ``Datapoint``s, and every statistic of a
data point becomes its own series, so the two formats give identical series (docs/cloudwatch.md):

    AWS/EC2 CPUUtilization, statistic Sum  ->  aws_ec2_cpuutilization_sum{dimension_InstanceId="i-1", ...}

The OpenTelemetry 0.7.0 format is refused with a message naming the setting to change.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import SummaryDataPoint

from novacron.protocols.remote_write_pb import Label, Sample, TimeSeries

SOURCE = "cloudwatch"
DIMENSION_PREFIX = "dimension_"
# The labels every series gets from its data point; common attributes may not replace them.
RECORD_LABELS = ("__name__", "account_id", "region", "unit", "metric_stream")
_OTEL_METRIC_PREFIX = "amazonaws.com/"
# CloudWatch units as OpenTelemetry writes them (UCUM), mapped back so both formats label alike.
_UCUM_TO_CLOUDWATCH = {
    "s": "Seconds",
    "us": "Microseconds",
    "ms": "Milliseconds",
    "By": "Bytes",
    "kBy": "Kilobytes",
    "MBy": "Megabytes",
    "GBy": "Gigabytes",
    "TBy": "Terabytes",
    "bit": "Bits",
    "kbit": "Kilobits",
    "MBit": "Megabits",
    "GBit": "Gigabits",
    "Tbit": "Terabits",
    "%": "Percent",
    "{Count}": "Count",
    "1": "None",
}
_SLASH_SECOND = "/s"
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_NOT_LABEL_CHAR = re.compile(r"[^A-Za-z0-9_]")
_MAX_VARINT_BYTES = 5  # an UnsignedVarInt32


class MetricStreamError(ValueError):
    """A record is not a CloudWatch metric stream record of a supported format (a 4xx condition)."""


@dataclass(frozen=True)
class Datapoint:
    """One CloudWatch data point: one metric, one period, all its statistics."""

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    timestamp_ms: int
    statistics: tuple[tuple[str, float], ...]  # (statistic as CloudWatch names it, value)
    unit: str = ""
    account_id: str = ""
    region: str = ""
    metric_stream: str = ""


# --- decoding ---------------------------------------------------------------------------------


def decode_record(data: bytes) -> list[Datapoint]:
    """The data points of one Firehose record, in either output format.

    JSON records start with ``{``; anything else is read as OpenTelemetry. A ``{`` is also a valid
    first length byte (a 123-byte message), so a record that is not JSON is tried as OpenTelemetry
    before the JSON error is reported.
    """
    if not data.strip():
        raise MetricStreamError("record is empty")
    if data.lstrip()[:1] == b"{":
        try:
            return decode_json_record(data)
        except MetricStreamError as json_error:
            try:
                return decode_otel_record(data)
            except MetricStreamError:
                raise json_error from None
    try:
        return decode_otel_record(data)
    except MetricStreamError as exc:
        raise MetricStreamError(f"not JSON (no '{{' first) and not OpenTelemetry 1.0: {exc}") from None


def decode_json_record(data: bytes) -> list[Datapoint]:
    """Data points of a JSON-format record: one JSON object per line."""
    points = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise MetricStreamError(f"line {number} is not valid JSON: {str(exc)[:200]}") from None
        try:
            points.append(_json_datapoint(doc))
        except MetricStreamError as exc:
            raise MetricStreamError(f"line {number}: {exc}") from None
    return points


def _json_datapoint(doc: object) -> Datapoint:
    if not isinstance(doc, dict):
        raise MetricStreamError("a metric stream JSON line must be an object")
    namespace = _required_text(doc, "namespace")
    metric_name = _required_text(doc, "metric_name")
    stamp = doc.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int) or not 0 <= stamp < 2**63:
        raise MetricStreamError("'timestamp' must be integer milliseconds since the epoch")
    dimensions = doc.get("dimensions", {})
    if not isinstance(dimensions, dict) or not all(isinstance(v, str) for v in dimensions.values()):
        raise MetricStreamError("'dimensions' must be an object of string values")
    value = doc.get("value")
    if not isinstance(value, dict) or not value:
        raise MetricStreamError("'value' must be an object of statistics, such as {\"sum\": 1.0}")
    statistics = []
    for statistic, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise MetricStreamError(f"statistic {statistic[:40]!r} is not a number")
        if not statistic_suffix(statistic):
            raise MetricStreamError(f"statistic {statistic[:40]!r} has no letters or digits to name a series by")
        try:
            statistics.append((statistic, _finite(float(number), statistic)))
        except OverflowError:
            raise MetricStreamError(f"statistic {statistic[:40]!r} does not fit a 64-bit float") from None
    point = Datapoint(
        namespace=namespace,
        metric_name=metric_name,
        dimensions=tuple(sorted(dimensions.items())),
        timestamp_ms=stamp,
        statistics=tuple(statistics),
        unit=_optional_text(doc, "unit"),
        account_id=_optional_text(doc, "account_id"),
        region=_optional_text(doc, "region"),
        metric_stream=_optional_text(doc, "metric_stream_name"),
    )
    texts = (point.namespace, point.metric_name, point.unit, point.account_id, point.region, point.metric_stream)
    try:
        "".join((*texts, *(v for _, v in point.dimensions))).encode()
    except UnicodeEncodeError:
        raise MetricStreamError("a string holds a lone surrogate (not valid Unicode)") from None
    return point


def decode_otel_record(data: bytes) -> list[Datapoint]:
    """Data points of an OpenTelemetry 1.0.0 record: varint-length-prefixed ExportMetricsServiceRequests."""
    points: list[Datapoint] = []
    offset = 0
    while offset < len(data):
        length, offset = _uvarint32(data, offset)
        end = offset + length
        if end > len(data):
            raise MetricStreamError(
                f"OpenTelemetry message at byte {offset} declares {length} bytes but only {len(data) - offset} follow"
            )
        request = ExportMetricsServiceRequest()
        try:
            request.ParseFromString(data[offset:end])
        except (DecodeError, RecursionError) as exc:
            raise MetricStreamError(f"not a valid ExportMetricsServiceRequest: {str(exc)[:200]}") from None
        points.extend(_otel_datapoints(request))
        offset = end
    return points


def _otel_datapoints(request: ExportMetricsServiceRequest) -> Iterable[Datapoint]:
    for resource_metrics in request.resource_metrics:
        resource = _strings(resource_metrics.resource.attributes)
        arn = resource.get("aws.exporter.arn", "")
        stream = arn.rpartition("metric-stream/")[2] if "metric-stream/" in arn else ""
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind != "summary":
                    raise MetricStreamError(
                        f"metric {metric.name[:120]!r} carries a {kind or 'empty'} point; CloudWatch metric "
                        "streams send Summary points"
                    )
                unit = _cloudwatch_unit(metric.unit)
                for point in metric.summary.data_points:
                    yield _otel_datapoint(point, unit, resource, stream)


def _otel_datapoint(point: SummaryDataPoint, unit: str, resource: Mapping[str, str], stream: str) -> Datapoint:
    if not point.attributes and any(field.field_number == 1 for field in UnknownFieldSet(point)):
        raise MetricStreamError(
            "the record is in the OpenTelemetry 0.7.0 format (data point labels instead of attributes); "
            "NovaCron reads 'opentelemetry1.0' and 'json': change the metric stream's OutputFormat"
        )
    attributes = {kv.key: kv.value for kv in point.attributes}
    namespace = _attribute_text(attributes, "Namespace")
    metric_name = _attribute_text(attributes, "MetricName")
    dimensions: dict[str, str] = {}
    if "Dimensions" in attributes:
        dims = attributes["Dimensions"]
        if dims.WhichOneof("value") != "kvlist_value":
            raise MetricStreamError("data point attribute 'Dimensions' must be a list of key-value pairs")
        dimensions = _strings(dims.kvlist_value.values)
    # CloudWatch's own timestamp of a data point is the start of its period (time_unix_nano is the end):
    # the JSON format's ``timestamp`` is that start too, so both formats give the same samples.
    stamp_ns = point.start_time_unix_nano or point.time_unix_nano
    if stamp_ns == 0:
        raise MetricStreamError(f"data point of {metric_name!r} has no timestamp")
    statistics = [("sum", point.sum), ("count", float(point.count))]
    for quantile in point.quantile_values:
        statistics.append((_quantile_statistic(quantile.quantile), quantile.value))
    return Datapoint(
        namespace=namespace,
        metric_name=metric_name,
        dimensions=tuple(sorted(dimensions.items())),
        timestamp_ms=stamp_ns // 1_000_000,
        statistics=tuple((name, _finite(value, name)) for name, value in statistics),
        unit=unit,
        account_id=resource.get("cloud.account.id", ""),
        region=resource.get("cloud.region", ""),
        metric_stream=stream,
    )


def _quantile_statistic(quantile: float) -> str:
    """0.0 is the minimum, 1.0 the maximum, 0.99 is ``p99`` and 0.999 ``p99.9`` (CloudWatch's names)."""
    if quantile == 0.0:
        return "min"
    if quantile == 1.0:
        return "max"
    if not 0.0 < quantile < 1.0:
        raise MetricStreamError(f"quantile {quantile!r} is outside [0, 1]")
    # Rounded so that a quantile that is not exact in binary (0.999) still names its percentile exactly.
    percent = Decimal(repr(round(quantile * 100, 6))).normalize()
    return f"p{percent:f}"


def _uvarint32(data: bytes, offset: int) -> tuple[int, int]:
    value = 0
    for i in range(_MAX_VARINT_BYTES):
        if offset + i >= len(data):
            break
        byte = data[offset + i]
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return value, offset + i + 1
    raise MetricStreamError(f"no valid length prefix (UnsignedVarInt32) at byte {offset} of the record")


def _strings(pairs: Iterable[KeyValue]) -> dict[str, str]:
    out = {}
    for kv in pairs:
        if kv.value.WhichOneof("value") != "string_value":
            raise MetricStreamError(f"attribute {kv.key[:80]!r} must be a string")
        out[kv.key] = kv.value.string_value
    return out


def _attribute_text(attributes: Mapping[str, AnyValue], key: str) -> str:
    value = attributes.get(key)
    if value is None or value.WhichOneof("value") != "string_value" or not value.string_value:
        raise MetricStreamError(f"data point has no string attribute {key!r}")
    return value.string_value


def _cloudwatch_unit(ucum: str) -> str:
    """The CloudWatch unit an OpenTelemetry unit stands for (``By/s`` is ``Bytes/Second``)."""
    if ucum.endswith(_SLASH_SECOND) and ucum[: -len(_SLASH_SECOND)] in _UCUM_TO_CLOUDWATCH:
        return _UCUM_TO_CLOUDWATCH[ucum[: -len(_SLASH_SECOND)]] + "/Second"
    return _UCUM_TO_CLOUDWATCH.get(ucum, ucum)


def _required_text(doc: Mapping[str, object], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise MetricStreamError(f"missing or empty string field {key!r}")
    return value


def _optional_text(doc: Mapping[str, object], key: str) -> str:
    value = doc.get(key, "")
    if not isinstance(value, str):
        raise MetricStreamError(f"field {key!r} must be a string")
    return value


def _finite(value: float, statistic: str) -> float:
    # CloudWatch never sends NaN or infinities; a record that does is not CloudWatch's.
    if not math.isfinite(value):
        raise MetricStreamError(f"statistic {statistic[:40]!r} is not a finite number")
    return value


# --- mapping to series ------------------------------------------------------------------------


def metric_name(namespace: str, metric: str, statistic: str) -> str:
    """``aws_<namespace>_<metric>_<statistic>``, lower-cased, every run of other characters one ``_``.

    A leading ``AWS/`` of the namespace is the ``aws`` prefix itself (``AWS/EC2`` → ``aws_ec2``).
    """
    if namespace.startswith("AWS/"):
        namespace = namespace[len("AWS/") :]
    parts = ("aws", _snake(namespace), _snake(metric), statistic_suffix(statistic))
    return "_".join(part for part in parts if part)


def statistic_suffix(statistic: str) -> str:
    """The name suffix of a statistic: ``p99.9`` → ``p99_9``, ``TM(25%:75%)`` → ``tm_25pct_to_75pct``."""
    text = statistic.lower().replace("%", "pct").replace(":", "_to_")
    return _snake(text)


def dimension_label(name: str) -> str:
    """The label of a dimension: ``InstanceId`` → ``dimension_InstanceId`` (other characters become ``_``)."""
    return DIMENSION_PREFIX + _NOT_LABEL_CHAR.sub("_", name)


def label_name(name: str) -> str:
    """A common attribute's label name: characters outside ``[A-Za-z0-9_]`` become ``_``."""
    sanitized = _NOT_LABEL_CHAR.sub("_", name)
    return "_" + sanitized if sanitized[:1].isdigit() else sanitized


def _snake(text: str) -> str:
    return _NOT_ALNUM.sub("_", text.lower()).strip("_")


def datapoint_labels(point: Datapoint, common: Mapping[str, str]) -> dict[str, str]:
    """The labels of a data point's series, without ``__name__``.

    ``common`` (the delivery stream's common attributes, already label names outside ``RECORD_LABELS``
    and the dimension prefix) adds labels and may set ``source``.
    """
    labels = {"source": SOURCE, **common}
    for key, value in (
        ("account_id", point.account_id),
        ("region", point.region),
        ("unit", point.unit),
        ("metric_stream", point.metric_stream),
    ):
        if value:
            labels[key] = value
    for name, value in point.dimensions:
        label = dimension_label(name)
        if label in labels:
            raise MetricStreamError(f"dimensions {name!r} and another one both map to label {label!r}")
        labels[label] = value
    return labels


class SeriesBuilder:
    """Collects data points into series (one per statistic) and encodes them as ``TimeSeries``.

    A series seen in several data points (late updates of a period, several periods) gets all its
    samples in one ``TimeSeries``, sorted by time; a repeated timestamp keeps the last value sent.
    """

    def __init__(self, common: Mapping[str, str] | None = None) -> None:
        self.common = dict(common or {})
        self._series: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}

    def add(self, points: Iterable[Datapoint]) -> None:
        """Add data points; MetricStreamError (and nothing added) if one cannot be labelled."""
        staged = []
        for point in points:
            labels = datapoint_labels(point, self.common)
            for statistic, value in point.statistics:
                name = metric_name(point.namespace, point.metric_name, statistic)
                key = tuple(sorted({**labels, "__name__": name}.items()))
                staged.append((key, point.timestamp_ms, value))
        for key, stamp, value in staged:
            self._series.setdefault(key, {})[stamp] = value

    def __len__(self) -> int:
        return len(self._series)

    def encoded(self) -> list[bytes]:
        """Every series as a ``TimeSeries`` encoding."""
        out = []
        for key, samples in self._series.items():
            series = TimeSeries(
                labels=[Label(name=name, value=value) for name, value in key],
                samples=[Sample(timestamp=stamp, value=samples[stamp]) for stamp in sorted(samples)],
            )
            out.append(series.SerializeToString())
        return out
