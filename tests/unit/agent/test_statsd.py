"""StatsD/DogStatsD aggregation: every metric type, the datagram edge cases, and real client libraries."""

from __future__ import annotations

import math
import socket
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.agent.statsd import StatsdAggregator, StatsdSettings
from novacron.ingest.validate import SeriesValidator
from novacron.protocols.remote_write_pb import Label, Sample, TimeSeries

NOW = 1_790_000_000_000
LATER = NOW + 10_000

Flushed = dict[tuple[tuple[str, str], ...], list[tuple[float, int]]]


def decode(encodings: list[bytes]) -> Flushed:
    """Flushed encodings as {sorted label pairs: [(value, timestamp)]}; asserts one series per label set."""
    out: Flushed = {}
    for encoded in encodings:
        ts = TimeSeries.FromString(encoded)
        key = tuple((label.name, label.value) for label in ts.labels)
        assert key not in out, f"two series with labels {key}"
        out[key] = [(s.value, s.timestamp) for s in ts.samples]
    return out


def series(name: str, **labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted([("__name__", name), *labels.items()]))


def value_of(flushed: Flushed, name: str, **labels: str) -> float:
    samples = flushed[series(name, **labels)]
    assert len(samples) == 1
    return samples[0][0]


@pytest.fixture
def agg() -> StatsdAggregator:
    return StatsdAggregator()


@pytest.fixture
def feed(agg: StatsdAggregator) -> Callable[..., Flushed]:
    """Ingest datagrams into ``agg`` and flush at ``now``."""

    def run(*datagrams: bytes, now: int = NOW) -> Flushed:
        for datagram in datagrams:
            agg.ingest(datagram)
        return decode(agg.flush(now))

    return run


# --- counters -----------------------------------------------------------------------------------


def test_counter_is_a_cumulative_prometheus_counter(agg, feed):
    # Given increments in two intervals, one of them sampled at 10%
    first = feed(b"page.views:1|c", b"page.views:2|c|@0.1")
    # When a later interval has no increments, then another has one
    idle = feed(now=LATER)
    last = feed(b"page.views:1|c", now=LATER + 10_000)
    # Then the counter keeps its total across flushes, the sampled increment counted as 20
    assert first == {series("page_views_total"): [(21.0, NOW)]}
    assert idle == {series("page_views_total"): [(21.0, LATER)]}
    assert value_of(last, "page_views_total") == 22.0
    assert agg.stats["lines_accepted"] == 3


def test_packed_counter_values_add_up(feed):
    # Given DogStatsD value packing on a sampled counter
    flushed = feed(b"hits:1:2:3|c|@0.5")
    # Then every value counts, scaled by the rate
    assert value_of(flushed, "hits_total") == 12.0


def test_fractional_increments_add_without_error(agg, feed):
    # Given increments whose float sums round
    flushed = feed(b"f:0.1|c\nf:0.2|c\nf:0.7|c|@0.3")
    # Then all are accepted and summed
    assert agg.stats["lines_accepted"] == 3
    assert value_of(flushed, "f_total") == pytest.approx(0.3 + 0.7 / 0.3)


def test_counter_name_already_ending_in_total_is_not_doubled(feed):
    # Given a counter named the Prometheus way
    # When it is flushed
    flushed = feed(b"http_requests_total:3|c")
    # Then the name keeps a single _total
    assert value_of(flushed, "http_requests_total") == 3.0


def test_negative_counter_increment_is_refused(agg, feed):
    # Given a decrement of a cumulative counter, then a valid increment
    flushed = feed(b"jobs:-1|c\njobs:4|c")
    # Then the decrement is malformed (a Prometheus counter cannot go down) and the increment counts
    assert value_of(flushed, "jobs_total") == 4.0
    assert agg.stats["malformed_negative_counter"] == 1


