"""The streaming detector over the metrics stream: a batch of records in, verdicts and anomaly episodes out.

Records are decoded exactly as the writer decodes them (``novacron.records`` and the wire decoder,
labels checked by the same ``SeriesValidator``). Per tenant, each *watched* series' samples are scored
in time order by its :class:`~novacron.detect.stream.SeriesDetector`, whose state is loaded from the
state store once per batch (one batch read for the series not already warm in memory) and written back
after scoring: for a new series at once, for a warm one at most every ``checkpoint_interval_s`` (a
state is ~10 KB, ten write units; a cold start then misses at most that much recent history, never
the baseline), and at once when its anomaly episode opens or closes or it leaves the bounded cache.

- Watched series: those the tenant's detection policy (novacron.detect.policy) watches and does not
  ignore (every series by default), up to ``max_series_per_tenant`` per function instance; further
  series are counted, not scored. The policy also sets each series' sensitivity and seasonal model,
  and its maintenance windows suppress anomalies: stored, marked ``suppressed``, no event. Histogram
  ``_bucket`` series are never scored (a histogram's ``_count`` and ``_sum`` say enough, at a fraction
  of the series).
- Counters (``_total``, ``_count``, ``_sum``) are scored as their per-second rate between consecutive
  samples. A drop means the process restarted and its counter from zero: what it counted between the
  previous sample and the restart is lost, so the rate over that interval is not known (a restart
  would read as a dip). That interval is not scored; the next one is.
- Samples at or before the last one scored for the series are skipped: a retried or replayed record
  never teaches the detector a sample twice.
- Consecutive anomalous samples of a series, with up to ``episode_gap`` normal samples between them,
  form one episode (novacron.detect.episodes): ``AnomalyDetected`` when it opens, at its first anomalous
  sample, ``AnomalyResolved`` when it closes. The open episode lives in the series' state, so a cold
  start continues it rather than opening another.

Side effects happen in this order: anomaly records, events, then detector states. A failure raises
(the batch is retried) and drops the batch's series from the in-memory cache, so the retry starts from
the stored states and emits the same episode ids (consumers deduplicate on them).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from novacron.detect.episodes import DetectionPolicies, Episode, EpisodeTracker, tenant_policy
from novacron.detect.events import Anomaly, AnomalyEvent, Severity, Status, episode_id, severity_of
from novacron.detect.policy import DetectionPolicy, Seasonality, SeriesSettings
from novacron.detect.stream import STATE_VERSION, SeriesDetector, Verdict
from novacron.ingest.validate import SeriesValidator
from novacron.protocols.wire import WireFormatError, decode_series
from novacron.records import RecordFormatError, decode_record
from novacron.series import Labels, metric_name

log = logging.getLogger(__name__)

DETECTOR_VERSION = f"stream-v{STATE_VERSION}"
COUNTER_SUFFIXES = ("_total", "_count", "_sum")
SKIPPED_SUFFIXES = ("_bucket",)
DAY_S = 86_400

SeriesKey = tuple[str, str]  # (tenant, series id)


@dataclass(frozen=True)
class StoredState:
    """A series' state as the state store keeps it: the detector's bytes and the rest as JSON."""

    detector: bytes
    meta: str


class StateStore(Protocol):
    """Per-series detector state (the state table)."""

    def get_states(self, keys: Sequence[SeriesKey]) -> dict[SeriesKey, StoredState]:
        """The stored states of ``keys`` (missing keys are absent from the result)."""
        ...

    def put_states(self, states: dict[SeriesKey, StoredState], expires_at: int) -> None:
        """Store ``states`` (overwriting), to expire at ``expires_at`` (epoch seconds)."""
        ...


class AnomalyStore(Protocol):
    """Anomaly episodes (the anomalies table)."""

    def put_anomalies(self, anomalies: Sequence[Anomaly], expires_at: int) -> None:
        """Store ``anomalies`` idempotently (an episode's id and start are its key)."""
        ...


class EventSink(Protocol):
    """Where anomaly events go (the event bus)."""

    def put_events(self, events: Sequence[AnomalyEvent]) -> None:
        """Deliver every event, or raise."""
        ...


@dataclass(frozen=True)
class DetectorSettings:
    """How the service scores and what it keeps."""

    sensitivity: float = 0.5
    max_series_per_tenant: int = 5_000
    # Warm detectors kept in memory (a detector with a week of history is ~130 KB of Python objects);
    # the least recently used beyond this are dropped after a batch and read back from the store.
    max_cached_series: int = 3_000
    # A warm series' state is written back at most this often (0: after every batch that changed it),
    # and at once when its episode opens or closes or it leaves the cache. States are ~10 KB (10 write
    # units each): writing one per sample would cost far more than storing the samples themselves.
    checkpoint_interval_s: int = 300
    episode_gap: int = 3  # normal samples allowed inside an episode
    state_ttl_days: int = 14
    anomaly_ttl_days: int = 30


@dataclass
class SeriesState:
    """Everything kept per series between samples."""

    detector: SeriesDetector
    last_ms: int | None = None  # the newest sample taken (scored, or for a counter's first, remembered)
    last_raw: float | None = None  # counters: the raw value at ``last_ms``
    episode: Episode | None = None
    # Not stored: when the state was last written (or read), whether it has changed since, and whether
    # its episode opened or closed since (which is written at once, so a cold start does not repeat it).
    written_at: float | None = None
    dirty: bool = False
    episode_turned: bool = False

    def encode(self) -> StoredState:
        """The stored form."""
        episode = None if self.episode is None else self.episode.to_json()
        meta = {"last_ms": self.last_ms, "last_raw": self.last_raw, "episode": episode}
        return StoredState(self.detector.to_bytes(), json.dumps(meta, separators=(",", ":")))

    @classmethod
    def decode(cls, stored: StoredState) -> SeriesState:
        """The inverse of :meth:`encode`; ValueError when the state is unreadable."""
        meta = json.loads(stored.meta)
        episode = Episode.from_json(meta["episode"]) if meta.get("episode") is not None else None
        return cls(SeriesDetector.from_bytes(stored.detector), meta.get("last_ms"), meta.get("last_raw"), episode)


@dataclass
class RecordStats:
    """What one record contributed."""

    samples: int = 0
    invalid_series: int = 0


@dataclass
class BatchReport:
    """The outcome of a batch: one per record (stats, or the exception that makes it a failure) and totals."""

    outcomes: list[RecordStats | Exception]
    samples_scored: int = 0
    series_watched: int = 0
    series_skipped: int = 0  # beyond the per-tenant cap
    series_ignored: int = 0  # not watched by the tenant's detection policy
    buckets_skipped: int = 0  # histogram buckets, never scored
    late_samples: int = 0  # at or before the series' last sample: replays, out-of-order
    counter_resets: int = 0  # counter samples after a restart: the interval's rate is unknown, not scored
    anomalies_opened: int = 0
    anomalies_resolved: int = 0
    anomalies_suppressed: int = 0  # opened in a maintenance window: stored, no event
    events: list[AnomalyEvent] = field(default_factory=list)

    def counts(self) -> dict[str, float]:
        """The totals, named as metrics."""
        return {
            "SamplesScored": self.samples_scored,
            "SeriesWatched": self.series_watched,
            "SeriesSkipped": self.series_skipped,
            "SeriesIgnored": self.series_ignored,
            "BucketSeriesSkipped": self.buckets_skipped,
            "LateSamples": self.late_samples,
            "CounterResets": self.counter_resets,
            "AnomaliesOpened": self.anomalies_opened,
            "AnomaliesResolved": self.anomalies_resolved,
            "AnomaliesSuppressed": self.anomalies_suppressed,
        }


@dataclass
class _Series:
    """The samples of one series gathered from a batch."""

    labels: Labels
    times: list[npt.NDArray[np.int64]] = field(default_factory=list)  # ms timestamps, one array per record
    values: list[npt.NDArray[np.float64]] = field(default_factory=list)


def is_counter(metric: str) -> bool:
    """Whether ``metric`` is scored as a rate (Prometheus counter naming)."""
    return metric.endswith(COUNTER_SUFFIXES)


class DetectionService:
    """Scores the metrics stream, keeping per-series detectors warm between batches."""

    def __init__(
        self,
        states: StateStore,
        anomalies: AnomalyStore,
        events: EventSink,
        settings: DetectorSettings | None = None,
        validator: SeriesValidator | None = None,
        clock: Callable[[], float] = time.time,
        policies: DetectionPolicies | None = None,
    ) -> None:
        self.states = states
        self.anomalies = anomalies
        self.events = events
        self.settings = settings or DetectorSettings()
        self.validator = validator or SeriesValidator()
        self._clock = clock
        self.policies = policies
        self._cache: OrderedDict[SeriesKey, SeriesState] = OrderedDict()
        self._watched: dict[str, set[str]] = {}

    def detect_batch(self, records: Sequence[tuple[str, bytes]]) -> BatchReport:
        """Score a batch of (sequence number, data) records; raise if storing the results fails."""
        report = BatchReport(outcomes=[RecordStats() for _ in records])
        gathered = self._gather(records, report)
        policies = {tenant: self._policy(tenant) for tenant in sorted({tenant for tenant, _ in gathered})}
        watched = self._admit(gathered, policies, report)
        now = self._clock()
        self._load([key for key in watched if key not in self._cache], now)
        try:
            tracker = self._score(watched, gathered, policies, report)
            for key in watched:
                self._cache.move_to_end(key)
            # The least recently used beyond the bound leave the cache once their state is stored.
            evicted = list(itertools.islice(self._cache, max(0, len(self._cache) - self.settings.max_cached_series)))
            due = {key: self._cache[key] for key in [*watched, *evicted] if self._due(self._cache[key], now)}
            due.update({key: self._cache[key] for key in evicted if self._cache[key].dirty})
            self._persist(due, tracker, now)
            report.events.extend(tracker.events)
        except BaseException:
            # The cached detectors learnt samples whose results were not stored: start over from the table
            # (which may miss the samples of the last checkpoint interval: a little history, no episode).
            for key in watched:
                self._cache.pop(key, None)
            raise
        for key in evicted:
            del self._cache[key]
        return report

    def _due(self, state: SeriesState, now: float) -> bool:
        """Whether a series' state is to be written now."""
        if not state.dirty:
            return False
        if state.episode_turned or state.written_at is None:
            return True
        return now - state.written_at >= self.settings.checkpoint_interval_s

    def _gather(self, records: Sequence[tuple[str, bytes]], report: BatchReport) -> dict[SeriesKey, _Series]:
        """Decode the records and group their samples by series; undecodable records become failures."""
        gathered: dict[SeriesKey, _Series] = {}
        for i, (_, data) in enumerate(records):
            try:
                record = decode_record(data)
                decoded = decode_series(record.contents)
            except (RecordFormatError, WireFormatError) as exc:
                report.outcomes[i] = exc
                continue
            stats = report.outcomes[i]
            assert isinstance(stats, RecordStats)
            offsets = decoded.offsets.tolist()
            for s, label_bytes in enumerate(decoded.label_bytes):
                verdict = self.validator.check(label_bytes)
                if not verdict.valid:
                    stats.invalid_series += 1
                    continue
                lo, hi = offsets[s], offsets[s + 1]
                if hi == lo:
                    continue
                series = gathered.setdefault((record.tenant, verdict.series_id), _Series(verdict.labels))
                series.times.append(decoded.timestamps[lo:hi])
                series.values.append(decoded.values[lo:hi])
                stats.samples += hi - lo
        return gathered

    def _policy(self, tenant: str) -> DetectionPolicy:
        """The tenant's detection policy; until one is stored, this function's configured sensitivity."""
        return tenant_policy(self.policies, tenant, self.settings.sensitivity)

    def _admit(
        self, gathered: dict[SeriesKey, _Series], policies: dict[str, DetectionPolicy], report: BatchReport
    ) -> dict[SeriesKey, SeriesSettings]:
        """The batch's series that are watched, with their settings, admitting new ones up to each tenant's cap."""
        watched: dict[SeriesKey, SeriesSettings] = {}
        cap = self.settings.max_series_per_tenant
        for key in sorted(gathered):
            tenant, sid = key
            if metric_name(gathered[key].labels).endswith(SKIPPED_SUFFIXES):
                report.buckets_skipped += 1
                continue
            settings = policies[tenant].settings_for(gathered[key].labels)
            if settings is None:
                report.series_ignored += 1
                continue
            known = self._watched.setdefault(tenant, set())
            if sid not in known:
                if len(known) >= cap:
                    report.series_skipped += 1
                    continue
                known.add(sid)
            watched[key] = settings
        report.series_watched = len(watched)
        if report.series_skipped:
            log.warning("%d series beyond the per-tenant cap of %d were not scored", report.series_skipped, cap)
        return watched

    def _load(self, keys: list[SeriesKey], now: float) -> None:
        """Bring the stored states of ``keys`` into the cache (fresh detectors for unknown series)."""
        stored = self.states.get_states(keys) if keys else {}
        for key in keys:
            state = None
            if key in stored:
                try:
                    state = SeriesState.decode(stored[key])
                    state.written_at = now
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("unreadable detector state of %s/%s, starting afresh: %s", key[0], key[1], exc)
            self._cache[key] = state or SeriesState(SeriesDetector(self.settings.sensitivity))

    def _score(
        self,
        watched: dict[SeriesKey, SeriesSettings],
        gathered: dict[SeriesKey, _Series],
        policies: dict[str, DetectionPolicy],
        report: BatchReport,
    ) -> EpisodeTracker:
        """Run each watched series' samples through its detector (marking the states changed); what the
        episodes did."""
        tracker = EpisodeTracker(self.settings.episode_gap, report)
        for key, settings in watched.items():
            series, state = gathered[key], self._cache[key]
            policy = policies[key[0]]
            # The tenant's policy decides, whatever the stored state was scored with.
            state.detector.sensitivity = settings.sensitivity
            forced = None if settings.seasonality is Seasonality.AUTO else str(settings.seasonality)
            state.detector.profile.force(forced)
            metric = metric_name(series.labels)
            counter = is_counter(metric)
            times = np.concatenate(series.times)
            values = np.concatenate(series.values)
            # Time order; of duplicate timestamps the last received wins, as in the writer.
            order = np.lexsort((np.arange(times.size), times))
            times, values = times[order], values[order]
            keep = np.append(times[1:] != times[:-1], True)
            for ts, value in zip(times[keep].tolist(), values[keep].tolist(), strict=True):
                if not np.isfinite(value):
                    continue  # staleness markers and NaN samples carry nothing to score
                if state.last_ms is not None and ts <= state.last_ms:
                    report.late_samples += 1
                    continue
                reset = counter and state.last_raw is not None and value < state.last_raw
                scored = self._rate(state, ts, value) if counter else (value, 0.0)
                state.last_ms = ts
                state.dirty = True
                if scored is None:
                    report.counter_resets += reset
                    continue
                verdict = state.detector.observe(ts, *scored)
                report.samples_scored += 1
                quiet = bool(policy.maintenance) and policy.suppressed(series.labels, ts)
                self._track(tracker, key, series.labels, metric, "rate" if counter else "value", state, verdict, quiet)
        return tracker

    @staticmethod
    def _rate(state: SeriesState, ts: int, value: float) -> tuple[float, float] | None:
        """A counter's per-second rate since its previous sample, and the noise floor it is scored with
        (None for the first sample, and after a restart: the rate over that interval is not known).

        A counting counter's rate moves by one event per interval as a matter of course (a rarely used
        endpoint's rate is 0, then one request): that much is never an anomaly on its own.
        """
        previous_ms, previous = state.last_ms, state.last_raw
        state.last_raw = value
        if previous_ms is None or previous is None or value < previous:
            return None
        increase = value - previous
        interval_s = (ts - previous_ms) / 1000.0
        counting = abs(increase - round(increase)) < 1e-6
        return increase / interval_s, (1.0 / interval_s if counting else 0.0)

    def _track(
        self,
        tracker: EpisodeTracker,
        key: SeriesKey,
        labels: Labels,
        metric: str,
        scored_as: str,
        state: SeriesState,
        verdict: Verdict,
        suppressed: bool,
    ) -> None:
        """Open (at its first anomalous sample), extend or close the series' episode after one verdict;
        ``suppressed``: the sample is in a maintenance window. An episode that opens, closes or is
        announced late is written at once (``episode_turned``), so that a cold start does not repeat it."""
        episode = state.episode
        if verdict.anomaly and episode is None:
            anomaly = self._opened(key, labels, metric, scored_as, verdict, suppressed)
            state.episode, state.episode_turned = tracker.open(anomaly, verdict.timestamp_ms), True
        elif verdict.anomaly and episode is not None:
            explain = partial(_explanation, verdict, scored_as)
            if tracker.extend(episode, verdict.timestamp_ms, verdict.score, suppressed, explain):
                state.episode_turned = True
        elif episode is not None and tracker.normal(episode):
            state.episode, state.episode_turned = None, True

    @staticmethod
    def _opened(
        key: SeriesKey, labels: Labels, metric: str, scored_as: str, verdict: Verdict, suppressed: bool
    ) -> Anomaly:
        tenant, sid = key
        return Anomaly(
            id=episode_id(tenant, sid, verdict.timestamp_ms),
            tenant=tenant,
            series_id=sid,
            labels=labels,
            metric=metric,
            status=Status.OPEN,
            start_ms=verdict.timestamp_ms,
            end_ms=None,
            scored_as=scored_as,
            detector_version=DETECTOR_VERSION,
            suppressed=suppressed,
            **_explanation(verdict, scored_as),
        )

    def _persist(self, due: dict[SeriesKey, SeriesState], tracker: EpisodeTracker, now: float) -> None:
        if tracker.touched:
            expires_at = int(now) + self.settings.anomaly_ttl_days * DAY_S
            self.anomalies.put_anomalies(list(tracker.touched.values()), expires_at)
        if tracker.events:
            self.events.put_events(tracker.events)
        if due:
            stored = {key: state.encode() for key, state in due.items()}
            self.states.put_states(stored, int(now) + self.settings.state_ttl_days * DAY_S)
        for state in due.values():
            state.written_at, state.dirty, state.episode_turned = now, False, False


def _explanation(verdict: Verdict, scored_as: str) -> dict[str, Any]:
    """The fields of an :class:`Anomaly` that one verdict explains (a counter's rate is never below 0)."""

    def bound(x: float | None) -> float | None:
        return max(x, 0.0) if x is not None and scored_as == "rate" else x

    return {
        "peak_ms": verdict.timestamp_ms,
        "value": verdict.value,
        "expected": bound(verdict.expected),
        "lower": bound(verdict.lower),
        "upper": bound(verdict.upper),
        "score": round(verdict.score, 6),
        "methods": verdict.methods,
        "confidence": verdict.confidence,
        "warming_up": verdict.warming_up,
        # Without a baseline yet, no anomaly is critical: the confidence says how little is known.
        "severity": Severity.WARNING if verdict.warming_up else severity_of(verdict.score),
    }
