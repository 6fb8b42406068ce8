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
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from operator import itemgetter
from typing import NamedTuple, TypeVar

from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import SummaryDataPoint
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from novacron.protocols.otlp_wire import NO_TIMESTAMP, SummaryKey, summary_points
from novacron.protocols.samples import append_samples
from novacron.protocols.timeseries import encode_labels, encode_sample

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
_CACHE_LIMIT = 100_000


class MetricStreamError(ValueError):
    """A record is not a CloudWatch metric stream record of a supported format (a 4xx condition)."""


class Datapoint(NamedTuple):
    """One CloudWatch data point: one metric, one period, all its statistics.

    A named tuple rather than a dataclass: a delivery holds thousands, and building one is cheaper.
    """

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
        point = _known_json_datapoint(doc)
        if point is None:
            try:
                point = _json_datapoint(doc)
            except MetricStreamError as exc:
                raise MetricStreamError(f"line {number}: {exc}") from None
            _remember_json_identity(doc, point)
        points.append(point)
    return points


# A JSON line's identity (everything but its timestamp and values) → the parts of its Datapoint,
# for identities checked before: a stream sends the same metrics every minute.
_JsonIdentity = tuple[object, ...]
_json_identities: dict[_JsonIdentity, tuple[str, str, tuple[tuple[str, str], ...], str, str, str, str]] = {}
_good_statistics: set[str] = set()  # statistic names checked to name a series
_NO_DIMENSIONS: dict[str, str] = {}


_JSON_IDENTITY_FIELDS = itemgetter("namespace", "metric_name", "unit", "account_id", "region", "metric_stream_name")


def _json_identity(doc: dict[str, object], dimensions: dict[str, object]) -> _JsonIdentity:
    try:
        head: tuple[object, ...] = _JSON_IDENTITY_FIELDS(doc)  # CloudWatch always sends them all
    except KeyError:
        head = (
            doc.get("namespace"),
            doc.get("metric_name"),
            doc.get("unit", ""),
            doc.get("account_id", ""),
            doc.get("region", ""),
            doc.get("metric_stream_name", ""),
        )
    return (*head, *dimensions.items())


def _known_json_datapoint(doc: object) -> Datapoint | None:
    """The data point of a line whose identity was checked before and whose values are plain; else None.

    None sends the line through ``_json_datapoint``, which checks everything (and names what is wrong).
    """
    if type(doc) is not dict:
        return None
    dimensions = doc.get("dimensions", _NO_DIMENSIONS)
    if type(dimensions) is not dict:
        return None
    try:
        known = _json_identities.get(_json_identity(doc, dimensions))
    except TypeError:  # an unhashable value (an object, an array): never a checked identity
        return None
    stamp = doc.get("timestamp")
    value = doc.get("value")
    if known is None or type(stamp) is not int or not 0 <= stamp < 2**63 or type(value) is not dict or not value:
        return None
    statistics = []
    for statistic, number in value.items():
        if type(number) is int:
            try:
                number = float(number)
            except OverflowError:
                return None
        elif type(number) is not float or not math.isfinite(number):
            return None
        if statistic not in _good_statistics:
            return None
        statistics.append((statistic, number))
    namespace, metric, dims, unit, account_id, region, stream = known
    return Datapoint(namespace, metric, dims, stamp, tuple(statistics), unit, account_id, region, stream)


def _remember_json_identity(doc: object, point: Datapoint) -> None:
    """Let later lines of ``point``'s identity skip the checks ``_json_datapoint`` made on this one."""
    if type(doc) is not dict:
        return
    dimensions = doc.get("dimensions", _NO_DIMENSIONS)
    if type(dimensions) is not dict:
        return
    if len(_json_identities) >= _CACHE_LIMIT or len(_good_statistics) >= _CACHE_LIMIT:
        _json_identities.clear()
        _good_statistics.clear()
    _json_identities[_json_identity(doc, dimensions)] = (
        point.namespace,
        point.metric_name,
        point.dimensions,
        point.unit,
        point.account_id,
        point.region,
        point.metric_stream,
    )
    _good_statistics.update(statistic for statistic, _ in point.statistics)


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
        resource = _resource_labels(resource_metrics.resource.attributes)
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
                    yield _otel_datapoint(point, unit, resource)


def _resource_labels(attributes: Iterable[KeyValue]) -> tuple[str, str, str]:
    """Account id, region and metric stream name of a resource."""
    resource = _strings(attributes)
    arn = resource.get("aws.exporter.arn", "")
    stream = arn.rpartition("metric-stream/")[2] if "metric-stream/" in arn else ""
    return resource.get("cloud.account.id", ""), resource.get("cloud.region", ""), stream


