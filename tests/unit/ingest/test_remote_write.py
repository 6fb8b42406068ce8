"""Remote write 1.0 ingest: status codes, messages, and what reaches the stream."""

from __future__ import annotations

import itertools

import cramjam
import numpy as np
import pytest

from novacron.ingest.service import IngestError, IngestService, StreamUnavailable
from novacron.protocols.remote_write_pb import WriteRequest
from tests.builders import NOW, RW_HEADERS, raw_body, timeseries, write_request
from tests.builders_v2 import V2_HEADERS, V2Spec, v2_body
from tests.fakes import ListSink


def test_valid_body_reaches_the_stream_partitioned_by_series(service: IngestService, sink: ListSink) -> None:
    # Given 50 series with two samples each
    series = [timeseries({"__name__": "up", "instance": f"i{i}"}, [(NOW - 15000, 1.0), (NOW, i)]) for i in range(50)]
    # When the body is written
    result = service.remote_write(write_request(series), RW_HEADERS, "acme")
    # Then every sample is in the stream, in records keyed by tenant and bucket
    assert (result.series_accepted, result.samples_accepted, result.rejected) == (50, 100, [])
    stored = sink.stored_samples()
    assert len(stored) == 50
    assert stored[(("__name__", "up"), ("instance", "i7"))] == [(NOW - 15000, 1.0), (NOW, 7.0)]
    assert all(r.partition_key.startswith("acme:") for r in sink.records)
    assert len({r.partition_key for r in sink.records}) == len(sink.records)


def test_zero_values_and_stale_markers_survive(service: IngestService, sink: ListSink) -> None:
    # Given samples proto3 encodes unusually: a zero value (omitted field) and a stale NaN
    stale = np.array([0x7FF0000000000002], dtype=np.uint64).view(np.float64)[0]
    series = [timeseries({"__name__": "x"}, [(NOW - 2000, 0.0), (NOW - 1000, stale), (NOW, -1.5)])]
    # When written
    service.remote_write(write_request(series), RW_HEADERS, "acme")
    # Then the values come back bit for bit
    (samples,) = sink.stored_samples().values()
    assert samples[0] == (NOW - 2000, 0.0)
    assert np.array([samples[1][1]]).view(np.uint64)[0] == 0x7FF0000000000002
    assert samples[2] == (NOW, -1.5)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([("__name__", "1bad")], "invalid metric name '1bad'"),
        ([("__name__", "NaN-metric")], "invalid metric name 'NaN-metric'"),
        ([("__name__", "ok"), ("bad-name", "v")], "invalid label name 'bad-name'"),
        ([("__name__", "ok"), ("b", "1"), ("a", "2")], "labels are not sorted by name ('a' comes after 'b')"),
        ([("__name__", "ok"), ("a", "1"), ("a", "2")], "duplicate label name 'a'"),
        ([("job", "x")], "series has no metric name"),
        ([("__meta_x", "1"), ("__name__", "ok")], "label name '__meta_x' is reserved"),
        ([("__name__", "ok"), ("big", "v" * 5000)], "label 'big' has a value of 5000 bytes"),
        ([("", "x"), ("__name__", "ok")], "series has a label with an empty name"),
        ([("__name__", "ok"), ("n" * 300, "x")], "bytes, more than the limit of 256"),
        ([("__name__", "ok"), ("job", "x" * 1100)], "at most 1024 bytes together (this one is 1104)"),
        ([("__name__", "m" * 1100)], "label '__name__' has a value of 1100 bytes"),
        ([("__name__", "ok"), *((f"l{i:03d}", "x") for i in range(70))], "more than the limit of 64"),
    ],
)
def test_bad_labels_are_refused_naming_the_series(
    service: IngestService, sink: ListSink, labels: list[tuple[str, str]], message: str
) -> None:
    # Given one good series and one bad one
    good = timeseries({"__name__": "good", "job": "a"}, [(NOW, 1.0)])
    bad = timeseries(labels, [(NOW, 2.0)], sort=False)
    # When written
    result = service.remote_write(write_request([good, bad]), RW_HEADERS, "acme")
    # Then the bad one is named in the rejection and the good one is stored
    assert result.series_accepted == 1
    assert len(result.rejected) == 1
    assert message in result.rejected[0]
    assert "1 series rejected (1 accepted)" in result.rejection_message()
    assert list(sink.stored_samples()) == [(("__name__", "good"), ("job", "a"))]


