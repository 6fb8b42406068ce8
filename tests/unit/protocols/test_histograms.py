"""Native histograms as classic buckets: bounds per schema, spans, deltas, custom buckets, derived series.

Expected bounds are worked out by hand from the native histogram spec (prometheus/docs
specs/native_histograms.md): at schema ``n`` the base is ``2**2**-n``; positive bucket ``i`` is
``(base**(i-1), base**i]``, negative bucket ``i`` is ``[-base**i, -base**(i-1))``, the zero bucket is
``[-threshold, threshold]``, and schema -53 takes its bounds from ``custom_values``.
"""

from __future__ import annotations

import struct
import sys

import pytest

from novacron.ingest.validate import RejectReason
from novacron.protocols import remote_write_v2_pb as pb
from novacron.protocols.histograms import (
    MAX_POPULATED_BUCKETS,
    ClassicPoint,
    HistogramError,
    classic_point,
    classic_series,
    cumulative_buckets,
    expand_spans,
    format_bound,
    to_classic,
    upper_bounds,
)
from novacron.protocols.remote_write_v2 import NativeSeries
from novacron.protocols.wire import decode_series
from novacron.series import STALE_NAN_BITS
from tests.builders_v2 import native_histogram

MAX = sys.float_info.max
STALE = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
NOW = 1_790_000_000_000
WINDOW = (NOW - 2 * 3600_000, NOW + 600_000)
# client_golang's nativeHistogramBounds for schema 3: the fractions of a power of two where buckets start.
GO_SCHEMA_3 = [
    0.5,
    0.5452538663326288,
    0.5946035575013605,
    0.6484197773255048,
    0.7071067811865475,
    0.7711054127039704,
    0.8408964152537144,
    0.9170040432046711,
]


def is_stale(value: float) -> bool:
    return struct.pack("<d", value) == struct.pack("<Q", STALE_NAN_BITS)


# --- bounds ---------------------------------------------------------------------------------


def test_schema_0_buckets_end_at_powers_of_two() -> None:
    # Given schema 0 (base 2) buckets 1..3 holding 1, 2, 3: (1,2], (2,4], (4,8]
    # When converted with lower edges, Then each bound holds everything at or below it
    assert cumulative_buckets(0, 0, 0, 1, [1, 2, 3], lower_edges=True) == [(1, 0), (2, 1), (4, 3), (8, 6)]


def test_schema_3_bounds_match_prometheus_client_table() -> None:
    # Given schema 3: base 2**(1/8), so buckets 0..8 end at 2**(i/8), from 1 to exactly 2
    bounds = upper_bounds(3, 0, 9)
    # Then whole powers of two are exact and the rest match client_golang's table (x2) to the last bits
    assert (bounds[0], bounds[8]) == (1.0, 2.0)
    assert bounds[1:8].tolist() == pytest.approx([2 * f for f in GO_SCHEMA_3[1:]], rel=4e-16)
    # And negative indexes mirror them below 1: bucket -8 ends at 0.5, bucket -7 at 2**(-7/8)
    assert upper_bounds(3, -8, 2).tolist() == pytest.approx([0.5, GO_SCHEMA_3[1]], rel=4e-16)


def test_schema_minus_2_buckets_grow_sixteenfold() -> None:
    # Given schema -2 (base 2**4 = 16) buckets 0, 1, 2: (1/16, 1], (1, 16], (16, 256] holding 1, 0, 2
    buckets = cumulative_buckets(-2, 0, 0, 0, [1, 0, 2], lower_edges=True)
    # Then the empty middle bucket still gives 16 as the last bucket's lower edge
    assert buckets == [(0.0625, 0), (1, 1), (16, 1), (256, 3)]


def test_without_lower_edges_empty_buckets_are_dropped_as_before() -> None:
    # Given the default (OTLP) call: (1,2]=1, (2,4]=0, (4,8]=2
    assert cumulative_buckets(0, 0, 0, 1, [1, 0, 2]) == [(2, 1), (8, 3)]


def test_negative_buckets_come_first_most_negative_lowest() -> None:
    # Given schema 0 negative buckets 1: [-2,-1) = 2 and 2: [-4,-2) = 3
    buckets = cumulative_buckets(0, 0, 0, 0, [], 1, [2, 3], lower_edges=True)
    # Then bounds ascend from -4, counting the lower (more negative) bucket first
    assert buckets == [(-4, 0), (-2, 3), (-1, 5)]


