"""The remote write 2.0 decoder: symbols, references, created timestamps, metadata, histograms."""

from __future__ import annotations

import pytest
from google.protobuf.internal.encoder import _VarintBytes  # the runtime's own varint, as the oracle

from novacron.protocols import remote_write_v2_pb as pb
from novacron.protocols.remote_write_pb import Label, Sample, TimeSeries, WriteRequest
from novacron.protocols.remote_write_v2 import V2Decoder, V2RequestError, is_counter, uvarint
from novacron.protocols.wire import WireFormatError, decode_series
from tests.builders_v2 import Symbols, V2Spec, v2_raw, v2_request

NOW = 1_790_000_000_000
WINDOW = (NOW - 2 * 3600_000, NOW + 600_000)


@pytest.fixture
def decoder() -> V2Decoder:
    return V2Decoder(WINDOW)


def v1_encoding(labels: dict[str, str], samples: list[tuple[int, float]]) -> bytes:
    """What a 1.0 sender puts on the wire for the same series."""
    return bytes(
        TimeSeries(
            labels=[Label(name=k, value=v) for k, v in sorted(labels.items())],
            samples=[Sample(timestamp=t, value=v) for t, v in samples],
        ).SerializeToString()
    )


def samples_of(content: bytes) -> list[tuple[int, float]]:
    decoded = decode_series([content])
    return list(zip(decoded.timestamps.tolist(), decoded.values.tolist(), strict=True))


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**35, 2**63 - 1])
def test_uvarint_matches_the_protobuf_runtime(value: int) -> None:
    assert uvarint(value) == _VarintBytes(value)


def test_symbols_resolve_to_the_1_0_encoding_of_the_same_series(decoder: V2Decoder) -> None:
    # Given two series sharing symbols, one with an empty label value (absent in Prometheus terms)
    a = {"__name__": "http_requests_total", "code": "200", "job": "api"}
    b = {"__name__": "up", "job": "api", "empty": ""}
    specs = [V2Spec(a, [(NOW - 1000, 0.0), (NOW, 7.5)]), V2Spec(b, [(NOW, 1.0)])]
    # When decoded
    out = decoder.decode(v2_raw(specs))
    # Then each series is byte for byte what a 1.0 sender would send
    assert out.contents == [v1_encoding(a, [(NOW - 1000, 0.0), (NOW, 7.5)]), v1_encoding(b, [(NOW, 1.0)])]
    assert (out.rejected, out.samples_received, out.created_samples.tolist()) == ([], 3, [0, 0])


def test_symbols_may_come_in_any_order(decoder: V2Decoder) -> None:
    # Given a symbol table in an order of the sender's choosing
    symbols = Symbols()
    for text in ("zzz", "job", "m", "__name__"):
        symbols.ref(text)
    request = v2_request([V2Spec({"__name__": "m", "job": "zzz"}, [(NOW, 1.0)])], symbols)
    # When decoded, Then labels resolve by index, not by position
    (content,) = decoder.decode(request.SerializeToString()).contents
    assert content == v1_encoding({"__name__": "m", "job": "zzz"}, [(NOW, 1.0)])


@pytest.mark.parametrize(
    ("refs", "fragment"),
    [
        ([1, 2, 99, 1], "timeseries[1]: label reference 99 is out of range (the request has"),
        ([1, 2, 1], "timeseries[1]: labels_refs has an odd length (3)"),
    ],
)
def test_bad_label_references_reject_that_series_by_index(decoder: V2Decoder, refs: list[int], fragment: str) -> None:
    # Given a good series and one whose references are unusable
    good = V2Spec({"__name__": "good"}, [(NOW, 1.0)])
    bad = V2Spec({}, [(NOW, 2.0)], labels_refs=refs)
    # When decoded
    out = decoder.decode(v2_raw([good, bad]))
    # Then the bad one is named by its index and the good one survives
    assert len(out.rejected) == 1
    assert fragment in out.rejected[0]
    assert out.contents == [v1_encoding({"__name__": "good"}, [(NOW, 1.0)])]


