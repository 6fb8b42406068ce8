"""What the series detector (novacron.detect.service) and the service scorer (novacron.detect.service_scorer)
share: the detection policy a tenant is scored with, and the bookkeeping of anomaly episodes.

An episode is a run of anomalous samples (of a series, or minutes of a service) with up to ``gap``
normal ones between them. An :class:`EpisodeTracker` applies one batch's (or run's) verdicts to the
episodes it is handed: it opens, extends and closes them, counts that in the caller's report, and
collects what is to be stored (each episode touched, by id) and sent (``AnomalyDetected`` when an
episode opens, ``AnomalyResolved`` when it closes). An episode opened in a maintenance window is
*suppressed*: stored, but not announced; if it is still anomalous after the window, it is news then and
``AnomalyDetected`` goes out at that sample. Its resolution is sent only if it was announced.

When an episode opens is the caller's rule (a series: its first anomalous sample; a service: see
novacron.detect.service_scorer.opens_episode); so is where the open episode is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from novacron.detect.events import DETECTED, RESOLVED, Anomaly, AnomalyEvent, Status
from novacron.detect.policy import DetectionPolicy, Settings

# The fields of an Anomaly that a new peak sample explains; a callable, so that costly explanations
# (a service model's drivers) are computed only for a sample that does become the peak.
Explanation = Callable[[], dict[str, Any]]


class DetectionPolicies(Protocol):
    """Tenants' detection policies (the settings table, cached)."""

    def detection(self, tenant: str) -> DetectionPolicy:
        """The tenant's policy (the defaults, version 0, when none is stored)."""
        ...


def tenant_policy(policies: DetectionPolicies | None, tenant: str, sensitivity: float) -> DetectionPolicy:
    """The policy ``tenant`` is scored with: its stored one, or until one is stored (no ``policies``, or
    version 0), the defaults at ``sensitivity`` (the function's configured one)."""
    policy = policies.detection(tenant) if policies is not None else None
    if policy is None or policy.version == 0:
        return DetectionPolicy(defaults=Settings(sensitivity=sensitivity))
    return policy


@dataclass
class Episode:
    """An open anomaly episode."""

    anomaly: Anomaly
    last_anomalous_ms: int
    quiet: int = 0  # normal samples since the last anomalous one

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (a detector state keeps its open episode in this form)."""
        return {"anomaly": self.anomaly.to_json(), "last_anomalous_ms": self.last_anomalous_ms, "quiet": self.quiet}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Episode:
        """The inverse of :meth:`to_json` (KeyError, ValueError or TypeError when it is not one)."""
        return cls(Anomaly.from_json(data["anomaly"]), int(data["last_anomalous_ms"]), int(data["quiet"]))


def with_sample(anomaly: Anomaly, score: float, explain: Explanation) -> Anomaly:
    """``anomaly`` with one more anomalous sample, scoring ``score``: explained by that sample when it
    scores higher than the peak so far."""
    if score > anomaly.score:
        anomaly = replace(anomaly, **explain())
    return replace(anomaly, samples=anomaly.samples + 1)


class EpisodeCounts(Protocol):
    """The figures of a report that the tracker keeps (novacron.detect.service.BatchReport,
    novacron.detect.service_scorer.ScoringReport)."""

    anomalies_opened: int
    anomalies_resolved: int
    anomalies_suppressed: int  # opened in a maintenance window: stored, not announced


class EpisodeTracker:
    """Opens, extends and closes the episodes of one batch (or run), counting into ``counts``;
    ``touched`` (by id) is what to store, ``events`` what to send, in that order."""

    def __init__(self, gap: int, counts: EpisodeCounts) -> None:
        self.gap = gap  # normal samples allowed inside an episode
        self.counts = counts
        self.touched: dict[str, Anomaly] = {}
        self.events: list[AnomalyEvent] = []

    def open(self, anomaly: Anomaly, last_anomalous_ms: int) -> Episode:
        """A new episode of ``anomaly`` (built by the caller, ``suppressed`` set when a maintenance window
        covers it), whose latest anomalous sample is at ``last_anomalous_ms``; announced unless suppressed."""
        self.counts.anomalies_opened += 1
        if anomaly.suppressed:
            self.counts.anomalies_suppressed += 1
        else:
            self.events.append(AnomalyEvent(DETECTED, anomaly))
        self.touched[anomaly.id] = anomaly
        return Episode(anomaly, last_anomalous_ms)

    def extend(self, episode: Episode, timestamp_ms: int, score: float, suppressed: bool, explain: Explanation) -> bool:
        """One more anomalous sample in ``episode`` (``suppressed``: in a maintenance window); True when
        that announces the episode (it opened suppressed, and this sample is outside the window)."""
        episode.anomaly = with_sample(episode.anomaly, score, explain)
        episode.last_anomalous_ms, episode.quiet = timestamp_ms, 0
        announced = episode.anomaly.suppressed and not suppressed
        if announced:
            episode.anomaly = replace(episode.anomaly, suppressed=False)
            self.events.append(AnomalyEvent(DETECTED, episode.anomaly))
        self.touched[episode.anomaly.id] = episode.anomaly
        return announced

    def normal(self, episode: Episode) -> bool:
        """One normal sample in ``episode``; True when it is more than ``gap`` in a row, which closes the
        episode (resolved, ending at its last anomalous sample): the caller drops it."""
        episode.quiet += 1
        if episode.quiet <= self.gap:
            return False
        resolved = replace(episode.anomaly, status=Status.RESOLVED, end_ms=episode.last_anomalous_ms)
        self.touched[resolved.id] = resolved
        if not resolved.suppressed:  # its opening was never announced: neither is its end
            self.events.append(AnomalyEvent(RESOLVED, resolved))
        self.counts.anomalies_resolved += 1
        return True
