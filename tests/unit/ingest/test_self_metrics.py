"""NovaCron's own ingest counters: cumulative, per tenant, valid series, sent without failing requests."""

from __future__ import annotations

import logging

import pytest

from novacron.ingest.self_metrics import (
    REFUSED_METRIC,
    SAMPLES_METRIC,
    SERIES_METRIC,
    IngestCounters,
    new_instance_id,
    send_self_metrics,
)
from novacron.ingest.service import IngestResult, IngestService, StreamUnavailable
from novacron.ingest.validate import RejectReason, SeriesValidator
from novacron.protocols.remote_write_pb import TimeSeries
from novacron.protocols.wire import decode_series
from novacron.records import decode_record
from tests.fakes import ListSink

T0 = 1_790_000_000_000

Labels = tuple[tuple[str, str], ...]


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def counters(clock: FakeClock) -> IngestCounters:
    return IngestCounters("i-1", clock, flush_every_s=15)


def series_of(encodings: list[bytes]) -> dict[Labels, list[tuple[int, float]]]:
    """Drained encodings as labels → samples."""
    out = {}
    for data in encodings:
        ts = TimeSeries.FromString(data)
        out[tuple((lb.name, lb.value) for lb in ts.labels)] = [(s.timestamp, s.value) for s in ts.samples]
    return out


def latest(encodings: list[bytes]) -> dict[Labels, float]:
    return {labels: samples[-1][1] for labels, samples in series_of(encodings).items()}


def rejected_labels(reason: str, protocol: str = "remote_write") -> Labels:
    return (
        ("__name__", SERIES_METRIC),
        ("instance", "i-1"),
        ("outcome", "rejected"),
        ("protocol", protocol),
        ("reason", reason),
    )


def test_drained_counters_are_valid_series(counters: IngestCounters) -> None:
    # Given counts of every kind
    counters.add("acme", "remote_write", "rejected", "invalid_labels", 3)
    counters.add("acme", "remote_write", "accepted", "", 10)
    counters.add_samples("acme", "remote_write", "accepted", 40)
    counters.add_refused("acme", "otlp", 415)
    # When they are drained
    drained = counters.drain()["acme"]
    # Then each is a series the validator accepts, with its samples in time order
    decoded = decode_series(drained)
    validator = SeriesValidator()
    for label_bytes in decoded.label_bytes:
        verdict = validator.check(label_bytes)
        assert verdict.valid, verdict.error
    names = {dict(labels)["__name__"] for labels in series_of(drained)}
    assert names == {SERIES_METRIC, SAMPLES_METRIC, REFUSED_METRIC}
    for samples in series_of(drained).values():
        assert [t for t, _ in samples] == sorted(t for t, _ in samples)


def test_accepted_series_carry_no_reason_label(counters: IngestCounters) -> None:
    counters.add("acme", "json", "accepted", "", 2)
    [labels] = series_of(counters.drain()["acme"])
    assert labels == (("__name__", SERIES_METRIC), ("instance", "i-1"), ("outcome", "accepted"), ("protocol", "json"))


def test_counters_are_cumulative_across_drains(counters: IngestCounters, clock: FakeClock) -> None:
    # Given 3 rejections, drained, then 2 more
    counters.add("acme", "remote_write", "rejected", "invalid_labels", 3)
    first = series_of(counters.drain()["acme"])
    clock.advance(15)
    counters.add("acme", "remote_write", "rejected", "invalid_labels", 2)
    second = series_of(counters.drain()["acme"])
    # Then the first drain starts from zero just before the counter was created, and the second says 5
    key = rejected_labels("invalid_labels")
    assert first[key] == [(T0 - 1, 0.0), (T0, 3.0)]
    assert second[key] == [(T0 + 15_000, 5.0)]


def test_tenants_are_kept_apart(counters: IngestCounters) -> None:
    counters.add("acme", "remote_write", "rejected", "invalid_labels", 3)
    counters.add("globex", "remote_write", "rejected", "out_of_window", 1)
    drained = counters.drain()
    assert latest(drained["acme"]) == {rejected_labels("invalid_labels"): 3.0}
    assert latest(drained["globex"]) == {rejected_labels("out_of_window"): 1.0}


def test_zero_counts_make_no_series(counters: IngestCounters) -> None:
    counters.add("acme", "remote_write", "rejected", "invalid_labels", 0)
    assert not counters.due()
    assert counters.drain() == {}