def test_zero_bucket_spans_minus_to_plus_threshold() -> None:
    # Given a zero bucket [-0.5, 0.5] of 4 and schema 0 bucket 1 (1, 2] of 1
    buckets = cumulative_buckets(0, 0.5, 4, 1, [1], lower_edges=True)
    # Then the zero bucket is (-0.5, 0.5] and the gap up to 1 shows as a bound of its own
    assert buckets == [(-0.5, 0), (0.5, 4), (1, 4), (2, 5)]


def test_an_empty_zero_bucket_adds_no_bound_of_its_own() -> None:
    # Given client_golang's default zero threshold 2**-128 with nothing in it, and (1,2] of 1
    h = native_histogram(NOW, {1: 1}, zero_threshold=2.0**-128)
    # Then only the populated bucket's edges are bounds (the OTLP default call still keeps the threshold)
    assert classic_point(h).buckets == [(1, 0), (2, 1)]
    assert cumulative_buckets(0, 2.0**-128, 0, 1, [1]) == [(2.0**-128, 0), (2, 1)]


def test_zero_threshold_zero_counts_exact_zeros_at_le_0() -> None:
    assert cumulative_buckets(0, 0.0, 3, 0, [], lower_edges=True) == [(0.0, 3)]


def test_float_range_ends_follow_the_spec() -> None:
    # Given schema 0 buckets 1024 (holds MaxFloat64) and 1025 (the +Inf overflow bucket), 1 each
    buckets = cumulative_buckets(0, 0, 0, 1024, [1, 1], lower_edges=True)
    # Then the first ends at MaxFloat64 and the overflow bucket is left to le="+Inf" (the count)
    assert buckets == [(2.0**1023, 0), (MAX, 1)]
    # And the negative overflow bucket ends at -MaxFloat64
    assert cumulative_buckets(0, 0, 0, 0, [], 1025, [1]) == [(-MAX, 1)]


def test_format_bound_is_short_and_plain() -> None:
    assert [format_bound(b) for b in (2.0, 0.1, 1e-5, 0.0625, float("inf"))] == [
        "2",
        "0.1",
        "0.00001",
        "0.0625",
        "+Inf",
    ]


# --- spans and counts -------------------------------------------------------------------------


def test_spans_expand_to_indexes_as_in_the_spec_example() -> None:
    # Given the spec's example: spans [[-2,2],[2,1],[1,2]] over 5 buckets
    assert expand_spans([(-2, 2), (2, 1), (1, 2)], 5).tolist() == [-2, -1, 2, 4, 5]
    # And the same buckets written with explicit empty ones in one span
    assert expand_spans([(-2, 8)], 8).tolist() == list(range(-2, 6))


@pytest.mark.parametrize(
    ("spans", "n", "fragment"),
    [([(0, 3)], 2, "spans cover 3 buckets but 2 are listed"), ([(0, 1), (-1, 1)], 2, "negative offset")],
)
def test_bad_spans_are_refused(spans: list[tuple[int, int]], n: int, fragment: str) -> None:
    with pytest.raises(HistogramError, match=fragment):
        expand_spans(spans, n)


def test_integer_histogram_deltas_decode_to_the_spec_example() -> None:
    # Given the spec's integer example (-2→3, -1→5, 2→1, 4→3, 5→2) as deltas [3, 2, -4, 2, -1], schema 0
    h = pb.Histogram(
        count_int=14,
        sum=30.0,
        schema=0,
        positive_spans=[
            pb.BucketSpan(offset=-2, length=2),
            pb.BucketSpan(offset=2, length=1),
            pb.BucketSpan(offset=1, length=2),
        ],
        positive_deltas=[3, 2, -4, 2, -1],
        timestamp=NOW,
    )
    # When converted
    point = classic_point(h)
    # Then buckets (1/8,1/4]=3 (1/4,1/2]=5 (2,4]=1 (8,16]=3 (16,32]=2 give these bounds, with lower edges
    assert point == ClassicPoint(
        NOW,
        [(0.125, 0), (0.25, 3), (0.5, 8), (2, 8), (4, 9), (8, 9), (16, 12), (32, 14)],
        14.0,
        30.0,
    )


def test_float_histogram_uses_absolute_counts() -> None:
    h = native_histogram(NOW, {1: 0.5, 2: 1.5}, float_counts=True, zero_count=0.25, total=3.0)
    point = classic_point(h)
    assert point.buckets == [(0.0, 0.25), (1, 0.25), (2, 0.75), (4, 2.25)]
    assert (point.count, point.sum) == (2.25, 3.0)