def _point_names(attributes: Iterable[KeyValue]) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """Namespace, metric name and (sorted) dimensions of a data point, from its attributes."""
    by_key = {kv.key: kv.value for kv in attributes}
    namespace = _attribute_text(by_key, "Namespace")
    metric_name = _attribute_text(by_key, "MetricName")
    dimensions: dict[str, str] = {}
    if "Dimensions" in by_key:
        dims = by_key["Dimensions"]
        if dims.WhichOneof("value") != "kvlist_value":
            raise MetricStreamError("data point attribute 'Dimensions' must be a list of key-value pairs")
        dimensions = _strings(dims.kvlist_value.values)
    return namespace, metric_name, tuple(sorted(dimensions.items()))


def _otel_datapoint(point: SummaryDataPoint, unit: str, resource: tuple[str, str, str]) -> Datapoint:
    if not point.attributes and any(field.field_number == 1 for field in UnknownFieldSet(point)):
        raise MetricStreamError(
            "the record is in the OpenTelemetry 0.7.0 format (data point labels instead of attributes); "
            "NovaCron reads 'opentelemetry1.0' and 'json': change the metric stream's OutputFormat"
        )
    namespace, metric_name, dimensions = _point_names(point.attributes)
    # CloudWatch's own timestamp of a data point is the start of its period (time_unix_nano is the end):
    # the JSON format's ``timestamp`` is that start too, so both formats give the same samples.
    stamp_ns = point.start_time_unix_nano or point.time_unix_nano
    if stamp_ns == 0:
        raise MetricStreamError(f"data point of {metric_name!r} has no timestamp")
    statistics = [("sum", point.sum), ("count", float(point.count))]
    for quantile in point.quantile_values:
        statistics.append((_quantile_statistic(quantile.quantile), quantile.value))
    account_id, region, stream = resource
    return Datapoint(
        namespace=namespace,
        metric_name=metric_name,
        dimensions=dimensions,
        timestamp_ms=stamp_ns // 1_000_000,
        statistics=tuple((name, _finite(value, name)) for name, value in statistics),
        unit=unit,
        account_id=account_id,
        region=region,
        metric_stream=stream,
    )


def _quantile_statistic(quantile: float) -> str:
    """0.0 is the minimum, 1.0 the maximum, 0.99 is ``p99`` and 0.999 ``p99.9`` (CloudWatch's names)."""
    known = _quantile_names.get(quantile)
    if known is None:
        if len(_quantile_names) >= _CACHE_LIMIT:
            _quantile_names.clear()
        known = _quantile_names[quantile] = _name_quantile(quantile)
    return known


_quantile_names: dict[float, str] = {}


def _name_quantile(quantile: float) -> str:
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


class _Identity:
    """A data point identity's labels (no ``__name__``) and, by statistic, its series' encoded labels."""

    __slots__ = ("fields", "labels", "runs")

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels
        self.fields: dict[str, bytes] = {}
        # The statistic names a data point of this identity carries (in order) → their series' labels.
        self.runs: dict[tuple[str, ...], list[bytes]] = {}

    def run(self, statistics: tuple[str, ...]) -> list[bytes] | None:
        """The encoded labels of each of ``statistics``, if all are known."""
        run = self.runs.get(statistics)
        if run is None:
            fields = self.fields
            if not all(statistic in fields for statistic in statistics):
                return None
            run = self.runs[statistics] = [fields[statistic] for statistic in statistics]
        return run


# By common labels, then by data point identity (``_identity_of``): a warm function labels, names
# and encodes each series of a metric stream once.
_identities: dict[tuple[tuple[str, str], ...], dict[tuple[object, ...], _Identity]] = {}
# By common labels, then by summary point key (see ``otlp_wire.summary_points``): its series' labels.
_otel_runs: dict[tuple[tuple[str, str], ...], dict[SummaryKey, list[bytes]]] = {}
# By common labels, then by JSON line identity (``_json_identity``): the data point identity's labels.
_json_known: dict[tuple[tuple[str, str], ...], dict[_JsonIdentity, _Identity]] = {}


def _identity_of(point: Datapoint) -> tuple[object, ...]:
    """Everything of a data point but its timestamp and statistics."""
    return point[:3] + point[5:]


