"""The detection service: stream records in, anomaly episodes, events and detector states out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import pytest

from novacron.config import DetectorConfig
from novacron.detect.events import DETECTED, RESOLVED, Anomaly, AnomalyEvent, Severity, Status, episode_id
from novacron.detect.service import (
    DETECTOR_VERSION,
    DetectionService,
    DetectorSettings,
    SeriesKey,
    SeriesState,
    StoredState,
)
from novacron.records import RecordFormatError, encode_record
from tests.builders import NOW, timeseries

STEP_MS = 60_000
T0 = NOW - 200 * STEP_MS
LATENCY = {"__name__": "latency_seconds", "job": "api"}
SPIKE_AT = 100


@dataclass
class MemoryStates:
    """StateStore in memory, counting reads."""

    items: dict[SeriesKey, StoredState] = field(default_factory=dict)
    reads: list[list[SeriesKey]] = field(default_factory=list)
    expires: list[int] = field(default_factory=list)

    def get_states(self, keys: Sequence[SeriesKey]) -> dict[SeriesKey, StoredState]:
        self.reads.append(list(keys))
        return {key: self.items[key] for key in keys if key in self.items}

    def put_states(self, states: dict[SeriesKey, StoredState], expires_at: int) -> None:
        self.items.update(states)
        self.expires.append(expires_at)


@dataclass
class MemoryAnomalies:
    """AnomalyStore in memory, by episode id."""

    items: dict[str, Anomaly] = field(default_factory=dict)

    def put_anomalies(self, anomalies: Sequence[Anomaly], expires_at: int) -> None:
        self.items.update({a.id: a for a in anomalies})


@dataclass
class ListEvents:
    """EventSink in memory; ``fail`` makes the next put raise."""

    events: list[AnomalyEvent] = field(default_factory=list)
    fail: bool = False

    def put_events(self, events: Sequence[AnomalyEvent]) -> None:
        if self.fail:
            self.fail = False
            raise RuntimeError("bus unavailable")
        self.events.extend(events)


@dataclass
class Harness:
    states: MemoryStates
    anomalies: MemoryAnomalies
    events: ListEvents
    now: float = NOW / 1000  # the services' wall clock (seconds)

    def service(self, **settings: int) -> DetectionService:
        """A new service (a cold start) over the same stores."""
        return DetectionService(
            self.states, self.anomalies, self.events, DetectorSettings(**settings), clock=lambda: self.now
        )


@pytest.fixture
def harness() -> Harness:
    return Harness(MemoryStates(), MemoryAnomalies(), ListEvents())


def steady(n: int, level: float = 100.0, noise: float = 2.0, seed: int = 1) -> list[float]:
    rng = np.random.default_rng(seed)
    return [level + float(rng.normal(0.0, noise)) for _ in range(n)]


def record(series: list[tuple[dict[str, str], list[float]]], first: int = 0, tenant: str = "acme") -> bytes:
    """One stream record: each label set's values at one-minute steps from sample ``first`` on."""
    contents = []
    for labels, values in series:
        samples = [(T0 + (first + i) * STEP_MS, v) for i, v in enumerate(values)]
        contents.append(timeseries(labels, samples).SerializeToString())
    return encode_record(tenant, NOW, contents)


def spiky(n: int = 120) -> list[float]:
    values = steady(n)
    values[SPIKE_AT] = 200.0
    return values


