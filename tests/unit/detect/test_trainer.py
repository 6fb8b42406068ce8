"""The trainer over an in-memory estate: initial promotion, shadows, judged promotions and rejections."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

import numpy as np
import pytest

from novacron.detect.events import Anomaly, Feedback, FeedbackVerdict, Severity, Status
from novacron.detect.features import ServiceFeature, feature_matrix, service_features
from novacron.detect.registry import ModelRegistry, ModelSummary, RegistryState
from novacron.detect.service_model import ServiceModel, train_model
from novacron.detect.trainer import (
    Trainer,
    TrainerSettings,
    first_days_seen,
    install,
    service_metrics,
    service_snapshot,
)
from novacron.promql import Engine
from tests.builders import service_reader
from tests.fakes import MemoryModelStore

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
NOW = 1_790_000_000_000 // MINUTE_MS * MINUTE_MS
SETTINGS = TrainerSettings(window_s=6 * 3600, shadow_trial_s=3 * 3600)


class FakeFeedback:
    """Episodes and verdicts, as the anomalies table answers them."""

    def __init__(self) -> None:
        self.episodes: list[Anomaly] = []
        self.verdicts: dict[str, Feedback] = {}

    def add(self, service: str, start_ms: int, end_ms: int, verdict: FeedbackVerdict) -> None:
        anomaly = Anomaly(
            id=f"ep{len(self.episodes)}", tenant="acme", series_id=f"service/{service}",
            labels=(("service", service),), metric="novacron_service_anomaly_score", status=Status.RESOLVED,
            start_ms=start_ms, end_ms=end_ms, peak_ms=start_ms, value=0.9, expected=None, lower=None, upper=None,
            score=0.9, methods=("isolation_forest",), confidence=1.0, warming_up=False, severity=Severity.WARNING,
            scored_as="service", detector_version="isolation-forest-v1",
        )  # fmt: skip
        self.episodes.append(anomaly)
        self.verdicts[anomaly.id] = Feedback(anomaly.id, verdict, "", "key1", 0)

    def list_anomalies(
        self, tenant: str, start_ms: int, end_ms: int, limit: int = 100, newest_first: bool = False
    ) -> list[Anomaly]:
        return [a for a in self.episodes if a.tenant == tenant and start_ms <= a.start_ms <= end_ms][:limit]

    def latest_feedback(self, tenant: str, anomaly_ids: Collection[str]) -> dict[str, Feedback]:
        return {i: f for i, f in self.verdicts.items() if i in anomaly_ids}


class Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def reader():
    """Two services with 20 hours of history (ending 12 h after NOW); payment has a fault before NOW."""
    return service_reader(
        {"api": None, "payment": (NOW - 2 * HOUR_MS, NOW - HOUR_MS)}, NOW - 8 * HOUR_MS, NOW + 12 * HOUR_MS
    )


@pytest.fixture
def store() -> MemoryModelStore:
    return MemoryModelStore()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def feedback() -> FakeFeedback:
    return FakeFeedback()


@pytest.fixture
def trainer(store, clock, feedback) -> Trainer:
    return Trainer(ModelRegistry(store), feedback, SETTINGS, clock_ms=clock)


def actions(store: MemoryModelStore, service: str) -> list[tuple[str, int]]:
    return [(e.action, e.version) for e in ModelRegistry(store).state("acme", service).log]


def test_the_first_model_of_each_service_becomes_current_at_once(trainer, reader, store):
    # Given services with hours of history and no models
    # When the trainer runs
    report = trainer.train_tenant("acme", reader)
    # Then each service has v1 as its current model, logged as an initial promotion
    assert [(o.service, o.outcome, o.version) for o in report.outcomes] == [
        ("api", "trained", 1),
        ("payment", "trained", 1),
    ]
    for service in ("api", "payment"):
        state = ModelRegistry(store).state("acme", service)
        assert (state.current, state.shadow, state.next_version) == (1, None, 2)
        assert actions(store, service) == [("trained", 1), ("promoted", 1)]
        assert state.log[1].reason.startswith("initial")
    assert report.counts()["ModelsTrained"] == 2
    # ... with the service's features, from what the index knows of it
    assert ModelRegistry(store).state("acme", "api").models[1].features == (
        "request rate", "error ratio", "latency mean (http_request_duration_seconds)", "memory",
    )  # fmt: skip


def test_the_next_model_runs_in_shadow_and_waits_for_its_trial(trainer, reader, store, clock):
    # Given v1 is current
    trainer.train_tenant("acme", reader)
    # When the trainer runs an hour later, and again an hour after that
    clock.now_ms += HOUR_MS
    trainer.train_tenant("acme", reader)
    clock.now_ms += HOUR_MS
    report = trainer.train_tenant("acme", reader)
    # Then v2 is installed as the shadow, and the run during its trial trains nothing
    state = ModelRegistry(store).state("acme", "api")
    assert (state.current, state.shadow, state.shadow_since_ms) == (1, 2, NOW + HOUR_MS)
    assert actions(store, "api")[-1] == ("shadowed", 2)
    assert report.outcomes[0].outcome == "skipped"
    assert "on trial" in report.outcomes[0].reason


def test_a_shadow_whose_trial_is_over_is_judged_and_logged_with_figures(trainer, reader, store, clock):
    # Given v1 current and v2 in shadow for longer than the trial
    trainer.train_tenant("acme", reader)
    clock.now_ms += HOUR_MS
    trainer.train_tenant("acme", reader)
    clock.now_ms += 4 * HOUR_MS
    # When the trainer runs again
    report = trainer.train_tenant("acme", reader)
    # Then v2 is promoted (v1 retired) or rejected, with the comparison's figures, and v3 is the new shadow
    log = ModelRegistry(store).state("acme", "api").log
    judged = [e for e in log if e.version == 2 and e.action in ("promoted", "rejected")]
    assert len(judged) == 1
    assert {"current", "candidate", "trial_rows"} <= set(judged[0].figures)
    assert judged[0].figures["trial_rows"] == 4 * 60 + 1
    assert judged[0].reason
    state = ModelRegistry(store).state("acme", "api")
    assert state.shadow == 3
    assert state.current == (2 if judged[0].action == "promoted" else 1)
    assert set(state.models) == {state.current, 3}
    assert report.outcomes[0].actions[-1] == "shadowed"


def test_install_promotes_a_better_shadow_and_retires_the_old_model():
    # Given v1 current and v2 in shadow since long ago, and a comparison in v2's favour
    state = RegistryState("acme", "api", current=1, shadow=2, next_version=4, shadow_since_ms=0)
    model = _stub_model(3)
    # When v3 is installed
    installed, entries = install(state, model, 10_000, 5_000, lambda c, s: (True, "f1 0.9 >= 0.5", {"f1": 0.9}))
    # Then v2 is promoted, v1 retired, v3 shadowed
    assert [(e.action, e.version) for e in entries] == [
        ("trained", 3),
        ("promoted", 2),
        ("retired", 1),
        ("shadowed", 3),
    ]
    assert (installed.current, installed.shadow, installed.shadow_since_ms) == (2, 3, 10_000)
    assert entries[1].figures == {"f1": 0.9}
    assert isinstance(installed.models[3], ModelSummary)


def test_install_rejects_a_worse_shadow_and_keeps_the_current_model():
    # Given v1 current and v2 in shadow since long ago, and a comparison against v2
    state = RegistryState("acme", "api", current=1, shadow=2, next_version=4, shadow_since_ms=0)
    # When v3 is installed
    installed, entries = install(state, _stub_model(3), 10_000, 5_000, lambda c, s: (False, "more false alarms", {}))
    # Then v2 is rejected and v1 stays current
    assert [(e.action, e.version) for e in entries] == [("trained", 3), ("rejected", 2), ("shadowed", 3)]
    assert (installed.current, installed.shadow) == (1, 3)
    assert entries[1].reason == "more false alarms"


def test_too_little_history_is_a_skip_with_its_reason(store, clock, feedback):
    # Given a service with half an hour of data
    short = service_reader({"fresh": None}, NOW - 30 * MINUTE_MS, NOW)
    trainer = Trainer(ModelRegistry(store), feedback, SETTINGS, clock_ms=clock)
    # When the trainer runs
    [outcome] = trainer.train_tenant("acme", short).outcomes
    # Then nothing is stored and the reason says why
    assert outcome.outcome == "skipped"
    assert "usable rows" in outcome.reason
    assert store.objects == {}


def test_a_failing_service_does_not_stop_the_others(reader, clock, feedback):
    # Given a store that fails for api's objects
    class Failing(MemoryModelStore):
        def write(self, key, data, *, etag=None, create_only=False):
            if "/api/" in key:
                raise OSError("disk on fire")
            return super().write(key, data, etag=etag, create_only=create_only)

    store = Failing()
    trainer = Trainer(ModelRegistry(store), feedback, SETTINGS, clock_ms=clock)
    # When the trainer runs
    report = trainer.train_tenant("acme", reader)
    # Then api's failure is reported, and payment is trained
    assert [(o.service, o.outcome) for o in report.outcomes] == [("api", "failed"), ("payment", "trained")]
    assert "disk on fire" in report.outcomes[0].reason
    assert report.counts()["ServicesFailed"] == 1


def test_a_concurrent_trainer_makes_this_one_back_off(trainer, reader, store):
    # Given another trainer changes api's registry while this one trains
    registry = trainer.registry
    original = registry.state

    def racing_state(tenant, service):
        state = original(tenant, service)
        if service == "api" and state.etag is None:
            ModelRegistry(store).save(replace(state, next_version=5))
        return state

    registry.state = racing_state  # type: ignore[method-assign]
    # When this trainer runs
    report = trainer.train_tenant("acme", reader)
    # Then api is a conflict (nothing of ours installed) and payment goes on
    assert [(o.service, o.outcome) for o in report.outcomes] == [("api", "conflict"), ("payment", "trained")]
    assert original("acme", "api").current is None


def test_true_positive_feedback_keeps_the_anomaly_out_of_training(store, clock, reader):
    # Given payment's fault hour was confirmed as an anomaly by a user
    confirmed = FakeFeedback()
    confirmed.add("payment", NOW - 2 * HOUR_MS, NOW - HOUR_MS, FeedbackVerdict.TRUE_POSITIVE)
    with_labels = Trainer(ModelRegistry(store), confirmed, SETTINGS, clock_ms=clock)
    other = MemoryModelStore()
    without = Trainer(ModelRegistry(other), FakeFeedback(), SETTINGS, clock_ms=clock)
    # When both train
    with_labels.train_tenant("acme", reader)
    without.train_tenant("acme", reader)
    # Then the model trained with the feedback left the confirmed hour out
    kept = ModelRegistry(store).state("acme", "payment").models[1].points
    everything = ModelRegistry(other).state("acme", "payment").models[1].points
    assert everything - kept >= 55


def test_service_metrics_and_feature_matrix_come_from_the_reader(reader):
    # Given the estate
    metrics = service_metrics(reader, "api", NOW - HOUR_MS, NOW)
    # Then api's metrics carry their label names
    assert "code" in metrics["http_requests_total"]
    assert set(metrics) >= {"http_request_duration_seconds_sum", "process_resident_memory_bytes"}
    # And a matrix has one row per step and one column per feature, NaN where there is no data
    features = service_features("api", metrics)
    times, matrix = feature_matrix(Engine(reader), features, NOW - 10 * MINUTE_MS, NOW, MINUTE_MS)
    assert matrix.shape == (11, len(features))
    assert times[0] == NOW - 10 * MINUTE_MS
    assert matrix[:, 0] == pytest.approx(50.0, rel=0.2)  # request rate
    _, empty = feature_matrix(Engine(reader), features, NOW + 20 * HOUR_MS, NOW + 21 * HOUR_MS, MINUTE_MS)
    assert bool((empty != empty).all())


def _stub_model(version: int) -> ServiceModel:
    """A trained model of api with ``version`` (its content does not matter to install)."""
    rng = np.random.default_rng(0)
    feature = ServiceFeature("memory", "resource", "avg(m)")
    X = rng.normal(1.0, 0.1, (150, 1))  # noqa: N806
    times = np.arange(150, dtype=np.int64) * MINUTE_MS
    return train_model("acme", "api", [feature], times, X, version=version, now_ms=9_000_000, step_s=60)


def test_a_snapshot_reads_the_service_once_and_evaluates_like_the_reader(reader):
    # Given a reader counting its selects, and api's features
    class Counting:
        def __init__(self, inner):
            self.inner, self.selects = inner, 0

        def select(self, matchers, start_ms, end_ms):
            self.selects += 1
            return self.inner.select(matchers, start_ms, end_ms)

    counting = Counting(reader)
    features = service_features("api", service_metrics(reader, "api", NOW - HOUR_MS, NOW))
    # When the features are evaluated over a snapshot
    snapshot = service_snapshot(counting, features, "api", NOW - HOUR_MS, NOW)
    _, from_snapshot = feature_matrix(Engine(snapshot), features, NOW - HOUR_MS, NOW, MINUTE_MS)
    # Then the store was read once, and the matrix is the one the reader itself gives
    assert counting.selects == 1
    _, direct = feature_matrix(Engine(reader), features, NOW - HOUR_MS, NOW, MINUTE_MS)
    assert np.allclose(from_snapshot, direct, equal_nan=True)
    # ... holding the features' metrics of api only
    assert {dict(s)["service"] for s in snapshot.series([[]])} == {"api"}


def test_the_scorer_updating_shadow_stats_meanwhile_is_no_conflict(trainer, reader, store):
    # Given api has a current model, and the scorer copies shadow stats while the trainer trains
    trainer.train_tenant("acme", reader)
    registry = trainer.registry
    original = registry.state

    raced = []

    def racing_state(tenant, service):
        state = original(tenant, service)
        if service == "api" and not raced:  # right after the trainer's first read
            raced.append(ModelRegistry(store).save(replace(state, shadow_stats={"minutes": 15})))
        return state

    registry.state = racing_state  # type: ignore[method-assign]
    # When the trainer runs again
    report = trainer.train_tenant("acme", reader)
    # Then api's new model is installed as the shadow all the same
    assert report.outcomes[0].outcome == "trained"
    assert original("acme", "api").shadow == 2


def test_a_young_service_is_read_from_the_first_day_it_was_seen(reader):
    # Given services first seen 8 hours before NOW, and a week's window
    day_ms = 86_400_000
    week_ago = NOW - 7 * day_ms
    # When the first days seen are looked up
    first = first_days_seen(reader, "service", week_ago, NOW)
    # Then each service starts on the UTC day of its first samples, not a week ago
    assert first == {"api": (NOW - 8 * HOUR_MS) // day_ms * day_ms, "payment": (NOW - 8 * HOUR_MS) // day_ms * day_ms}