class SeriesBuilder:
    """Collects data points into series (one per statistic) and encodes them as ``TimeSeries``.

    A series seen in several data points (late updates of a period, several periods) gets all its
    samples in one ``TimeSeries``, sorted by time; a repeated timestamp keeps the last value sent.
    """

    def __init__(self, common: Mapping[str, str] | None = None) -> None:
        self.common = dict(common or {})
        common_key = tuple(self.common.items())
        known = _identities.get(common_key)
        if known is None:
            if len(_identities) >= 64:
                _identities.clear()  # many common-attribute sets in one function is rare; they refill
                _otel_runs.clear()
                _json_known.clear()
            known = _identities[common_key] = {}
        self._known = known
        self._otel_runs = _otel_runs.setdefault(common_key, {})
        self._json_known = _json_known.setdefault(common_key, {})
        # Samples as columns, in arrival order; each series (its encoded label fields) knows where its
        # first sample is, and, in the rare case of several, where the others are.
        self._stamps: list[int] = []
        self._values: list[float] = []
        self._first: dict[bytes, int] = {}
        self._more: dict[bytes, list[int]] = {}

    def add(self, points: Iterable[Datapoint]) -> None:
        """Add data points; MetricStreamError (and nothing added) if one cannot be labelled."""
        series: list[bytes] = []
        stamps: list[int] = []
        values: list[float] = []
        known = self._known
        for point in points:
            identity = known.get(_identity_of(point))
            if identity is None:
                identity = self._identity(point)
            fields = identity.fields
            stamp = point.timestamp_ms
            for statistic, value in point.statistics:
                encoded = fields.get(statistic)
                if encoded is None:
                    name = metric_name(point.namespace, point.metric_name, statistic)
                    encoded = fields[statistic] = encode_labels(sorted({**identity.labels, "__name__": name}.items()))
                series.append(encoded)
                stamps.append(stamp)
                values.append(value)
        self._add_samples(series, stamps, values)

    def add_record(self, data: bytes) -> None:
        """``add(decode_record(data))``: the same series and errors, without a Datapoint per data point.

        A record whose every data point has an identity (and statistics) this function has labelled
        before, and nothing unusual, is read straight into samples; any other goes the long way,
        which checks everything and remembers what it labelled.
        """
        staged = None
        if data.strip():
            staged = self._known_json(data) if data.lstrip()[:1] == b"{" else self._known_otel(data)
        if staged is None:
            self.add(decode_record(data))
        else:
            self._add_samples(*staged)

    def _identity(self, point: Datapoint) -> _Identity:
        labels = datapoint_labels(point, self.common)  # MetricStreamError: not remembered
        if len(self._known) >= _CACHE_LIMIT:
            self._known.clear()
        identity = self._known[_identity_of(point)] = _Identity(labels)
        return identity

    def _add_samples(self, series: list[bytes], stamps: list[int], values: list[float]) -> None:
        base = len(self._stamps)
        self._stamps += stamps
        self._values += values
        first = self._first
        new = dict(zip(series, range(base, base + len(series)), strict=True))
        if len(new) == len(series) and first.keys().isdisjoint(new):  # the usual case: all series new
            first.update(new)
            return
        for index, encoded in enumerate(series, base):
            if first.setdefault(encoded, index) != index:
                self._more.setdefault(encoded, []).append(index)

    def _known_json(self, data: bytes) -> _Staged | None:
        """The samples of a JSON record of known identities and plain values, or None (see ``add_record``)."""
        series: list[bytes] = []
        stamps: list[int] = []
        values: list[float] = []
        known = self._known
        by_json = self._json_known
        for line in data.splitlines():
            if not line:
                continue
            doc = _plain_json_object(line)
            if doc is None:
                return None
            dimensions = doc.get("dimensions", _NO_DIMENSIONS)
            if type(dimensions) is not dict:
                return None
            try:
                key = _json_identity(doc, dimensions)
                identity = by_json.get(key)
                if identity is None:
                    checked = _json_identities.get(key)
                    identity = known.get(checked) if checked is not None else None
                    if identity is not None:
                        if len(by_json) >= _CACHE_LIMIT:
                            by_json.clear()
                        by_json[key] = identity
            except TypeError:  # an unhashable value (an object, an array): never a checked identity
                return None
            stamp = doc.get("timestamp")
            value = doc.get("value")
            if identity is None or type(stamp) is not int or not 0 <= stamp < 2**63 or type(value) is not dict:
                return None
            if not value:
                return None
            run = identity.run(tuple(value))
            if run is None:
                return None
            numbers = list(value.values())
            for number in numbers:
                if type(number) is not float or not math.isfinite(number):
                    break
            else:
                series += run
                stamps += [stamp] * len(run)
                values += numbers
                continue
            for k, number in enumerate(numbers):  # integers, or something json_datapoint must name
                if type(number) is int:
                    try:
                        numbers[k] = float(number)
                    except OverflowError:
                        return None
                elif type(number) is not float or not math.isfinite(number):
                    return None
            series += run
            stamps += [stamp] * len(run)
            values += numbers
        return series, stamps, values

    def _known_otel(self, data: bytes) -> _Staged | None:
        """The samples of an OpenTelemetry record of known identities and plain values, or None (see ``add_record``)."""
        series: list[bytes] = []
        stamps: list[int] = []
        values: list[float] = []
        runs = self._otel_runs
        offset = 0
        while offset < len(data):
            try:
                length, offset = _uvarint32(data, offset)
            except MetricStreamError:
                return None
            end = offset + length
            if end > len(data):
                return None
            message = data[offset:end]
            offset = end
            try:
                ExportMetricsServiceRequest.FromString(message)  # checks it as decode_otel_record does
            except (DecodeError, RecursionError):
                return None
            points = summary_points(message)
            if points is None:
                return None
            for key, stamp, numbers in zip(*points, strict=True):
                run = runs.get(key)
                if run is None:
                    run = self._otel_run(key)
                if run is None or stamp == NO_TIMESTAMP:
                    return None
                for number in numbers:
                    if not math.isfinite(number):
                        return None
                series += run
                stamps += [stamp] * len(run)
                values += numbers
        return series, stamps, values

    def _otel_run(self, key: SummaryKey) -> list[bytes] | None:
        """The series labels of a summary point's statistics, if its identity and statistics are known."""
        resource_bytes, unit, attributes, quantiles = key
        resource = _known_resource(resource_bytes)
        names = _known_point_names(attributes) if attributes else None
        statistics = [_quantile_names[quantile] for quantile in quantiles if quantile in _quantile_names]
        if resource is None or names is None or len(statistics) != len(quantiles):
            return None
        identity = self._known.get((*names, _cloudwatch_unit(unit), *resource))
        run = identity.run(("sum", "count", *statistics)) if identity is not None else None
        if run is not None:
            if len(self._otel_runs) >= _CACHE_LIMIT:
                self._otel_runs.clear()
            self._otel_runs[key] = run
        return run

    def __len__(self) -> int:
        return len(self._first)

    def encoded(self) -> list[bytes]:
        """Every series as a ``TimeSeries`` encoding."""
        stamps, values = self._stamps, self._values
        if not self._more and len(self._first) == len(stamps):  # one sample each, in series order
            return append_samples(list(self._first), values, stamps)
        out: list[bytes] = []
        # Series of one sample (nearly all) are written in one batch into their places in ``out``.
        places: list[int] = []
        prefixes: list[bytes] = []
        single_values: list[float] = []
        single_stamps: list[int] = []
        for fields, first in self._first.items():
            more = self._more.get(fields)
            if more is None:
                places.append(len(out))
                prefixes.append(fields)
                single_values.append(values[first])
                single_stamps.append(stamps[first])
                out.append(b"")
            else:
                # A repeated timestamp keeps the last value sent.
                latest = {stamps[i]: values[i] for i in (first, *more)}
                out.append(fields + b"".join([encode_sample(latest[stamp], stamp) for stamp in sorted(latest)]))
        for place, content in zip(places, append_samples(prefixes, single_values, single_stamps), strict=True):
            out[place] = content
        return out


