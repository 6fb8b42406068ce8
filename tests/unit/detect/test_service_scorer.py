"""The per-minute service scorer: episodes with drivers, the shadow's record, suppression, idempotence."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pytest

from novacron.detect.episodes import Episode, EpisodeTracker
from novacron.detect.events import DETECTED, RESOLVED, Anomaly, AnomalyEvent, Severity, Status, episode_id
from novacron.detect.policy import DetectionPolicy
from novacron.detect.registry import ModelRegistry
from novacron.detect.service import SeriesKey, StoredState
from novacron.detect.service_scorer import (
    SCORED_AS,
    SERVICE_METRIC,
    ScorerSettings,
    ScoringReport,
    ServiceScorer,
    ServiceState,
    episode_minutes,
    opens_episode,
    service_series_id,
)
from novacron.detect.trainer import Trainer, TrainerSettings
from tests.builders import service_reader
from tests.fakes import MemoryModelStore

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
NOW = 1_790_000_000_000 // HOUR_MS * HOUR_MS
FAULT = (NOW + 30 * MINUTE_MS, NOW + 50 * MINUTE_MS)


class MemoryStates:
    def __init__(self) -> None:
        self.items: dict[SeriesKey, StoredState] = {}

    def get_states(self, keys: Sequence[SeriesKey]) -> dict[SeriesKey, StoredState]:
        return {k: self.items[k] for k in keys if k in self.items}

    def put_states(self, states: dict[SeriesKey, StoredState], expires_at: int) -> None:
        self.items.update(states)


class MemoryAnomalies:
    def __init__(self) -> None:
        self.items: dict[str, Anomaly] = {}

    def put_anomalies(self, anomalies: Sequence[Anomaly], expires_at: int) -> None:
        self.items.update({a.id: a for a in anomalies})


class MemoryEvents:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[AnomalyEvent] = []
        self.fail = fail

    def put_events(self, events: Sequence[AnomalyEvent]) -> None:
        if self.fail:
            raise OSError("bus unavailable")
        self.events.extend(events)


class Policies:
    def __init__(self, policy: DetectionPolicy) -> None:
        self.policy = policy

    def detection(self, tenant: str) -> DetectionPolicy:
        return self.policy


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def reader():
    """api (healthy) and payment (errors and latency up from NOW+30m to NOW+50m), 6 h of history before NOW."""
    return service_reader({"api": None, "payment": FAULT}, NOW - 6 * HOUR_MS, NOW + 3 * HOUR_MS)


@pytest.fixture
def store(reader) -> MemoryModelStore:
    """Both services' v1 models, trained on the history before NOW."""
    store = MemoryModelStore()
    Trainer(ModelRegistry(store), _NoFeedback(), TrainerSettings(window_s=6 * 3600), clock_ms=lambda: NOW).train_tenant(
        "acme", reader
    )
    return store


class _NoFeedback:
    def list_anomalies(self, *args: object, **kwargs: object) -> list[Anomaly]:
        return []

    def latest_feedback(self, *args: object, **kwargs: object) -> dict[str, object]:
        return {}


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def parts():
    return MemoryStates(), MemoryAnomalies(), MemoryEvents()


def scorer(store, parts, clock, policy: DetectionPolicy | None = None) -> ServiceScorer:
    states, anomalies, events = parts
    policies = Policies(policy) if policy is not None else None
    return ServiceScorer(ModelRegistry(store), states, anomalies, events, ScorerSettings(), policies, clock)


def run_minutes(service_scorer: ServiceScorer, clock: Clock, reader, minutes: int) -> None:
    """Run the scorer once a minute for ``minutes`` minutes (30 s past each minute)."""
    for _ in range(minutes):
        clock.now_ms += MINUTE_MS
        service_scorer.score_tenant("acme", reader)


def test_a_service_fault_opens_and_closes_one_episode_with_drivers(store, parts, clock, reader):
    # Given both services' models and a fault on payment from +30 to +50 minutes
    _, anomalies, events = parts
    # When the scorer runs every minute for 80 minutes
    run_minutes(scorer(store, parts, clock), clock, reader, 80)
    # Then payment had one episode, announced then resolved, and api none
    assert [e.detail_type for e in events.events] == [DETECTED, RESOLVED]
    [anomaly] = anomalies.items.values()
    assert anomaly.labels == (("service", "payment"),)
    assert (anomaly.metric, anomaly.scored_as, anomaly.methods) == (SERVICE_METRIC, SCORED_AS, ("isolation_forest",))
    assert anomaly.status is Status.RESOLVED
    assert FAULT[0] <= anomaly.start_ms <= FAULT[0] + 5 * MINUTE_MS
    assert FAULT[1] - MINUTE_MS <= anomaly.end_ms <= FAULT[1] + 6 * MINUTE_MS
    assert anomaly.id == episode_id("acme", service_series_id("payment"), anomaly.start_ms)
    # ... explained by the features that moved, strongest first, at a critical peak
    assert {d.feature for d in anomaly.drivers[:2]} == {"error ratio", "latency mean (http_request_duration_seconds)"}
    assert anomaly.drivers[0].contribution >= anomaly.drivers[-1].contribution
    assert anomaly.score >= 0.95
    assert str(anomaly.severity) == "critical"
    assert anomaly.detector_version == "isolation-forest-v1"