def test_non_utf8_label_value_is_refused(service: IngestService) -> None:
    # Given a series whose label value bytes are not UTF-8 (patched into a valid encoding)
    raw = raw_body([timeseries({"__name__": "m", "x": "\u00e9"}, [(NOW, 1.0)])])
    corrupted = raw.replace("\u00e9".encode(), b"\xff\xfe")
    body = bytes(cramjam.snappy.compress_raw(corrupted))
    # When written
    result = service.remote_write(body, RW_HEADERS, "acme")
    # Then it is refused, naming the label and the series
    assert result.series_accepted == 0
    assert "label value of 'x' is not valid UTF-8" in result.rejected[0]
    assert 'm{x="' in result.rejected[0]


def test_samples_outside_the_window_are_refused(service: IngestService, sink: ListSink) -> None:
    # Given series with samples three hours old and an hour in the future
    old = timeseries({"__name__": "old"}, [(NOW - 3 * 3600_000, 1.0)])
    future = timeseries({"__name__": "future"}, [(NOW + 3600_000, 1.0)])
    fresh = timeseries({"__name__": "fresh"}, [(NOW, 1.0)])
    # When written
    result = service.remote_write(write_request([old, future, fresh]), RW_HEADERS, "acme")
    # Then both are named, with the accepted window, and the fresh one is stored
    assert len(result.rejected) == 2
    assert "outside the accepted window" in result.rejected[0]
    assert "old{}" in result.rejected[0]
    assert "future{}" in result.rejected[1]
    assert list(sink.stored_samples()) == [(("__name__", "fresh"),)]


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({**RW_HEADERS, "content-type": "application/json"}, "unsupported Content-Type"),
        (
            {**RW_HEADERS, "content-type": "application/x-protobuf;proto=foo.Bar"},
            "unknown remote write message 'foo.Bar'; supported: prometheus.WriteRequest, "
            "io.prometheus.write.v2.Request",
        ),
        ({k: v for k, v in RW_HEADERS.items() if k != "content-encoding"}, "must be snappy-compressed"),
        ({**RW_HEADERS, "content-encoding": "gzip"}, "unsupported Content-Encoding 'gzip'"),
        ({**RW_HEADERS, "x-prometheus-remote-write-version": "2.0.0"}, "unsupported X-Prometheus-Remote-Write"),
    ],
)
def test_unsupported_formats_get_415(service: IngestService, headers: dict[str, str], fragment: str) -> None:
    # Given a valid body sent with headers describing something else
    body = write_request([timeseries({"__name__": "m"}, [(NOW, 1.0)])])
    # When written, Then 415 says what is not supported
    with pytest.raises(IngestError) as err:
        service.remote_write(body, headers, "acme")
    assert err.value.status == 415
    assert fragment in err.value.message


def test_remote_write_2_is_accepted_on_the_same_route(service: IngestService, sink: ListSink) -> None:
    # Given a 2.0 body with the 2.0 Content-Type (which used to get 415)
    body = v2_body([V2Spec({"__name__": "m"}, [(NOW, 1.0)])])
    # When written, Then it is stored and answered with the 2.0 written counts
    result = service.remote_write(body, V2_HEADERS, "acme")
    assert (result.series_accepted, result.rejected) == (1, [])
    assert result.response_headers()["X-Prometheus-Remote-Write-Samples-Written"] == "1"
    assert list(sink.stored_samples()) == [(("__name__", "m"),)]


def test_remote_write_1_answers_without_written_count_headers(service: IngestService) -> None:
    result = service.remote_write(write_request([timeseries({"__name__": "m"}, [(NOW, 1.0)])]), RW_HEADERS, "t")
    assert result.response_headers() == {}


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"", 400, "empty body"),
        (b"\x80\x80\x80\x80\x80\x80", 400, "not snappy-compressed"),
        (bytes(cramjam.snappy.compress(raw_body([timeseries({"__name__": "m"}, [(NOW, 1.0)])]))), 400, "framed"),
        (b"\x10garbage-not-snappy", 400, "not valid snappy"),
        (bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff\xff\x0f")), 400, "not a valid remote write"),
        (b"\xff\xff\xff\xff\x0f", 413, "more than the limit"),
    ],
)
def test_corrupt_bodies_get_a_precise_error(service: IngestService, body: bytes, status: int, fragment: str) -> None:
    # When a corrupt body is written, Then the status and message say what is wrong
    with pytest.raises(IngestError) as err:
        service.remote_write(body, RW_HEADERS, "acme")
    assert err.value.status == status
    assert fragment in err.value.message