def test_symbols_must_start_with_the_empty_string(decoder: V2Decoder) -> None:
    # Given a request whose symbols[0] is not ""
    request = v2_request([V2Spec({"__name__": "m"}, [(NOW, 1.0)])])
    request.symbols[0] = "oops"
    # When decoded, Then the whole request is refused
    with pytest.raises(V2RequestError, match=r"symbols\[0\] must be the empty string"):
        decoder.decode(request.SerializeToString())


def test_an_empty_request_is_empty_not_an_error(decoder: V2Decoder) -> None:
    out = decoder.decode(b"")
    assert (out.contents, out.rejected, out.samples_received) == ([], [], 0)


def test_a_1_0_body_sent_as_2_0_is_recognised(decoder: V2Decoder) -> None:
    # Given a 1.0 WriteRequest (field 1 is reserved in 2.0)
    raw = WriteRequest(timeseries=[TimeSeries(labels=[Label(name="__name__", value="m")])]).SerializeToString()
    # When decoded as 2.0, Then the answer says what happened instead of storing nothing
    with pytest.raises(V2RequestError, match=r"remote write 1\.0 WriteRequest"):
        decoder.decode(raw)


def test_corrupt_protobuf_is_a_wire_format_error(decoder: V2Decoder) -> None:
    with pytest.raises(WireFormatError, match=r"not a valid remote write 2\.0 Request"):
        decoder.decode(b"\x2a\xff\xff\xff\x0f")


@pytest.mark.parametrize(
    ("name", "metric_type", "created", "stored"),
    [
        ("requests_total", pb.METRIC_TYPE_UNSPECIFIED, NOW - 60_000, True),  # counter by name
        ("latency_seconds_count", pb.METRIC_TYPE_UNSPECIFIED, NOW - 60_000, True),
        ("latency_seconds_sum", pb.METRIC_TYPE_SUMMARY, NOW - 60_000, True),
        ("latency_seconds_bucket", pb.METRIC_TYPE_HISTOGRAM, NOW - 60_000, True),
        ("jobs_done", pb.METRIC_TYPE_COUNTER, NOW - 60_000, True),  # counter by metadata
        ("temperature", pb.METRIC_TYPE_GAUGE, NOW - 60_000, False),  # a gauge
        ("queue_total", pb.METRIC_TYPE_GAUGE, NOW - 60_000, False),  # metadata overrides the name
        ("requests_total", pb.METRIC_TYPE_COUNTER, 0, False),  # not set
        ("requests_total", pb.METRIC_TYPE_COUNTER, NOW - 1000, False),  # not older than the first sample
        ("requests_total", pb.METRIC_TYPE_COUNTER, NOW - 3 * 3600_000, False),  # outside the window
    ],
)
def test_created_timestamps_of_counters_become_a_zero_sample(
    decoder: V2Decoder, name: str, metric_type: int, created: int, stored: bool
) -> None:
    # Given a series with a created timestamp and a first sample at NOW - 1000
    spec = V2Spec({"__name__": name}, [(NOW - 1000, 5.0), (NOW, 6.0)], created=created, metric_type=metric_type)
    # When decoded
    out = decoder.decode(v2_raw([spec]))
    # Then a counter's start is stored as 0 at the created timestamp only when the rule holds
    expected = [(NOW - 1000, 5.0), (NOW, 6.0)]
    if stored:
        expected.insert(0, (created, 0.0))
    assert samples_of(out.contents[0]) == expected
    assert out.created_samples.tolist() == [int(stored)]
    assert out.samples_received == 2


def test_is_counter_rules() -> None:
    assert is_counter(b"x_total", pb.METRIC_TYPE_UNSPECIFIED)
    assert is_counter(b"anything", pb.METRIC_TYPE_COUNTER)
    assert not is_counter(b"x_total", pb.METRIC_TYPE_STATESET)
    assert not is_counter(b"x_totals", pb.METRIC_TYPE_UNSPECIFIED)


