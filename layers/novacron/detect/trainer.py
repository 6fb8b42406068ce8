"""The scheduled trainer of per-service models: tenant → services → features → matrix → model → shadow → promote.

Per tenant (the caller enumerates them, as the compactor does) and per service (the values of the
``service`` label seen in the series index over the last ``metrics_lookback_s``):

1. The service's metric names and their label names (from the index) give its features
   (novacron.detect.features.service_features); each feature's PromQL runs as a range query through the
   query engine over the training window (default 7 days, step 60 s) into one column of a matrix.
2. Users' feedback on the tenant's anomaly episodes in the window labels the rows (true positives are
   left out of training, confirmed-normal rows kept): novacron.detect.service_model.labels_from_feedback.
3. A model is trained (train_model); too little data is a skip with its reason, never an error.
4. It is installed through the registry (novacron.detect.registry), a compare-and-swap:

   - no current model: it becomes current at once (logged ``promoted``, reason "initial");
   - a shadow on trial for at least ``shadow_trial_s``: the shadow is compared with the current model on
     the trial period's rows and their labels (compare_models) and promoted (the old current retired) or
     rejected, logged with the figures; the new model becomes the shadow;
   - no shadow: the new model becomes the shadow;
   - a shadow still on trial: nothing is trained this run.

A failure of one service is logged and counted; the other services go on.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

from novacron.detect.episodes import DetectionPolicies, tenant_policy
from novacron.detect.events import Anomaly, Feedback
from novacron.detect.features import ServiceFeature, feature_matrix, service_features
from novacron.detect.registry import LogEntry, ModelRegistry, ModelSummary, RegistryConflict, RegistryState
from novacron.detect.service_model import ServiceModel, TrainingError, compare_models, labels_from_feedback, train_model
from novacron.promql import Engine
from novacron.query.memory_reader import InMemorySeriesReader
from novacron.series import METRIC_NAME, Matcher, SeriesReader

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
DAY_S = 86_400
DAY_MS = DAY_S * 1000
# Samples read before a range, for its first steps' rate windows and the engine's lookback.
SNAPSHOT_MARGIN_MS = 15 * MINUTE_MS
_SELECTED_METRIC = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")


@dataclass(frozen=True)
class TrainerSettings:
    """What the trainer reads and how it decides."""

    window_s: int = 7 * DAY_S  # training history
    step_s: int = 60
    # A shadow is compared with the current model once it has run this long (one training period).
    shadow_trial_s: int = 6 * 3600
    min_points: int = 120
    metrics_lookback_s: int = DAY_S  # services, and their metrics, seen this recently
    max_features: int = 12
    max_services: int = 200  # per tenant and run
    max_feedback_episodes: int = 5_000  # the newest episodes of the window looked at for feedback
    label: str = "service"
    sensitivity: float = 0.5  # when the tenant has no detection policy
    seed: int = 0


class FeedbackSource(Protocol):
    """Anomaly episodes and users' verdicts on them (the anomalies table)."""

    def list_anomalies(
        self, tenant: str, start_ms: int, end_ms: int, limit: int = 100, newest_first: bool = False
    ) -> list[Anomaly]:
        """The tenant's episodes that started within [start_ms, end_ms]."""
        ...

    def latest_feedback(self, tenant: str, anomaly_ids: Collection[str]) -> dict[str, Feedback]:
        """The latest verdict on each of ``anomaly_ids`` that has one."""
        ...


@dataclass(frozen=True)
class ServiceOutcome:
    """What one run did for one service."""

    tenant: str
    service: str
    outcome: str  # "trained", "skipped", "conflict" or "failed"
    reason: str
    version: int | None = None
    actions: tuple[str, ...] = ()  # the registry log's actions of this run


@dataclass
class TrainingReport:
    """The outcomes of a run."""

    outcomes: list[ServiceOutcome] = field(default_factory=list)

    def counts(self) -> dict[str, float]:
        """Totals, named as metrics."""

        def n(outcome: str) -> int:
            return sum(1 for o in self.outcomes if o.outcome == outcome)

        def acted(action: str) -> int:
            return sum(o.actions.count(action) for o in self.outcomes)

        return {
            "ModelsTrained": n("trained"),
            "ModelsPromoted": acted("promoted"),
            "ModelsRejected": acted("rejected"),
            "ServicesSkipped": n("skipped"),
            "ServicesFailed": n("failed") + n("conflict"),
        }


