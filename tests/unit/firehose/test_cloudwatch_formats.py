"""CloudWatch metric stream records (JSON and OpenTelemetry 1.0.0) → Prometheus series."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics

from novacron.protocols.cloudwatch import (
    Datapoint,
    MetricStreamError,
    SeriesBuilder,
    decode_json_record,
    decode_otel_record,
    decode_record,
    dimension_label,
    metric_name,
    statistic_suffix,
)
from novacron.protocols.remote_write_pb import TimeSeries
from tests.unit.firehose.sender import (
    ACCOUNT,
    REGION,
    STREAM,
    Point,
    json_record,
    length_delimited,
    otel_record,
    otel_request,
)

T = 1_790_000_040_000
EC2 = Point("AWS/EC2", "CPUUtilization", T, {"InstanceId": "i-0abc"}, sum=90.0, count=3, min=10.0, max=50.0)
LAMBDA = Point(
    "AWS/Lambda",
    "Duration",
    T,
    {"FunctionName": "checkout", "Resource": "checkout:live"},
    sum=1.5,
    count=10,
    min=0.05,
    max=0.4,
    percentiles={"p99": 0.39, "p99.9": 0.399, "p50": 0.12},
    unit="Seconds",
)
CUSTOM = Point("MyApp/Orders", "queue-depth.max", T, {}, sum=7.0, count=1, min=7.0, max=7.0, unit="Count")

FORMATS = {"json": json_record, "opentelemetry1.0": otel_record}


def series_of(points: list[Datapoint], common: dict[str, str] | None = None) -> dict[tuple[Any, ...], dict[int, float]]:
    """Labels → {timestamp: value}, decoded back from the builder's TimeSeries encodings."""
    builder = SeriesBuilder(common)
    builder.add(points)
    out = {}
    for content in builder.encoded():
        ts = TimeSeries.FromString(content)
        out[tuple((lb.name, lb.value) for lb in ts.labels)] = {s.timestamp: s.value for s in ts.samples}
    return out


def labels_of(series: dict[tuple[Any, ...], dict[int, float]], name: str) -> dict[str, str]:
    matches = [dict(key) for key in series if dict(key)["__name__"] == name]
    assert len(matches) == 1, f"{name}: {len(matches)} series"
    return matches[0]


def value_of(series: dict[tuple[Any, ...], dict[int, float]], name: str, **labels: str) -> dict[int, float]:
    for key, samples in series.items():
        found = dict(key)
        if found["__name__"] == name and all(found.get(k) == v for k, v in labels.items()):
            return samples
    raise AssertionError(f"no series {name} {labels}")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_statistic_is_its_own_series_with_the_documented_labels(fmt: str) -> None:
    # Given one record with several metrics, one of them with extra percentiles
    record = FORMATS[fmt]([EC2, LAMBDA, CUSTOM])
    # When it is decoded and mapped
    series = series_of(decode_record(record))
    # Then each statistic is a series named aws_<namespace>_<metric>_<statistic>
    names = {dict(key)["__name__"] for key in series}
    assert names == {
        *(f"aws_ec2_cpuutilization_{s}" for s in ("sum", "count", "min", "max")),
        *(f"aws_lambda_duration_{s}" for s in ("sum", "count", "min", "max", "p99", "p99_9", "p50")),
        *(f"aws_myapp_orders_queue_depth_max_{s}" for s in ("sum", "count", "min", "max")),
    }
    # And the labels carry dimensions, account, region, unit, stream and the source
    assert labels_of(series, "aws_lambda_duration_p99") == {
        "__name__": "aws_lambda_duration_p99",
        "dimension_FunctionName": "checkout",
        "dimension_Resource": "checkout:live",
        "account_id": ACCOUNT,
        "region": REGION,
        "unit": "Seconds",
        "metric_stream": STREAM,
        "source": "cloudwatch",
    }
    # And the values and the period's start timestamp (ms) are the record's
    assert value_of(series, "aws_ec2_cpuutilization_sum") == {T: 90.0}
    assert value_of(series, "aws_ec2_cpuutilization_count") == {T: 3.0}
    assert value_of(series, "aws_ec2_cpuutilization_min") == {T: 10.0}
    assert value_of(series, "aws_ec2_cpuutilization_max") == {T: 50.0}
    assert value_of(series, "aws_lambda_duration_p99_9") == {T: 0.399}
    assert value_of(series, "aws_lambda_duration_p50") == {T: 0.12}
    assert labels_of(series, "aws_myapp_orders_queue_depth_max_sum")["unit"] == "Count"


