"""The per-minute scorer of services with a model: service-level anomaly episodes, and the shadow's record.

Every run (every 60 s), for each service of a tenant whose registry (novacron.detect.registry) has a
current model, the minutes since the last one scored -- up to ``now - delay_s`` (the writer's lag), at
most ``max_catchup_minutes`` of them -- are evaluated: each feature's PromQL as a short range query at
step 60 s through the query engine, one row per minute. The current model scores each row:

- A minute is anomalous when its calibrated score reaches ``1 - sensitivity`` (the tenant's detection
  policy: its settings for the label set ``{service="<name>"}``; a service that policy does not watch
  is not scored). Consecutive anomalous minutes, with up to ``episode_gap`` normal minutes between them,
  form one episode, kept as for single series (novacron.detect.episodes): ``AnomalyDetected`` when it
  opens (at its second anomalous minute in a row, or a critical one: :func:`opens_episode`; it starts at
  the first), ``AnomalyResolved`` when it closes; ids are ``episode_id(tenant, "service/<name>", start)``, so a
  retried run sends the same ids. A maintenance window covering ``{service="<name>"}`` suppresses it
  (stored, marked ``suppressed``, no event).
- The episode is an :class:`~novacron.detect.events.Anomaly` with ``metric``
  :data:`SERVICE_METRIC`, ``labels`` ``{service: <name>}``, ``series_id`` ``service/<name>``,
  ``scored_as`` ``"service"``, ``methods`` ``("isolation_forest",)``, ``value`` the peak minute's
  score (no expected value or band: the explanation is ``drivers``, the features that drove the score,
  from ServiceModel.explain), ``confidence`` the share of the model's features that had a value that
  minute, and ``detector_version`` ``isolation-forest-v<model version>``.

The shadow model, if any, scores the same rows; it never opens an episode or sends an event. Its record
(minutes scored, the minutes each model alarmed, the minutes they agreed) is kept in the scorer's state
and copied into the registry's ``shadow_stats`` every ``shadow_stats_every`` minutes, where the trainer
and ``GET /api/v1/admin/models`` read it.

State per service (last minute scored, open episode, shadow record) lives in the detector-state table
under the series id ``service/<name>`` (per-series states use hex ids: no clash). Side effects happen
in the order anomalies, events, states: a failed run is retried from the stored state, re-sending the
same episode ids at most.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from novacron.detect.episodes import DetectionPolicies, Episode, EpisodeTracker, tenant_policy, with_sample
from novacron.detect.events import CRITICAL_SCORE, Anomaly, AnomalyEvent, Status, episode_id, severity_of
from novacron.detect.features import feature_matrix
from novacron.detect.policy import DetectionPolicy
from novacron.detect.registry import ModelRegistry, RegistryConflict, RegistryState
from novacron.detect.service import AnomalyStore, EventSink, StateStore, StoredState
from novacron.detect.service_model import ServiceModel
from novacron.detect.trainer import MINUTE_MS, service_snapshot
from novacron.promql import Engine
from novacron.series import Labels, SeriesReader

log = logging.getLogger(__name__)

SERVICE_METRIC = "novacron_service_anomaly_score"
SCORED_AS = "service"
METHODS = ("isolation_forest",)
SERIES_PREFIX = "service/"
STATE_FORMAT = b"service-scorer-v1"  # the state item's detector bytes: which format its meta is in
DAY_S = 86_400


@dataclass(frozen=True)
class ScorerSettings:
    """How the scorer scores and what it keeps."""

    sensitivity: float = 0.5  # when the tenant has no detection policy
    delay_s: int = 30  # minutes are scored once the writer has had this long to store them
    max_catchup_minutes: int = 15
    episode_gap: int = 3  # normal minutes allowed inside an episode
    shadow_stats_every: int = 15  # minutes between copies of the shadow record into the registry
    state_ttl_days: int = 14
    anomaly_ttl_days: int = 30
    label: str = "service"


@dataclass
class ShadowRecord:
    """How the shadow model did beside the current one since it was installed."""

    version: int
    minutes: int = 0
    current_alarms: int = 0
    shadow_alarms: int = 0
    agreement: int = 0  # minutes both models called the same
    copied_at: int = 0  # ``minutes`` when last copied into the registry

    def to_json(self) -> dict[str, Any]:
        """The registry's ``shadow_stats``."""
        share = self.agreement / self.minutes if self.minutes else None
        return {
            "version": self.version,
            "minutes": self.minutes,
            "current_alarms": self.current_alarms,
            "shadow_alarms": self.shadow_alarms,
            "agreement": self.agreement,
            "agreement_share": share,
        }


