"""The columnar TimeSeries decoder agrees with the protobuf runtime on every shape of input.

Every test runs with both implementations (the ``impl`` fixture): the C extension and the numpy reference.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from novacron.protocols.remote_write_pb import Label, RawTimeSeries, Sample, TimeSeries
from novacron.protocols.wire import WireFormatError, decode_series

NOW = 1_790_000_000_000


def reference(content: bytes) -> tuple[bytes, list[int], list[float]]:
    """What the protobuf runtime reads from one series."""
    ts = RawTimeSeries.FromString(content)
    labels = RawTimeSeries(labels=ts.labels).SerializeToString()
    return labels, [s.timestamp for s in ts.samples], [s.value for s in ts.samples]


def random_series(rng: random.Random, i: int) -> bytes:
    labels = {"__name__": f"m{i % 7}", "job": "x" * rng.choice([1, 5, 200, 20000]), "i": str(i)}
    ts = TimeSeries(labels=[Label(name=k, value=v) for k, v in sorted(labels.items())])
    for k in range(rng.choice([0, 1, 3, 40])):
        value = rng.choice([0.0, 1.5, float("nan"), -3e300, float("inf")])
        stamp = rng.choice([NOW + k * 15000, 5, 0, -1000, 2**62])
        ts.samples.append(Sample(value=value, timestamp=stamp))
    return ts.SerializeToString()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_and_general_paths_agree_with_protobuf(impl: str, seed: int) -> None:
    # Given series mixing the common layout with zero values, odd timestamps and long labels
    rng = random.Random(seed)
    contents = [random_series(rng, i) for i in range(500)]
    # When decoded columnar
    decoded = decode_series(contents)
    # Then every series' labels and samples equal the protobuf runtime's reading
    for i, content in enumerate(contents):
        labels, stamps, values = reference(content)
        a, b = decoded.offsets[i], decoded.offsets[i + 1]
        assert decoded.label_bytes[i] == labels
        assert decoded.timestamps[a:b].tolist() == stamps
        np.testing.assert_array_equal(decoded.values[a:b], np.array(values, dtype=np.float64))


def test_empty_input_decodes_to_nothing(impl: str) -> None:
    decoded = decode_series([])
    assert (len(decoded), decoded.sample_count) == (0, 0)


def test_truncated_series_is_a_wire_format_error(impl: str) -> None:
    # Given a series cut in the middle of a label
    content = TimeSeries(labels=[Label(name="__name__", value="abcdef")]).SerializeToString()[:-2]
    # When decoded, Then the error says the series is not valid protobuf
    with pytest.raises(WireFormatError, match="not a valid TimeSeries"):
        decode_series([content])


def test_histogram_series_are_flagged(impl: str) -> None:
    ts = RawTimeSeries(labels=[Label(name="__name__", value="h").SerializeToString()], histograms=[b"\x08\x01"])
    decoded = decode_series(
        [TimeSeries(labels=[Label(name="a", value="b")]).SerializeToString(), ts.SerializeToString()]
    )
    assert decoded.histogram_series == [1]


@pytest.mark.parametrize("content", [b"", b"\x0a\x00", b"\x12\x00", b"\x0a\x02\x0a\x00"])
def test_tiny_series_decode_without_reading_out_of_bounds(impl: str, content: bytes) -> None:
    # Given series a few bytes long (the buffer is shorter than one sample row)
    decoded = decode_series([content])
    # Then they decode like the protobuf runtime reads them
    labels, stamps, _ = reference(content)
    assert decoded.label_bytes[0] == labels
    assert decoded.timestamps.tolist() == stamps