def service_metrics(
    reader: SeriesReader, service: str, start_ms: int, end_ms: int, label: str = "service"
) -> dict[str, frozenset[str]]:
    """The service's metric names → the label names seen on them (from the index)."""
    found: dict[str, set[str]] = {}
    for labels in reader.series([[Matcher(label, "=", service)]], start_ms, end_ms):
        names = {name for name, _ in labels}
        metric = dict(labels).get(METRIC_NAME, "")
        if metric:
            found.setdefault(metric, set()).update(names - {METRIC_NAME})
    return {metric: frozenset(names) for metric, names in found.items()}


def first_days_seen(reader: SeriesReader, label: str, start_ms: int, end_ms: int) -> dict[str, int]:
    """For each value of ``label`` seen in [start_ms, end_ms], the start of the first UTC day it was seen.

    One index read per day (the label's values), shared by every service of the tenant.
    """
    first: dict[str, int] = {}
    for day_ms in range(start_ms // DAY_MS * DAY_MS, end_ms + 1, DAY_MS):
        for value in reader.label_values(label, [], max(day_ms, start_ms), min(day_ms + DAY_MS - 1, end_ms)):
            first.setdefault(value, max(day_ms, start_ms))
    return first


def service_snapshot(
    reader: SeriesReader,
    features: Sequence[ServiceFeature],
    service: str,
    start_ms: int,
    end_ms: int,
    label: str = "service",
) -> InMemorySeriesReader:
    """The service's samples of the features' metrics over [start_ms - margin, end_ms], read with one select.

    Evaluating the features straight against the hot tier would read its index and blocks once per
    selector (two per ratio feature); a snapshot reads them once per service and evaluates in memory.
    The metrics are the names the features' selectors use (``name{...}``).
    """
    names = sorted({name for f in features for name in _SELECTED_METRIC.findall(f.expr)})
    snapshot = InMemorySeriesReader()
    if not names:
        return snapshot
    matchers = [Matcher(label, "=", service), Matcher(METRIC_NAME, "=~", "|".join(names))]
    for series in reader.select(matchers, start_ms - SNAPSHOT_MARGIN_MS, end_ms):
        snapshot.add(dict(series.labels), series.timestamps, series.values)
    return snapshot


def install(
    state: RegistryState,
    model: ServiceModel,
    now_ms: int,
    trial_ms: int,
    compare: Callable[[int, int], tuple[bool, str, dict[str, object]]],
) -> tuple[RegistryState, tuple[LogEntry, ...]]:
    """The registry after a newly trained ``model`` (version reserved in ``state``) is installed, and
    the log entries that say so.

    ``compare(current, shadow)`` judges a shadow whose trial is over: (promote, reason, figures).
    """
    version = model.version
    summaries = dict(state.models)
    summaries[version] = ModelSummary.of(model)
    entries = [
        LogEntry(
            now_ms,
            "trained",
            version,
            f"{model.points} points, {len(model.features)} features",
            {"points": model.points, "features": [f.name for f in model.features], "start_ms": model.start_ms},
        )
    ]
    current, shadow, since = state.current, state.shadow, state.shadow_since_ms
    if current is None:
        entries.append(LogEntry(now_ms, "promoted", version, "initial: no current model"))
        current, shadow, since = version, None, None
    else:
        if shadow is not None and since is not None and now_ms - since >= trial_ms:
            promote, reason, figures = compare(current, shadow)
            if promote:
                entries.append(LogEntry(now_ms, "promoted", shadow, reason, dict(figures)))
                entries.append(LogEntry(now_ms, "retired", current, f"replaced by v{shadow}"))
                current = shadow
            else:
                entries.append(LogEntry(now_ms, "rejected", shadow, reason, dict(figures)))
        elif shadow is not None:
            entries.append(LogEntry(now_ms, "retired", shadow, f"replaced by v{version} before its trial ended"))
        entries.append(LogEntry(now_ms, "shadowed", version, f"on trial beside v{current} for {trial_ms // 1000}s"))
        shadow, since = version, now_ms
    kept = {v: s for v, s in summaries.items() if v in (current, shadow)}
    installed = replace(state, current=current, shadow=shadow, shadow_since_ms=since, shadow_stats=None, models=kept)
    return installed.logged(*entries), tuple(entries)


class Trainer:
    """Trains, shadows and promotes the models of each service of a tenant."""

    def __init__(
        self,
        registry: ModelRegistry,
        feedback: FeedbackSource,
        settings: TrainerSettings | None = None,
        policies: DetectionPolicies | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.registry = registry
        self.feedback = feedback
        self.settings = settings or TrainerSettings()
        self.policies = policies
        self.clock_ms = clock_ms

    def train_tenant(
        self, tenant: str, reader: SeriesReader, out_of_time: Callable[[], bool] = lambda: False
    ) -> TrainingReport:
        """Train every service of ``tenant`` that is due (until ``out_of_time``)."""
        s = self.settings
        now_ms = self.clock_ms() // MINUTE_MS * MINUTE_MS
        report = TrainingReport()
        services = reader.label_values(s.label, [], now_ms - s.metrics_lookback_s * 1000, now_ms)
        first_seen = first_days_seen(reader, s.label, now_ms - s.window_s * 1000, now_ms)
        if len(services) > s.max_services:
            log.warning("%s: %d services, training the first %d", tenant, len(services), s.max_services)
        episodes: list[tuple[Anomaly, Feedback]] | None = None
        for service in services[: s.max_services]:
            if out_of_time():
                log.info("%s: out of time; the remaining services wait for the next run", tenant)
                break
            try:
                if episodes is None:
                    episodes = self._feedback(tenant, now_ms)
                outcome = self.train_service(tenant, service, reader, now_ms, episodes, first_seen.get(service))
            except RegistryConflict as exc:
                outcome = ServiceOutcome(tenant, service, "conflict", str(exc))
            except Exception as exc:  # one service's failure must not stop the others
                log.exception("%s/%s: training failed", tenant, service)
                outcome = ServiceOutcome(tenant, service, "failed", f"{type(exc).__name__}: {exc}")
            log.info(
                "model training %s/%s: %s (%s)%s",
                tenant,
                service,
                outcome.outcome,
                outcome.reason,
                f" v{outcome.version} {'/'.join(outcome.actions)}" if outcome.version else "",
            )
            report.outcomes.append(outcome)
        return report

    def train_service(
        self,
        tenant: str,
        service: str,
        reader: SeriesReader,
        now_ms: int,
        episodes: Sequence[tuple[Anomaly, Feedback]] = (),
        first_seen_ms: int | None = None,
    ) -> ServiceOutcome:
        """Train one service's next model and install it (see the module docstring)."""
        s = self.settings
        trial_ms = s.shadow_trial_s * 1000
        state = self.registry.state(tenant, service)
        on_trial_ms = now_ms - state.shadow_since_ms if state.shadow_since_ms is not None else None
        if state.shadow is not None and on_trial_ms is not None and on_trial_ms < trial_ms:
            left_min = (trial_ms - on_trial_ms) // MINUTE_MS
            return ServiceOutcome(tenant, service, "skipped", f"v{state.shadow} on trial for {left_min} more min")
        metrics = service_metrics(reader, service, now_ms - s.metrics_lookback_s * 1000, now_ms, s.label)
        features = service_features(service, metrics, label=s.label, max_features=s.max_features)
        if not features:
            return ServiceOutcome(tenant, service, "skipped", "no request, error, latency or resource metrics")
        step_ms = s.step_s * 1000
        # A service younger than the window is read from the first day it was seen, not over empty days.
        start_ms = max(now_ms - s.window_s * 1000, first_seen_ms or 0)
        # The shadow's features too: it is judged on the same rows (its feature set may differ).
        shadow = self.registry.model(tenant, service, state.shadow) if state.shadow is not None else None
        wanted = [*features, *(shadow.features if shadow is not None else ())]
        engine = Engine(service_snapshot(reader, wanted, service, start_ms, now_ms, s.label))
        cache: dict[str, npt.NDArray[np.float64]] = {}
        times, matrix = feature_matrix(engine, features, start_ms, now_ms, step_ms, cache)
        labels = labels_from_feedback(times, s.step_s, service, episodes, label=s.label)
        try:
            model = train_model(
                tenant,
                service,
                features,
                times,
                matrix,
                version=state.next_version,
                now_ms=now_ms,
                step_s=s.step_s,
                labels=labels,
                seed=s.seed,
                min_points=s.min_points,
            )
        except TrainingError as exc:
            return ServiceOutcome(tenant, service, "skipped", str(exc))
        # The version is taken (a CAS on the state read above: a concurrent trainer makes this a conflict)
        # before the model object is written, so that no two models ever share a number. The scorer's shadow
        # stats changing meanwhile is no conflict: the change is applied to the fresh registry.
        reserved = self._save_unless_moved(state, lambda fresh: replace(fresh, next_version=fresh.next_version + 1))
        self.registry.put_model(model)
        judged: dict[tuple[int, int], tuple[bool, str, dict[str, object]]] = {}

        def compare(current: int, shadow: int) -> tuple[bool, str, dict[str, object]]:
            if (current, shadow) not in judged:  # once, even when the install is retried
                judged[(current, shadow)] = self._compare(reserved, current, shadow, engine, times, labels, cache)
            return judged[(current, shadow)]

        entries: tuple[LogEntry, ...] = ()

        def installed(fresh: RegistryState) -> RegistryState:
            nonlocal entries
            after, entries = install(fresh, model, now_ms, trial_ms, compare)
            return after

        self._save_unless_moved(reserved, installed)
        actions = tuple(e.action for e in entries)
        return ServiceOutcome(tenant, service, "trained", f"{model.points} points", model.version, actions)

    def _save_unless_moved(
        self, state: RegistryState, change: Callable[[RegistryState], RegistryState], attempts: int = 3
    ) -> RegistryState:
        """Save ``change(state)``; when only the scorer's shadow stats changed meanwhile, apply the change to
        the fresh registry instead. RegistryConflict when the models moved (another trainer)."""
        for _ in range(attempts):
            try:
                return self.registry.save(change(state))
            except RegistryConflict:
                fresh = self.registry.state(state.tenant, state.service)
                if (fresh.current, fresh.shadow, fresh.next_version) != (
                    state.current,
                    state.shadow,
                    state.next_version,
                ):
                    raise
                state = fresh
        raise RegistryConflict(f"the registry of {state.tenant}/{state.service} keeps changing")

    def _compare(
        self,
        state: RegistryState,
        current: int,
        shadow: int,
        engine: Engine,
        times: npt.NDArray[np.int64],
        labels: npt.NDArray[np.int8],
        cache: dict[str, npt.NDArray[np.float64]],
    ) -> tuple[bool, str, dict[str, object]]:
        """Judge the shadow against the current model on the rows since the shadow was installed."""
        tenant, service = state.tenant, state.service
        since = state.shadow_since_ms if state.shadow_since_ms is not None else int(times[0])
        current_model = self.registry.model(tenant, service, current)
        shadow_model = self.registry.model(tenant, service, shadow)
        step_ms = int(times[1] - times[0]) if times.size > 1 else self.settings.step_s * 1000
        trial = times >= since
        _, matrix = feature_matrix(engine, shadow_model.features, int(times[0]), int(times[-1]), step_ms, cache)
        comparison = compare_models(
            current_model,
            shadow_model,
            matrix[trial],
            times[trial],
            labels[trial],
            sensitivity=self._sensitivity(tenant, service),
        )
        figures = {**comparison.to_json(), "trial_rows": int(trial.sum()), "shadow_stats": state.shadow_stats}
        return comparison.promote, comparison.reason, figures

    def _sensitivity(self, tenant: str, service: str) -> float:
        policy = tenant_policy(self.policies, tenant, self.settings.sensitivity)
        resolved = policy.settings_for(((self.settings.label, service),))
        return resolved.sensitivity if resolved is not None else self.settings.sensitivity

    def _feedback(self, tenant: str, now_ms: int) -> list[tuple[Anomaly, Feedback]]:
        """The tenant's episodes in the training window that users gave a verdict on, with the latest verdict."""
        start_ms = now_ms - self.settings.window_s * 1000
        anomalies = self.feedback.list_anomalies(
            tenant, start_ms, now_ms, limit=self.settings.max_feedback_episodes, newest_first=True
        )
        verdicts = self.feedback.latest_feedback(tenant, [a.id for a in anomalies])
        return [(a, verdicts[a.id]) for a in anomalies if a.id in verdicts]