def test_a_spike_opens_one_episode_and_resolves_it(harness):
    # Given a steady latency series with one spike, then normal again
    values = spiky()
    # When the service scores it in one batch
    report = harness.service().detect_batch([("1", record([(LATENCY, values)]))])
    # Then one AnomalyDetected at the spike and one AnomalyResolved, with the same episode id
    assert [e.detail_type for e in report.events] == [DETECTED, RESOLVED]
    opened, resolved = (e.anomaly for e in report.events)
    spike_ms = T0 + SPIKE_AT * STEP_MS
    assert opened.id == resolved.id
    assert opened.start_ms == spike_ms
    assert opened.status is Status.OPEN
    assert opened.end_ms is None
    # ... explained: observed and expected values, a band the value is outside, methods and severity
    assert opened.value == 200.0
    assert opened.expected == pytest.approx(100.0, abs=3.0)
    assert opened.lower is not None
    assert opened.upper is not None
    assert opened.lower < opened.expected < opened.upper < 200.0
    assert opened.methods == ("spike",)
    # (two hours of history: the detector is warming up, so even a strong spike is only a warning)
    assert opened.warming_up
    assert opened.severity is Severity.WARNING
    assert opened.metric == "latency_seconds"
    assert dict(opened.labels) == LATENCY
    assert opened.scored_as == "value"
    assert opened.detector_version == DETECTOR_VERSION
    assert 0.0 < opened.confidence <= 1.0
    assert resolved.status is Status.RESOLVED
    assert resolved.end_ms == spike_ms
    # ... and the stored episode is the resolved one
    assert harness.anomalies.items == {opened.id: resolved}
    assert report.anomalies_opened == 1
    assert report.anomalies_resolved == 1
    assert report.samples_scored == len(values)


def test_anomalous_samples_within_the_gap_extend_the_episode(harness):
    # Given two spikes three normal samples apart, the first one barely anomalous, the second one clearly
    values = steady(130)
    values[SPIKE_AT], values[SPIKE_AT + 4] = 113.0, 220.0
    # When scored
    report = harness.service(episode_gap=3).detect_batch([("1", record([(LATENCY, values)]))])
    # Then they form one episode, explained by its strongest sample and ending at the second spike
    assert [e.detail_type for e in report.events] == [DETECTED, RESOLVED]
    resolved = report.events[1].anomaly
    assert resolved.samples == 2
    assert resolved.value == 220.0
    assert resolved.peak_ms == T0 + (SPIKE_AT + 4) * STEP_MS
    assert resolved.end_ms == T0 + (SPIKE_AT + 4) * STEP_MS


def test_an_episode_still_open_at_the_end_of_a_batch_is_stored_open(harness):
    # Given a series whose spike is the batch's last sample
    values = spiky(SPIKE_AT + 1)
    # When scored
    report = harness.service().detect_batch([("1", record([(LATENCY, values)]))])
    # Then the episode is stored open, and the series' state remembers it
    [event] = report.events
    assert harness.anomalies.items[event.anomaly.id].status is Status.OPEN
    [stored] = harness.states.items.values()
    state = SeriesState.decode(stored)
    assert state.episode is not None
    assert state.episode.anomaly.id == event.anomaly.id


def test_a_cold_start_continues_the_open_episode_without_reopening_it(harness):
    # Given a batch ending inside an episode, scored by one instance
    values = spiky()
    harness.service().detect_batch([("1", record([(LATENCY, values[: SPIKE_AT + 1])]))])
    [opened] = harness.events.events
    # When a new instance (empty memory, same state table) scores the rest
    report = harness.service().detect_batch([("2", record([(LATENCY, values[SPIKE_AT + 1 :])], first=SPIKE_AT + 1))])
    # Then it only resolves the episode the first one opened
    assert [(e.detail_type, e.anomaly.id) for e in report.events] == [(RESOLVED, opened.anomaly.id)]
    # ... and the detector continued its baseline: no warm-up verdicts, every sample scored
    assert report.samples_scored == len(values) - SPIKE_AT - 1


def test_a_cold_start_reads_all_the_batch_series_states_at_once_and_warm_batches_read_none(harness):
    # Given two series in one record
    other = {"__name__": "queue_depth", "job": "api"}
    batch = [("1", record([(LATENCY, steady(20)), (other, steady(20, seed=2))]))]
    service = harness.service()
    # When two consecutive batches are scored by one instance
    service.detect_batch(batch)
    service.detect_batch([("2", record([(LATENCY, steady(5)), (other, steady(5))], first=20))])
    # Then the states were read once, in one request for both series
    assert len(harness.states.reads) == 1
    assert len(harness.states.reads[0]) == 2