def test_a_minute_is_scored_once_even_when_runs_repeat(store, parts, clock, reader):
    # Given the scorer ran through the fault
    run_minutes(scorer(store, parts, clock), clock, reader, 40)
    _, anomalies, events = parts
    before = (dict(anomalies.items), list(events.events))
    # When a fresh instance (a cold start) runs again at the same time
    scorer(store, parts, clock).score_tenant("acme", reader)
    # Then nothing new happens: the stored state has scored those minutes
    assert (anomalies.items, events.events) == before


def test_a_run_out_of_time_leaves_the_remaining_services_for_the_next_run(store, parts, clock, reader):
    # Given two services with models, and a run whose time runs out after the first service
    service_scorer = scorer(store, parts, clock)
    clock.now_ms += 10 * MINUTE_MS
    checks = iter([False, True])

    # When it runs
    report = service_scorer.score_tenant("acme", reader, out_of_time=lambda: next(checks))

    # Then one service is scored and the other deferred
    assert (report.services_scored, report.deferred) == (1, 1)
    assert report.counts()["ServicesDeferred"] == 1
    # ...and the next run, at the same minute with time to spare, scores the deferred one (the other has
    # no new minute)
    again = service_scorer.score_tenant("acme", reader)
    assert (again.services_scored, again.deferred) == (1, 0)
    assert again.minutes_scored == report.minutes_scored


def test_a_failed_run_is_retried_from_the_stored_state_with_the_same_episode_id(store, clock, reader):
    # Given a bus that fails on the minute the episode opens
    states, anomalies = MemoryStates(), MemoryAnomalies()
    failing = MemoryEvents(fail=True)
    service_scorer = ServiceScorer(ModelRegistry(store), states, anomalies, failing, clock_ms=clock)
    clock.now_ms = FAULT[0] - 5 * MINUTE_MS
    service_scorer.score_tenant("acme", reader)
    clock.now_ms = FAULT[0] + 5 * MINUTE_MS
    report = service_scorer.score_tenant("acme", reader)
    assert report.failures == 1
    # When the bus is back and the next run comes
    working = MemoryEvents()
    again = ServiceScorer(ModelRegistry(store), states, anomalies, working, clock_ms=clock)
    clock.now_ms += MINUTE_MS
    again.score_tenant("acme", reader)
    # Then the episode is announced once, with the id the failed run stored
    [event] = working.events
    assert event.anomaly.id in anomalies.items


def test_a_maintenance_window_suppresses_the_episode(store, parts, clock, reader):
    # Given a maintenance window on payment over the whole fault
    start = datetime.fromtimestamp(NOW / 1000, UTC).isoformat()
    end = datetime.fromtimestamp((NOW + 2 * HOUR_MS) / 1000, UTC).isoformat()
    policy = DetectionPolicy(
        version=1, maintenance=({"start": start, "end": end, "matchers": ('{service="payment"}',)},)
    )
    _, anomalies, events = parts
    # When the scorer runs through it
    run_minutes(scorer(store, parts, clock, policy), clock, reader, 80)
    # Then the episode is stored, marked suppressed, and no event went out
    [anomaly] = anomalies.items.values()
    assert anomaly.suppressed
    assert events.events == []


def test_a_service_the_policy_ignores_is_not_scored(store, parts, clock, reader):
    # Given a policy ignoring payment
    policy = DetectionPolicy(version=1, ignore=('{service="payment"}',))
    _, anomalies, _ = parts
    # When the scorer runs through the fault
    run_minutes(scorer(store, parts, clock, policy), clock, reader, 60)
    # Then nothing is found
    assert anomalies.items == {}


def test_the_shadow_is_scored_beside_and_its_record_reaches_the_registry(store, parts, clock, reader):
    # Given payment has v1 current and v2 in shadow
    Trainer(ModelRegistry(store), _NoFeedback(), TrainerSettings(window_s=6 * 3600), clock_ms=clock).train_tenant(
        "acme", reader
    )
    assert ModelRegistry(store).state("acme", "payment").shadow == 2
    states, anomalies, _ = parts
    # When the scorer runs for 20 minutes (through the start of the fault)
    clock.now_ms = FAULT[0] - 10 * MINUTE_MS
    run_minutes(scorer(store, parts, clock), clock, reader, 20)
    # Then the shadow's minutes and alarms are recorded, and copied into the registry every 15 minutes
    state = ServiceState.decode(states.items[("acme", "service/payment")])
    assert state.shadow is not None
    assert (state.shadow.version, state.shadow.minutes) == (2, 20)
    assert state.shadow.shadow_alarms > 0
    assert state.shadow.current_alarms > 0
    stats = ModelRegistry(store).state("acme", "payment").shadow_stats
    assert stats is not None
    assert (stats["version"], stats["minutes"]) == (2, 15)
    # ... while only the current model's episode exists
    assert {a.detector_version for a in anomalies.items.values()} == {"isolation-forest-v1"}


