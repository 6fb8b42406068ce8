"""Native histograms over remote write 1.0 and 2.0: stored as classic series that PromQL can use."""

from __future__ import annotations

import struct

import pytest

from novacron.ingest.service import IngestService
from novacron.promql import Engine
from novacron.protocols import remote_write_v2_pb as pb
from novacron.query.memory_reader import InMemorySeriesReader
from novacron.series import STALE_NAN_BITS
from tests.builders import NOW, RW_HEADERS, histogram_series, timeseries, write_request
from tests.builders_v2 import V2_HEADERS, V2Spec, native_histogram, v2_body, written
from tests.fakes import ListSink

STALE = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
Labels = tuple[tuple[str, str], ...]


def latency(at: int, scale: int = 1) -> pb.Histogram:
    """Schema 0: (1,2] and (4,8] hold 10 * scale each, (2,4] is empty; sum 100 * scale."""
    return native_histogram(at, {1: 10 * scale, 3: 10 * scale}, total=100.0 * scale)


def names(stored: dict[Labels, list[tuple[int, float]]]) -> dict[str, set[str]]:
    """Metric name → the ``le`` values (or "") of its stored series."""
    out: dict[str, set[str]] = {}
    for labels in stored:
        label_map = dict(labels)
        out.setdefault(label_map["__name__"], set()).add(label_map.get("le", ""))
    return out


def test_2_0_histograms_are_stored_as_classic_series_and_counted_apart(service: IngestService, sink: ListSink) -> None:
    # Given a float series with 2 samples and a histogram series with 2 histogram samples
    specs = [
        V2Spec({"__name__": "up"}, [(NOW - 15_000, 1.0), (NOW, 1.0)]),
        V2Spec({"__name__": "rpc_seconds", "job": "api"}, native=[latency(NOW - 15_000), latency(NOW, 2)]),
    ]
    # When written
    result = service.remote_write(v2_body(specs), V2_HEADERS, "acme")
    # Then the histograms are stored as _bucket (lower edges, bounds, +Inf), _count and _sum series
    stored = sink.stored_samples()
    assert result.rejected == []
    assert names(stored) == {
        "up": {""},
        "rpc_seconds_bucket": {"1", "2", "4", "8", "+Inf"},
        "rpc_seconds_count": {""},
        "rpc_seconds_sum": {""},
    }
    bucket_4 = (("__name__", "rpc_seconds_bucket"), ("job", "api"), ("le", "4"))
    assert stored[bucket_4] == [(NOW - 15_000, 10.0), (NOW, 20.0)]
    assert stored[(("__name__", "rpc_seconds_sum"), ("job", "api"))] == [(NOW - 15_000, 100.0), (NOW, 200.0)]
    # And the headers count 2 float samples and 2 histogram samples, not the derived series' 14 samples
    assert written(result) == ("2", "2", "0")
    assert result.samples_accepted == 2 + 7 * 2


def test_1_0_and_2_0_histograms_land_in_the_same_records(service: IngestService) -> None:
    # Given the same histogram series as a 1.0 body and as a 2.0 body
    labels = {"__name__": "rpc_seconds", "job": "api"}
    histograms = [latency(NOW - 15_000), latency(NOW, 2)]
    sink1, sink2 = ListSink(), ListSink()
    # When each is written to its own stream
    r1 = IngestService(sink1, clock_ms=lambda: NOW).remote_write(
        write_request([histogram_series(labels, histograms)]), RW_HEADERS, "acme"
    )
    r2 = IngestService(sink2, clock_ms=lambda: NOW).remote_write(
        v2_body([V2Spec(labels, native=histograms)]), V2_HEADERS, "acme"
    )
    # Then the stream holds the same records, and 1.0 answers without the 2.0 headers
    assert [(r.partition_key, r.data) for r in sink1.records] == [(r.partition_key, r.data) for r in sink2.records]
    assert (r1.series_accepted, r1.histograms_written, r1.response_headers()) == (7, 2, {})
    assert r2.series_accepted == 7


