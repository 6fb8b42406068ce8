"""The C readers of OTLP points and remote write 2.0 series give exactly what their Python references give.

Each reader has a pure-Python reference (``otlp_wire``, ``samples``, ``remote_write_v2``) that is
also the path without the C extension; here both read the same inputs: real encodings, hand-written
wire data of unusual shapes, and mutated or truncated data. Where a reader declines (None), the
caller uses the protobuf runtime, so the references are also checked against the runtime.
"""

from __future__ import annotations

import gc
import random
import struct
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics

from novacron.ingest.admission import swap_prefixes_python
from novacron.protocols import otlp_wire, wire
from novacron.protocols import remote_write_v2_pb as pb
from novacron.protocols.remote_write_v2 import V2Decoder, V2Series
from novacron.protocols.samples import append_samples, append_samples_python
from novacron.protocols.timeseries import encode_sample
from novacron.series import STALE_NAN
from tests.builders_v2 import V2Spec, native_histogram, v2_raw
from tests.unit.firehose.sender import Point, otel_request
from tests.unit.protocols.test_wire_native import delimited, mutate, tag, varint

NOW = 1_790_000_000_000
native_only = pytest.mark.skipif(not wire.native_available(), reason="novacron.protocols._wirec is not built")


@pytest.fixture
def native() -> Iterator[object]:
    """The C extension module (the test is skipped, loudly, when it is not built)."""
    if not wire.native_available():
        pytest.skip("novacron.protocols._wirec is not built (pip install -e . with a C compiler builds it)")
    previous = wire.use_native(True)
    try:
        yield wire.native_module()
    finally:
        wire.use_native(previous)


def bits(values: list[float]) -> list[int]:
    return [struct.unpack("<q", struct.pack("<d", v))[0] for v in values]


# --- number points (OTLP gauges and sums) ---------------------------------------------------------


