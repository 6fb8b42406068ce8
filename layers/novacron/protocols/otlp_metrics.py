"""OpenTelemetry metrics (OTLP) as Prometheus series.

The mapping follows the OpenTelemetry specification "Prometheus and OpenMetrics Compatibility"
(OTLP metric points to Prometheus) the way Prometheus's own OTLP receiver does in its default
translation strategy, ``UnderscoreEscapingWithSuffixes``: names escaped to ``[a-zA-Z0-9_:]`` with
unit and type suffixes, attributes as labels, ``job``/``instance`` from the resource and one
``target_info`` series for the rest of it. Where NovaCron differs (no native histograms, delta
temporality stored as received, a ``service`` label, reserved ``__`` label names refused), the
module says so at the spot; docs/otlp.md ("Metric mapping") is the user-facing account.

Every label set produced passes ``novacron.ingest.validate.check_labels``; a data point that would
produce one that does not is rejected whole (all of its series), with a reason.
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    DataPointFlags,
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    SummaryDataPoint,
)

from novacron.ingest.validate import Limits, check_labels
from novacron.protocols.histograms import cumulative_buckets, format_bound
from novacron.protocols.otlp_wire import (
    NO_TIMESTAMP,
    NumberPoints,
    number_points,
    raw_metrics_request,
    raw_number_data,
)
from novacron.protocols.timeseries import encode_labels, encode_sample
from novacron.series import METRIC_NAME, STALE_NAN, Labels

# Resource attributes copied onto every series of the resource. Kept small: each one multiplies
# nothing (it is constant per resource) but lengthens every label set and index key.
DEFAULT_PROMOTED: tuple[str, ...] = ("deployment.environment.name", "deployment.environment")
# Promoted attributes with a label name of their own; any other becomes its sanitised name. The
# semantic conventions renamed deployment.environment, so both spellings land on one label.
_PROMOTED_LABELS = {"deployment.environment.name": "environment", "deployment.environment": "environment"}

SERVICE_NAME = "service.name"
SERVICE_NAMESPACE = "service.namespace"
SERVICE_INSTANCE_ID = "service.instance.id"
# They identify the resource (job, instance), so target_info leaves them out.
_IDENTIFYING = frozenset({SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID})
TARGET_INFO = "target_info"

# Prometheus's staleness marker: a NaN with this exact payload (novacron.promql.values reads it).
_NO_RECORDED_VALUE = DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_UNSPECIFIED = AggregationTemporality.AGGREGATION_TEMPORALITY_UNSPECIFIED
# OTLP's valid exponential histogram scales.
_MIN_SCALE, _MAX_SCALE = -10, 20

_MAX_ERRORS = 10
_CACHE_LIMIT = 100_000
_SERIES_CACHE_LIMIT = 200_000
_LIMITS = Limits()

# How a metric is named: counters get _total, gauges of unit "1" get _ratio, the rest neither.
_COUNTER, _GAUGE, _PLAIN = "counter", "gauge", "plain"

# UCUM units (as OpenTelemetry writes them) → Prometheus base-unit words. Unknown units pass
# through, escaped; "1" (dimensionless) adds no unit word.
_UNIT_WORDS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tebibytes",
    "kBy": "kilobytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "1": "",
    "%": "percent",
}
# The denominator of "x/y" units, singular: "By/s" → "bytes_per_second".
_PER_UNIT_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}

# Runs of characters valid in a metric name other than "_": splitting on everything else replaces
# invalid characters with "_", collapses repeats and drops leading and trailing underscores.
_METRIC_WORD = re.compile(r"[a-zA-Z0-9:]+")
_INVALID_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")
_BY_KEY = attrgetter("key")
_BY_TIME = itemgetter(0)

_metric_names: dict[tuple[str, str, str], str] = {}
_label_names: dict[str, str] = {}
# Label names check_labels has found valid, so that it checks each once per warm function.
_valid_label_names: set[str] = set()
# Label set → its encoded label fields, or why it is invalid. Senders repeat their series every
# export interval, so a warm function validates and encodes each label set once.
_series_memo: dict[Labels, bytes | str] = {}
# A number point's series (its encoded label fields), or why it cannot be stored.
_PointSeries = bytes | str
_NO_TIMESTAMP = "data point has no timestamp (time_unix_nano is 0)"
_NO_VALUE = "data point has no value (neither as_int nor as_double is set)"


@dataclass
class MappedMetrics:
    """The series of one OTLP export request, and what could not be mapped."""

    # Prometheus TimeSeries encodings, labels sorted by name, one per label set, samples by time.
    contents: list[bytes] = field(default_factory=list)
    points: int = 0  # OTLP data points seen in the request
    rejected_points: int = 0  # data points that could not be mapped
    errors: list[str] = field(default_factory=list)  # the first few reasons, for partial_success


def map_metrics_request(
    request: ExportMetricsServiceRequest,
    *,
    promote_resource_attributes: Sequence[str] = DEFAULT_PROMOTED,
    body: bytes | None = None,
) -> MappedMetrics:
    """Map an OTLP ``ExportMetricsServiceRequest`` to Prometheus ``TimeSeries`` encodings.

    ``promote_resource_attributes`` names the resource attributes copied onto every series of their
    resource as labels (``deployment.environment[.name]`` as ``environment``, any other under its
    sanitised name); data point attributes of the same label name win over them. ``body``, the
    encoding ``request`` was parsed from, if at hand, saves re-encoding its gauges and sums.
    """
    mapper = _Mapper(tuple(promote_resource_attributes))
    raw = raw_metrics_request(body) if body is not None else None
    raw_resources = _matching(raw.resource_metrics if raw is not None else None, request.resource_metrics)
    for resource_metrics, raw_resource in zip(request.resource_metrics, raw_resources, strict=True):
        mapper.add_resource(resource_metrics, raw_resource)
    return mapper.result()


def _matching(raw: Sequence[Any] | None, parsed: Sequence[Any]) -> Sequence[Any | None]:
    """The raw messages parsed alongside ``parsed``, one each (Nones when they do not line up)."""
    if raw is None or len(raw) != len(parsed):
        return [None] * len(parsed)
    return raw


def metric_name(name: str, unit: str, kind: str) -> str:
    """The Prometheus name of an OTLP metric of ``kind`` (counter, gauge, plain); ``""`` if none is left.

    Invalid characters become ``_`` (repeats collapsed), the unit's words are appended unless the
    name already contains them, counters end in ``_total``, gauges of unit ``1`` in ``_ratio``, and
    a leading digit gets a ``_`` prefix.
    """
    key = (name, unit, kind)
    cached = _metric_names.get(key)
    if cached is None:
        if len(_metric_names) >= _CACHE_LIMIT:
            _metric_names.clear()
        cached = _metric_names[key] = _build_metric_name(name, unit, kind)
    return cached


def _build_metric_name(name: str, unit: str, kind: str) -> str:
    words = _METRIC_WORD.findall(name)
    if not words:
        return ""
    for suffix in _unit_suffixes(unit):
        if not _contains_run(words, suffix):
            words.extend(suffix)
    if kind == _COUNTER:
        words = [w for w in words if w != "total"] + ["total"]
    elif kind == _GAUGE and unit == "1":
        words = [w for w in words if w != "ratio"] + ["ratio"]
    joined = "_".join(words)
    return "_" + joined if joined[0].isdigit() else joined


def _unit_suffixes(unit: str) -> list[list[str]]:
    """The words of a unit's main part and of its ``per_`` part; annotations in ``{}`` add none."""
    main, _, per = unit.partition("/")
    suffixes = []
    main = main.strip()
    if main and "{" not in main and "}" not in main:
        words = _METRIC_WORD.findall(_UNIT_WORDS.get(main, main))
        if words:
            suffixes.append(words)
    per = per.strip()
    if per and "{" not in per and "}" not in per:
        words = _METRIC_WORD.findall(_PER_UNIT_WORDS.get(per, per))
        if words:
            suffixes.append(["per", *words])
    return suffixes