def test_stored_histograms_answer_histogram_quantile_and_rate(service: IngestService, sink: ListSink) -> None:
    # Given a histogram series written over remote write 1.0, a minute apart
    body = write_request([histogram_series({"__name__": "rpc_seconds"}, [latency(NOW - 60_000), latency(NOW, 2)])])
    assert service.remote_write(body, RW_HEADERS, "acme").rejected == []
    # When its stored series are queried
    reader = InMemorySeriesReader()
    for labels, samples in sink.stored_samples().items():
        reader.add(dict(labels), [t for t, _ in samples], [v for _, v in samples])
    engine = Engine(reader)

    def value(query: str) -> float:
        (series,) = engine.instant(query, NOW).series
        return float(series.values[0])

    # Then quantiles interpolate inside the populated buckets: rank 20 of 40 ends (1,2]; rank 30 is
    # halfway through (4,8] — the lower edge 4 keeps the empty (2,4] out of that bucket
    assert value("histogram_quantile(0.5, rpc_seconds_bucket)") == 2.0
    assert value("histogram_quantile(0.75, rpc_seconds_bucket)") == 6.0
    # And _count rates like a float counter with the same samples (20 → 40 over the minute): Prometheus
    # extrapolates 30 s (half an interval) towards the range start, so 20 * 90/60 over 300 s = 0.1/s
    reader.add({"__name__": "reference_total"}, [NOW - 60_000, NOW], [20.0, 40.0])
    assert value("sum(rate(rpc_seconds_count[5m]))") == value("sum(rate(reference_total[5m]))")
    assert value("sum(rate(rpc_seconds_count[5m]))") == pytest.approx(0.1)
    assert value("rpc_seconds_sum - rpc_seconds_sum offset 1m") == 100.0
    assert value("histogram_quantile(0.75, rate(rpc_seconds_bucket[5m]))") == 6.0


def test_a_histogram_too_fine_to_store_is_refused_with_400_naming_it(service: IngestService, sink: ListSink) -> None:
    # Given a float series and a histogram with 200 populated buckets
    fine = native_histogram(NOW, {i: 1 for i in range(200)}, schema=8)
    specs = [V2Spec({"__name__": "up"}, [(NOW, 1.0)]), V2Spec({"__name__": "fine", "job": "x"}, native=[fine])]
    # When written (no exception: the request is answered, not failed)
    result = service.remote_write(v2_body(specs), V2_HEADERS, "acme")
    # Then that series alone is refused with the reason, and counted as a native-histogram rejection
    assert result.rejected == [
        "timeseries[1]: native histogram has 200 populated buckets, more than the 160 NovaCron stores per "
        'histogram (lower the resolution: a smaller schema or a bucket limit): fine{job="x"}'
    ]
    assert result.metric_counts()["SeriesRejected_native_histogram"] == 1
    assert set(names(sink.stored_samples())) == {"up"}
    assert written(result) == ("1", "0", "0")


def test_a_stale_histogram_marks_its_derived_series_stale(service: IngestService, sink: ListSink) -> None:
    # Given a histogram and then its staleness marker in one 2.0 request
    stale = pb.Histogram(count_int=0, sum=STALE, timestamp=NOW)
    service.remote_write(v2_body([V2Spec({"__name__": "h"}, native=[latency(NOW - 15_000), stale])]), V2_HEADERS, "t")
    # Then every derived series ends with Prometheus's stale NaN, bit for bit
    stored = sink.stored_samples()
    assert len(stored) == 7
    for samples in stored.values():
        stamp, value = samples[-1]
        assert stamp == NOW
        assert struct.pack("<d", value) == struct.pack("<Q", STALE_NAN_BITS)


def test_a_counter_histograms_created_timestamp_starts_its_series_at_zero(
    service: IngestService, sink: ListSink
) -> None:
    # Given a counter histogram created a minute before its first sample
    spec = V2Spec({"__name__": "h"}, created=NOW - 60_000, metric_type=pb.METRIC_TYPE_HISTOGRAM, native=[latency(NOW)])
    # When written
    result = service.remote_write(v2_body([spec]), V2_HEADERS, "t")
    # Then each derived series starts with a zero at the created timestamp, and only the histogram is counted
    assert all(samples[0] == (NOW - 60_000, 0.0) for samples in sink.stored_samples().values())
    assert written(result) == ("0", "1", "0")


def test_a_1_0_series_with_floats_and_histograms_keeps_both(service: IngestService, sink: ListSink) -> None:
    series = histogram_series({"__name__": "h"}, [latency(NOW)])
    series.samples.extend(timeseries({"__name__": "h"}, [(NOW, 7.0)]).samples)
    result = service.remote_write(write_request([series]), RW_HEADERS, "t")
    assert result.rejected == []
    assert sink.stored_samples()[(("__name__", "h"),)] == [(NOW, 7.0)]
    assert "h_count" in names(sink.stored_samples())


def test_derived_series_go_through_label_validation(sink: ListSink) -> None:
    # Given a histogram whose name is valid but whose _bucket series would have too many labels
    from novacron.ingest.validate import Limits, SeriesValidator

    service = IngestService(sink, validator=SeriesValidator(Limits(max_labels_per_series=2)), clock_ms=lambda: NOW)
    specs = [V2Spec({"__name__": "h", "job": "x"}, native=[latency(NOW)])]
    # When written, Then the whole histogram is refused (no _count without its buckets), naming why
    result = service.remote_write(v2_body(specs), V2_HEADERS, "t")
    assert sink.stored_samples() == {}
    assert 'h{job="x"} cannot be stored as classic histogram series: series has 3 labels' in result.rejected[0]