def attribute(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def random_point(rng: random.Random) -> bytes:
    """A NumberDataPoint encoding of a random shape: fields in any order, repeated, unknown, absent."""
    parts = [
        delimited(7, attribute(f"k{i}", rng.choice(["v", "", 5, True, "é"])).SerializeToString())
        for i in range(rng.choice([0, 1, 3]))
    ]
    if rng.random() < 0.9:
        parts.append(tag(3, 1) + struct.pack("<Q", rng.choice([NOW * 1_000_000, 1, 999_999, 2**64 - 1])))
    value = rng.randrange(4)
    if value == 1:
        parts.append(tag(4, 1) + struct.pack("<d", rng.choice([0.0, -0.0, 1.5, float("nan"), 1e300])))
    elif value == 2:
        parts.append(tag(6, 1) + struct.pack("<q", rng.choice([0, -5, 2**63 - 1, 2**53 + 1])))
    elif value == 3:  # both: the last one wins
        parts += [tag(6, 1) + struct.pack("<q", 7), tag(4, 1) + struct.pack("<d", 2.5)]
    if rng.random() < 0.3:
        parts.append(tag(8, 0) + varint(rng.choice([0, 1, 3, 2**33 + 1])))
    if rng.random() < 0.2:
        parts.append(delimited(5, tag(3, 1) + b"\x00" * 8))  # an exemplar
    if rng.random() < 0.2:
        parts.append(tag(2, 1) + b"\x01" * 8 + tag(15, 5) + b"\x00" * 4)  # start time, an unknown fixed32
    rng.shuffle(parts)
    return b"".join(parts)


def random_number_data(rng: random.Random) -> bytes:
    parts = [delimited(1, random_point(rng)) for _ in range(rng.choice([0, 1, 5]))]
    if rng.random() < 0.3:
        parts.insert(0, tag(2, 0) + varint(2) + tag(3, 0) + varint(1))  # Sum's temporality and monotonicity
    return b"".join(parts)


def runtime_number_points(data: bytes) -> otlp_wire.NumberPoints:
    """What the mapper reads from a Gauge through the protobuf runtime, in ``number_points``' form."""
    out: otlp_wire.NumberPoints = ([], [], [])
    for point in Gauge.FromString(data).data_points:
        stamp = point.time_unix_nano // 1_000_000 if point.time_unix_nano else otlp_wire.NO_TIMESTAMP
        kind = point.WhichOneof("value")
        value = None if kind is None else point.as_double if kind == "as_double" else float(point.as_int)
        if point.flags & 1:
            value = STALE_NAN
        out[0].append(NumberDataPoint(attributes=point.attributes).SerializeToString())
        out[1].append(stamp)
        out[2].append(None if value is None or stamp < 0 else encode_sample(value, stamp))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_number_points_read_what_the_protobuf_runtime_reads(seed: int) -> None:
    # Given gauges and sums of random shapes
    rng = random.Random(seed)
    for _ in range(50):
        data = random_number_data(rng)
        # When the reference reads them
        read = otlp_wire.number_points_python(data)
        # Then it reads what the protobuf runtime reads (the attribute fields as sent)
        assert read is not None
        expected = runtime_number_points(data)
        assert [NumberDataPoint.FromString(a) for a in read[0]] == [NumberDataPoint.FromString(a) for a in expected[0]]
        assert read[1:] == expected[1:]


def test_number_points_leave_groups_to_the_protobuf_runtime() -> None:
    # Given a point carrying an unknown group
    data = delimited(1, tag(3, 1) + b"\x00" * 8 + tag(9, 3) + tag(1, 0) + b"\x01" + tag(9, 4))
    # Then neither reader reads it
    assert otlp_wire.number_points_python(data) is None
    if wire.native_available():
        assert wire.native_module().number_points(data) is None  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", range(8))
def test_native_number_points_equal_the_reference_also_on_mutated_data(native: object, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(100):
        data = random_number_data(rng)
        for candidate in (data, mutate(rng, data), data[: rng.randrange(len(data) + 1)]):
            assert native.number_points(candidate) == otlp_wire.number_points_python(candidate)  # type: ignore[attr-defined]


# --- summary points (CloudWatch metric streams) ---------------------------------------------------


def stream_message(rng: random.Random) -> bytes:
    points = [
        Point(
            namespace=rng.choice(["AWS/EC2", "MyApp/Orders"]),
            metric=rng.choice(["CPUUtilization", "queue-depth"]),
            timestamp_ms=NOW - rng.randrange(10) * 60_000,
            dimensions={"InstanceId": f"i-{rng.randrange(3)}"} if rng.random() < 0.8 else {},
            sum=rng.choice([1.5, 0.0, -2.0]),
            count=rng.choice([1, 0, 2**53 + 1]),
            min=0.25,
            max=rng.choice([4.0, 0.0]),
            percentiles=rng.choice([{}, {"p99": 3.5, "p99.9": 3.9}]),
        )
        for _ in range(rng.choice([1, 2, 3]))
    ]
    return bytes(otel_request(points).SerializeToString())


@pytest.mark.parametrize("seed", range(6))
def test_summary_points_read_what_the_protobuf_runtime_reads(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(30):
        message = stream_message(rng)
        read = otlp_wire.summary_points_python(message)
        assert read is not None
        request = ExportMetricsServiceRequest.FromString(message)
        expected_keys, expected_stamps, expected_values = [], [], []
        for resource_metrics in request.resource_metrics:
            resource = resource_metrics.resource.SerializeToString()
            for metric in resource_metrics.scope_metrics[0].metrics:
                for point in metric.summary.data_points:
                    quantiles = tuple(q.quantile for q in point.quantile_values)
                    attributes = NumberDataPoint(attributes=point.attributes).SerializeToString()
                    expected_keys.append((resource, metric.unit, attributes, quantiles))
                    expected_stamps.append((point.start_time_unix_nano or point.time_unix_nano) // 1_000_000)
                    values = [point.sum, float(point.count), *(q.value for q in point.quantile_values)]
                    expected_values.append(values)
        assert read == (expected_keys, expected_stamps, expected_values)


def test_summary_points_decline_what_the_mapping_must_name() -> None:
    # Given a request whose metric is a gauge, and one whose summary is sent in two parts
    gauge = ExportMetricsServiceRequest(
        resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[Metric(name="m", gauge=Gauge())])])]
    ).SerializeToString()
    metric = delimited(1, b"m") + delimited(11, b"") + delimited(11, b"")
    split = delimited(1, delimited(2, delimited(2, metric)))
    # Then neither reader reads them
    for data in (gauge, split):
        assert otlp_wire.summary_points_python(data) is None
        if wire.native_available():
            assert wire.native_module().summary_points(data) is None  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", range(6))