def test_replaying_a_batch_on_fresh_state_emits_the_same_episode_id(harness):
    # Given a batch with a spike, scored once
    batch = [("1", record([(LATENCY, spiky())]))]
    first = harness.service().detect_batch(batch)
    # When the same batch is scored again from empty stores (a retry after a failure before any state was stored)
    again = Harness(MemoryStates(), MemoryAnomalies(), ListEvents()).service().detect_batch(batch)
    # Then the events carry the same, deterministic, episode id
    ids = {e.anomaly.id for e in first.events}
    assert ids == {e.anomaly.id for e in again.events}
    assert ids == {episode_id("acme", first.events[0].anomaly.series_id, T0 + SPIKE_AT * STEP_MS)}


def test_replaying_a_batch_already_scored_teaches_nothing_and_emits_nothing(harness):
    # Given a batch already scored and stored
    batch = [("1", record([(LATENCY, spiky())]))]
    service = harness.service()
    service.detect_batch(batch)
    stored = dict(harness.states.items)
    # When the same records arrive again (Kinesis delivers at least once)
    report = service.detect_batch(batch)
    # Then every sample is skipped as late, no event is emitted and no state changes
    assert report.samples_scored == 0
    assert report.late_samples == 120
    assert report.events == []
    assert harness.states.items == stored


def test_a_failing_bus_fails_the_batch_and_the_retry_emits_the_same_events(harness):
    # Given a bus that fails once
    batch = [("1", record([(LATENCY, spiky())]))]
    service = harness.service()
    harness.events.fail = True
    # When the batch is scored, fails, and is retried by the same instance
    with pytest.raises(RuntimeError):
        service.detect_batch(batch)
    assert harness.states.items == {}
    report = service.detect_batch(batch)
    # Then the retry starts over from the stored (empty) state and emits the episode once
    assert [e.detail_type for e in report.events] == [DETECTED, RESOLVED]
    assert report.samples_scored == 120


def test_counters_are_scored_as_rates_and_the_interval_of_a_reset_is_not_scored(harness):
    # Given a counter growing by 60 a minute (1/s), restarting from 0 halfway
    increments = np.full(80, 60.0)
    raw = np.cumsum(increments)
    raw[40:] -= raw[39]  # the process restarted: the counter starts over
    counter = {"__name__": "http_requests_total", "job": "api"}
    # When the service scores it
    service = harness.service()
    report = service.detect_batch([("1", record([(counter, raw.tolist())]))])
    # Then every sample but the first and the one after the restart is scored, as a rate of 1/s
    assert report.samples_scored == 78
    assert report.counter_resets == 1
    assert report.events == []
    [stored] = harness.states.items.values()
    detector = SeriesState.decode(stored).detector
    assert set(detector.values) == {1.0}


def test_a_restart_that_loses_most_of_an_interval_raises_no_dip(harness):
    # Given a counter at 10/s whose process restarted just before a scrape: the new counter holds
    # only the last few seconds' requests, a tenth of what the interval saw
    raw = np.cumsum(np.full(120, 600.0))
    raw[80:] -= raw[79] + 540.0
    counter = {"__name__": "http_requests_total", "job": "api"}
    # When the service scores it
    report = harness.service().detect_batch([("1", record([(counter, raw.tolist())]))])
    # Then the restart's interval is not scored, and no episode opens
    assert report.counter_resets == 1
    assert report.samples_scored == 118
    assert report.events == []


def test_a_jump_in_a_counters_rate_is_an_anomaly_scored_as_rate(harness):
    # Given a counter at about 1/s that suddenly counts 30 times faster for one minute
    rates = [max(r, 0.0) / 100.0 for r in steady(120)]
    rates[SPIKE_AT] = 30.0
    raw = np.cumsum(np.array(rates) * 60.0).tolist()
    counter = {"__name__": "http_requests_total", "job": "api"}
    # When scored
    report = harness.service().detect_batch([("1", record([(counter, raw)]))])
    # Then the episode is about the rate
    opened = report.events[0].anomaly
    assert opened.scored_as == "rate"
    assert opened.value == pytest.approx(30.0)
    assert opened.start_ms == T0 + SPIKE_AT * STEP_MS