def test_metadata_and_exemplars_are_parsed_but_not_stored(decoder: V2Decoder) -> None:
    # Given a series with help, unit, type and an exemplar
    spec = V2Spec(
        {"__name__": "req_total"},
        [(NOW, 3.0)],
        metric_type=pb.METRIC_TYPE_COUNTER,
        help="Requests served.",
        unit="requests",
        exemplars=[({"trace_id": "abc"}, 1.0, NOW)],
    )
    # When decoded
    out = decoder.decode(v2_raw([spec]))
    # Then the samples are there and nothing else is
    assert out.contents == [v1_encoding({"__name__": "req_total"}, [(NOW, 3.0)])]
    assert (out.rejected, out.exemplars_received) == ([], 1)


def test_metadata_references_out_of_range_reject_the_series(decoder: V2Decoder) -> None:
    request = v2_request([V2Spec({"__name__": "m"}, [(NOW, 1.0)])])
    request.timeseries[0].metadata.unit_ref = 50
    out = decoder.decode(request.SerializeToString())
    assert out.contents == []
    assert "timeseries[0]: metadata unit_ref 50 is out of range" in out.rejected[0]


def test_native_histogram_series_are_handed_on_with_their_labels(decoder: V2Decoder) -> None:
    # Given a histogram series between two float series
    specs = [
        V2Spec({"__name__": "a"}, [(NOW, 1.0)]),
        V2Spec({"__name__": "rpc_duration_seconds", "job": "api"}, histograms=2),
        V2Spec({"__name__": "b"}, [(NOW, 2.0)]),
    ]
    # When decoded
    out = decoder.decode(v2_raw(specs))
    # Then it is handed on (resolved labels, its histograms, named by index), counted, and the float series survive
    assert out.rejected == []
    (native,) = out.native
    assert native.labels == [(b"__name__", b"rpc_duration_seconds"), (b"job", b"api")]
    assert (len(native.histograms), native.where) == (2, "timeseries[1]: ")
    assert out.histograms_received == 2
    assert [samples_of(c) for c in out.contents] == [[(NOW, 1.0)], [(NOW, 2.0)]]


def test_a_series_with_both_samples_and_histograms_is_refused(decoder: V2Decoder) -> None:
    # Given a series carrying float samples and a histogram, which the 2.0 spec forbids
    out = decoder.decode(v2_raw([V2Spec({"__name__": "mixed"}, [(NOW, 1.0)], histograms=1)]))
    # Then it is refused, saying why
    assert out.native == []
    assert out.contents == []
    assert "both samples and histograms" in out.rejected[0]


@pytest.mark.parametrize(
    ("metric_type", "reset_hint", "created", "kept"),
    [
        (pb.METRIC_TYPE_HISTOGRAM, 0, NOW - 60_000, True),
        (pb.METRIC_TYPE_GAUGEHISTOGRAM, 0, NOW - 60_000, False),
        (pb.METRIC_TYPE_HISTOGRAM, 3, NOW - 60_000, False),  # reset hint GAUGE
        (pb.METRIC_TYPE_HISTOGRAM, 0, NOW + 1, False),  # not before the first histogram
        (pb.METRIC_TYPE_HISTOGRAM, 0, NOW - 3 * 3600_000, False),  # outside the window
    ],
)
def test_created_timestamps_of_counter_histograms_are_handed_on(
    decoder: V2Decoder, metric_type: int, reset_hint: int, created: int, kept: bool
) -> None:
    # Given a histogram series with a created timestamp
    h = pb.Histogram(count_int=1, sum=1.0, schema=0, timestamp=NOW, reset_hint=reset_hint)
    spec = V2Spec({"__name__": "latency_seconds"}, created=created, metric_type=metric_type, native=[h])
    # When decoded, Then only a counter histogram's created timestamp before its first sample is kept
    (native,) = decoder.decode(v2_raw([spec])).native
    assert native.created_ms == (created if kept else 0)