def test_native_summary_points_equal_the_reference_also_on_mutated_data(native: object, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(100):
        message = stream_message(rng)
        for candidate in (message, mutate(rng, message), message[: rng.randrange(len(message) + 1)]):
            ours = native.summary_points(candidate)  # type: ignore[attr-defined]
            assert summary_reading(ours) == summary_reading(otlp_wire.summary_points_python(candidate))


def summary_reading(read: otlp_wire.SummaryPoints | None) -> object:
    """A reading with floats as bits, so that NaN quantiles and values compare."""
    if read is None:
        return None
    keys = [(resource, unit, attributes, bits(list(quantiles))) for resource, unit, attributes, quantiles in read[0]]
    return keys, read[1], [bits(values) for values in read[2]]


# --- samples appended to series labels ------------------------------------------------------------

EDGE_VALUES = [0.0, -0.0, 1.5, float("nan"), STALE_NAN, float("inf"), -float("inf"), 5e-324, -3e300]
EDGE_STAMPS = [0, 1, NOW, -1, -(2**63), 2**63 - 1, 127, 128]


def test_appended_samples_are_what_protobuf_writes() -> None:
    # Given every pairing of edge-case values and timestamps
    pairs = [(v, t) for v in EDGE_VALUES for t in EDGE_STAMPS]
    prefixes = [b"\x0a\x03abc" * (i % 3) for i in range(len(pairs))]
    values, stamps = [v for v, _ in pairs], [t for _, t in pairs]
    # When they are appended (by whichever path is in use) and by the reference
    joined = append_samples(prefixes, values, stamps)
    # Then each is its prefix and encode_sample's bytes
    assert joined == append_samples_python(prefixes, values, stamps)
    assert joined == [p + encode_sample(v, t) for p, v, t in zip(prefixes, values, stamps, strict=True)]


def test_appended_samples_refuse_lists_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        append_samples_python([b""], [], [])
    if wire.native_available():
        with pytest.raises(ValueError, match="differ in length"):
            wire.native_module().append_samples([b""], [], [])  # type: ignore[union-attr]


# --- remote write 2.0 rewritten as 1.0 ------------------------------------------------------------

WINDOW = (NOW - 7_200_000, NOW + 600_000)


def random_spec(rng: random.Random, n: int) -> V2Spec:
    labels = {"__name__": rng.choice(["up", "http_requests_total", "x_bucket", ""]), "job": "api", "i": str(n)}
    if rng.random() < 0.1:
        labels["empty"] = ""
    kind = rng.randrange(12)
    samples = [(NOW + k, rng.choice([0.0, 1.5, -0.0])) for k in range(rng.choice([0, 1, 1, 2]))]
    spec = V2Spec(
        labels,
        samples,
        created=rng.choice([0, -5, NOW - 1000, NOW + 5, NOW - 10**9]),
        metric_type=rng.choice([0, 1, 2, 5, 7]),
        help=rng.choice(["", "requests"]),
        exemplars=[({"trace": "t"}, 1.0, NOW)] if rng.random() < 0.2 else [],
    )
    if kind == 0:
        spec = V2Spec(labels, [], histograms=1, created=NOW - 1000)  # a native histogram series
    elif kind == 1:
        spec = V2Spec(labels, samples, native=[native_histogram(NOW, {0: 1.0})])  # samples and histograms
    elif kind == 2:
        spec = V2Spec(labels, samples, labels_refs=[1, 2, 3])  # odd length
    elif kind == 3:
        spec = V2Spec(labels, samples, labels_refs=[1, 10_000])  # out of range
    return spec


def v2_reading(series: V2Series) -> tuple[object, ...]:
    native = [(n.labels, [h.SerializeToString() for h in n.histograms], n.created_ms, n.where) for n in series.native]
    return (
        series.contents,
        series.created_samples.tolist(),
        series.rejected,
        native,
        series.samples_received,
        series.histograms_received,
        series.exemplars_received,
    )


def decode_both(raw: bytes) -> tuple[object, object]:
    outcomes = []
    for use in (False, True):
        previous = wire.use_native(use)
        try:
            outcomes.append(v2_reading(V2Decoder(WINDOW).decode(raw)))
        except Exception as exc:  # the same error, by type and message
            outcomes.append((type(exc), str(exc)))
        finally:
            wire.use_native(previous)
    return outcomes[0], outcomes[1]


@pytest.mark.parametrize("seed", range(8))
def test_native_v2_rewrite_equals_the_reference(native: object, seed: int) -> None:
    # Given requests mixing plain series, histograms, bad references, created timestamps and metadata
    rng = random.Random(seed)
    for size in (1, 5, 40):
        raw = v2_raw(random_spec(rng, n) for n in range(size))
        # When both paths rewrite them
        reference, ours = decode_both(raw)
        # Then they give the same contents, created zeros, rejections, histogram series and counts
        assert ours == reference


def test_native_v2_rewrite_handles_unusual_encodings_like_the_reference(native: object) -> None:
    # Given series with unpacked label references, metadata sent twice, repeated created timestamps,
    # unknown fields and a first sample that is not a valid Sample
    symbols = delimited(4, b"") + delimited(4, b"__name__") + delimited(4, b"c_total") + delimited(4, b"job")
    sample = delimited(2, tag(1, 1) + struct.pack("<d", 2.0) + tag(2, 0) + varint(NOW))
    refs_unpacked = tag(1, 0) + varint(1) + tag(1, 0) + varint(2)
    metadata = delimited(5, tag(1, 0) + varint(2)) + delimited(5, tag(1, 0) + varint(1) + tag(3, 0) + varint(3))
    created = tag(6, 0) + varint(NOW - 10) + tag(6, 0) + varint(NOW - 5)
    series = [
        refs_unpacked + sample + metadata + created,
        delimited(1, varint(1) + varint(2)) + tag(9, 5) + b"\x00" * 4 + sample + created,
        delimited(1, varint(1) + varint(2) + varint(3) + varint(0)) + sample,
        delimited(1, varint(1) + varint(2)) + delimited(2, b"\xff") + created,  # the sample is not valid
    ]
    for chosen in ([0, 1, 2], [3], [0, 3]):
        raw = symbols + b"".join(delimited(5, series[i]) for i in chosen)
        reference, ours = decode_both(raw)
        assert ours == reference


@pytest.mark.parametrize("seed", range(4))
def test_native_v2_rewrite_of_mutated_requests_equals_the_reference(native: object, seed: int) -> None:
    rng = random.Random(seed)
    raw = v2_raw(random_spec(rng, n) for n in range(20))
    for _ in range(150):
        candidate = mutate(rng, raw)
        reference, ours = decode_both(candidate)
        assert ours == reference


# --- the extension's hygiene ----------------------------------------------------------------------


@native_only
def test_new_readers_do_not_leak_references() -> None:
    from novacron.protocols import _wirec

    rng = random.Random(5)
    number = random_number_data(rng)
    message = stream_message(rng)
    raw = v2_raw(random_spec(rng, n) for n in range(10))
    prefixes, values, stamps = [b"ab" * 40], [1.5], [NOW]
    held = [number, message, raw, prefixes[0]]
    before = [sys.getrefcount(x) for x in held]
    for _ in range(2_000):
        _wirec.number_points(number)
        _wirec.number_points(number[:-1])
        _wirec.summary_points(message)
        _wirec.summary_points(message[:-3])
        _wirec.v2_series(raw, *WINDOW)
        _wirec.v2_series(raw[:-2], *WINDOW)
        _wirec.append_samples(prefixes, values, stamps)
    gc.collect()
    assert [sys.getrefcount(x) for x in held] == before


@native_only
def test_new_readers_refuse_bad_arguments() -> None:
    from novacron.protocols import _wirec

    with pytest.raises(TypeError):
        _wirec.number_points("text")
    with pytest.raises(TypeError):
        _wirec.summary_points(5)
    with pytest.raises(TypeError):
        _wirec.v2_series(b"", "low", 0)
    with pytest.raises(TypeError):
        _wirec.append_samples([b"x"], ["one"], [1])
    with pytest.raises(TypeError):
        _wirec.append_samples(["x"], [1.0], [1])


def test_rewritten_created_samples_are_int64() -> None:
    # Given a request rewritten by whichever path is in use
    raw = v2_raw([V2Spec({"__name__": "c_total"}, [(NOW, 1.0)], created=NOW - 5, metric_type=pb.METRIC_TYPE_COUNTER)])
    series = V2Decoder(WINDOW).decode(raw)
    # Then the created counts are int64, as the ingest service sums them
    assert series.created_samples.dtype == np.int64
    assert series.created_samples.tolist() == [1]


# --- swap_prefixes (label completion of the ingest policy) --------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_native_swap_prefixes_equals_the_reference(native: object, seed: int) -> None:
    # Given series whose encodings start with their label bytes, and new label bytes for each
    rng = random.Random(seed)
    old = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40))) for _ in range(200)]
    contents = [o + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 30))) for o in old]
    new = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 60))) for _ in range(200)]
    # When both implementations swap the prefixes
    swapped = native.swap_prefixes(contents, old, new)  # type: ignore[attr-defined]
    # Then they agree, byte for byte
    assert swapped == swap_prefixes_python(contents, old, new)
    assert swapped[0] == new[0] + contents[0][len(old[0]) :]


def test_native_swap_prefixes_declines_a_series_whose_labels_are_not_first(native: object) -> None:
    # Given one series that does not start with its label bytes
    contents, old, new = [b"\x0aabc", b"\x12xyz"], [b"\x0a", b"\x0a"], [b"N", b"N"]
    # When both implementations are asked to swap
    # Then both decline the whole batch (the caller rebuilds those series through protobuf)
    assert native.swap_prefixes(contents, old, new) is None  # type: ignore[attr-defined]
    assert swap_prefixes_python(contents, old, new) is None
    with pytest.raises(TypeError):
        native.swap_prefixes(["not bytes"], [b""], [b""])  # type: ignore[attr-defined]