@dataclass
class ServiceState:
    """Everything kept per service between runs."""

    last_ms: int | None = None  # the last minute scored
    episode: Episode | None = None
    shadow: ShadowRecord | None = None
    pending: Anomaly | None = None  # a single anomalous minute, not (yet) an episode: see opens_episode

    def encode(self) -> StoredState:
        """The stored form."""
        episode = None if self.episode is None else self.episode.to_json()
        shadow = None if self.shadow is None else self.shadow.__dict__
        pending = None if self.pending is None else self.pending.to_json()
        meta = {"last_ms": self.last_ms, "episode": episode, "shadow": shadow, "pending": pending}
        return StoredState(STATE_FORMAT, json.dumps(meta, separators=(",", ":")))

    @classmethod
    def decode(cls, stored: StoredState) -> ServiceState:
        """The inverse of :meth:`encode` (ValueError for another format)."""
        if stored.detector != STATE_FORMAT:
            raise ValueError(f"not a service scorer state: {stored.detector[:32]!r}")
        meta = json.loads(stored.meta)
        episode = Episode.from_json(meta["episode"]) if meta.get("episode") is not None else None
        shadow = ShadowRecord(**meta["shadow"]) if meta.get("shadow") is not None else None
        pending = Anomaly.from_json(meta["pending"]) if meta.get("pending") is not None else None
        return cls(meta.get("last_ms"), episode, shadow, pending)


@dataclass
class ScoringReport:
    """What a run did."""

    services_scored: int = 0
    minutes_scored: int = 0
    shadow_minutes: int = 0
    anomalies_opened: int = 0
    anomalies_resolved: int = 0
    anomalies_suppressed: int = 0
    failures: int = 0
    deferred: int = 0  # services left for the next run (out of time)
    events: list[AnomalyEvent] = field(default_factory=list)

    def add(self, other: ScoringReport) -> None:
        """Add another run's (another tenant's) figures to these."""
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)

    def counts(self) -> dict[str, float]:
        """The totals, named as metrics."""
        return {
            "ServicesScored": self.services_scored,
            "ServiceMinutesScored": self.minutes_scored,
            "ShadowMinutesScored": self.shadow_minutes,
            "ServiceAnomaliesOpened": self.anomalies_opened,
            "ServiceAnomaliesResolved": self.anomalies_resolved,
            "ServiceAnomaliesSuppressed": self.anomalies_suppressed,
            "ServiceScoringFailures": self.failures,
            "ServicesDeferred": self.deferred,
        }


def opens_episode(score: float, threshold: float, previous_anomalous: bool) -> bool:
    """Whether a minute opens an episode (when none is open): it is anomalous (``score >= threshold``) and
    either critical (:data:`~novacron.detect.events.CRITICAL_SCORE`) or the second anomalous minute in a
    row. A single non-critical minute is left out: the normal minutes that reach the threshold (about
    one in 10,000 at the default sensitivity, see novacron.detect.service_model) are mostly alone, while
    a fault holds for minutes."""
    return score >= threshold and (score >= CRITICAL_SCORE or previous_anomalous)


def episode_minutes(scores: npt.NDArray[np.float64], threshold: float, gap: int) -> npt.NDArray[np.bool_]:
    """The minutes (consecutive scores) at which an episode is known, under the scorer's rule: from the
    minute :func:`opens_episode` opens it (the first of two anomalous minutes is not flagged: no one has
    heard of it yet), every anomalous minute until more than ``gap`` normal ones in a row close it."""
    flags = np.zeros(len(scores), dtype=bool)
    is_open, quiet, previous = False, 0, False
    for i, score in enumerate(np.asarray(scores, dtype=np.float64).tolist()):
        anomalous = score >= threshold
        if is_open and anomalous:
            flags[i], quiet = True, 0
        elif is_open:
            quiet += 1
            is_open = quiet <= gap
        elif opens_episode(score, threshold, previous):
            flags[i], is_open, quiet = True, True, 0
        previous = anomalous
    return flags


