"""OTLP metrics → Prometheus series: names, units, types, temporality, labels, resources, rejections."""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AggregationTemporality,
    DataPointFlags,
    Exemplar,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
    Summary,
    SummaryDataPoint,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource as SdkResource

from novacron.ingest.validate import SeriesValidator
from novacron.protocols.otlp_metrics import (
    DEFAULT_PROMOTED,
    MappedMetrics,
    attribute_string,
    label_name,
    map_metrics_request,
    metric_name,
)
from novacron.protocols.remote_write_pb import TimeSeries
from novacron.protocols.wire import decode_series
from novacron.series import STALE_NAN_BITS

T0 = 1_790_000_000_000  # ms
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
UNSPECIFIED = AggregationTemporality.AGGREGATION_TEMPORALITY_UNSPECIFIED
NO_VALUE = DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK

Series = dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]


# --- builders -----------------------------------------------------------------------------------


def any_value(value: Any) -> AnyValue:
    """An AnyValue of the OTLP type matching the Python value."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=attributes(value)))
    if value is None:
        return AnyValue()
    return AnyValue(string_value=value)


def attributes(attrs: Mapping[str, Any] | Sequence[tuple[str, Any]] | None) -> list[KeyValue]:
    pairs = list(attrs.items()) if isinstance(attrs, Mapping) else list(attrs or [])
    return [KeyValue(key=k, value=any_value(v)) for k, v in pairs]


def ns(ms: int) -> int:
    return ms * 1_000_000


def number(value: float, ms: int = T0, attrs: Any = None, flags: int = 0) -> NumberDataPoint:
    point = NumberDataPoint(time_unix_nano=ns(ms) if ms else 0, attributes=attributes(attrs), flags=flags)
    if isinstance(value, int):
        point.as_int = value
    elif value is not None:
        point.as_double = value
    return point


def gauge(name: str, *points: NumberDataPoint, unit: str = "") -> Metric:
    return Metric(name=name, unit=unit, gauge=Gauge(data_points=points))


def total(
    name: str,
    *points: NumberDataPoint,
    unit: str = "",
    monotonic: bool = True,
    temporality: AggregationTemporality.ValueType = CUMULATIVE,
) -> Metric:
    return Metric(
        name=name,
        unit=unit,
        sum=Sum(data_points=points, is_monotonic=monotonic, aggregation_temporality=temporality),
    )


def histogram(
    name: str, *points: HistogramDataPoint, unit: str = "", temporality: AggregationTemporality.ValueType = CUMULATIVE
) -> Metric:
    return Metric(name=name, unit=unit, histogram=Histogram(data_points=points, aggregation_temporality=temporality))


def histogram_point(
    bounds: list[float],
    counts: list[int],
    total_sum: float | None = None,
    ms: int = T0,
    attrs: Any = None,
    flags: int = 0,
) -> HistogramDataPoint:
    point = HistogramDataPoint(
        time_unix_nano=ns(ms),
        explicit_bounds=bounds,
        bucket_counts=counts,
        count=sum(counts),
        attributes=attributes(attrs),
        flags=flags,
    )
    if total_sum is not None:
        point.sum = total_sum
    return point


def exponential(name: str, *points: ExponentialHistogramDataPoint, unit: str = "") -> Metric:
    return Metric(
        name=name,
        unit=unit,
        exponential_histogram=ExponentialHistogram(data_points=points, aggregation_temporality=CUMULATIVE),
    )


def summary(name: str, *points: SummaryDataPoint, unit: str = "") -> Metric:
    return Metric(name=name, unit=unit, summary=Summary(data_points=points))


def request(
    *metrics: Metric,
    resource: Mapping[str, Any] | None = None,
    scope: tuple[str, str] = ("", ""),
) -> ExportMetricsServiceRequest:
    """One resource with one scope holding ``metrics``."""
    return ExportMetricsServiceRequest(resource_metrics=[resource_metrics(metrics, resource, scope)])


def resource_metrics(
    metrics: Sequence[Metric], resource: Mapping[str, Any] | None = None, scope: tuple[str, str] = ("", "")
) -> ResourceMetrics:
    return ResourceMetrics(
        resource=Resource(attributes=attributes(resource)),
        scope_metrics=[
            ScopeMetrics(scope=InstrumentationScope(name=scope[0], version=scope[1]), metrics=list(metrics))
        ],
    )


# --- reading the result -------------------------------------------------------------------------


def decoded(result: MappedMetrics) -> Series:
    """Label set → samples of every series produced."""
    out: Series = {}
    for content in result.contents:
        ts = TimeSeries.FromString(content)
        key = tuple((label.name, label.value) for label in ts.labels)
        assert key not in out, f"label set {key} encoded twice"
        out[key] = [(s.timestamp, s.value) for s in ts.samples]
    return out


def find(result: MappedMetrics, name: str, **labels: str) -> list[tuple[int, float]]:
    """The samples of the one series named ``name`` whose labels include ``labels``."""
    matches = [
        samples
        for key, samples in decoded(result).items()
        if dict(key)["__name__"] == name and labels.items() <= dict(key).items()
    ]
    assert len(matches) == 1, f"{len(matches)} series match {name}{labels}: {sorted(decoded(result))}"
    return matches[0]


def labels_of(result: MappedMetrics, name: str) -> dict[str, str]:
    keys = [dict(key) for key in decoded(result) if dict(key)["__name__"] == name]
    assert len(keys) == 1, keys
    return keys[0]


def buckets(result: MappedMetrics, name: str) -> dict[str, float]:
    """``le`` → value of the single-sample bucket series named ``name``."""
    return {dict(key)["le"]: samples[0][1] for key, samples in decoded(result).items() if dict(key)["__name__"] == name}


def names(result: MappedMetrics) -> set[str]:
    return {dict(key)["__name__"] for key in decoded(result)}


def is_stale(value: float) -> bool:
    return bool(struct.unpack("<Q", struct.pack("<d", value))[0] == STALE_NAN_BITS)


# --- names and units ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        ("http.server.request.duration", "s", "plain", "http_server_request_duration_seconds"),
        ("db.client.latency", "ms", "plain", "db_client_latency_milliseconds"),
        ("process.memory.usage", "By", "gauge", "process_memory_usage_bytes"),
        ("jvm.heap", "KiBy", "gauge", "jvm_heap_kibibytes"),
        ("disk.size", "GiBy", "gauge", "disk_size_gibibytes"),
        ("disk.used", "%", "gauge", "disk_used_percent"),
        ("system.cpu.utilization", "1", "gauge", "system_cpu_utilization_ratio"),
        ("cpu.ratio", "1", "gauge", "cpu_ratio"),  # already ends with the suffix
        ("requests", "1", "counter", "requests_total"),  # _ratio is for gauges only
        ("queue.size", "1", "plain", "queue_size"),
        ("network.packets", "{packet}", "counter", "network_packets_total"),
        ("network.io", "By/s", "gauge", "network_io_bytes_per_second"),
        ("network.io.bytes_per_second", "By/s", "gauge", "network_io_bytes_per_second"),
        ("http.request.rate", "{request}/s", "gauge", "http_request_rate_per_second"),
        ("request.latency_seconds", "s", "plain", "request_latency_seconds"),
        ("http.requests.total", "", "counter", "http_requests_total"),
        ("total.requests", "", "counter", "requests_total"),
        ("http.requests", "", "counter", "http_requests_total"),
        ("foo..bar__baz-", "", "plain", "foo_bar_baz"),
        ("2xx.responses", "", "counter", "_2xx_responses_total"),
        ("rule:errors.rate", "", "gauge", "rule:errors_rate"),
        ("temperature", "Cel", "gauge", "temperature_celsius"),
        ("widgets", "packets", "gauge", "widgets_packets"),  # an unknown unit passes through
        ("...", "", "gauge", ""),
    ],
)
def test_metric_names_follow_the_prometheus_translation(name: str, unit: str, kind: str, expected: str) -> None:
    # Given an OTLP metric name, unit and kind
    # When it is translated
    # Then invalid characters are escaped and unit and type suffixes appended once
    assert metric_name(name, unit, kind) == expected


def test_monotonic_cumulative_sum_is_a_counter_with_total_suffix() -> None:
    # Given a monotonic cumulative sum with two points
    req = request(total("http.server.requests", number(3, T0 - 15_000), number(5, T0), unit="{request}"))

    # When mapped
    result = map_metrics_request(req)

    # Then it is one counter series with _total and both samples
    assert find(result, "http_server_requests_total") == [(T0 - 15_000, 3.0), (T0, 5.0)]
    assert (result.points, result.rejected_points, result.errors) == (2, 0, [])


def test_non_monotonic_sum_is_a_gauge_without_total() -> None:
    # Given an up-down counter (non-monotonic cumulative sum) in bytes
    req = request(total("queue.backlog", number(-4, T0), unit="By", monotonic=False))

    # When mapped
    result = map_metrics_request(req)

    # Then it is named as a gauge, with its unit and no _total
    assert names(result) == {"queue_backlog_bytes"}
    assert find(result, "queue_backlog_bytes") == [(T0, -4.0)]


def test_gauge_int_and_double_points_are_one_sample_each() -> None:
    # Given a gauge with an int point and a double point of different attributes
    req = request(
        gauge("room.temperature", number(21, attrs={"room": "a"}), number(19.5, attrs={"room": "b"}), unit="Cel")
    )

    # When mapped
    result = map_metrics_request(req)

    # Then each is a sample of its own series
    assert find(result, "room_temperature_celsius", room="a") == [(T0, 21.0)]
    assert find(result, "room_temperature_celsius", room="b") == [(T0, 19.5)]


def test_point_without_a_value_is_rejected() -> None:
    # Given a gauge point with neither as_int nor as_double
    req = request(gauge("g", number(None)))  # type: ignore[arg-type]

    # When mapped
    result = map_metrics_request(req)

    # Then it is rejected with a reason
    assert (result.points, result.rejected_points, result.contents) == (1, 1, [])
    assert "no value" in result.errors[0]


def test_same_label_set_is_merged_into_one_series_sorted_by_time() -> None:
    # Given the same series sent in two resources (same identity) with the later point first
    resource = {"service.name": "api"}
    req = ExportMetricsServiceRequest(
        resource_metrics=[
            resource_metrics([gauge("up", number(1, T0 + 10_000))], resource),
            resource_metrics([gauge("up", number(0, T0))], resource),
        ]
    )

    # When mapped
    result = map_metrics_request(req)

    # Then one TimeSeries holds both samples in time order
    assert decoded(result) == {
        (("__name__", "up"), ("job", "api"), ("service", "api")): [(T0, 0.0), (T0 + 10_000, 1.0)]
    }


# --- histograms and summaries -------------------------------------------------------------------


def test_explicit_histogram_becomes_cumulative_buckets_sum_and_count() -> None:
    # Given a histogram point with per-bucket counts 1, 2, 0, 4 over bounds 0.005, 0.5, 10
    point = histogram_point([0.005, 0.5, 10.0], [1, 2, 0, 4], total_sum=12.5, attrs={"route": "/"})
    req = request(histogram("http.server.duration", point, unit="s"))

    # When mapped
    result = map_metrics_request(req)

    # Then buckets are cumulative with the unit before _bucket, +Inf is the count, and sum and count follow
    assert buckets(result, "http_server_duration_seconds_bucket") == {"0.005": 1.0, "0.5": 3.0, "10": 3.0, "+Inf": 7.0}
    assert find(result, "http_server_duration_seconds_sum", route="/") == [(T0, 12.5)]
    assert find(result, "http_server_duration_seconds_count", route="/") == [(T0, 7.0)]
    assert result.points == 1


def test_histogram_without_sum_has_no_sum_series() -> None:
    # Given a histogram point without a sum (it is optional in OTLP)
    req = request(histogram("h", histogram_point([1.0], [2, 3])))

    # When mapped
    result = map_metrics_request(req)

    # Then buckets and count are there, _sum is not
    assert names(result) == {"h_bucket", "h_count"}


@pytest.mark.parametrize(
    ("bounds", "counts", "reason"),
    [
        ([1.0, 2.0], [1, 2], "2 bucket counts for 2 explicit bounds"),
        ([2.0, 1.0], [1, 2, 3], "strictly increasing"),
        ([1.0, math.inf], [1, 2, 3], "finite"),
    ],
)
def test_malformed_histogram_point_is_rejected(bounds: list[float], counts: list[int], reason: str) -> None:
    # Given a histogram point whose buckets do not fit its bounds, and a good one
    req = request(histogram("h", histogram_point(bounds, counts), histogram_point([1.0], [1, 1], ms=T0 + 1)))

    # When mapped
    result = map_metrics_request(req)

    # Then only the bad point is rejected, with the reason
    assert (result.points, result.rejected_points) == (2, 1)
    assert reason in result.errors[0]
    assert find(result, "h_count") == [(T0 + 1, 2.0)]


def test_exponential_histogram_maps_to_hand_computed_bounds() -> None:
    # Given scale 0 (base 2): positive OTLP buckets 0..2 = (1,2] (2,4] (4,8] with counts 1, 0, 2;
    # negative OTLP bucket 1 = [-4,-2) with 3; zero bucket [-0.5, 0.5] with 4
    point = ExponentialHistogramDataPoint(
        time_unix_nano=ns(T0),
        scale=0,
        count=10,
        sum=1.5,
        zero_count=4,
        zero_threshold=0.5,
        positive=ExponentialHistogramDataPoint.Buckets(offset=0, bucket_counts=[1, 0, 2]),
        negative=ExponentialHistogramDataPoint.Buckets(offset=1, bucket_counts=[3]),
    )
    req = request(exponential("rpc.duration", point, unit="ms"))

    # When mapped
    result = map_metrics_request(req)

    # Then the classic buckets hold cumulative counts at the upper bounds, empty buckets left out
    assert buckets(result, "rpc_duration_milliseconds_bucket") == {
        "-2": 3.0,
        "0.5": 7.0,
        "2": 8.0,
        "8": 10.0,
        "+Inf": 10.0,
    }
    assert find(result, "rpc_duration_milliseconds_count") == [(T0, 10.0)]
    assert find(result, "rpc_duration_milliseconds_sum") == [(T0, 1.5)]


def test_exponential_histogram_at_finer_scale_uses_the_offset_convention() -> None:
    # Given scale 1 (base √2) and one positive bucket at OTLP index -2, covering (2^-1, 2^-0.5]
    point = ExponentialHistogramDataPoint(
        time_unix_nano=ns(T0),
        scale=1,
        count=5,
        positive=ExponentialHistogramDataPoint.Buckets(offset=-2, bucket_counts=[5]),
    )

    # When mapped
    result = map_metrics_request(request(exponential("x", point)))

    # Then its le is the upper bound 2^-0.5
    assert find(result, "x_bucket", le="0.7071067811865476") == [(T0, 5.0)]


def test_exponential_histogram_with_invalid_scale_is_rejected() -> None:
    # Given a scale outside OTLP's -10..20
    point = ExponentialHistogramDataPoint(time_unix_nano=ns(T0), scale=40, count=1)

    # When mapped
    result = map_metrics_request(request(exponential("x", point)))

    # Then the point is rejected, saying so
    assert result.rejected_points == 1
    assert "scale 40" in result.errors[0]


def test_summary_becomes_quantiles_sum_and_count() -> None:
    # Given a summary point with two quantiles
    point = SummaryDataPoint(
        time_unix_nano=ns(T0),
        count=42,
        sum=17.5,
        quantile_values=[
            SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=0.3),
            SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=1.2),
        ],
    )

    # When mapped
    result = map_metrics_request(request(summary("gc.pause", point, unit="s")))

    # Then each quantile is a series labelled quantile, plus _sum and _count
    assert find(result, "gc_pause_seconds", quantile="0.5") == [(T0, 0.3)]
    assert find(result, "gc_pause_seconds", quantile="0.99") == [(T0, 1.2)]
    assert find(result, "gc_pause_seconds_sum") == [(T0, 17.5)]
    assert find(result, "gc_pause_seconds_count") == [(T0, 42.0)]


# --- temporality ----------------------------------------------------------------------------------


def test_delta_sum_is_stored_as_per_interval_values_under_the_counter_name() -> None:
    # Given a delta monotonic sum reporting 3 then 5 in consecutive intervals
    req = request(total("jobs.done", number(3, T0), number(5, T0 + 60_000), temporality=DELTA))

    # When mapped
    result = map_metrics_request(req)

    # Then the values are stored as sent (sum_over_time gives the increase), named as Prometheus does
    samples = find(result, "jobs_done_total")
    assert samples == [(T0, 3.0), (T0 + 60_000, 5.0)]
    assert sum(v for _, v in samples) == 8.0
    assert result.rejected_points == 0


def test_delta_histogram_is_stored_as_per_interval_buckets() -> None:
    # Given a delta histogram interval with per-bucket counts 2, 1
    req = request(histogram("d", histogram_point([1.0], [2, 1], total_sum=4.0), temporality=DELTA))

    # When mapped
    result = map_metrics_request(req)

    # Then the interval's buckets are cumulative over le (not over time)
    assert find(result, "d_bucket", le="1") == [(T0, 2.0)]
    assert find(result, "d_bucket", le="+Inf") == [(T0, 3.0)]
    assert find(result, "d_count") == [(T0, 3.0)]


@pytest.mark.parametrize(
    "metric",
    [
        total("s", number(1), number(2, T0 + 1), temporality=UNSPECIFIED),
        histogram(
            "h", histogram_point([1.0], [1, 1]), histogram_point([1.0], [1, 2], ms=T0 + 1), temporality=UNSPECIFIED
        ),
    ],
)
def test_unspecified_temporality_is_rejected_with_a_reason(metric: Metric) -> None:
    # Given a metric with AGGREGATION_TEMPORALITY_UNSPECIFIED and two points
    # When mapped
    result = map_metrics_request(request(metric))

    # Then both points are rejected, once reported
    assert (result.points, result.rejected_points, result.contents) == (2, 2, [])
    assert result.errors == [
        f"metric {metric.name!r}: aggregation temporality is unspecified (send CUMULATIVE or DELTA) (2 data points)"
    ]


# --- staleness, timestamps, exemplars -----------------------------------------------------------


def test_no_recorded_value_becomes_a_staleness_marker() -> None:
    # Given a gauge point and a histogram point flagged NO_RECORDED_VALUE
    req = request(
        gauge("g", number(None, flags=NO_VALUE)),  # type: ignore[arg-type]
        histogram("h", histogram_point([1.0], [0, 0], total_sum=0.0, flags=NO_VALUE)),
    )

    # When mapped
    result = map_metrics_request(req)

    # Then every sample they produce is Prometheus's stale NaN, bit for bit
    series = decoded(result)
    assert len(series) == 5  # g, h_bucket{le=1}, h_bucket{le=+Inf}, h_sum, h_count
    for samples in series.values():
        assert [t for t, _ in samples] == [T0]
        assert is_stale(samples[0][1])


def test_point_without_timestamp_is_rejected_and_reported_once() -> None:
    # Given three points without a timestamp and one with
    req = request(gauge("g", number(1, 0), number(2, 0, attrs={"a": "x"}), number(3, 0, attrs={"a": "y"}), number(4)))

    # When mapped
    result = map_metrics_request(req)

    # Then the three are rejected under one reason and the fourth stored
    assert (result.points, result.rejected_points) == (4, 3)
    assert result.errors == ["metric 'g': data point has no timestamp (time_unix_nano is 0) (3 data points)"]
    assert find(result, "g") == [(T0, 4.0)]


def test_timestamps_are_truncated_to_milliseconds() -> None:
    # Given a point at a nanosecond time that is not a whole millisecond
    point = NumberDataPoint(time_unix_nano=ns(T0) + 999_999, as_int=1)

    # When mapped
    result = map_metrics_request(request(gauge("g", point)))

    # Then the sample is at the millisecond
    assert find(result, "g") == [(T0, 1.0)]


def test_exemplars_are_dropped_silently() -> None:
    # Given a counter point with an exemplar
    point = number(7)
    point.exemplars.append(Exemplar(time_unix_nano=ns(T0), as_double=1.0, trace_id=b"\x01" * 16, span_id=b"\x02" * 8))

    # When mapped
    result = map_metrics_request(request(total("c", point)))

    # Then the sample is stored and nothing is reported
    assert find(result, "c_total") == [(T0, 7.0)]
    assert (result.rejected_points, result.errors) == (0, [])
    assert not TimeSeries.FromString(result.contents[0]).exemplars


# --- attributes and labels ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("http.method", "http_method"),
        ("k8s.pod-name", "k8s_pod_name"),
        ("2xx", "key_2xx"),
        ("_private", "key_private"),
        ("__reserved", "key_reserved"),
        ("__name__", "key_name__"),
        ("été", "key_t_"),
        ("", ""),
    ],
)
def test_label_names_are_sanitised(key: str, expected: str) -> None:
    # Given an attribute key
    # When it becomes a label name
    # Then it is valid and not reserved
    assert label_name(key) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text", "text"),
        (True, "true"),
        (False, "false"),
        (-42, "-42"),
        (1.0, "1"),
        (0.5, "0.5"),
        (-2.25, "-2.25"),
        (123456.789, "123456.789"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (math.inf, "Infinity"),
        (b"\x00\xff", "AP8="),
        (["a", 1, 2.5, True, None], '["a",1,2.5,true,null]'),
        ({"k": "v", "n": [1]}, '{"k":"v","n":[1]}'),
        (None, ""),
    ],
)
def test_attribute_values_are_stringified_as_the_otlp_spec_says(value: Any, expected: str) -> None:
    # Given an attribute value of some OTLP type
    # When it becomes a label value
    # Then it has the specification's string form
    assert attribute_string(any_value(value)) == expected


def test_attributes_become_labels_and_colliding_names_are_joined_in_key_order() -> None:
    # Given point attributes of several types, two of which sanitise to the same name
    attrs = [("a.b", "dot"), ("http.status_code", 200), ("ok", True), ("a-b", "dash"), ("2xx", "y")]
    req = request(gauge("g", number(1, attrs=attrs)))

    # When mapped
    result = map_metrics_request(req)

    # Then names are sanitised, values stringified, and the collision joined ("a-b" sorts before "a.b")
    assert labels_of(result, "g") == {
        "__name__": "g",
        "a_b": "dash;dot",
        "http_status_code": "200",
        "ok": "true",
        "key_2xx": "y",
    }


def test_empty_attribute_values_are_dropped() -> None:
    # Given attributes with empty values (an empty string, an unset value)
    req = request(gauge("g", number(1, attrs={"empty": "", "unset": None, "kept": "v"})))

    # When mapped
    result = map_metrics_request(req)

    # Then only the non-empty one is a label
    assert labels_of(result, "g") == {"__name__": "g", "kept": "v"}


def test_point_with_too_many_labels_is_rejected_whole() -> None:
    # Given a histogram point with 64 attributes (its buckets would carry 66 labels with name and le)
    attrs = {f"attr{i}": "v" for i in range(64)}
    req = request(histogram("h", histogram_point([1.0], [1, 1], attrs=attrs)), gauge("ok", number(1)))

    # When mapped
    result = map_metrics_request(req)

    # Then none of its series is produced, the reason is given, and the other metric is stored
    assert names(result) == {"ok"}
    assert result.rejected_points == 1
    assert "more than the limit of 64" in result.errors[0]


# --- resource and scope -------------------------------------------------------------------------


def test_resource_gives_job_instance_service_and_target_info() -> None:
    # Given a resource with identifying attributes, a promoted one and others, and points at two times
    resource = {
        "service.name": "checkout",
        "service.namespace": "shop",
        "service.instance.id": "pod-7",
        "deployment.environment.name": "prod",
        "host.name": "node-1",
        "cloud.region": "eu-west-1",
    }
    req = request(gauge("g", number(1, T0 - 5_000), number(2, T0, attrs={"k": "v"})), resource=resource)

    # When mapped
    result = map_metrics_request(req)

    # Then every series carries job (namespace/name), service, instance and environment
    assert find(result, "g", k="v") == [(T0, 2.0)]
    labels = dict(next(key for key in decoded(result) if ("k", "v") in key))
    assert {k: labels[k] for k in ("job", "service", "instance", "environment")} == {
        "job": "shop/checkout",
        "service": "checkout",
        "instance": "pod-7",
        "environment": "prod",
    }
    # And one target_info at the latest point's time holds the non-identifying attributes
    assert decoded(result)[
        (
            ("__name__", "target_info"),
            ("cloud_region", "eu-west-1"),
            ("deployment_environment_name", "prod"),
            ("host_name", "node-1"),
            ("instance", "pod-7"),
            ("job", "shop/checkout"),
        )
    ] == [(T0, 1.0)]


def test_no_target_info_for_a_resource_with_only_identifying_attributes() -> None:
    # Given a resource with just service.name and service.instance.id
    req = request(gauge("g", number(1)), resource={"service.name": "api", "service.instance.id": "i-1"})

    # When mapped
    result = map_metrics_request(req)

    # Then there is no target_info, and job/instance are on the series
    assert names(result) == {"g"}
    assert labels_of(result, "g") == {"__name__": "g", "instance": "i-1", "job": "api", "service": "api"}


def test_no_target_info_when_no_point_of_the_resource_was_stored() -> None:
    # Given a resource with attributes whose only point has no timestamp
    req = request(gauge("g", number(1, 0)), resource={"service.name": "api", "host.name": "h"})

    # When mapped
    result = map_metrics_request(req)

    # Then nothing is produced (a target_info would have no time to stand at)
    assert result.contents == []


def test_promoted_resource_attributes_are_configurable_and_yield_to_point_attributes() -> None:
    # Given a resource with a region and an environment, and a point with its own region
    resource = {"service.name": "api", "cloud.region": "eu", "deployment.environment": "staging"}
    req = request(
        gauge("g", number(1, attrs={"team": "a"}), number(2, attrs={"cloud.region": "us"})), resource=resource
    )

    # When mapped with cloud.region promoted as well as the defaults
    result = map_metrics_request(req, promote_resource_attributes=[*DEFAULT_PROMOTED, "cloud.region"])

    # Then the promoted attributes are labels, the point's own value winning over the resource's
    assert find(result, "g", team="a", cloud_region="eu", environment="staging") == [(T0, 1.0)]
    assert find(result, "g", cloud_region="us", environment="staging") == [(T0, 2.0)]


def test_resource_attributes_are_not_promoted_when_not_listed() -> None:
    # Given a resource with an environment
    req = request(gauge("g", number(1)), resource={"deployment.environment.name": "prod"})

    # When mapped with no promoted attributes
    result = map_metrics_request(req, promote_resource_attributes=())

    # Then the environment is only on target_info
    assert labels_of(result, "g") == {"__name__": "g"}
    assert labels_of(result, "target_info")["deployment_environment_name"] == "prod"


def test_scope_name_and_version_become_labels() -> None:
    # Given metrics of a named, versioned scope and of an unnamed one
    req = ExportMetricsServiceRequest(
        resource_metrics=[
            resource_metrics([gauge("named", number(1))], scope=("io.opentelemetry.http", "1.2.0")),
            resource_metrics([gauge("anonymous", number(1))], scope=("", "9")),
        ]
    )

    # When mapped
    result = map_metrics_request(req)

    # Then only the named scope adds otel_scope_name and otel_scope_version
    assert labels_of(result, "named") == {
        "__name__": "named",
        "otel_scope_name": "io.opentelemetry.http",
        "otel_scope_version": "1.2.0",
    }
    assert labels_of(result, "anonymous") == {"__name__": "anonymous"}


def test_identity_labels_win_over_point_attributes() -> None:
    # Given a point attribute named like a label the resource sets
    req = request(gauge("g", number(1, attrs={"job": "spoofed", "le": "x"})), resource={"service.name": "api"})

    # When mapped
    result = map_metrics_request(req)

    # Then the resource's job is kept; other attributes stay
    assert labels_of(result, "g") == {"__name__": "g", "job": "api", "le": "x", "service": "api"}


# --- validity and errors --------------------------------------------------------------------------


def test_every_series_passes_ingest_validation() -> None:
    # Given a request mixing every metric kind, odd names and attributes, resources and scopes
    exp_point = ExponentialHistogramDataPoint(
        time_unix_nano=ns(T0),
        scale=3,
        count=6,
        zero_count=1,
        positive=ExponentialHistogramDataPoint.Buckets(offset=-5, bucket_counts=[1, 2]),
        negative=ExponentialHistogramDataPoint.Buckets(offset=2, bucket_counts=[2]),
    )
    summary_point = SummaryDataPoint(
        time_unix_nano=ns(T0), count=1, sum=1, quantile_values=[SummaryDataPoint.ValueAtQuantile(quantile=1, value=2)]
    )
    weird = {"__x": "1", "9lives": "2", "dots.and-dashes": "3", "ünï": "4", "list": [1, "a"], "map": {"k": 1.5}}
    req = request(
        total("1st.counter/total", number(1, attrs=weird), unit="{things}/s"),
        total("updown", number(-1.5), monotonic=False, temporality=DELTA),
        gauge("cpu usage%", number(0.5, attrs=weird), unit="1"),
        histogram("latency", histogram_point([0.1, 1, 10], [1, 0, 2, 3], total_sum=20, attrs=weird), unit="ms"),
        exponential("size", exp_point, unit="KiBy"),
        summary("gc", summary_point),
        resource={"service.name": "a b/c", "service.instance.id": "x:1", "telemetry.sdk.name": "x", "__odd": "y"},
        scope=("my.lib", "0.1"),
    )

    # When mapped
    result = map_metrics_request(req)

    # Then nothing is rejected, and the ingest decoder and validator accept every series as it is
    assert (result.rejected_points, result.errors) == (0, [])
    series = decode_series(result.contents)
    validator = SeriesValidator()
    for label_bytes in series.label_bytes:
        verdict = validator.check(label_bytes)
        assert verdict.valid, verdict.error
    assert len(series) == len(result.contents) == 19  # 1 + 1 + 1 + 6 (histogram) + 6 (exponential) + 3 + target_info


def test_errors_are_capped_to_the_first_few_reasons() -> None:
    # Given fifteen metrics each rejected for a different reason (different names)
    req = request(*[total(f"m{i}", number(1), temporality=UNSPECIFIED) for i in range(15)])

    # When mapped
    result = map_metrics_request(req)

    # Then the first ten reasons are listed and the rest counted
    assert result.rejected_points == 15
    assert len(result.errors) == 11
    assert result.errors[-1] == "... and 5 more"


def test_metric_whose_name_has_no_valid_character_is_rejected() -> None:
    # Given a metric named only with characters Prometheus cannot use
    req = request(gauge("...", number(1)))

    # When mapped
    result = map_metrics_request(req)

    # Then its points are rejected with the reason
    assert result.rejected_points == 1
    assert "no character a Prometheus metric name can use" in result.errors[0]


def test_empty_request_maps_to_nothing() -> None:
    # Given a request with no resources and one with a metric lacking data
    # When mapped
    # Then nothing is produced and nothing is rejected
    assert map_metrics_request(ExportMetricsServiceRequest()) == MappedMetrics()
    assert map_metrics_request(request(Metric(name="nodata"))) == MappedMetrics()


# --- real third-party input -----------------------------------------------------------------------


def test_opentelemetry_sdk_output_maps_as_expected() -> None:
    # Given the OpenTelemetry Python SDK's own in-memory reader output, encoded as its OTLP exporter does
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader],
        resource=SdkResource.create({"service.name": "shop", "service.instance.id": "i-1", "host.name": "h1"}),
    )
    meter = provider.get_meter("shop.orders", "1.2.0")
    orders = meter.create_counter("orders.placed", unit="{order}")
    orders.add(3, {"region": "eu"})
    orders.add(2, {"region": "eu"})
    latency = meter.create_histogram("http.server.duration", unit="ms")
    latency.record(12.0, {"http.route": "/cart"})
    latency.record(700.0, {"http.route": "/cart"})
    queue = meter.create_up_down_counter("queue.depth", unit="{message}")
    queue.add(5)
    queue.add(-2)
    data = reader.get_metrics_data()
    assert data is not None
    req = encode_metrics(data)
    provider.shutdown()

    # When mapped
    result = map_metrics_request(req)

    # Then the counter, histogram and up-down counter come out with Prometheus names and values
    assert (result.points, result.rejected_points, result.errors) == (3, 0, [])
    common = {"job": "shop", "instance": "i-1", "service": "shop", "otel_scope_name": "shop.orders"}
    [(stamp, placed)] = find(result, "orders_placed_total", region="eu", **common)
    assert placed == 5.0
    assert abs(stamp - time.time() * 1000) < 60_000
    assert find(result, "queue_depth", **common) == [(stamp, 3.0)]
    assert find(result, "http_server_duration_milliseconds_count", **{"http_route": "/cart"}) == [(stamp, 2.0)]
    assert find(result, "http_server_duration_milliseconds_sum") == [(stamp, 712.0)]
    # The SDK's default bounds: 12 is in (10, 25], 700 in (500, 750]
    assert find(result, "http_server_duration_milliseconds_bucket", le="10") == [(stamp, 0.0)]
    assert find(result, "http_server_duration_milliseconds_bucket", le="25") == [(stamp, 1.0)]
    assert find(result, "http_server_duration_milliseconds_bucket", le="750") == [(stamp, 2.0)]
    assert find(result, "http_server_duration_milliseconds_bucket", le="+Inf") == [(stamp, 2.0)]
    info = labels_of(result, "target_info")
    assert (info["host_name"], info["telemetry_sdk_language"], info["job"]) == ("h1", "python", "shop")