def test_counters_as_rate_report_increase_per_second():
    # Given counters reported as rates
    agg = StatsdAggregator(StatsdSettings(counters_as_rate=True))
    # When the first flush sets the interval start and 10 s later 50 increments (one of -10) arrived
    assert agg.flush(NOW) == []
    agg.ingest(b"req:30|c\nreq:30|c\nreq:-10|c")
    flushed = decode(agg.flush(NOW + 10_000))
    # Then the gauge is the increase per second over the interval, and it drops to 0 when idle
    assert flushed == {series("req_per_second"): [(5.0, NOW + 10_000)]}
    assert value_of(decode(agg.flush(NOW + 20_000)), "req_per_second") == 0.0


def test_counter_increments_before_the_first_rate_flush_are_kept_for_the_next():
    # Given counts received before any flush of a rate-reporting aggregator
    agg = StatsdAggregator(StatsdSettings(counters_as_rate=True))
    agg.ingest(b"req:20|c")
    # When flushed twice
    first = agg.flush(NOW)
    second = decode(agg.flush(NOW + 10_000))
    # Then the first flush has no interval to divide by, and the counts are reported with the second
    assert first == []
    assert value_of(second, "req_per_second") == 2.0


# --- gauges -------------------------------------------------------------------------------------


def test_gauge_keeps_its_last_value_and_applies_deltas(feed):
    # Given a gauge set, adjusted up and down, with multiple packed values
    first = feed(b"fuel.level:10|g\nfuel.level:+5|g\nfuel.level:-3|g")
    packed = feed(b"fuel.level:1:2:+4|g", now=LATER)
    # When an interval has no update
    idle = feed(now=LATER + 10_000)
    # Then deltas adjust, packed values apply in order, and the gauge persists with its last value
    assert value_of(first, "fuel_level") == 12.0
    assert value_of(packed, "fuel_level") == 6.0
    assert idle == {series("fuel_level"): [(6.0, LATER + 10_000)]}


def test_gauge_delta_without_a_value_starts_from_zero(feed):
    # Given only a delta
    flushed = feed(b"temp:-4.5|g")
    # Then it applies to 0
    assert value_of(flushed, "temp") == -4.5


def test_gauge_ignores_sample_rate(feed):
    # Given a gauge with a sample rate
    flushed = feed(b"queue:7|g|@0.5")
    # Then the value is absolute, not scaled
    assert value_of(flushed, "queue") == 7.0


def test_packed_line_with_one_bad_value_changes_nothing(agg, feed):
    # Given a gauge, then a packed line whose last value is bad
    flushed = feed(b"g:5|g\ng:+1:oops|g")
    # Then the bad line is refused whole
    assert value_of(flushed, "g") == 5.0
    assert agg.stats["malformed_bad_value"] == 1


# --- timers, histograms, distributions --------------------------------------------------------------


def test_timer_becomes_a_summary_in_seconds(feed):
    # Given ten timings of 10..100 ms
    flushed = feed(b"\n".join(f"db.query:{ms}|ms".encode() for ms in range(10, 101, 10)))
    # Then quantiles are nearest-rank over the interval, in seconds, with sum and count
    assert value_of(flushed, "db_query_seconds", quantile="0.5") == pytest.approx(0.05)
    assert value_of(flushed, "db_query_seconds", quantile="0.9") == pytest.approx(0.09)
    assert value_of(flushed, "db_query_seconds", quantile="0.99") == pytest.approx(0.1)
    assert value_of(flushed, "db_query_seconds_sum") == pytest.approx(0.55)
    assert value_of(flushed, "db_query_seconds_count") == 10.0


