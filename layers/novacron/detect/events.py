"""The shapes the detector hands on: anomaly episodes (stored, and sent as events) and their JSON.

An *episode* is a run of anomalous samples of one series; it opens with an ``AnomalyDetected`` event
and closes with an ``AnomalyResolved`` event, both carrying the whole :class:`Anomaly` so that a
consumer can explain it without reading anything else. Its id is derived from the tenant, the series
and the start, so a retried batch produces the same id and consumers deduplicate on it.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from novacron.series import Labels

SOURCE = "novacron.detector"
DETECTED = "AnomalyDetected"
RESOLVED = "AnomalyResolved"
CRITICAL_SCORE = 0.95


class Status(StrEnum):
    """Whether an episode is still going on."""

    OPEN = "open"
    RESOLVED = "resolved"


class Severity(StrEnum):
    """How bad an episode is, from its strongest score."""

    WARNING = "warning"
    CRITICAL = "critical"


def severity_of(score: float) -> Severity:
    """Critical from :data:`CRITICAL_SCORE` on; every other anomaly is a warning."""
    return Severity.CRITICAL if score >= CRITICAL_SCORE else Severity.WARNING


def episode_id(tenant: str, series_id: str, start_ms: int) -> str:
    """The deterministic id of the episode of ``series_id`` starting at ``start_ms``."""
    joined = f"{tenant}\x00{series_id}\x00{start_ms}".encode()
    return hashlib.blake2b(joined, digest_size=12).hexdigest()


@dataclass(frozen=True)
class Driver:
    """One feature's part in a multivariate (Isolation Forest) score: its value, what the model
    expected (the training median) and its share of the score (the shares of an anomaly sum to 1)."""

    feature: str
    value: float
    expected: float
    contribution: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Anomaly:
    """One anomaly episode of one series, explained by its strongest sample so far.

    ``value``, ``expected``, ``lower``/``upper`` (the band), ``score``, ``methods``, ``confidence``
    and ``warming_up`` are those of the episode's highest-scoring sample (at ``peak_ms``); ``scored_as``
    says whether the raw value or the per-second rate of a counter was scored.
    """

    id: str
    tenant: str
    series_id: str
    labels: Labels
    metric: str
    status: Status
    start_ms: int
    end_ms: int | None  # the last anomalous sample of a resolved episode
    peak_ms: int
    value: float
    expected: float | None
    lower: float | None
    upper: float | None
    score: float
    methods: tuple[str, ...]
    confidence: float
    warming_up: bool
    severity: Severity
    scored_as: str  # "value" or "rate"
    detector_version: str
    samples: int = 1  # anomalous samples in the episode
    # Opened in a maintenance window (novacron.detect.policy): stored, but no event went to the bus.
    suppressed: bool = False
    # Multivariate (per-service) anomalies: the features that drove the score, strongest first.
    drivers: tuple[Driver, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (labels as an object)."""
        data = asdict(self)
        data["labels"] = dict(self.labels)
        data["methods"] = list(self.methods)
        data["status"] = str(self.status)
        data["severity"] = str(self.severity)
        data["drivers"] = [d.to_json() for d in self.drivers]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Anomaly:
        """The inverse of :meth:`to_json`."""
        values = dict(data)
        values["labels"] = tuple(sorted(values["labels"].items()))
        values["methods"] = tuple(values["methods"])
        values["status"] = Status(values["status"])
        values["severity"] = Severity(values["severity"])
        values["drivers"] = tuple(Driver(**d) for d in values.get("drivers", ()))
        return cls(**values)


class FeedbackVerdict(StrEnum):
    """What a user says of an anomaly episode."""

    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"


@dataclass(frozen=True)
class Feedback:
    """A user's verdict on one anomaly episode: who (an API key's id, never the key) and when."""

    anomaly_id: str
    verdict: FeedbackVerdict
    comment: str
    by: str  # the API key id
    at: int  # epoch seconds

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {**asdict(self), "verdict": str(self.verdict)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Feedback:
        """The inverse of :meth:`to_json`."""
        return cls(**{**data, "verdict": FeedbackVerdict(data["verdict"])})


@dataclass(frozen=True)
class AnomalyEvent:
    """An event for the bus: an episode opened (``AnomalyDetected``) or closed (``AnomalyResolved``)."""

    detail_type: str
    anomaly: Anomaly

    @property
    def source(self) -> str:
        """The EventBridge source of every detector event."""
        return SOURCE

    def detail(self) -> dict[str, Any]:
        """The event's detail: the anomaly."""
        return self.anomaly.to_json()