def test_both_formats_give_identical_series() -> None:
    # Given the same data points sent in each format
    points = [EC2, LAMBDA, CUSTOM]
    # When each is decoded
    from_json = series_of(decode_record(json_record(points)))
    from_otel = series_of(decode_record(otel_record(points, per_message=1)))
    # Then the series, their labels and samples are the same
    assert from_json == from_otel
    assert len(from_json) == 4 + 7 + 4


def test_the_published_json_example_maps_every_statistic() -> None:
    # Given the JSON example of CloudWatch's documentation, on one line
    doc = {
        "metric_stream_name": "MyMetricStream",
        "account_id": "1234567890",
        "region": "us-east-1",
        "namespace": "AWS/EC2",
        "metric_name": "DiskWriteOps",
        "dimensions": {"InstanceId": "i-123456789012"},
        "timestamp": 1611929698000,
        "value": {
            "count": 3.0,
            "sum": 20.0,
            "max": 18.0,
            "min": 0.0,
            "p99": 17.56,
            "p99.9": 17.8764,
            "TM(25%:75%)": 16.43,
        },
        "unit": "Seconds",
    }
    # When it is decoded
    series = series_of(decode_json_record(json.dumps(doc).encode()))
    # Then the trimmed mean has a readable, valid name as well
    assert value_of(series, "aws_ec2_diskwriteops_tm_25pct_to_75pct") == {1611929698000: 16.43}
    assert value_of(series, "aws_ec2_diskwriteops_p99_9") == {1611929698000: 17.8764}
    assert labels_of(series, "aws_ec2_diskwriteops_sum")["metric_stream"] == "MyMetricStream"


@pytest.mark.parametrize(
    ("namespace", "metric", "statistic", "expected"),
    [
        ("AWS/EC2", "CPUUtilization", "sum", "aws_ec2_cpuutilization_sum"),
        (
            "AWS/ApplicationELB",
            "HTTPCode_Target_5XX_Count",
            "count",
            "aws_applicationelb_httpcode_target_5xx_count_count",
        ),
        ("AWS/RDS", "EBSByteBalance%", "max", "aws_rds_ebsbytebalance_max"),
        ("CWAgent", "mem_used_percent", "p99.9", "aws_cwagent_mem_used_percent_p99_9"),
        ("ECS/ContainerInsights", "CpuUtilized", "PR(:300)", "aws_ecs_containerinsights_cpuutilized_pr_to_300"),
        ("AWS/EC2", "X", "PR(300:)", "aws_ec2_x_pr_300_to"),
    ],
)
def test_metric_names(namespace: str, metric: str, statistic: str, expected: str) -> None:
    assert metric_name(namespace, metric, statistic) == expected


def test_statistic_and_dimension_names() -> None:
    assert statistic_suffix("TM(10%:90%)") == "tm_10pct_to_90pct"
    assert statistic_suffix("IQM") == "iqm"
    assert dimension_label("InstanceId") == "dimension_InstanceId"
    assert dimension_label("Target Group.Name") == "dimension_Target_Group_Name"


def test_otel_units_are_named_as_cloudwatch_names_them() -> None:
    # Given points whose units OpenTelemetry writes in UCUM (By/s, 1)
    points = [
        Point("AWS/EC2", "NetworkIn", T, unit="Bytes/Second"),
        Point("AWS/SQS", "ApproximateAgeOfOldestMessage", T, unit="None"),
    ]
    # When decoded from OpenTelemetry
    decoded = decode_otel_record(otel_record(points))
    # Then the unit label is CloudWatch's
    assert [p.unit for p in decoded] == ["Bytes/Second", "None"]


def test_repeated_series_merge_and_the_last_value_of_a_timestamp_wins() -> None:
    # Given a period sent twice (a late update) and the next period
    first = Point("AWS/EC2", "CPUUtilization", T, {"InstanceId": "i-1"}, sum=1.0)
    update = Point("AWS/EC2", "CPUUtilization", T, {"InstanceId": "i-1"}, sum=2.0)
    later = Point("AWS/EC2", "CPUUtilization", T + 60_000, {"InstanceId": "i-1"}, sum=3.0)
    # When they are built into series
    series = series_of(decode_record(json_record([later, first, update])))
    # Then one series holds both periods, in time order, with the update's value
    assert value_of(series, "aws_ec2_cpuutilization_sum") == {T: 2.0, T + 60_000: 3.0}
    assert len(series) == 4