def test_timer_sum_and_count_are_cumulative_and_quantiles_per_interval(feed):
    # Given timings in one interval, none in the next, one in the third
    feed(b"t:100:300|ms")
    idle = feed(now=LATER)
    third = feed(b"t:200|ms", now=LATER + 10_000)
    # Then an idle interval reports only sum and count, and quantiles cover only their interval
    assert idle == {series("t_seconds_sum"): [(0.4, LATER)], series("t_seconds_count"): [(2.0, LATER)]}
    assert value_of(third, "t_seconds", quantile="0.5") == pytest.approx(0.2)
    assert value_of(third, "t_seconds_sum") == pytest.approx(0.6)
    assert value_of(third, "t_seconds_count") == 3.0


def test_sample_rate_scales_summary_count_and_sum(feed):
    # Given a histogram value sampled at 25%
    flushed = feed(b"payload:8|h|@0.25")
    # Then it counts as 4 observations of 8
    assert value_of(flushed, "payload_count") == 4.0
    assert value_of(flushed, "payload_sum") == 32.0
    assert value_of(flushed, "payload", quantile="0.5") == 8.0


def test_histogram_and_distribution_share_one_unitless_summary(feed):
    # Given the same name sent as a DogStatsD histogram and as a distribution, packed
    flushed = feed(b"size:1:2:3|h\nsize:4|d")
    # Then they aggregate into one summary (no _seconds, no unit change)
    assert value_of(flushed, "size_count") == 4.0
    assert value_of(flushed, "size_sum") == 10.0
    assert value_of(flushed, "size", quantile="0.5") == 2.0


def test_timer_named_in_seconds_is_not_suffixed_twice(feed):
    flushed = feed(b"latency_seconds:250|ms")
    assert value_of(flushed, "latency_seconds_count") == 1.0


def test_histogram_buckets_are_cumulative_classic_buckets():
    # Given buckets configured (in seconds for timers) and timings of 50, 100, 700 and 3000 ms
    agg = StatsdAggregator(StatsdSettings(histogram_buckets=(0.1, 1.0), percentiles=(0.5,)))
    agg.ingest(b"rt:50:100:700|ms")
    agg.flush(NOW)
    agg.ingest(b"rt:3000|ms")
    flushed = decode(agg.flush(LATER))
    # Then buckets count values <= le, cumulative over flushes, with +Inf equal to the count
    assert value_of(flushed, "rt_seconds_bucket", le="0.1") == 2.0
    assert value_of(flushed, "rt_seconds_bucket", le="1") == 3.0
    assert value_of(flushed, "rt_seconds_bucket", le="+Inf") == 4.0
    assert value_of(flushed, "rt_seconds_count") == 4.0


# --- sets ---------------------------------------------------------------------------------------


def test_set_counts_distinct_values_per_interval(feed):
    # Given repeated members in one interval and none in the next
    first = feed(b"users.uniques:alice|s\nusers.uniques:bob|s\nusers.uniques:alice|s|@0.5")
    idle = feed(now=LATER)
    # Then the gauge is the distinct count, and 0 once the interval had none
    assert value_of(first, "users_uniques") == 2.0
    assert value_of(idle, "users_uniques") == 0.0


# --- names, tags and labels -----------------------------------------------------------------------


def test_tags_become_sanitised_labels(feed):
    # Given DogStatsD tags: key:value, a bare tag, an empty value, odd characters, a repeated key
    flushed = feed(b"api.calls:1|c|#env:prod,canary,zone:,http.method:GET,9lives:x,__name__:evil,env:staging")
    # Then they become valid labels: bare is "true", empty is absent, the last value of a key wins
    assert flushed == {
        series("api_calls_total", env="staging", canary="true", http_method="GET", _9lives="x", tag__name__="evil"): [
            (1.0, NOW)
        ]
    }


def test_tag_order_does_not_split_a_series(feed):
    flushed = feed(b"c:1|c|#a:1,b:2\nc:1|c|#b:2,a:1")
    assert value_of(flushed, "c_total", a="1", b="2") == 2.0


