"""``SeriesBuilder.add_record`` is ``add(decode_record(...))``: the same series, the same errors, warm or cold.

A record whose data points were all labelled before is read straight into samples; anything else
goes through ``decode_record``. Both formats are checked on random records (repeated across
deliveries, so that the caches are warm), on records with errors, and on records that only the
long way reads (integers, unusual JSON, a gauge among the summaries).
"""

from __future__ import annotations

import json
import random

import pytest

from novacron.protocols.cloudwatch import MetricStreamError, SeriesBuilder, decode_record
from tests.unit.firehose.sender import Point, json_record, otel_record

T = 1_790_000_040_000
FORMATS = {"json": json_record, "opentelemetry1.0": otel_record}


def random_points(rng: random.Random) -> list[Point]:
    return [
        Point(
            namespace=rng.choice(["AWS/EC2", "AWS/Lambda", "MyApp/Orders"]),
            metric=rng.choice(["CPUUtilization", "Duration", "queue-depth.max"]),
            timestamp_ms=T + rng.randrange(3) * 60_000,
            dimensions=rng.choice(
                [{}, {"InstanceId": f"i-{rng.randrange(4)}"}, {"FunctionName": "f", "Resource": "r"}]
            ),
            sum=rng.choice([1.5, 0.0, -3.0]),
            count=rng.choice([1.0, 4.0]),
            min=0.5,
            max=rng.choice([2.0, 9.5]),
            percentiles=rng.choice([{}, {"p99": 1.9}, {"p50": 1.0, "p99.9": 1.99}]),
            unit=rng.choice(["Percent", "Seconds", "Count"]),
        )
        for _ in range(rng.choice([1, 3, 8]))
    ]


def outcome(records: list[bytes], fast: bool, common: dict[str, str] | None = None) -> object:
    """The encoded series of a delivery's records, each record's error or None, as the builder gives them."""
    builder = SeriesBuilder(common)
    errors: list[str | None] = []
    for data in records:
        try:
            if fast:
                builder.add_record(data)
            else:
                builder.add(decode_record(data))
            errors.append(None)
        except MetricStreamError as exc:
            errors.append(str(exc))
    return builder.encoded(), errors, len(builder)


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("seed", range(5))
def test_records_read_straight_into_samples_give_the_series_decode_record_gives(fmt: str, seed: int) -> None:
    # Given deliveries of random records, the same data points coming back with new values
    rng = random.Random(seed)
    encode = FORMATS[fmt]
    for delivery in range(3):
        records = [encode(random_points(rng)) for _ in range(4)]
        common = {"team": "ops"} if delivery == 2 else None
        # When a builder adds them record by record, each way
        fast = outcome(records, fast=True, common=common)
        slow = outcome(records, fast=False, common=common)
        # Then the series (and their order) are the same, cold and warm
        assert fast == slow


def json_line(**changes: object) -> dict[str, object]:
    line: dict[str, object] = {
        "metric_stream_name": "s",
        "account_id": "1",
        "region": "r",
        "namespace": "AWS/EC2",
        "metric_name": "CPUUtilization",
        "dimensions": {"InstanceId": "i-1"},
        "timestamp": T,
        "value": {"sum": 1.0, "count": 2.0, "max": 1.0, "min": 0.5},
        "unit": "Percent",
    }
    line.update(changes)
    return line


UNUSUAL_LINES = {
    "integer values": json_line(value={"sum": 1, "count": 2, "max": 1, "min": 0}),
    "a huge integer": json_line(value={"sum": 10**400}),
    "NaN": json_line(value={"sum": float("nan")}),
    "a boolean value": json_line(value={"sum": True}),
    "no statistics": json_line(value={}),
    "a new statistic": json_line(value={"sum": 1.0, "p99": 2.0}),
    "a statistic without letters": json_line(value={"%%": 1.0}),
    "a boolean timestamp": json_line(timestamp=True),
    "a negative timestamp": json_line(timestamp=-1),
    "no unit": {k: v for k, v in json_line().items() if k != "unit"},
    "a null unit": json_line(unit=None),
    "a list of dimensions": json_line(dimensions=[["InstanceId", "i-1"]]),
    "a numeric dimension": json_line(dimensions={"InstanceId": 1}),
    "an object for a namespace": json_line(namespace={"a": 1}),
    "an empty namespace": json_line(namespace=""),
    "a lone surrogate": json_line(metric_name="\ud800"),
    "the collision with a common label": json_line(dimensions={"team": "x"}),
}


@pytest.mark.parametrize("case", list(UNUSUAL_LINES))
def test_unusual_json_lines_get_what_decode_record_gives(case: str) -> None:
    # Given a record of a plain line (labelled before) and an unusual one
    plain = json.dumps(json_line()).encode()
    unusual = json.dumps(UNUSUAL_LINES[case]).encode()
    records = [plain, plain + b"\n" + unusual, unusual, b"  " + plain, plain + b"  ", b"\xef\xbb\xbf" + plain]
    # Then each way gives the same series and errors, whatever the order
    for order in (records, records[::-1]):
        assert outcome(order, fast=True, common={"dimension_team": "y"}) == outcome(
            order, fast=False, common={"dimension_team": "y"}
        )


def test_records_of_other_shapes_get_what_decode_record_gives() -> None:
    # Given records that are neither plain JSON nor plain OpenTelemetry
    point = Point("AWS/EC2", "CPUUtilization", T, {"InstanceId": "i-1"})
    records = [
        otel_record([point]),
        b"",
        b"   \n",
        b"{not json",
        b"\x05abc",
        otel_record([point])[:-3],
        json_record([point]) + b"\n\n" + json_record([point]),
        json_record([point]).replace(b"\n", b"\r\n"),
    ]
    # Then each way gives the same series and errors
    assert outcome(records, fast=True) == outcome(records, fast=False)
    assert outcome(records[::-1], fast=True) == outcome(records[::-1], fast=False)