def test_common_attributes_add_labels_and_may_set_the_source() -> None:
    series = series_of(decode_record(json_record([EC2])), {"environment": "prod", "source": "cw-prod-account"})
    labels = labels_of(series, "aws_ec2_cpuutilization_sum")
    assert labels["environment"] == "prod"
    assert labels["source"] == "cw-prod-account"


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        (b"", "record is empty"),
        (b"{not json", "line 1 is not valid JSON"),
        (b"[1, 2]", "declares 91 bytes"),
        (b"\xff\xff\xff\xff\xff\xff", "no valid length prefix"),
        (b'{"namespace": "AWS/EC2"}', "missing or empty string field 'metric_name'"),
        (b'{"namespace": "A", "metric_name": "m", "timestamp": "now", "value": {"sum": 1}}', "'timestamp'"),
        (b'{"namespace": "A", "metric_name": "m", "timestamp": 1, "value": {}}', "'value' must be an object"),
        (b'{"namespace": "A", "metric_name": "m", "timestamp": 1, "value": {"sum": "1"}}', "is not a number"),
        (b'{"namespace": "A", "metric_name": "m", "timestamp": 1, "value": {"sum": NaN}}', "not a finite number"),
        (b'{"namespace": "A", "metric_name": "m", "timestamp": 1, "value": {"sum": 1e999}}', "not a finite number"),
        (
            b'{"namespace": "A", "metric_name": "m", "timestamp": 1, "value": {"sum": 1}, "dimensions": {"a": 1}}',
            "'dimensions'",
        ),
        (b'{"namespace": "\\ud800", "metric_name": "m", "timestamp": 1, "value": {"sum": 1}}', "lone surrogate"),
        (b'{"namespace": "A", "metric_name": "m", "timestamp": 1, "value": {"()": 1}}', "no letters or digits"),
    ],
)
def test_bad_json_records_are_refused_clearly(record: bytes, fragment: str) -> None:
    with pytest.raises(MetricStreamError, match=None) as caught:
        decode_record(record)
    assert fragment in str(caught.value)


def test_a_truncated_otel_record_is_refused() -> None:
    # Given a record whose last message is cut short
    record = otel_record([EC2, LAMBDA], per_message=1)
    # When decoded, Then the declared length is named
    with pytest.raises(MetricStreamError, match="declares"):
        decode_otel_record(record[:-5])


def test_otel_0_7_records_are_refused_naming_the_setting() -> None:
    # Given a summary data point with 0.7.0 labels (StringKeyValue, field 1) instead of 1.0 attributes
    request = otel_request([EC2])
    point = request.resource_metrics[0].scope_metrics[0].metrics[0].summary.data_points[0]
    del point.attributes[:]
    raw_point = b"\x0a\x0f\x0a\x09Namespace\x12\x02ns" + point.SerializeToString()
    point.ParseFromString(raw_point)
    # When decoded
    with pytest.raises(MetricStreamError) as caught:
        decode_otel_record(length_delimited(request.SerializeToString()))
    # Then the message names the format and the setting to change
    assert "OpenTelemetry 0.7.0" in str(caught.value)
    assert "OutputFormat" in str(caught.value)


def test_otel_metrics_that_are_not_summaries_are_refused() -> None:
    # Given an OTLP request with a gauge, which metric streams never send
    gauge = Metric(name="x", gauge=Gauge(data_points=[NumberDataPoint(as_double=1.0, time_unix_nano=1)]))
    request = otel_request([])
    request.resource_metrics.append(ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[gauge])]))
    # When decoded, Then the point kind is named
    with pytest.raises(MetricStreamError, match="carries a gauge point"):
        decode_otel_record(length_delimited(request.SerializeToString()))


def test_otel_points_need_namespace_and_metric_name() -> None:
    request = otel_request([EC2])
    point = request.resource_metrics[0].scope_metrics[0].metrics[0].summary.data_points[0]
    del point.attributes[0]  # Namespace
    with pytest.raises(MetricStreamError, match="no string attribute 'Namespace'"):
        decode_otel_record(length_delimited(request.SerializeToString()))


def test_an_otel_record_starting_like_json_is_still_read_as_otel() -> None:
    # Given an OpenTelemetry record whose first message is 123 bytes long: its length prefix is "{"
    request = otel_request([Point("A", "m", T)])
    resource_metrics = request.resource_metrics[0]
    resource_metrics.ClearField("resource")
    metric = resource_metrics.scope_metrics[0].metrics[0]
    metric.summary.data_points[0].ClearField("quantile_values")
    metric.name = "x" * (len(metric.name) + 123 - request.ByteSize())
    raw = request.SerializeToString()
    assert len(raw) == 123
    # When decoded, Then it is read as OpenTelemetry
    points = decode_record(length_delimited(raw))
    assert [(p.metric_name, p.statistics) for p in points] == [("m", (("sum", 10.0), ("count", 4.0)))]
