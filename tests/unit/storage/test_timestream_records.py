"""Stored samples → Timestream multi-measure records: dimensions, names, limits, batching, common attributes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from novacron.storage.timestream import (
    MAX_DIMENSION_NAME_BYTES,
    TENANT_DIMENSION,
    RejectionKind,
    SkipReason,
    WriteRequest,
    dimension_name,
    rejection_kind,
    series_dimensions,
    write_requests,
)
from novacron.storage.writer import SeriesSamples

NOW = 1_790_000_000_000


def samples(
    labels: dict[str, str], points: list[tuple[int, float]], tenant: str = "acme", received_ms: int = NOW
) -> SeriesSamples:
    return SeriesSamples(
        tenant=tenant,
        labels=tuple(sorted(labels.items())),
        timestamps=np.array([t for t, _ in points], dtype=np.int64),
        values=np.array([v for _, v in points], dtype=np.float64),
        received_ms=received_ms,
    )


def expanded(request: WriteRequest) -> list[dict[str, Any]]:
    """Each record as Timestream stores it: common attributes merged in (dimensions must not overlap)."""
    out = []
    for record in request.records:
        merged = {**request.common, **record}
        common_dims = request.common.get("Dimensions", [])
        own_dims = record.get("Dimensions", [])
        assert not {d["Name"] for d in common_dims} & {d["Name"] for d in own_dims}
        merged["Dimensions"] = {d["Name"]: d["Value"] for d in [*common_dims, *own_dims]}
        out.append(merged)
    return out


def test_a_sample_becomes_one_multi_measure_record_named_after_its_metric() -> None:
    # Given one series with one sample
    series = samples({"__name__": "http_requests_total", "job": "api", "code": "200"}, [(NOW, 12.5)])

    # When it is mapped
    batch = write_requests([series])

    # Then one record carries the metric name, the labels and the tenant as dimensions, ms time and version
    [request] = batch.requests
    [record] = expanded(request)
    assert record["MeasureName"] == "http_requests_total"
    assert record["MeasureValueType"] == "MULTI"
    assert record["MeasureValues"] == [{"Name": "value", "Value": "12.5", "Type": "DOUBLE"}]
    assert record["Time"] == str(NOW)
    assert record["TimeUnit"] == "MILLISECONDS"
    assert record["Version"] == NOW
    assert record["Dimensions"] == {TENANT_DIMENSION: "acme", "code": "200", "job": "api"}


def test_values_round_trip_exactly() -> None:
    # Given values that a fixed number of decimals would distort
    values = [0.1 + 0.2, 1e-300, -123456789.123456789, 2.0**60]
    series = samples({"__name__": "m"}, [(NOW + i, v) for i, v in enumerate(values)])

    # When mapped, Then each text reads back as the very same float
    records = expanded(write_requests([series]).requests[0])
    assert [float(r["MeasureValues"][0]["Value"]) for r in records] == values


def test_non_finite_values_and_staleness_markers_are_skipped_and_counted() -> None:
    # Given NaN (a Prometheus staleness marker is a NaN), +Inf and -Inf between finite values
    stale = np.frombuffer(np.uint64(0x7FF0000000000002).tobytes(), dtype=np.float64)[0]
    points = [(NOW, 1.0), (NOW + 1, stale), (NOW + 2, float("inf")), (NOW + 3, float("-inf")), (NOW + 4, 2.0)]

    # When mapped
    batch = write_requests([samples({"__name__": "m"}, points)])

    # Then only the finite samples become records, and the rest is counted by reason
    assert [r["Time"] for r in expanded(batch.requests[0])] == [str(NOW), str(NOW + 4)]
    assert batch.skipped == {SkipReason.NON_FINITE: 3}


@pytest.mark.parametrize("label", ["time", "measure_name", "measure_value", "TIME", "ts_start", "measure_value_x"])
def test_label_names_timestream_reserves_are_renamed(label: str) -> None:
    assert dimension_name(label) == "__" + label


def test_ordinary_label_names_are_kept() -> None:
    assert dimension_name("instance") == "instance"
    assert dimension_name("x" * MAX_DIMENSION_NAME_BYTES) == "x" * MAX_DIMENSION_NAME_BYTES


def test_long_label_names_are_shortened_to_distinct_names_within_the_limit() -> None:
    # Given two long names that share their first 60 bytes, one of them multi-byte
    a, b = "a" * 70 + "_one", "a" * 70 + "_two"
    c = "é" * 40

    # When renamed, Then all fit in 60 bytes, start with the renamed prefix and stay distinct
    names = [dimension_name(x) for x in (a, b, c)]
    assert all(len(n.encode()) <= MAX_DIMENSION_NAME_BYTES and n.startswith("__") for n in names)
    assert len(set(names)) == 3
    assert dimension_name(a) == names[0]  # deterministic: the same series always maps alike


def test_empty_label_values_are_absent_labels() -> None:
    assert series_dimensions("acme", (("__name__", "m"), ("a", ""), ("b", "x"))) == (
        (TENANT_DIMENSION, "acme"),
        ("b", "x"),
    )


def test_series_over_timestream_limits_are_skipped_and_counted() -> None:
    # Given a series whose metric name is over 256 bytes, and one whose labels exceed 2 KB together
    long_name = samples({"__name__": "m" * 257}, [(NOW, 1.0), (NOW + 1, 2.0)])
    fat = samples({"__name__": "m", "a": "x" * 1100, "b": "y" * 1000}, [(NOW, 1.0)])
    fine = samples({"__name__": "m"}, [(NOW, 1.0)])

    # When mapped
    batch = write_requests([long_name, fat, fine])

    # Then only the fine series is sent
    assert batch.records == 1
    assert batch.skipped == {SkipReason.MEASURE_NAME_TOO_LONG: 2, SkipReason.DIMENSIONS_TOO_LARGE: 1}


def test_more_than_128_dimensions_are_skipped() -> None:
    labels = {"__name__": "m", **{f"l{i:03d}": "v" for i in range(128)}}  # 128 labels + the tenant
    batch = write_requests([samples(labels, [(NOW, 1.0)])])
    assert batch.requests == []
    assert batch.skipped == {SkipReason.TOO_MANY_DIMENSIONS: 1}


def test_requests_hold_at_most_100_records_and_keep_every_sample() -> None:
    # Given 250 samples of three series
    series = [
        samples({"__name__": "m", "instance": f"i{i}"}, [(NOW + k, float(k)) for k in range(n)])
        for i, n in enumerate((120, 100, 30))
    ]

    # When mapped
    batch = write_requests(series)

    # Then requests of 100, 100 and 50 records carry all 250 samples exactly once
    assert [len(r.records) for r in batch.requests] == [100, 100, 50]
    sent = {(r["Dimensions"]["instance"], r["Time"]) for req in batch.requests for r in expanded(req)}
    assert len(sent) == 250


def test_a_smaller_request_size_can_be_chosen_but_not_a_larger_one() -> None:
    series = samples({"__name__": "m"}, [(NOW + k, 1.0) for k in range(25)])
    assert [len(r.records) for r in write_requests([series], max_records=10).requests] == [10, 10, 5]
    with pytest.raises(ValueError, match="max_records"):
        write_requests([series], max_records=101)


def test_shared_dimensions_name_and_version_travel_once_in_common_attributes() -> None:
    # Given two series of one metric and job, received together
    series = [
        samples({"__name__": "up", "job": "api", "instance": "a"}, [(NOW, 1.0)]),
        samples({"__name__": "up", "job": "api", "instance": "b"}, [(NOW, 0.0)]),
    ]

    # When mapped
    [request] = write_requests(series).requests

    # Then what both share is common, and each record keeps only its own dimension
    assert request.common["MeasureName"] == "up"
    assert request.common["Version"] == NOW
    assert request.common["Dimensions"] == [
        {"Name": TENANT_DIMENSION, "Value": "acme"},
        {"Name": "job", "Value": "api"},
    ]
    assert [r["Dimensions"] for r in request.records] == [
        [{"Name": "instance", "Value": "a"}],
        [{"Name": "instance", "Value": "b"}],
    ]
    assert all("MeasureName" not in r and "Version" not in r for r in request.records)


def test_what_differs_stays_in_each_record() -> None:
    # Given two metrics of two tenants, received at different times
    series = [
        samples({"__name__": "a"}, [(NOW, 1.0)], tenant="acme", received_ms=NOW),
        samples({"__name__": "b"}, [(NOW, 2.0)], tenant="globex", received_ms=NOW + 5),
    ]

    # When mapped
    [request] = write_requests(series).requests

    # Then nothing of it is common, and the merged records are complete
    assert set(request.common) == {"MeasureValueType", "TimeUnit"}
    records = expanded(request)
    assert [(r["MeasureName"], r["Version"], r["Dimensions"][TENANT_DIMENSION]) for r in records] == [
        ("a", NOW, "acme"),
        ("b", NOW + 5, "globex"),
    ]


def test_mapping_is_deterministic_whatever_the_order_of_series() -> None:
    # A retried batch must produce the very same records (Timestream identifies them by content).
    series = [samples({"__name__": n, "i": str(i)}, [(NOW, float(i))]) for i, n in enumerate("cab")]
    assert write_requests(series) == write_requests(list(reversed(series)))


@pytest.mark.parametrize(
    ("reason", "existing", "kind"),
    [
        ("The record has a version that is less than or equal to the existing version.", 7, RejectionKind.DUPLICATE),
        ("Duplicate record with different measure value", None, RejectionKind.DUPLICATE),
        ("The record timestamp is outside the time range of the data ingestion window.", None, RejectionKind.RETENTION),
        ("Record is older than the memory store retention", None, RejectionKind.RETENTION),
        ("Number of dimensions exceeds the limit", None, RejectionKind.LIMIT),
        ("Something new", None, RejectionKind.OTHER),
    ],
)
def test_rejections_are_classified(reason: str, existing: int | None, kind: RejectionKind) -> None:
    assert rejection_kind(reason, existing) is kind