def test_histogram_buckets_are_skipped(harness):
    # Given a histogram's bucket and count series
    bucket = {"__name__": "latency_seconds_bucket", "le": "0.5"}
    count = {"__name__": "latency_seconds_count"}
    # When scored
    counted = np.cumsum(steady(10)).tolist()  # a counter only grows
    report = harness.service().detect_batch([("1", record([(bucket, counted), (count, counted)]))])
    # Then only the count is watched, scored as a rate (its first sample starts the rate)
    assert report.buckets_skipped == 1
    assert report.series_watched == 1
    assert report.samples_scored == 9
    assert len(harness.states.items) == 1


def test_series_beyond_the_tenant_cap_are_counted_not_scored(harness):
    # Given a cap of 2 series per tenant and a record of 3 series of one tenant and 1 of another
    series = [({"__name__": "m", "i": str(i)}, steady(10)) for i in range(3)]
    service = harness.service(max_series_per_tenant=2)
    # When scored
    report = service.detect_batch([("1", record(series)), ("2", record(series[:1], tenant="globex"))])
    # Then two of acme's series and globex's one are watched; the third is only counted
    assert report.series_watched == 3
    assert report.series_skipped == 1
    assert sorted(tenant for tenant, _ in harness.states.items) == ["acme", "acme", "globex"]
    # ... and the same two stay watched in later batches
    later = service.detect_batch([("3", record([(labels, steady(2)) for labels, _ in series], first=10))])
    assert later.series_watched == 2
    assert later.series_skipped == 1


def test_an_undecodable_record_is_its_own_failure(harness):
    # Given a batch of a good record and garbage
    batch = [("1", record([(LATENCY, steady(10))])), ("2", b"not a record")]
    # When scored
    report = harness.service().detect_batch(batch)
    # Then the garbage is a failure and the good record is scored
    assert isinstance(report.outcomes[1], RecordFormatError)
    assert report.samples_scored == 10