def test_extra_labels_are_defaults_that_tags_override():
    # Given agent labels, and lines tagged with one of them, without it, and with the summary's own names
    agg = StatsdAggregator(extra_labels={"host": "agent-1", "region": ""})
    agg.ingest(b"t:5|ms|#host:app-7,quantile:x,le:y\nt:5|ms")
    flushed = decode(agg.flush(NOW))
    # Then a tag wins over the agent's label, quantile/le tags move aside to exported_<name>,
    # the agent's label fills in where no tag names it, and empty extra labels are left out
    tagged = {"host": "app-7", "exported_quantile": "x", "exported_le": "y"}
    assert value_of(flushed, "t_seconds_count", **tagged) == 1.0
    assert value_of(flushed, "t_seconds_count", host="agent-1") == 1.0


def test_invalid_extra_label_name_is_a_configuration_error():
    with pytest.raises(ValueError, match="invalid extra label name"):
        StatsdAggregator(extra_labels={"bad-name": "x"})


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"my-app.req/s:1|g", "my_app_req_s"),
        (b"5xx.errors:1|g", "_5xx_errors"),
        ("caf\u00e9.visits:1|g".encode(), "caf__visits"),
    ],
)
def test_metric_names_are_sanitised(feed, line, expected):
    assert value_of(feed(line), expected) == 1.0


def test_prefix_is_applied_and_sanitised():
    agg = StatsdAggregator(StatsdSettings(prefix="shop."))
    agg.ingest(b"orders:2|c")
    assert value_of(decode(agg.flush(NOW)), "shop_orders_total") == 2.0


def test_dogstatsd_container_timestamp_and_unknown_fields_are_accepted(agg, feed):
    # Given DogStatsD 1.2/1.3 fields and later extensions
    flushed = feed(b"x:1|c|#a:b|c:abc123|T1656581400|card:low\nx:1|c|c:ci-42|e:it-false")
    # Then the lines count as usual
    assert value_of(flushed, "x_total", a="b") == 1.0
    assert value_of(flushed, "x_total") == 1.0
    assert agg.stats["lines_accepted"] == 2


def test_events_and_service_checks_are_ignored_not_errors(agg):
    # Given an event, a service check and a metric in one datagram
    accepted = agg.ingest(b"_e{5,4}:title|text|#a:b\n_sc|db.up|0|#env:prod\nm:1|c")
    # Then only the metric is accepted and nothing is malformed
    assert accepted == 1
    assert agg.stats["events_ignored"] == 1
    assert agg.stats["service_checks_ignored"] == 1
    assert agg.stats["lines_malformed"] == 0


# --- malformed lines ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"foo:1|x", "bad_type"),
        (b"foo:1", "bad_type"),
        (b"foo|c", "bad_value"),
        (b"foo:abc|c", "bad_value"),
        (b"foo:nan|g", "bad_value"),
        (b"foo:inf|ms", "bad_value"),
        (b"foo:1:2:x|h", "bad_value"),
        (b"foo:|s", "bad_value"),
        (b"foo:1e308:1e308|c", "bad_value"),
        (b"foo:1e308:+1e308|g", "bad_value"),
        (b"foo:1e308:1e308|d", "bad_value"),
        (b"foo:1e308|c|@0.001", "bad_value"),
        (b"foo:1e308|ms|@1e-299", "bad_value"),
        (b"foo:1|c|@1e-320", "bad_sample_rate"),
        (b"foo:1|c|@0", "bad_sample_rate"),
        (b"foo:1|c|@1.5", "bad_sample_rate"),
        (b"foo:1|c|@abc", "bad_sample_rate"),
        (b"foo:1|g|Tsoon", "bad_timestamp"),
        (b":1|c", "empty_name"),
        (b"foo:-1|c", "negative_counter"),
        (b"foo:1|c|#" + b",".join(b"t%d:v" % i for i in range(64)), "too_many_tags"),
        (b"foo:1|c|#big:" + b"v" * 1100, "tag_too_long"),
        (b"f" * 1100 + b":1|g", "name_too_long"),
    ],
)
def test_malformed_lines_are_counted_by_reason_and_skipped(agg, line, reason):
    # Given a bad line between two good ones
    accepted = agg.ingest(b"ok:1|c\n" + line + b"\nok:1|c")
    # Then it is counted with its reason, explained in last_errors, and the rest of the datagram counts
    assert accepted == 2
    assert agg.stats["lines_malformed"] == 1
    assert agg.stats[f"malformed_{reason}"] == 1
    assert agg.last_errors()[-1].startswith(f"malformed_{reason}: ")
    assert value_of(decode(agg.flush(NOW)), "ok_total") == 2.0