def service_series_id(service: str) -> str:
    """The series id of a service's episodes and state."""
    return SERIES_PREFIX + service


class ServiceScorer:
    """Scores each service with a model, minute by minute (see the module docstring)."""

    def __init__(
        self,
        registry: ModelRegistry,
        states: StateStore,
        anomalies: AnomalyStore,
        events: EventSink,
        settings: ScorerSettings | None = None,
        policies: DetectionPolicies | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.registry = registry
        self.states = states
        self.anomalies = anomalies
        self.events = events
        self.settings = settings or ScorerSettings()
        self.policies = policies
        self.clock_ms = clock_ms

    def score_tenant(
        self, tenant: str, reader: SeriesReader, out_of_time: Callable[[], bool] = lambda: False
    ) -> ScoringReport:
        """Score every service of ``tenant`` that has a current model, until ``out_of_time`` (the others
        go on from their state next run); one failing service does not stop the others (it is logged and
        counted, and retried from its state next run)."""
        report = ScoringReport()
        policy = tenant_policy(self.policies, tenant, self.settings.sensitivity)
        end_ms = (self.clock_ms() - self.settings.delay_s * 1000) // MINUTE_MS * MINUTE_MS
        for service in self.registry.services(tenant):
            if out_of_time():
                log.info("%s: out of time; the remaining services wait for the next run", tenant)
                report.deferred += 1
                continue
            try:
                self.score_service(tenant, service, reader, policy, end_ms, report)
            except Exception:
                log.exception("%s/%s: service scoring failed", tenant, service)
                report.failures += 1
        return report

    def score_service(
        self,
        tenant: str,
        service: str,
        reader: SeriesReader,
        policy: DetectionPolicy,
        end_ms: int,
        report: ScoringReport,
    ) -> None:
        """Score the service's minutes up to ``end_ms``, then store episodes, events and state."""
        registry = self.registry.state(tenant, service)
        labels: Labels = ((self.settings.label, service),)
        settings = policy.settings_for(labels)
        if registry.current is None or settings is None:
            return
        key = (tenant, service_series_id(service))
        stored = self.states.get_states([key]).get(key)
        state = ServiceState.decode(stored) if stored is not None else ServiceState()
        start_ms = end_ms if state.last_ms is None else state.last_ms + MINUTE_MS
        start_ms = max(start_ms, end_ms - (self.settings.max_catchup_minutes - 1) * MINUTE_MS)
        if start_ms > end_ms:
            return
        current = self.registry.model(tenant, service, registry.current)
        shadow = self.registry.model(tenant, service, registry.shadow) if registry.shadow is not None else None
        # Both models' features, once each (by name: a model picks its columns by feature name).
        features = list({f.name: f for m in (current, shadow) if m is not None for f in m.features}.values())
        names = [f.name for f in features]
        snapshot = service_snapshot(reader, features, service, start_ms, end_ms, self.settings.label)
        times, matrix = feature_matrix(Engine(snapshot), features, start_ms, end_ms, MINUTE_MS)
        current_x = current.columns_from(matrix, names)
        present = ~np.isnan(current_x)
        rows = present.any(axis=1)  # a minute without any of the features' data is not scored
        threshold = 1.0 - settings.sensitivity
        scores = np.zeros(times.size)
        if rows.any():
            scores[rows] = current.score(current_x[rows], times[rows])
        shadow_scores = None
        if shadow is not None and rows.any():
            shadow_scores = np.zeros(times.size)
            shadow_scores[rows] = shadow.score(shadow.columns_from(matrix, names)[rows], times[rows])
            if state.shadow is None or state.shadow.version != shadow.version:
                state.shadow = ShadowRecord(shadow.version)
        elif shadow is None:
            state.shadow = None
        tracker = EpisodeTracker(self.settings.episode_gap, report)
        for i in np.flatnonzero(rows).tolist():
            ts, score = int(times[i]), float(scores[i])
            anomalous = score >= threshold
            self._track(
                tracker, tenant, service, labels, current, state, ts, score, current_x[i], present[i], threshold,
                policy.suppressed(labels, ts),
            )  # fmt: skip
            if shadow_scores is not None and state.shadow is not None:
                shadow_anomalous = bool(shadow_scores[i] >= threshold)
                state.shadow.minutes += 1
                state.shadow.current_alarms += int(anomalous)
                state.shadow.shadow_alarms += int(shadow_anomalous)
                state.shadow.agreement += int(anomalous == shadow_anomalous)
                report.shadow_minutes += 1
        report.minutes_scored += int(rows.sum())
        report.services_scored += 1
        state.last_ms = end_ms
        now_s = self.clock_ms() // 1000
        if tracker.touched:
            expires_at = now_s + self.settings.anomaly_ttl_days * DAY_S
            self.anomalies.put_anomalies(list(tracker.touched.values()), expires_at)
        if tracker.events:
            self.events.put_events(tracker.events)
            report.events.extend(tracker.events)
        self._copy_shadow_record(registry, state)
        self.states.put_states({key: state.encode()}, now_s + self.settings.state_ttl_days * DAY_S)

    def _copy_shadow_record(self, registry: RegistryState, state: ServiceState) -> None:
        """Copy the shadow's record into the registry every ``shadow_stats_every`` minutes (best effort: a
        trainer changing the registry meanwhile wins, and the record is copied on a later run)."""
        record = state.shadow
        if record is None or registry.shadow != record.version:
            return
        if record.minutes - record.copied_at < self.settings.shadow_stats_every:
            return
        try:
            self.registry.save(replace(registry, shadow_stats=record.to_json()))
        except RegistryConflict:
            log.info("%s/%s: registry changed meanwhile; shadow stats copied later", registry.tenant, registry.service)
            return
        record.copied_at = record.minutes

    def _track(
        self,
        tracker: EpisodeTracker,
        tenant: str,
        service: str,
        labels: Labels,
        model: ServiceModel,
        state: ServiceState,
        ts: int,
        score: float,
        row: npt.NDArray[np.float64],
        present: npt.NDArray[np.bool_],
        threshold: float,
        suppressed: bool,
    ) -> None:
        """Open, extend or close the service's episode after one minute's score (opening: opens_episode;
        a single anomalous minute waits in ``state.pending`` for the next)."""
        anomalous = score >= threshold
        if not anomalous:
            state.pending = None
            if state.episode is not None and tracker.normal(state.episode):
                state.episode = None
            return

        def explained() -> dict[str, Any]:  # the peak's explanation (explain() runs only for a new peak)
            return {
                "peak_ms": ts,
                "value": round(score, 6),
                "score": round(score, 6),
                "confidence": round(float(present.mean()), 3),
                "severity": severity_of(score),
                "detector_version": f"isolation-forest-v{model.version}",
                "drivers": model.explain(row, ts),
            }

        if state.episode is not None:
            tracker.extend(state.episode, ts, score, suppressed, explained)
            return
        pending, state.pending = state.pending, None
        previous = pending is not None and pending.start_ms == ts - MINUTE_MS
        if pending is not None and previous:  # the episode started at the pending minute
            anomaly = replace(with_sample(pending, score, explained), suppressed=suppressed)
        else:
            sid = service_series_id(service)
            anomaly = Anomaly(
                id=episode_id(tenant, sid, ts),
                tenant=tenant,
                series_id=sid,
                labels=labels,
                metric=SERVICE_METRIC,
                status=Status.OPEN,
                start_ms=ts,
                end_ms=None,
                expected=None,
                lower=None,
                upper=None,
                methods=METHODS,
                warming_up=False,
                scored_as=SCORED_AS,
                suppressed=suppressed,
                **explained(),
            )
        if opens_episode(score, threshold, previous):
            state.episode = tracker.open(anomaly, ts)
        else:
            state.pending = anomaly  # one minute: an episode only if the next one is anomalous too