def _contains_run(words: list[str], run: list[str]) -> bool:
    n = len(run)
    return any(words[i : i + n] == run for i in range(len(words) - n + 1))


def label_name(key: str) -> str:
    """The Prometheus label name of an attribute key; ``""`` for an empty key.

    Invalid characters become ``_``; a name starting with a digit gets a ``key_`` prefix, one
    starting with underscores becomes ``key_`` and the rest (Prometheus keeps ``__`` names, but
    NovaCron reserves them, so ``__x`` and ``_x`` both become ``key_x``).
    """
    cached = _label_names.get(key)
    if cached is None:
        if len(_label_names) >= _CACHE_LIMIT:
            _label_names.clear()
        cached = _label_names[key] = _build_label_name(key)
    return cached


def _build_label_name(key: str) -> str:
    name = _INVALID_LABEL_CHAR.sub("_", key)
    if not name:
        return ""
    if name[0].isdigit():
        return "key_" + name
    if name[0] == "_":
        return "key_" + name.lstrip("_")
    return name


def attribute_string(value: AnyValue) -> str:
    """An attribute value as a label value, in the OpenTelemetry attribute specification's string form.

    Strings as they are, booleans ``true``/``false``, integers in decimal, doubles as JavaScript
    prints them, bytes as base64, arrays and key-value lists as compact JSON; no value is ``""``.
    """
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return ""
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return _number_string(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return _json(value)


def _json(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return "[" + ",".join(_json(item) for item in value.array_value.values) + "]"
    if kind == "kvlist_value":
        pairs = (json.dumps(kv.key, ensure_ascii=False) + ":" + _json(kv.value) for kv in value.kvlist_value.values)
        return "{" + ",".join(pairs) + "}"
    if kind is None:
        return "null"
    if kind in ("bool_value", "int_value") or (kind == "double_value" and math.isfinite(value.double_value)):
        return attribute_string(value)
    return json.dumps(attribute_string(value), ensure_ascii=False)


def _number_string(x: float) -> str:
    """``x`` as ECMAScript's Number::toString writes it (what Go's pdata uses): ``1``, ``0.5``, ``1e+21``."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr gives the shortest digits that read back as x; only their layout differs from ECMAScript.
    _, digit_tuple, exponent = Decimal(repr(abs(x))).normalize().as_tuple()
    assert isinstance(exponent, int)  # finite
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = exponent + k  # the decimal point's position relative to the digits
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        body = f"{mantissa}e{'+' if n > 0 else '-'}{abs(n - 1)}"
    return sign + body


class _BadPoint(Exception):
    """A data point whose contents cannot be mapped; the message says why."""


# One sample a data point produces: metric name, the extra label (le, quantile) or "", its value.
_Sample = tuple[str, str, str, float]


def _number_samples(name: str, point: NumberDataPoint) -> list[_Sample]:
    if point.flags & _NO_RECORDED_VALUE:
        return [(name, "", "", STALE_NAN)]
    kind = point.WhichOneof("value")
    if kind == "as_double":
        return [(name, "", "", point.as_double)]
    if kind == "as_int":
        return [(name, "", "", float(point.as_int))]
    raise _BadPoint(_NO_VALUE)


def _histogram_samples(name: str, point: HistogramDataPoint) -> list[_Sample]:
    bounds = point.explicit_bounds
    counts = point.bucket_counts
    if counts and len(counts) != len(bounds) + 1:
        raise _BadPoint(f"histogram has {len(counts)} bucket counts for {len(bounds)} explicit bounds (needs one more)")
    if not all(math.isfinite(b) for b in bounds) or any(a >= b for a, b in itertools.pairwise(bounds)):
        raise _BadPoint("histogram explicit bounds must be finite and strictly increasing")
    stale = bool(point.flags & _NO_RECORDED_VALUE)
    bucket = name + "_bucket"
    samples: list[_Sample] = []
    total = 0
    for bound, count in zip(bounds, counts, strict=False):  # no counts: only the +Inf bucket
        total += count
        samples.append((bucket, "le", format_bound(bound), STALE_NAN if stale else float(total)))
    return samples + _count_and_sum(name, bucket, point.count, point.sum if point.HasField("sum") else None, stale)


def _exponential_samples(name: str, point: ExponentialHistogramDataPoint) -> list[_Sample]:
    if not _MIN_SCALE <= point.scale <= _MAX_SCALE:
        raise _BadPoint(f"exponential histogram scale {point.scale} is outside OTLP's {_MIN_SCALE}..{_MAX_SCALE}")
    bounds = cumulative_buckets(
        point.scale,
        point.zero_threshold,
        float(point.zero_count),
        point.positive.offset + 1,  # OTLP indexes buckets by lower bound, Prometheus by upper
        list(point.positive.bucket_counts),
        point.negative.offset + 1,
        list(point.negative.bucket_counts),
    )
    stale = bool(point.flags & _NO_RECORDED_VALUE)
    buckets: dict[str, float] = {}
    for bound, total in bounds:
        # Bounds past the float range are the +Inf bucket; equal strings keep the larger count.
        if math.isfinite(bound):
            buckets[format_bound(bound)] = STALE_NAN if stale else total
    bucket = name + "_bucket"
    samples: list[_Sample] = [(bucket, "le", le, value) for le, value in buckets.items()]
    return samples + _count_and_sum(name, bucket, point.count, point.sum if point.HasField("sum") else None, stale)


def _count_and_sum(name: str, bucket: str, count: int, total: float | None, stale: bool) -> list[_Sample]:
    """The ``+Inf`` bucket (the count), ``_sum`` when there is one, and ``_count``."""
    count_value = STALE_NAN if stale else float(count)
    samples: list[_Sample] = [(bucket, "le", "+Inf", count_value), (name + "_count", "", "", count_value)]
    if total is not None:
        samples.append((name + "_sum", "", "", STALE_NAN if stale else total))
    return samples


def _summary_samples(name: str, point: SummaryDataPoint) -> list[_Sample]:
    stale = bool(point.flags & _NO_RECORDED_VALUE)
    samples: list[_Sample] = [
        (name, "quantile", format_bound(q.quantile), STALE_NAN if stale else q.value) for q in point.quantile_values
    ]
    samples.append((name + "_sum", "", "", STALE_NAN if stale else point.sum))
    samples.append((name + "_count", "", "", STALE_NAN if stale else float(point.count)))
    return samples


_EXPANDERS: dict[str, Callable[[str, Any], list[_Sample]]] = {
    "gauge": _number_samples,
    "sum": _number_samples,
    "histogram": _histogram_samples,
    "exponential_histogram": _exponential_samples,
    "summary": _summary_samples,
}


class _PointSeriesCache:
    """Number points' series by context (resource and scope labels, metric name) and attribute bytes.

    A sender repeats its series every export interval, each with the same attributes, so a warm
    function maps an attribute set to its labels, validates and encodes them once, and afterwards
    finds a point's series with one lookup of its attribute fields' bytes.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.tables: dict[tuple[object, ...], dict[bytes, _PointSeries]] = {}
        self.size = 0

    def table(self, context: tuple[object, ...]) -> dict[bytes, _PointSeries]:
        """The attribute-bytes table of one context (created empty)."""
        table = self.tables.get(context)
        if table is None:
            table = self.tables[context] = {}
        return table

    def added(self) -> None:
        """Count one entry added to a table; past the limit, start again (tables in use carry on)."""
        self.size += 1
        if self.size > self.limit:
            self.tables.clear()
            self.size = 0


_point_series = _PointSeriesCache(_SERIES_CACHE_LIMIT)


class _Mapper:
    """Gathers the series of one request; label sets are validated once each."""

    def __init__(self, promote: tuple[str, ...]) -> None:
        self._promote = promote
        # Samples (time in ms, ``TimeSeries.samples`` field) by series, each series named by its
        # encoded label fields (one encoding per label set).
        self._series: dict[bytes, list[tuple[int, bytes]]] = {}
        self._problems: dict[str, int] = {}  # reason → data points it rejected
        self._points = 0
        self._rejected = 0

    def add_resource(self, resource_metrics: ResourceMetrics, raw_resource: Any | None = None) -> None:
        """Map every metric of one resource, then its target_info (``raw_resource``: its raw parse, if any)."""
        resource = {kv.key: kv.value for kv in resource_metrics.resource.attributes}
        identity = _identity_labels(resource)
        promoted = self._promoted(resource)
        latest = -1
        all_scopes = resource_metrics.scope_metrics
        raw_scopes = _matching(raw_resource.scope_metrics if raw_resource is not None else None, all_scopes)
        for scope_metrics, raw_scope in zip(all_scopes, raw_scopes, strict=True):
            fixed = dict(identity)
            scope = scope_metrics.scope
            if scope.name:  # the spec's otel_scope_* labels, only for a named scope
                fixed["otel_scope_name"] = scope.name
                if scope.version:
                    fixed["otel_scope_version"] = scope.version
            context = (tuple(promoted.items()), tuple(fixed.items()))
            metrics = scope_metrics.metrics
            raw_metrics = _matching(raw_scope.metrics if raw_scope is not None else None, metrics)
            for metric, raw_metric in zip(metrics, raw_metrics, strict=True):
                latest = max(latest, self._add_metric(metric, promoted, fixed, context, raw_metric))
        if latest >= 0:
            self._add_target_info(resource_metrics.resource.attributes, identity, latest)

    def _promoted(self, resource: Mapping[str, AnyValue]) -> dict[str, str]:
        labels: dict[str, str] = {}
        for key in self._promote:
            value = resource.get(key)
            text = attribute_string(value) if value is not None else ""
            name = _PROMOTED_LABELS.get(key) or label_name(key)
            if text and name and name not in labels:  # the first listed of two same-named ones wins
                labels[name] = text
        return labels

    def _add_metric(
        self,
        metric: Metric,
        promoted: dict[str, str],
        fixed: dict[str, str],
        context: tuple[object, ...],
        raw_metric: Any | None,
    ) -> int:
        """Map one metric's points; the latest timestamp (ms) of those accepted, or -1."""
        kind = metric.WhichOneof("data")
        if kind is None:
            return -1
        data = getattr(metric, kind)
        points = data.data_points
        self._points += len(points)
        if not points:
            return -1
        what = f"metric {metric.name!r}"
        if kind in ("sum", "histogram", "exponential_histogram") and data.aggregation_temporality == _UNSPECIFIED:
            self._reject(f"{what}: aggregation temporality is unspecified (send CUMULATIVE or DELTA)", len(points))
            return -1
        naming = _GAUGE if kind == "gauge" else _COUNTER if kind == "sum" and data.is_monotonic else _PLAIN
        name = metric_name(metric.name, metric.unit, naming)
        if not name:
            self._reject(f"{what}: the name has no character a Prometheus metric name can use", len(points))
            return -1
        if kind in ("gauge", "sum"):
            read = number_points(raw_number_data(raw_metric, kind) or data.SerializeToString())
            if read is not None:
                table = _point_series.table((*context, name))
                return self._add_number_points(what, read, table, promoted, fixed, name)
        expand = _EXPANDERS[kind]
        latest = -1
        for point in points:
            if point.time_unix_nano == 0:
                self._reject(f"{what}: {_NO_TIMESTAMP}")
                continue
            try:
                samples = expand(name, point)
            except _BadPoint as exc:
                self._reject(f"{what}: {exc}")
                continue
            labels = promoted | self._attribute_labels(point.attributes) | fixed
            timestamp = point.time_unix_nano // 1_000_000
            if self._add_point(what, labels, samples, timestamp):
                latest = max(latest, timestamp)
        return latest

    def _add_number_points(
        self,
        what: str,
        points: NumberPoints,
        table: dict[bytes, _PointSeries],
        promoted: dict[str, str],
        fixed: dict[str, str],
        name: str,
    ) -> int:
        """Gauge or sum points read from the wire: what ``_number_samples`` and ``_add_point`` do, per lookup."""
        series = self._series
        latest = -1
        for attributes, stamp, sample in zip(*points, strict=True):
            if stamp == NO_TIMESTAMP:
                self._reject(f"{what}: {_NO_TIMESTAMP}")
                continue
            if sample is None:
                self._reject(f"{what}: {_NO_VALUE}")
                continue
            known = table.get(attributes)
            if known is None:
                known = table[attributes] = self._point_series(attributes, promoted, fixed, name)
                _point_series.added()
            if isinstance(known, str):
                self._reject(f"{what}: {known}")
                continue
            samples = series.get(known)
            if samples is None:
                samples = series[known] = []
            samples.append((stamp, sample))
            if stamp > latest:
                latest = stamp
        return latest

    def _point_series(
        self, attributes: bytes, promoted: dict[str, str], fixed: dict[str, str], name: str
    ) -> _PointSeries:
        """The series of a number point with these attribute fields (see ``_add_point``)."""
        labels = promoted | self._attribute_labels(NumberDataPoint.FromString(attributes).attributes) | fixed
        labels[METRIC_NAME] = name
        return _series_labels(tuple(sorted(labels.items())))

    def _attribute_labels(self, attributes: Sequence[KeyValue], in_key_order: bool = False) -> dict[str, str]:
        """Attributes as labels; keys that sanitise alike join their values with ``;`` in key order."""
        labels: dict[str, str] = {}
        for kv in sorted(attributes, key=_BY_KEY) if in_key_order else attributes:
            value = attribute_string(kv.value)
            name = label_name(kv.key)
            if not value or not name:  # an empty value is an absent label, as in Prometheus
                continue
            previous = labels.get(name)
            if previous is not None:
                if not in_key_order:  # rare: redo in key order so the joined value is deterministic
                    return self._attribute_labels(attributes, in_key_order=True)
                value = previous + ";" + value
            labels[name] = value
        return labels

    def _add_point(self, what: str, labels: dict[str, str], samples: list[_Sample], timestamp: int) -> bool:
        """Add every sample of one point, or none if any of its label sets is invalid."""
        keyed: list[tuple[bytes, float]] = []
        for name, extra, extra_value, value in samples:
            series_labels = labels.copy()
            series_labels[METRIC_NAME] = name
            if extra:
                series_labels[extra] = extra_value
            known = self._check(tuple(sorted(series_labels.items())))
            if isinstance(known, str):
                self._reject(f"{what}: {known}")
                return False
            keyed.append((known, value))
        for fields, value in keyed:
            self._series[fields].append((timestamp, encode_sample(value, timestamp)))
        return True

    def _check(self, key: Labels) -> bytes | str:
        """A label set's encoded fields, or why it cannot be stored; a valid one gets its (empty) series."""
        known = _series_labels(key)
        if not isinstance(known, str) and known not in self._series:
            self._series[known] = []
        return known

    def _add_target_info(self, attributes: Sequence[KeyValue], identity: dict[str, str], timestamp: int) -> None:
        others = [kv for kv in attributes if kv.key not in _IDENTIFYING]
        labels = self._attribute_labels(others)
        if not labels:
            return
        labels.update((k, v) for k, v in identity.items() if k in ("job", "instance"))
        labels[METRIC_NAME] = TARGET_INFO
        known = self._check(tuple(sorted(labels.items())))
        if isinstance(known, str):  # not a data point: reported, not counted as rejected
            self._problems.setdefault(f"{TARGET_INFO} of job {identity.get('job', '')!r} not stored: {known}", 0)
            return
        self._series[known].append((timestamp, encode_sample(1.0, timestamp)))

    def _reject(self, reason: str, points: int = 1) -> None:
        self._rejected += points
        self._problems[reason] = self._problems.get(reason, 0) + points

    def result(self) -> MappedMetrics:
        """The encoded series and the counts."""
        contents = []
        for fields, samples in self._series.items():
            if len(samples) == 1:  # the usual case: one point per series and export
                contents.append(fields + samples[0][1])
            elif samples:  # a series registered by a point rejected afterwards stays empty
                samples.sort(key=_BY_TIME)
                # Two encodings of one message type concatenated are one message holding both.
                contents.append(fields + b"".join([sample for _, sample in samples]))
        errors = [_describe_problem(reason, count) for reason, count in self._problems.items()]
        if len(errors) > _MAX_ERRORS:
            errors = [*errors[:_MAX_ERRORS], f"... and {len(errors) - _MAX_ERRORS} more"]
        return MappedMetrics(contents, self._points, self._rejected, errors)


def _series_labels(key: Labels) -> bytes | str:
    """The encoded label fields of a valid label set, or why it is invalid."""
    known = _series_memo.get(key)
    if known is None:
        if len(_series_memo) >= _SERIES_CACHE_LIMIT:
            _series_memo.clear()
        problem = check_labels(list(key), _LIMITS, _valid_label_names)
        known = encode_labels(key) if problem is None else problem
        _series_memo[key] = known
    return known


def _describe_problem(reason: str, points: int) -> str:
    if points > 1:
        return f"{reason} ({points} data points)"
    return reason


def _identity_labels(resource: Mapping[str, AnyValue]) -> dict[str, str]:
    """``job`` (``namespace/name``), ``service`` (the name) and ``instance`` from the resource."""
    labels: dict[str, str] = {}
    name = _attribute_text(resource, SERVICE_NAME)
    if name:
        namespace = _attribute_text(resource, SERVICE_NAMESPACE)
        labels["job"] = f"{namespace}/{name}" if namespace else name
        labels["service"] = name
    instance = _attribute_text(resource, SERVICE_INSTANCE_ID)
    if instance:
        labels["instance"] = instance
    return labels


def _attribute_text(attributes: Mapping[str, AnyValue], key: str) -> str:
    value = attributes.get(key)
    return attribute_string(value) if value is not None else ""