def test_metric_whose_series_would_clash_with_another_type_is_refused(agg, feed):
    # Given a gauge "active" and then a set with the same name (both write series "active")
    flushed = feed(b"active:3|g\nactive:x|s")
    # Then the second is malformed and the gauge stays
    assert flushed == {series("active"): [(3.0, NOW)]}
    assert agg.stats["malformed_name_conflict"] == 1


def test_crlf_line_ends_and_blank_lines_are_tolerated(agg):
    assert agg.ingest(b"a:1|c\r\n\r\nb:2|g\r\n") == 2
    assert agg.stats["lines_received"] == 2


def test_invalid_utf8_does_not_break_the_datagram(agg):
    # Given a line with invalid UTF-8 in a tag value and a good line
    accepted = agg.ingest(b"a:1|c|#k:\xff\xfe\nb:1|c")
    # Then both are accepted; the bad bytes become replacement characters
    assert accepted == 2
    assert value_of(decode(agg.flush(NOW)), "a_total", k="\ufffd\ufffd") == 1.0


def test_last_errors_keeps_only_recent_messages(agg):
    agg.ingest(b"\n".join(b"m%d:1|zz" % i for i in range(50)))
    errors = agg.last_errors()
    assert 0 < len(errors) < 50
    assert "m49:1|zz" in errors[-1]


# --- the series limit -----------------------------------------------------------------------------


def test_new_series_beyond_the_limit_are_dropped_and_counted():
    # Given a limit of two series
    agg = StatsdAggregator(StatsdSettings(max_series=2))
    # When a third series arrives (twice), while the first two keep coming
    accepted = agg.ingest(b"a:1|c\nb:1|c\nc:1|c\nc:1|c\na:1|c")
    flushed = decode(agg.flush(NOW))
    # Then the third is dropped and counted; the existing series still aggregate
    assert accepted == 3
    assert agg.stats["series_dropped_limit"] == 2
    assert set(flushed) == {series("a_total"), series("b_total")}
    assert value_of(flushed, "a_total") == 2.0


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"percentiles": (1.5,)},
        {"percentiles": (0.5, 0.5)},
        {"histogram_buckets": (1.0, 0.5)},
        {"histogram_buckets": ()},
        {"max_series": -1},
    ],
)
def test_invalid_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match="must"):
        StatsdSettings(**kwargs)


# --- output encoding ------------------------------------------------------------------------------


def test_output_is_canonical_protobuf_and_passes_validation():
    # Given every metric type with tags and agent labels, including a label sorting before __name__
    agg = StatsdAggregator(StatsdSettings(histogram_buckets=(0.5,)), extra_labels={"Zone": "eu", "host": "h"})
    agg.ingest(b"c:1|c|#A:1\ng:0|g\nt:1|ms\nh:-2|h\nd:1|d|@0.5\ns:v|s\nneg:-0.0|g")
    encodings = agg.flush(NOW)
    validator = SeriesValidator()
    for encoded in encodings:
        ts = TimeSeries.FromString(encoded)
        # Then each encoding is byte for byte what protobuf writes for the same message
        rebuilt = TimeSeries(
            labels=[Label(name=x.name, value=x.value) for x in ts.labels],
            samples=[Sample(value=s.value, timestamp=s.timestamp) for s in ts.samples],
        )
        assert rebuilt.SerializeToString() == encoded
        # And the label set is one NovaCron accepts
        labels_only = TimeSeries(labels=ts.labels).SerializeToString()
        verdict = validator.check(labels_only)
        assert verdict.valid, verdict.error
    summary_series = 3 + 2 + 2  # quantiles, _sum and _count, buckets 0.5 and +Inf
    assert len(encodings) == 4 + 3 * summary_series