def test_state_expires_two_weeks_after_the_last_update(harness):
    # Given a scored batch
    harness.service().detect_batch([("1", record([(LATENCY, steady(10))]))])
    # Then its states expire 14 days after the (fixed) clock
    assert harness.states.expires == [NOW // 1000 + 14 * 86_400]


def test_detectors_beyond_the_cache_bound_are_read_back_and_continue(harness):
    # Given a service keeping one warm detector, and two series
    other = {"__name__": "queue_depth", "job": "api"}
    service = harness.service(max_cached_series=1)
    service.detect_batch([("1", record([(LATENCY, steady(20)), (other, steady(20, seed=2))]))])
    # When the next batch brings both series again
    report = service.detect_batch([("2", record([(LATENCY, steady(5)), (other, steady(5))], first=20))])
    # Then the evicted one is read back from the store and continues where it stopped
    assert len(harness.states.reads) == 2
    assert len(harness.states.reads[1]) == 1
    assert report.late_samples == 0
    assert report.samples_scored == 10
    # ... and the one leaving the cache now is stored at once; the warm one waits for its checkpoint
    counts = sorted(SeriesState.decode(s).detector.count for s in harness.states.items.values())
    assert counts == [20, 25]


def test_tenants_with_the_same_series_keep_separate_detectors_and_episodes(harness):
    # Given the same label set under two tenants, spiking only under one
    batch = [("1", record([(LATENCY, spiky())])), ("2", record([(LATENCY, steady(120))], tenant="globex"))]
    # When scored
    report = harness.service().detect_batch(batch)
    # Then each tenant has its own state, and only acme's series has an episode
    assert sorted(tenant for tenant, _ in harness.states.items) == ["acme", "globex"]
    assert {e.anomaly.tenant for e in report.events} == {"acme"}


@pytest.mark.parametrize(("normal_after", "resolved"), [(3, False), (4, True)])
def test_an_episode_closes_after_more_normal_samples_than_the_gap(harness, normal_after, resolved):
    # Given a spike followed by ``normal_after`` normal samples, with a gap of 3
    values = steady(SPIKE_AT + 1 + normal_after)
    values[SPIKE_AT] = 200.0
    # When scored
    report = harness.service(episode_gap=3).detect_batch([("1", record([(LATENCY, values)]))])
    # Then the episode is resolved only once the fourth normal sample arrives
    expected = [DETECTED, RESOLVED] if resolved else [DETECTED]
    assert [e.detail_type for e in report.events] == expected


def stored_count(harness: Harness) -> int:
    [stored] = harness.states.items.values()
    return SeriesState.decode(stored).detector.count


def test_a_warm_state_is_written_back_once_per_checkpoint_interval(harness):
    # Given a series scored once (a new series is stored at once)
    service = harness.service(checkpoint_interval_s=300)
    service.detect_batch([("1", record([(LATENCY, steady(20))]))])
    # When more samples come a minute later
    harness.now += 60
    service.detect_batch([("2", record([(LATENCY, steady(5))], first=20))])
    # Then the stored state waits for the checkpoint
    assert stored_count(harness) == 20
    # ... which the next batch after five minutes writes
    harness.now += 300
    service.detect_batch([("3", record([(LATENCY, steady(5))], first=25))])
    assert stored_count(harness) == 30


def test_an_episode_opening_is_written_at_once(harness):
    # Given a warm series, stored recently
    values = spiky(SPIKE_AT + 1)
    service = harness.service(checkpoint_interval_s=300)
    service.detect_batch([("1", record([(LATENCY, values[:SPIKE_AT])]))])
    # When its next batch, a few seconds later, opens an episode
    harness.now += 5
    service.detect_batch([("2", record([(LATENCY, values[SPIKE_AT:])], first=SPIKE_AT))])
    # Then the state holding the open episode is stored without waiting for the checkpoint
    [stored] = harness.states.items.values()
    assert SeriesState.decode(stored).episode is not None


def test_the_function_config_carries_every_detector_setting():
    # Given the detector function's configuration with every tuning value changed
    names = {f.name for f in fields(DetectorSettings)}
    env = {"NOVACRON_DETECTOR_STATE_TABLE": "s", "NOVACRON_ANOMALIES_TABLE": "a", "NOVACRON_EVENT_BUS": "b"}
    env["NOVACRON_SETTINGS_TABLE"] = "t"
    env.update({f"NOVACRON_{name.upper()}": "1" for name in names})
    # When it is read and turned into the service's settings, as the handler does
    config = DetectorConfig.from_env(env)
    settings = DetectorSettings(**config.model_dump(include=names))
    # Then every setting comes from the configuration
    assert {name: getattr(settings, name) for name in names} == dict.fromkeys(names, 1)


def test_a_rare_requests_counter_alarms_on_a_burst_not_on_one_request(harness):
    # Given a counter of a rarely used endpoint: no request for 100 minutes, then one now and then,
    # then a burst of 30 in a minute
    rng = np.random.default_rng(5)
    counts = np.cumsum([1.0 if i == 100 or (i > 100 and rng.random() < 0.1) else 0.0 for i in range(150)])
    counts[140:] += 30.0
    counter = {"__name__": "http_requests_total", "job": "api", "code": "503"}
    # When the service scores it
    report = harness.service().detect_batch([("1", record([(counter, counts.tolist())]))])
    # Then the single requests are its noise: only the burst opens an episode, scored as a rate
    opened = [e.anomaly for e in report.events if e.detail_type == DETECTED]
    assert [a.start_ms for a in opened] == [T0 + 140 * STEP_MS]
    assert opened[0].scored_as == "rate"
    # ... and its band, like the rate itself, does not reach below zero
    assert opened[0].lower == 0.0
