"""A rule group's state between evaluations, as stored: its rules' alerts and the series they wrote.

Kept apart from the evaluator (:mod:`novacron.alert.evaluate`) so that what only reads or stores the state
(the alerting table, the notifier reading the Alertmanager configuration beside it) does not need the
PromQL parser the evaluator brings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from novacron.alert.gofmt import go_float_text
from novacron.series import Labels

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (FNV-1a 64 over sorted names and values), 16 hex digits."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
            h = ((h ^ _SEPARATOR) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def rfc3339(ms: int) -> str:
    """A time as Go's ``time.Time`` JSON (RFC 3339, fraction only when there is one)."""
    seconds, millis = divmod(ms, 1000)
    text = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{millis:03d}".rstrip("0") + "Z" if millis else f"{text}Z"


@dataclass
class Alert:
    """One alert instance of an alerting rule (one output series), as Prometheus tracks it."""

    labels: dict[str, str]
    annotations: dict[str, str]
    state: str  # "pending", "firing" or "inactive" (resolved, kept for RESOLVED_RETENTION_MS)
    active_at_ms: int
    value: float
    fired_at_ms: int | None = None
    resolved_at_ms: int | None = None
    keep_firing_since_ms: int | None = None

    @property
    def fingerprint(self) -> str:
        """The stable identity of the alert's label set."""
        return fingerprint(self.labels)

    def to_json(self) -> dict[str, Any]:
        """The alert as state (``from_json`` reads it back)."""
        out = dict(vars(self))
        out["value"] = go_float_text(self.value) if not math.isfinite(self.value) else self.value
        return out

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Alert:
        """An alert from ``to_json``'s output."""
        fields = dict(data)
        value = fields["value"]
        fields["value"] = float(value.replace("Inf", "inf")) if isinstance(value, str) else float(value)
        return Alert(**fields)

    def api_json(self) -> dict[str, Any]:
        """The alert as ``/api/v1/alerts`` lists it."""
        out: dict[str, Any] = {
            "labels": dict(sorted(self.labels.items())),
            "annotations": dict(sorted(self.annotations.items())),
            "state": self.state,
            "activeAt": rfc3339(self.active_at_ms),
            "value": go_float_text(self.value, "e"),
        }
        if self.keep_firing_since_ms is not None:
            out["keepFiringSince"] = rfc3339(self.keep_firing_since_ms)
        return out


@dataclass
class RuleState:
    """What a rule carries from one evaluation to the next."""

    health: str = "unknown"  # "ok", "err" or "unknown" (never evaluated)
    last_error: str = ""
    last_evaluation_ms: int | None = None
    evaluation_time_s: float = 0.0
    alerts: dict[str, Alert] = field(default_factory=dict)  # by fingerprint
    # The series the rule wrote last time, so that the ones it no longer writes get a staleness marker.
    series: list[Labels] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "health": self.health,
            "last_error": self.last_error,
            "last_evaluation_ms": self.last_evaluation_ms,
            "evaluation_time_s": self.evaluation_time_s,
            "alerts": {fp: a.to_json() for fp, a in self.alerts.items()},
            "series": [[list(p) for p in labels] for labels in self.series],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> RuleState:
        return RuleState(
            health=data["health"],
            last_error=data["last_error"],
            last_evaluation_ms=data["last_evaluation_ms"],
            evaluation_time_s=data["evaluation_time_s"],
            alerts={fp: Alert.from_json(a) for fp, a in data["alerts"].items()},
            series=[tuple((str(n), str(v)) for n, v in labels) for labels in data["series"]],
        )

    def rule_state(self) -> str:
        """The highest state of the rule's alerts (firing > pending > inactive)."""
        states = {a.state for a in self.alerts.values()}
        return "firing" if "firing" in states else "pending" if "pending" in states else "inactive"

    def active_alerts(self) -> list[Alert]:
        """Pending and firing alerts (not the resolved ones kept for notification)."""
        return sorted(
            (a for a in self.alerts.values() if a.resolved_at_ms is None), key=lambda a: sorted(a.labels.items())
        )


@dataclass
class GroupState:
    """A group's state between evaluations, by rule key (see ``rule_key``)."""

    rules: dict[str, RuleState] = field(default_factory=dict)
    last_evaluation_ms: int | None = None
    evaluation_time_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-able value; ``from_json`` restores the state."""
        return {
            "rules": {key: s.to_json() for key, s in self.rules.items()},
            "last_evaluation_ms": self.last_evaluation_ms,
            "evaluation_time_s": self.evaluation_time_s,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> GroupState:
        """The state ``to_json`` wrote."""
        return GroupState(
            {key: RuleState.from_json(s) for key, s in data["rules"].items()},
            data["last_evaluation_ms"],
            data["evaluation_time_s"],
        )
