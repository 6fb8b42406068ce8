"""Remote write 2.0 ingest: same records as 1.0, written-count headers, partial rejections."""

from __future__ import annotations

import pytest

from novacron.ingest.service import IngestError, IngestService
from novacron.protocols import remote_write_v2_pb as pb
from tests.builders import NOW, RW_HEADERS, timeseries, write_request
from tests.builders_v2 import V2_HEADERS, V2Spec, compress, v2_body, v2_request, written
from tests.fakes import ListSink


def test_a_2_0_body_lands_in_the_same_records_as_the_equivalent_1_0_body(service: IngestService) -> None:
    # Given the same 40 series as a 1.0 body and as a 2.0 body (with metadata, which is not stored)
    series = {
        i: ({"__name__": "up", "job": "node", "instance": f"i{i}"}, [(NOW - 15000, 0.0), (NOW, float(i))])
        for i in range(40)
    }
    v1 = write_request(timeseries(labels, samples) for labels, samples in series.values())
    v2 = v2_body(
        V2Spec(labels, samples, metric_type=pb.METRIC_TYPE_GAUGE, help="Target up.")
        for labels, samples in series.values()
    )
    sink1, sink2 = ListSink(), ListSink()
    # When each is written to its own stream
    r1 = IngestService(sink1, clock_ms=lambda: NOW).remote_write(v1, RW_HEADERS, "acme")
    r2 = IngestService(sink2, clock_ms=lambda: NOW).remote_write(v2, V2_HEADERS, "acme")
    # Then the stream holds the same series and samples, in the same records under the same keys
    assert sink2.stored_samples() == sink1.stored_samples()
    assert len(sink2.stored_samples()) == 40
    assert [(r.partition_key, r.data) for r in sink2.records] == [(r.partition_key, r.data) for r in sink1.records]
    counts = ("series_accepted", "samples_accepted", "records")
    assert [getattr(r2, c) for c in counts] == [getattr(r1, c) for c in counts]
    assert written(r2) == ("80", "0", "0")


def test_created_timestamp_zero_is_stored_but_not_counted_as_written(service: IngestService, sink: ListSink) -> None:
    # Given a counter that started a minute before its first sample
    spec = V2Spec({"__name__": "jobs_total"}, [(NOW, 12.0)], created=NOW - 60_000, metric_type=pb.METRIC_TYPE_COUNTER)
    # When written
    result = service.remote_write(v2_body([spec]), V2_HEADERS, "acme")
    # Then the counter's start is stored as 0, and the sender is told only of its own sample
    assert sink.stored_samples() == {(("__name__", "jobs_total"),): [(NOW - 60_000, 0.0), (NOW, 12.0)]}
    assert (result.samples_accepted, result.created_samples) == (2, 1)
    assert written(result) == ("1", "0", "0")


def test_partial_rejection_stores_the_rest_and_reports_the_counts(service: IngestService, sink: ListSink) -> None:
    # Given a request mixing good series, a histogram series, a bad reference and a bad label name
    specs = [
        V2Spec({"__name__": "good", "n": "1"}, [(NOW - 1000, 1.0), (NOW, 2.0)]),
        V2Spec({"__name__": "hist"}, histograms=1),
        V2Spec({}, [(NOW, 3.0)], labels_refs=[1, 200]),
        V2Spec({"__name__": "ok", "bad-name": "x"}, [(NOW, 4.0)]),
        V2Spec({"__name__": "good", "n": "2"}, [(NOW, 5.0)], exemplars=[({"trace_id": "t"}, 5.0, NOW)]),
    ]
    # When written
    result = service.remote_write(v2_body(specs), V2_HEADERS, "acme")
    # Then the good series are stored and the others named, the decoding ones by index
    assert set(sink.stored_samples()) == {(("__name__", "good"), ("n", "1")), (("__name__", "good"), ("n", "2"))}
    assert len(result.rejected) == 3
    # (the builder's histogram is at 1 ms after the epoch)
    assert result.rejected[0].startswith(
        "timeseries[1]: native histogram sample at 1970-01-01T00:00:00.001Z is outside"
    )
    assert result.rejected[1].startswith("timeseries[2]: label reference 200 is out of range")
    assert "invalid label name 'bad-name'" in result.rejected[2]
    assert "3 series rejected (2 accepted)" in result.rejection_message()
    # And the written counts cover only what was stored: no histograms, no exemplars
    assert written(result) == ("3", "0", "0")


def test_samples_outside_the_window_are_refused_as_in_1_0(service: IngestService) -> None:
    result = service.remote_write(v2_body([V2Spec({"__name__": "old"}, [(NOW - 3 * 3600_000, 1.0)])]), V2_HEADERS, "t")
    assert "outside the accepted window" in result.rejected[0]
    assert written(result) == ("0", "0", "0")


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"", 400, "empty body"),
        (compress(b"\x2a\xff\xff\xff\x0f"), 400, "not a valid remote write 2.0 Request"),
        (write_request([timeseries({"__name__": "m"}, [(NOW, 1.0)])]), 400, "remote write 1.0 WriteRequest"),
        (compress(v2_request([V2Spec({"__name__": "m"}, [(NOW, 1.0)])]).SerializeToString()[2:]), 400, "symbols[0]"),
        (b"\xff\xff\xff\xff\x0f", 413, "more than the limit"),
    ],
)
def test_requests_refused_as_a_whole_carry_zero_counts(
    service: IngestService, body: bytes, status: int, fragment: str
) -> None:
    # When an unusable 2.0 body is written
    with pytest.raises(IngestError) as err:
        service.remote_write(body, V2_HEADERS, "acme")
    # Then the status says why, and the written counts say nothing was written
    assert err.value.status == status
    assert fragment in err.value.message
    assert err.value.headers["X-Prometheus-Remote-Write-Samples-Written"] == "0"


@pytest.mark.parametrize("version", ["2.0.0", "2.0", ""])
def test_2_0_version_headers_are_accepted(service: IngestService, version: str) -> None:
    headers = {**V2_HEADERS, "x-prometheus-remote-write-version": version}
    result = service.remote_write(v2_body([V2Spec({"__name__": "m"}, [(NOW, 1.0)])]), headers, "acme")
    assert result.series_accepted == 1


def test_proto_parameter_may_be_quoted_and_spaced(service: IngestService) -> None:
    headers = {**V2_HEADERS, "content-type": 'application/x-protobuf; proto="io.prometheus.write.v2.Request"'}
    result = service.remote_write(v2_body([V2Spec({"__name__": "m"}, [(NOW, 1.0)])]), headers, "acme")
    assert result.version == 2