def test_due_at_once_for_new_counters_then_every_interval(counters: IngestCounters, clock: FakeClock) -> None:
    # Given nothing counted yet, nothing is due
    assert not counters.due()
    # When a new counter appears, a drain is due at once (its starting zero should be recent)
    counters.add("acme", "remote_write", "accepted", "", 1)
    assert counters.due()
    counters.drain()
    # Then more counts on known counters wait for the interval
    counters.add("acme", "remote_write", "accepted", "", 1)
    clock.advance(14.9)
    assert not counters.due()
    clock.advance(0.1)
    assert counters.due()


def test_unsent_zeros_go_with_the_next_drain(counters: IngestCounters, clock: FakeClock) -> None:
    # Given a drain whose series could not be sent
    counters.add("acme", "remote_write", "rejected", "invalid_labels", 3)
    counters.drain()
    counters.unsent("acme")
    # When the next drain comes
    clock.advance(15)
    again = series_of(counters.drain()["acme"])
    # Then it carries the starting zero again, and the cumulative value
    assert again[rejected_labels("invalid_labels")] == [(T0 - 1, 0.0), (T0 + 15_000, 3.0)]


def test_record_counts_a_result_by_reason(counters: IngestCounters) -> None:
    # Given a result with classified and unclassified rejections
    result = IngestResult(series_accepted=4, samples_accepted=9)
    result.reject(RejectReason.OUT_OF_WINDOW, "old")
    result.reject(RejectReason.OUT_OF_WINDOW, "older")
    result.rejected.append("a decoder's message without a reason")
    # When it is recorded
    counters.record("acme", "remote_write", result)
    values = latest(counters.drain()["acme"])
    # Then accepted series and samples, and rejected series by reason, are counted
    assert values[rejected_labels("out_of_window")] == 2.0
    assert values[rejected_labels("invalid_labels")] == 1.0
    accepted = (("__name__", SERIES_METRIC), ("instance", "i-1"), ("outcome", "accepted"), ("protocol", "remote_write"))
    assert values[accepted] == 4.0
    samples = (("__name__", SAMPLES_METRIC), ("instance", "i-1"), ("outcome", "accepted"), ("protocol", "remote_write"))
    assert values[samples] == 9.0


def test_instance_ids_differ() -> None:
    assert new_instance_id() != new_instance_id()


# --- sending ------------------------------------------------------------------------------------


def stored(sink: ListSink) -> dict[str, dict[Labels, list[tuple[int, float]]]]:
    """Tenant → series → samples of everything the sink received."""
    out: dict[str, dict[Labels, list[tuple[int, float]]]] = {}
    for record in sink.records:
        decoded = decode_record(record.data)
        out.setdefault(decoded.tenant, {}).update(series_of(list(decoded.contents)))
    return out


def test_send_ingests_each_tenants_counters_as_its_own(clock: FakeClock) -> None:
    # Given counts for two tenants and a service whose clock is the counters'
    sink = ListSink()
    service = IngestService(sink, clock_ms=clock)
    counters = IngestCounters("i-1", clock)
    counters.add("acme", "remote_write", "rejected", "invalid_labels", 3)
    counters.add("globex", "json", "accepted", "", 1)
    # When they are sent
    send_self_metrics(counters, service)
    # Then each tenant's stream records hold its own counters
    by_tenant = stored(sink)
    assert by_tenant["acme"][rejected_labels("invalid_labels")][-1] == (T0, 3.0)
    assert {dict(labels)["protocol"] for labels in by_tenant["globex"]} == {"json"}
    # And nothing is sent again before it is due
    sink.records.clear()
    send_self_metrics(counters, service)
    assert sink.records == []


def test_a_failed_send_is_logged_and_retried(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    # Given a stream that refuses records
    sink = ListSink(fail_with=StreamUnavailable("throttled", throttled=True))
    service = IngestService(sink, clock_ms=clock)
    counters = IngestCounters("i-1", clock)
    counters.add("acme", "remote_write", "rejected", "invalid_labels", 3)
    # When the counters are sent, nothing is raised; the failure is logged
    with caplog.at_level(logging.WARNING):
        send_self_metrics(counters, service)
    assert "could not send NovaCron's ingest metrics for acme" in caplog.text
    # Then, once the stream takes records again, the next due send carries the counts and their zero
    sink.fail_with = None
    clock.advance(15)
    send_self_metrics(counters, service)
    assert stored(sink)["acme"][rejected_labels("invalid_labels")] == [(T0 - 1, 0.0), (T0 + 15_000, 3.0)]