# --- fuzzing --------------------------------------------------------------------------------------

_COUNT_KEYS = ("lines_accepted", "lines_malformed", "series_dropped_limit", "events_ignored", "service_checks_ignored")


def _assert_counts_add_up(agg: StatsdAggregator) -> None:
    stats = agg.stats
    assert stats["lines_received"] == sum(stats[k] for k in _COUNT_KEYS)
    by_reason = sum(v for k, v in stats.items() if k.startswith("malformed_"))
    assert by_reason == stats["lines_malformed"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=5))
def test_random_bytes_never_raise_and_counts_add_up(datagrams):
    agg = StatsdAggregator(StatsdSettings(max_series=5, histogram_buckets=(1.0,)))
    accepted = sum(agg.ingest(d) for d in datagrams)
    assert accepted == agg.stats["lines_accepted"]
    _assert_counts_add_up(agg)
    for encoded in agg.flush(NOW):
        TimeSeries.FromString(encoded)


_PIECES = st.sampled_from(
    [
        "a",
        "b.c",
        "_e{",
        "_sc",
        ":",
        "|",
        "1",
        "-2",
        "+3",
        "0.5",
        "c",
        "g",
        "ms",
        "h",
        "d",
        "s",
        "@",
        "@0.5",
        "#",
        "k",
        ",",
        "T1",
        "c:x",
        "\n",
        "nan",
        "\xff",
        "__",
        "le",
        "quantile",
        "1e308",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_PIECES, max_size=12).map("".join), max_size=8))
def test_statsd_shaped_noise_yields_valid_series_and_consistent_counts(lines):
    # Given lines assembled from statsd syntax pieces (much more likely to be nearly valid than random bytes)
    agg = StatsdAggregator(StatsdSettings(max_series=20, histogram_buckets=(1.0,)), extra_labels={"host": "h"})
    agg.ingest("\n".join(lines).encode(errors="surrogateescape"))
    # Then counts add up and every flushed series is valid and unique
    _assert_counts_add_up(agg)
    validator = SeriesValidator()
    flushed = agg.flush(NOW)
    decode(flushed)
    for encoded in flushed:
        ts = TimeSeries.FromString(encoded)
        assert all(math.isfinite(s.value) for s in ts.samples)
        verdict = validator.check(TimeSeries(labels=ts.labels).SerializeToString())
        assert verdict.valid, verdict.error