def test_custom_buckets_use_custom_values_as_bounds() -> None:
    # Given schema -53 with bounds [0.1, 0.5, 1]: buckets 0 (-Inf,0.1]=1, 1 (0.1,0.5]=2, 3 (1,+Inf]=4
    h = native_histogram(NOW, {0: 1, 1: 2, 3: 4}, schema=-53, custom_values=[0.1, 0.5, 1.0])
    point = classic_point(h)
    # Then the bounds are the custom values; the overflow bucket is only in +Inf (count 7)
    assert point.buckets == [(0.1, 1), (0.5, 3), (1.0, 3)]
    assert point.count == 7


def test_a_staleness_marker_is_recognised() -> None:
    h = pb.Histogram.FromString(pb.Histogram(count_int=0, sum=STALE, timestamp=NOW).SerializeToString())
    point = classic_point(h)
    assert point.stale
    assert is_stale(point.sum)
    assert point.buckets == []


@pytest.mark.parametrize(
    ("histogram", "fragment"),
    [
        (native_histogram(NOW, {1: 1}, schema=9), "schema 9 is not supported"),
        (native_histogram(NOW, {1: 1}, schema=-5), "schema -5 is not supported"),
        (pb.Histogram(count_int=1, positive_spans=[pb.BucketSpan(length=2)], positive_deltas=[1]), "cover 2 buckets"),
        (pb.Histogram(count_int=1, positive_spans=[pb.BucketSpan(length=2)], positive_deltas=[2, -3]), "negative"),
        (native_histogram(NOW, {1: 5}, count=3), "count 3 is less than its buckets hold (5)"),
        (native_histogram(NOW, {i: 1 for i in range(MAX_POPULATED_BUCKETS + 1)}), "161 populated buckets"),
        (native_histogram(NOW, {0: 1}, schema=-53, custom_values=[1.0], zero_count=1), "neither negative nor zero"),
        (native_histogram(NOW, {5: 1}, schema=-53, custom_values=[1.0, 2.0]), "bucket index outside 0..2"),
        (native_histogram(NOW, {0: 1}, schema=-53, custom_values=[2.0, 1.0]), "increasing order"),
        (pb.Histogram(count_float=1, positive_spans=[pb.BucketSpan(length=1)], positive_deltas=[1]), "must use"),
        (b"\xff\xff", "not a valid Histogram message"),
    ],
)
def test_unusable_histograms_are_refused_saying_why(histogram: object, fragment: str) -> None:
    with pytest.raises(HistogramError) as err:
        classic_point(histogram)
    assert fragment in str(err.value)


# --- derived series ---------------------------------------------------------------------------


def series_of(contents: list[bytes]) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
    """Derived series by their labels, as the ingest decoder reads them."""
    from novacron.protocols.remote_write_pb import RawLabels

    decoded = decode_series(contents)
    out = {}
    for i, label_bytes in enumerate(decoded.label_bytes):
        labels = tuple((lb.name.decode(), lb.value.decode()) for lb in RawLabels.FromString(label_bytes).labels)
        lo, hi = int(decoded.offsets[i]), int(decoded.offsets[i + 1])
        out[labels] = list(zip(decoded.timestamps[lo:hi].tolist(), decoded.values[lo:hi].tolist(), strict=True))
    return out


def test_each_histogram_sample_becomes_bucket_count_and_sum_samples() -> None:
    # Given two samples of one series whose populated buckets differ (sparse buckets)
    labels = [(b"__name__", b"rpc_seconds"), (b"Zone", b"a")]  # "Zone" sorts before "__name__"
    first = native_histogram(NOW, {1: 1}, total=1.5)
    second = native_histogram(NOW + 15_000, {1: 1, 3: 2}, total=12.0)
    # When converted
    classic = classic_series(labels, [first, second])
    stored = series_of(classic.contents)

    # Then each bound is a _bucket series with le, sorted labels, present from the sample that has it
    def bucket(le: str) -> tuple[tuple[str, str], ...]:
        return (("Zone", "a"), ("__name__", "rpc_seconds_bucket"), ("le", le))

    assert stored[bucket("1")] == [(NOW, 0.0), (NOW + 15_000, 0.0)]
    assert stored[bucket("2")] == [(NOW, 1.0), (NOW + 15_000, 1.0)]
    assert stored[bucket("4")] == [(NOW + 15_000, 1.0)]
    assert stored[bucket("8")] == [(NOW + 15_000, 3.0)]
    assert stored[bucket("+Inf")] == [(NOW, 1.0), (NOW + 15_000, 3.0)]
    assert stored[(("Zone", "a"), ("__name__", "rpc_seconds_count"))] == [(NOW, 1.0), (NOW + 15_000, 3.0)]
    assert stored[(("Zone", "a"), ("__name__", "rpc_seconds_sum"))] == [(NOW, 1.5), (NOW + 15_000, 12.0)]
    assert len(stored) == 7
    assert classic.timestamps == [NOW, NOW + 15_000]
    assert classic.samples == [len(v) for v in stored.values()]