# Samples staged for a builder: each one's series (encoded label fields), timestamp and value.
_Staged = tuple[list[bytes], list[int], list[float]]
# The decoder json.loads uses (default settings); its C scanner reads one value at a position.
_scan_json: Callable[[str, int], tuple[object, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _plain_json_object(line: bytes) -> dict[str, object] | None:
    """``json.loads(line)`` for a line that is one UTF-8 JSON object and nothing else; None for any other line.

    What json.loads would do differently (other encodings, byte order marks, surrounding blanks) is
    left to it: those lines get None.
    """
    try:
        text = line.decode("utf-8", "surrogatepass")
        if text[:1] != "{":
            return None
        doc, end = _scan_json(text, 0)
    except (UnicodeDecodeError, StopIteration, ValueError, RecursionError):
        return None
    return doc if end == len(text) and type(doc) is dict else None


# Resources and data point attributes of the OpenTelemetry format, by their bytes: what they name.
_resources: dict[bytes, tuple[str, str, str]] = {}
_point_names_by_bytes: dict[bytes, tuple[str, str, tuple[tuple[str, str], ...]]] = {}


_Named = TypeVar("_Named")


def _remembered(cache: dict[bytes, _Named], encoded: bytes, read: Callable[[bytes], _Named]) -> _Named | None:
    """``read(encoded)``, remembered; None (not remembered) when it raises: the long way names why."""
    known = cache.get(encoded)
    if known is None:
        try:
            known = read(encoded)
        except (MetricStreamError, DecodeError, RecursionError):
            return None
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[encoded] = known
    return known


def _known_resource(encoded: bytes) -> tuple[str, str, str] | None:
    """Account id, region and stream of an encoded Resource, or None if it does not name them."""
    return _remembered(_resources, encoded, lambda data: _resource_labels(Resource.FromString(data).attributes))


def _known_point_names(encoded: bytes) -> tuple[str, str, tuple[tuple[str, str], ...]] | None:
    """Namespace, metric name and dimensions from a data point's encoded attribute fields, or None."""
    return _remembered(
        _point_names_by_bytes, encoded, lambda data: _point_names(SummaryDataPoint.FromString(data).attributes)
    )