# --- real client libraries ------------------------------------------------------------------------


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    """A UDP socket on 127.0.0.1 that the clients send to."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    try:
        yield sock
    finally:
        sock.close()


def _receive_all(sock: socket.socket) -> list[bytes]:
    datagrams = []
    sock.settimeout(0.3)
    try:
        while True:
            datagrams.append(sock.recv(65535))
    except TimeoutError:
        return datagrams


def test_datagrams_of_the_statsd_client_library(udp, monkeypatch):
    import statsd
    from statsd.client import base

    # Given the statsd library's client pointed at our socket, with a prefix, sending every type,
    # its sampling made to always send
    monkeypatch.setattr(base.random, "random", lambda: 0.0)
    client = statsd.StatsClient("127.0.0.1", udp.getsockname()[1], prefix="shop")
    client.incr("orders", 3)
    client.incr("orders", rate=0.1)  # stands for 10
    client.decr("stock", 2)  # a negative counter: refused (a Prometheus counter cannot go down)
    client.gauge("queue.depth", 10)
    client.gauge("queue.depth", -4, delta=True)
    client.timing("checkout", 250)
    client.timing("checkout", 750, rate=0.5)
    client.set("visitors", "alice")
    client.set("visitors", "bob")
    with client.pipeline() as pipe:  # several lines in one datagram
        pipe.incr("orders", 6)
        pipe.gauge("queue.depth", 2, delta=True)
    # When the received datagrams are aggregated
    agg = StatsdAggregator()
    for datagram in _receive_all(udp):
        agg.ingest(datagram)
    flushed = decode(agg.flush(NOW))
    # Then each type comes out as its Prometheus series
    assert value_of(flushed, "shop_orders_total") == 19.0
    assert value_of(flushed, "shop_queue_depth") == 8.0
    assert value_of(flushed, "shop_checkout_seconds_count") == 3.0  # 1 + one sampled at 50%
    assert value_of(flushed, "shop_checkout_seconds_sum") == pytest.approx(1.75)
    assert value_of(flushed, "shop_checkout_seconds", quantile="0.99") == pytest.approx(0.75)
    assert value_of(flushed, "shop_visitors") == 2.0
    assert agg.stats["malformed_negative_counter"] == 1
    assert agg.stats["lines_received"] == 11


def test_datagrams_of_the_datadog_dogstatsd_client(udp, monkeypatch):
    from datadog.dogstatsd import base
    from datadog.dogstatsd.base import DogStatsd

    # Given DogStatsD's client with constant tags, telemetry and origin detection off, whose sampling
    # always sends (so that the sampled line is there to be scaled)
    monkeypatch.setattr(base, "random", lambda: 0.0)
    client = DogStatsd(
        host="127.0.0.1",
        port=udp.getsockname()[1],
        namespace="web",
        constant_tags=["env:prod"],
        disable_telemetry=True,
        origin_detection_enabled=False,
    )
    try:
        client.increment("requests", 2, tags=["route:/cart"])
        client.increment("requests", 1, sample_rate=0.5, tags=["route:/cart"])
        client.gauge("connections", 12, tags=["pool:main"])
        client.histogram("payload.bytes", 100, tags=["route:/cart"])
        client.histogram("payload.bytes", 300, tags=["route:/cart"])
        client.distribution("render.time", 0.25)
        client.timing("db.query", 40, tags=["db:users"])
        client.set("sessions", "s1")
        client.set("sessions", "s2")
        client.set("sessions", "s1")
        client.event("deploy", "version 42 is out", tags=["team:web"])
        client.service_check("web.up", DogStatsd.OK, tags=["team:web"])
        client.flush()
        datagrams = _receive_all(udp)
    finally:
        client.close_socket()
    # When aggregated
    agg = StatsdAggregator(extra_labels={"host": "agent-1"})
    for datagram in datagrams:
        agg.ingest(datagram)
    flushed = decode(agg.flush(NOW))
    # Then tags are labels, the sample rate scales the counter, and event/service check are ignored
    common = {"env": "prod", "host": "agent-1"}
    assert any(b"web.requests:1|c|@0.5|#" in d for d in datagrams)
    assert value_of(flushed, "web_requests_total", route="/cart", **common) == 4.0  # 2 + 1 sampled at 50%
    assert value_of(flushed, "web_connections", pool="main", **common) == 12.0
    assert value_of(flushed, "web_payload_bytes_sum", route="/cart", **common) == 400.0
    assert value_of(flushed, "web_payload_bytes", route="/cart", quantile="0.5", **common) == 100.0
    assert value_of(flushed, "web_render_time_count", **common) == 1.0
    assert value_of(flushed, "web_db_query_seconds_sum", db="users", **common) == pytest.approx(0.04)
    assert value_of(flushed, "web_sessions", **common) == 2.0
    assert agg.stats["events_ignored"] == 1
    assert agg.stats["service_checks_ignored"] == 1
    assert agg.stats["lines_malformed"] == 0, agg.last_errors()