def test_suffixes_are_appended_even_to_names_that_already_end_in_one() -> None:
    classic = classic_series([(b"__name__", b"x_count")], [native_histogram(NOW, {})])
    names = {dict(k)["__name__"] for k in series_of(classic.contents)}
    assert names == {"x_count_bucket", "x_count_count", "x_count_sum"}


def test_a_stale_histogram_ends_every_derived_series_it_knows() -> None:
    # Given a histogram followed by its staleness marker
    stale = pb.Histogram(count_int=0, sum=STALE, timestamp=NOW + 15_000)
    classic = classic_series([(b"__name__", b"h")], [native_histogram(NOW, {1: 1}), stale])
    # Then every derived series (bounds 1 and 2, +Inf, _count, _sum) ends with a stale marker
    stored = series_of(classic.contents)
    assert len(stored) == 5
    assert all(samples[-1][0] == NOW + 15_000 and is_stale(samples[-1][1]) for samples in stored.values())


def test_a_created_timestamp_starts_every_derived_series_at_zero() -> None:
    classic = classic_series([(b"__name__", b"h")], [native_histogram(NOW, {1: 1}, total=0.5)], created_ms=NOW - 5)
    assert all(samples[0] == (NOW - 5, 0.0) for samples in series_of(classic.contents).values())


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [([(b"job", b"x")], "no metric name"), ([(b"__name__", b"h"), (b"le", b"1")], "'le' label")],
)
def test_series_labels_that_cannot_take_the_derived_shape_are_refused(
    labels: list[tuple[bytes, bytes]], fragment: str
) -> None:
    with pytest.raises(HistogramError, match=fragment):
        classic_series(labels, [native_histogram(NOW, {1: 1})])


# --- a request's histogram series -------------------------------------------------------------


def no_problem(label_bytes: bytes) -> str | None:
    return None


def test_series_are_stored_whole_or_refused_whole_with_a_reason() -> None:
    # Given a good series, one outside the window, one with an unusable histogram, one whose derived
    # series the validator refuses, and one too large for a record
    good = NativeSeries([(b"__name__", b"ok")], [native_histogram(NOW, {1: 1})], where="timeseries[0]: ")
    old = NativeSeries([(b"__name__", b"old")], [native_histogram(NOW - 3 * 3600_000, {1: 1})])
    bad = NativeSeries([(b"__name__", b"bad")], [native_histogram(NOW, {1: 1}, schema=20)])
    refused = NativeSeries([(b"__name__", b"refused")], [native_histogram(NOW, {1: 1})])
    big = NativeSeries([(b"__name__", b"big")], [native_histogram(NOW + i, {1: 1}) for i in range(50)])

    def problem(label_bytes: bytes) -> str | None:
        return "refused by the validator" if b"refused_bucket" in label_bytes else None

    # When converted with a 500-byte limit per series
    batch = to_classic([good, old, bad, refused, big], problem, WINDOW, 500)
    # Then only the good series is there (5 derived series, 1 histogram) and each other is named once
    assert (len(batch.contents), batch.added_samples, batch.histograms) == (5, [1] * 5, 1)
    reasons = [reason for reason, _ in batch.rejected]
    assert reasons == [
        RejectReason.OUT_OF_WINDOW,
        RejectReason.NATIVE_HISTOGRAM,
        RejectReason.INVALID_LABELS,
        RejectReason.OVERSIZED,
    ]
    messages = [message for _, message in batch.rejected]
    assert "outside the accepted window" in messages[0]
    assert messages[0].endswith("old{}")
    assert messages[1] == "native histogram schema 20 is not supported (-4 to 8, or -53 for custom buckets): bad{}"
    assert "refused{} cannot be stored as classic histogram series: refused by the validator" in messages[2]
    assert "send fewer samples per request: big{}" in messages[3]


def test_float_samples_of_a_1_0_histogram_series_are_kept() -> None:
    series = NativeSeries([(b"__name__", b"h")], [native_histogram(NOW, {})], floats=b"floats")
    batch = to_classic([series], no_problem, WINDOW, 10_000)
    assert batch.contents[0] == b"floats"
    assert batch.added_samples[0] == 0