def test_a_state_of_another_format_is_refused():
    with pytest.raises(ValueError, match="not a service scorer state"):
        ServiceState.decode(StoredState(b"\x78\x9c", "{}"))


def test_state_round_trips_with_an_open_episode():
    # Given a state with an open episode
    anomaly = Anomaly(
        id="x", tenant="acme", series_id="service/api", labels=(("service", "api"),), metric=SERVICE_METRIC,
        status=Status.OPEN, start_ms=1, end_ms=None, peak_ms=1, value=0.7, expected=None, lower=None, upper=None,
        score=0.7, methods=("isolation_forest",), confidence=1.0, warming_up=False, severity=Severity.WARNING,
        scored_as=SCORED_AS, detector_version="isolation-forest-v1",
    )  # fmt: skip
    state = ServiceState(last_ms=5, episode=Episode(anomaly, 1, 2))
    # Then it decodes to the same
    again = ServiceState.decode(state.encode())
    assert again.last_ms == 5
    assert again.episode is not None
    assert (again.episode.anomaly.id, again.episode.quiet) == ("x", 2)


# --- opening an episode: two anomalous minutes in a row, or a critical one --------------------------------


@pytest.mark.parametrize(
    ("scores", "flagged"),
    [
        ([0.1, 0.7, 0.1, 0.1], []),  # a single non-critical minute raises nothing
        ([0.1, 0.7, 0.8, 0.1], [2]),  # known from the second anomalous minute in a row
        ([0.1, 0.97, 0.1, 0.1], [1]),  # a critical minute at once
        ([0.7, 0.1, 0.7, 0.1], []),  # two minutes that are not consecutive
        ([0.7, 0.7, 0.1, 0.1, 0.6, 0.1, 0.1, 0.1, 0.1, 0.6], [1, 4]),  # open until more than 3 quiet minutes
    ],
)
def test_episode_minutes_apply_the_opening_rule(scores, flagged):
    # Given per-minute scores / When the episode minutes are derived at threshold 0.5 and gap 3
    minutes = episode_minutes(np.asarray(scores), 0.5, gap=3)
    # Then only the minutes of confirmed episodes are flagged
    assert list(np.flatnonzero(minutes)) == flagged


def test_opens_episode_needs_a_previous_anomalous_minute_unless_critical():
    assert not opens_episode(0.7, 0.5, previous_anomalous=False)
    assert opens_episode(0.7, 0.5, previous_anomalous=True)
    assert opens_episode(0.95, 0.5, previous_anomalous=False)
    assert not opens_episode(0.4, 0.5, previous_anomalous=True)


def track(service_scorer: ServiceScorer, store, state: ServiceState, ts: int, score: float, report: ScoringReport):
    """Feed one minute's score to the scorer's episode tracking (api's model explains the row)."""
    model = ModelRegistry(store).model("acme", "api", 1)
    row = np.full(len(model.features), np.nan)
    row[0] = 1.0
    tracker = EpisodeTracker(service_scorer.settings.episode_gap, report)
    service_scorer._track(
        tracker, "acme", "api", (("service", "api"),), model, state, ts, score, row, ~np.isnan(row), 0.5, False
    )
    return tracker.touched, tracker.events


def test_a_single_minute_is_kept_pending_and_two_open_an_episode_from_the_first(store, parts, clock):
    # Given a scorer and an empty state
    service_scorer, state, report = scorer(store, parts, clock), ServiceState(), ScoringReport()
    # When one anomalous minute is seen
    touched, events = track(service_scorer, store, state, NOW, 0.7, report)
    # Then nothing is stored or sent; the minute waits, and survives the state's round trip
    assert (touched, events, state.episode) == ({}, [], None)
    state = ServiceState.decode(state.encode())
    assert state.pending is not None
    assert state.pending.start_ms == NOW
    # When the next minute is anomalous too
    touched, events = track(service_scorer, store, state, NOW + MINUTE_MS, 0.8, report)
    # Then one episode opens, starting at the first minute, peaking at the second, announced once
    assert [e.detail_type for e in events] == [DETECTED]
    anomaly = events[0].anomaly
    assert anomaly.id == episode_id("acme", "service/api", NOW)
    assert (anomaly.start_ms, anomaly.peak_ms, anomaly.samples, anomaly.score) == (NOW, NOW + MINUTE_MS, 2, 0.8)
    assert state.pending is None
    assert report.anomalies_opened == 1


def test_a_pending_minute_followed_by_a_normal_one_is_dropped(store, parts, clock):
    # Given a pending anomalous minute
    service_scorer, state, report = scorer(store, parts, clock), ServiceState(), ScoringReport()
    track(service_scorer, store, state, NOW, 0.7, report)
    # When a normal minute follows, then another anomalous one
    track(service_scorer, store, state, NOW + MINUTE_MS, 0.1, report)
    _, events = track(service_scorer, store, state, NOW + 2 * MINUTE_MS, 0.7, report)
    # Then no episode opened; only the latest minute is pending
    assert (events, state.episode, report.anomalies_opened) == ([], None, 0)
    assert state.pending is not None
    assert state.pending.start_ms == NOW + 2 * MINUTE_MS