@pytest.mark.parametrize(("throttled", "status"), [(True, 429), (False, 503)])
def test_stream_trouble_is_retryable(throttled: bool, status: int) -> None:
    # Given a stream that does not take the records
    sink = ListSink(fail_with=StreamUnavailable("1 records not written", throttled=throttled, retry_after_s=2))
    service = IngestService(sink, clock_ms=lambda: NOW)
    # When a valid body is written
    with pytest.raises(IngestError) as err:
        service.remote_write(write_request([timeseries({"__name__": "m"}, [(NOW, 1.0)])]), RW_HEADERS, "t")
    # Then the sender is told to retry
    assert err.value.status == status
    assert err.value.headers == {"Retry-After": "2"}


def test_native_histograms_outside_the_window_are_refused_clearly(service: IngestService) -> None:
    # Given a series carrying a native histogram (field 4) with count 1 at timestamp 0
    series = timeseries({"__name__": "h"}, [])
    series.histograms.append(b"\x08\x01")
    request = WriteRequest(timeseries=[series])
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    # When written, Then the series is rejected with a reason (native histograms themselves are stored)
    result = service.remote_write(body, RW_HEADERS, "acme")
    assert "native histogram sample at 1970-01-01T00:00:00.000Z is outside the accepted window" in result.rejected[0]


def test_large_bodies_split_into_records_under_the_kinesis_limit(service: IngestService, sink: ListSink) -> None:
    # Given many series with long label values, all in few buckets' worth of data
    series = [timeseries({"__name__": "m", "id": str(i), "pad": "x" * 1000}, [(NOW, float(i))]) for i in range(4000)]
    # When written
    result = service.remote_write(write_request(series), RW_HEADERS, "acme")
    # Then every record stays under 1 MiB and nothing is lost
    assert result.samples_accepted == 4000
    assert all(len(r.data) < 1024 * 1024 for r in sink.records)
    assert len(sink.stored_samples()) == 4000


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[" * 100_000, "not valid JSON"),
        (b'{"series": [{"labels": {"__name__": "m"}, "samples": [[18446744073709551616, 1]]}]}', "timestamp must be"),
        (b'{"series": [{"labels": {"__name__": "m"}, "samples": [[1, 1' + b"0" * 400 + b"]]}]}", "64-bit float"),
        (b'{"series": [{"labels": {"__name__": "m", "x": "\\ud800"}, "samples": [[1, 1]]}]}', "lone surrogate"),
    ],
)
def test_hostile_json_gets_400_not_a_crash(service: IngestService, body: bytes, fragment: str) -> None:
    with pytest.raises(IngestError) as err:
        service.ingest_json(body, "acme")
    assert err.value.status == 400
    assert fragment in err.value.message


def test_chunking_keeps_each_record_under_the_payload_limit() -> None:
    # Given a bucket's series adding up to three and a half times the per-record payload
    from novacron.ingest.service import _chunk_bounds
    from novacron.records import MAX_RECORD_PAYLOAD

    sizes = np.full(350, MAX_RECORD_PAYLOAD // 100, dtype=np.int64)
    # When split, Then every chunk fits, chunks are contiguous, and all series are covered
    bounds = _chunk_bounds(sizes)
    assert len(bounds) == 4
    assert bounds[0][0] == 0
    assert bounds[-1][1] == 350
    assert all(a2 == b1 for (_, b1), (a2, _) in itertools.pairwise(bounds))
    assert all(int((sizes[a:b] + 4).sum()) <= MAX_RECORD_PAYLOAD for a, b in bounds)


def test_a_series_too_big_for_one_record_is_refused_not_retried_forever(service: IngestService, sink: ListSink) -> None:
    # Given a series with so many samples that it cannot fit one Kinesis record, and a normal one
    huge = timeseries({"__name__": "huge"}, [(NOW - 7_000_000 + i * 50, float(i) + 0.5) for i in range(70_000)])
    small = timeseries({"__name__": "small"}, [(NOW, 1.0)])
    # When written
    result = service.remote_write(write_request([huge, small]), RW_HEADERS, "acme")
    # Then the big one is refused with a 4xx reason (not a retryable error) and the other is stored
    assert len(result.rejected) == 1
    assert "send fewer samples per request: huge{}" in result.rejected[0]
    assert list(sink.stored_samples()) == [(("__name__", "small"),)]
