"""Incidents: alerts close in time on connected services, correlated into one incident to page once.

An alert (from a rule or from the anomaly detector, as an :class:`AlertSignal`) joins an open incident
when it started within ``window_s`` of the incident's last activity and it is *related* to it:

- it is on a service the incident already has, or shares an identifying label value (``instance``,
  ``pod``, ...) with one of its alerts; or
- its service is within ``max_hops`` of one of the incident's *root* services in the call graph
  (``Topology.distance``): one calls the other, directly or not (a caller feels its dependency's fault;
  a dependency failing under a caller may be the deeper cause, and becomes a root), or both call a
  common dependency (a fault there shows on both, even when it raises no alert of its own). The roots
  are the incident's services that call none of its other services: the callers above them are
  explained already, and relating to a caller would relate everything that caller calls.

Services that only share a caller are *not* related: two faults on ``payment`` and ``postgres`` at once
stay two incidents even though ``frontend`` calls both. An alert related to several incidents joins the
closest (then the oldest); nothing ever merges two incidents.

The suspected *origin* is the alerting service the others depend on: among the incident's services that
call none of the others (the most downstream), the one most of them depend on, earliest alert first on a tie.
The *priority* (0 to 100, P1 to P5) combines the worst severity, the blast radius (the incident's services and
every service depending on the origin, as a share of the estate), the tenant's business tier of the most
important service touched, and the historical false-positive rate of the alerts' rules.

Everything here is pure: time comes in as ``now_ms``, incidents in and out as values.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from novacron.alert.topology import Topology
from novacron.series import Labels

SERVICE_LABELS = ("service", "job")
SEVERITY_WEIGHTS = {"critical": 1.0, "error": 0.8, "warning": 0.6}
DEFAULT_SEVERITY_WEIGHT = 0.3  # info, none, anything else
TIER_WEIGHTS = {1: 1.0, 2: 0.75, 3: 0.5}
UNTIERED_WEIGHT = 0.6
PRIORITY_BANDS = ((60.0, "P1"), (40.0, "P2"), (25.0, "P3"), (10.0, "P4"))
FALSE_POSITIVE = "false_positive"  # the timeline entry kind of an incident resolved as noise


class IncidentStatus(StrEnum):
    """Where an incident is in its life."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Source(StrEnum):
    """Where an alert comes from."""

    RULE = "rule"
    ANOMALY = "anomaly"


class IncidentConflict(RuntimeError):
    """The incident was written by someone else since it was read (a store's optimistic lock)."""


@dataclass(frozen=True)
class AlertSignal:
    """An alert as the correlator sees it: firing or resolved, from a rule or from the detector."""

    fingerprint: str
    name: str
    labels: Labels
    severity: str
    firing: bool
    starts_at_ms: int
    ends_at_ms: int | None = None
    source: Source = Source.RULE
    summary: str = ""

    @property
    def service(self) -> str | None:
        """The service the alert is about (its ``service`` label, else ``job``), if any."""
        named = dict(self.labels)
        return next((named[label] for label in SERVICE_LABELS if named.get(label)), None)


@dataclass(frozen=True)
class IncidentAlert:
    """An alert as an incident records it."""

    fingerprint: str
    name: str
    service: str | None
    severity: str
    source: Source
    firing: bool
    starts_at_ms: int
    ends_at_ms: int | None
    summary: str
    labels: dict[str, str]

    @classmethod
    def of(cls, signal: AlertSignal) -> IncidentAlert:
        """The record of ``signal``."""
        return cls(
            signal.fingerprint,
            signal.name,
            signal.service,
            signal.severity,
            signal.source,
            signal.firing,
            signal.starts_at_ms,
            signal.ends_at_ms,
            signal.summary,
            dict(signal.labels),
        )


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to an incident."""

    at_ms: int
    kind: str  # opened, alert_joined, alert_resolved, alert_refired, origin_changed, acknowledged, resolved, ...
    text: str
    by: str = "novacron"


@dataclass(frozen=True)
class CorrelationSettings:
    """A tenant's correlation and priority settings."""

    window_s: int = 600
    max_hops: int = 3
    identifying_labels: tuple[str, ...] = ("instance", "pod", "node", "host")
    # A resolved incident whose own alert fires again within this long is reopened rather than repeated.
    reopen_window_s: int = 1800
    tiers: Mapping[str, int] = field(default_factory=dict)  # service → business tier (1 is the most important)


@dataclass
class Incident:
    """A group of related alerts, with its timeline, origin and priority."""

    id: str
    tenant: str
    status: IncidentStatus
    title: str
    opened_at_ms: int
    updated_at_ms: int
    alerts: dict[str, IncidentAlert]
    timeline: list[TimelineEntry]
    origin: str | None = None
    origin_reason: str = ""
    priority: float = 0.0
    priority_label: str = "P5"
    resolved_at_ms: int | None = None
    acknowledged_by: str | None = None
    # The stored revision this copy was read at: a store writes it only if nobody wrote it since.
    revision: int = 0

    @property
    def services(self) -> list[str]:
        """The services of the incident's alerts, sorted."""
        return sorted({a.service for a in self.alerts.values() if a.service})

    @property
    def firing(self) -> list[IncidentAlert]:
        """The alerts still firing."""
        return [a for a in self.alerts.values() if a.firing]

    @property
    def last_activity_ms(self) -> int:
        """When an alert of the incident last started or ended."""
        moments = [self.opened_at_ms]
        for alert in self.alerts.values():
            moments.append(alert.starts_at_ms)
            if alert.ends_at_ms is not None:
                moments.append(alert.ends_at_ms)
        return max(moments)

    @property
    def window(self) -> tuple[int, int]:
        """From the first alert's start to the last activity."""
        return min(a.starts_at_ms for a in self.alerts.values()), self.last_activity_ms

    def note(self, at_ms: int, kind: str, text: str, by: str = "novacron") -> None:
        """Add a timeline entry and mark the incident updated."""
        self.timeline.append(TimelineEntry(at_ms, kind, text, by))
        self.updated_at_ms = max(self.updated_at_ms, at_ms)

    def acknowledge(self, by: str, now_ms: int) -> None:
        """Someone is on it; ValueError unless the incident is open."""
        if self.status is not IncidentStatus.OPEN:
            raise ValueError(f"incident {self.id} is {self.status}, only an open incident can be acknowledged")
        self.status, self.acknowledged_by = IncidentStatus.ACKNOWLEDGED, by
        self.note(now_ms, "acknowledged", f"acknowledged by {by}", by)

    def resolve(self, by: str, now_ms: int, reason: str = "") -> None:
        """Close the incident by hand (its alerts may still fire); ValueError when already resolved."""
        if self.status is IncidentStatus.RESOLVED:
            raise ValueError(f"incident {self.id} is already resolved")
        self.status, self.resolved_at_ms = IncidentStatus.RESOLVED, now_ms
        self.note(now_ms, "resolved", f"resolved by {by}" + (f": {reason}" if reason else ""), by)

    def reopen(self, by: str, now_ms: int, reason: str = "") -> None:
        """Open a resolved incident again; ValueError unless it is resolved."""
        if self.status is not IncidentStatus.RESOLVED:
            raise ValueError(f"incident {self.id} is {self.status}, only a resolved incident can be reopened")
        self.status, self.resolved_at_ms, self.acknowledged_by = IncidentStatus.OPEN, None, None
        self.note(now_ms, "reopened", f"reopened by {by}" + (f": {reason}" if reason else ""), by)

    def comment(self, by: str, now_ms: int, text: str) -> None:
        """A comment on the timeline; ValueError when it is empty."""
        if not text.strip():
            raise ValueError("a comment needs some text")
        self.note(now_ms, "comment", text.strip(), by)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (alerts as a list, oldest first)."""
        data = asdict(self)
        data["status"] = str(self.status)
        data["alerts"] = [asdict(a) | {"source": str(a.source)} for a in _by_start(self.alerts.values())]
        data["services"] = self.services
        data["window"] = {"start_ms": self.window[0], "end_ms": self.window[1]}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Incident:
        """The inverse of :meth:`to_json`."""
        values = {k: v for k, v in data.items() if k not in ("services", "window")}
        values["status"] = IncidentStatus(values["status"])
        values["alerts"] = {
            a["fingerprint"]: IncidentAlert(**{**a, "source": Source(a["source"])}) for a in values["alerts"]
        }
        values["timeline"] = [TimelineEntry(**t) for t in values["timeline"]]
        return cls(**values)


@dataclass
class Correlation:
    """What one round of correlation changed."""

    changed: dict[str, Incident] = field(default_factory=dict)  # every incident touched, by id
    opened: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)


def incident_id(tenant: str, fingerprint: str, starts_at_ms: int) -> str:
    """The deterministic id of the incident opened by an alert (so a retried round opens the same one):
    its opening time, then a digest; ids sort by opening time."""
    digest = hashlib.blake2b(f"{tenant}\x00{fingerprint}\x00{starts_at_ms}".encode(), digest_size=6).hexdigest()
    return f"{starts_at_ms:013d}-{digest}"


def valid_incident_id(text: str) -> bool:
    """Whether ``text`` has the shape of an incident id (so that nothing else reaches a table key)."""
    head, _, tail = text.partition("-")
    return len(head) == 13 and head.isdigit() and len(tail) == 12 and all(c in "0123456789abcdef" for c in tail)


def priority_label(score: float) -> str:
    """P1 (the most urgent) to P5."""
    return next((label for floor, label in PRIORITY_BANDS if score >= floor), "P5")


class Correlator:
    """Folds alert signals into a tenant's incidents."""

    def __init__(
        self,
        tenant: str,
        topology: Topology,
        settings: CorrelationSettings | None = None,
        false_positive_rates: Mapping[str, float] | None = None,
    ) -> None:
        self.tenant = tenant
        self.topology = topology
        self.settings = settings or CorrelationSettings()
        self.false_positive_rates = false_positive_rates or {}

    def apply(self, incidents: Sequence[Incident], signals: Sequence[AlertSignal], now_ms: int) -> Correlation:
        """Fold ``signals`` (in start order) into ``incidents`` (the open ones and the recently resolved);
        the incidents changed, opened, auto-resolved and reopened."""
        known = {i.id: i for i in incidents}
        result = Correlation()
        for signal in sorted(signals, key=lambda s: (s.starts_at_ms, s.fingerprint)):
            incident = self._place(known, signal, now_ms, result)
            if incident is not None:
                known[incident.id] = incident
                result.changed[incident.id] = incident
        for incident in result.changed.values():
            self._assess(incident)
            if incident.status is not IncidentStatus.RESOLVED and incident.alerts and not incident.firing:
                incident.status, incident.resolved_at_ms = IncidentStatus.RESOLVED, now_ms
                incident.note(now_ms, "resolved", "every alert resolved")
                result.resolved.append(incident.id)
        return result

    def _place(
        self, known: dict[str, Incident], signal: AlertSignal, now_ms: int, result: Correlation
    ) -> Incident | None:
        """The incident ``signal`` changes (opening one if needed), or None when it changes nothing."""
        own = self._owner(known.values(), signal.fingerprint)
        if own is not None:
            return self._update(own, signal, now_ms, result)
        if not signal.firing:
            return None  # the end of an alert no incident holds
        joined = self._related(known.values(), signal)
        if joined is not None:
            joined.alerts[signal.fingerprint] = IncidentAlert.of(signal)
            joined.note(signal.starts_at_ms, "alert_joined", f"{signal.name} on {signal.service or '-'} joined")
            self._assess(joined)
            return joined
        return self._open(signal, result)

    def _update(self, incident: Incident, signal: AlertSignal, now_ms: int, result: Correlation) -> Incident | None:
        before = incident.alerts[signal.fingerprint]
        if before.firing == signal.firing:
            return None
        incident.alerts[signal.fingerprint] = replace(
            IncidentAlert.of(signal), starts_at_ms=min(before.starts_at_ms, signal.starts_at_ms)
        )
        where = f"{signal.name} on {signal.service or '-'}"
        if not signal.firing:
            incident.note(signal.ends_at_ms or now_ms, "alert_resolved", f"{where} resolved")
            return incident
        incident.note(max(signal.starts_at_ms, before.ends_at_ms or 0), "alert_refired", f"{where} fires again")
        if incident.status is IncidentStatus.RESOLVED:
            incident.reopen("novacron", now_ms, f"{signal.name} fires again")
            result.reopened.append(incident.id)
        return incident

    def _owner(self, incidents: Iterable[Incident], fingerprint: str) -> Incident | None:
        """The newest incident holding the alert, unless it was resolved too long ago to be reopened."""
        holding = [i for i in incidents if fingerprint in i.alerts]
        if not holding:
            return None
        newest = max(holding, key=lambda i: i.opened_at_ms)
        if newest.status is IncidentStatus.RESOLVED and newest.resolved_at_ms is not None:
            latest = max(a.ends_at_ms or a.starts_at_ms for a in newest.alerts.values())
            if latest < newest.resolved_at_ms - self.settings.reopen_window_s * 1000:
                return None
        return newest

    def _related(self, incidents: Iterable[Incident], signal: AlertSignal) -> Incident | None:
        """The open incident ``signal`` belongs to: the closest related, then the oldest."""
        window_ms = self.settings.window_s * 1000
        best: tuple[int, int, Incident] | None = None
        for incident in incidents:
            if incident.status is IncidentStatus.RESOLVED:
                continue
            if signal.starts_at_ms < incident.last_activity_ms - window_ms:
                continue
            if signal.starts_at_ms > incident.last_activity_ms + window_ms:
                continue
            distance = self._distance(incident, signal)
            if distance is None:
                continue
            rank = (distance, incident.opened_at_ms, incident)
            if best is None or rank[:2] < best[:2]:
                best = rank
        return best[2] if best is not None else None

    def _distance(self, incident: Incident, signal: AlertSignal) -> int | None:
        """0 for the same service or a shared identifying label; hops to the origin; None if unrelated."""
        service = signal.service
        if service is not None and service in incident.services:
            return 0
        identifying = {(k, v) for k, v in signal.labels if k in self.settings.identifying_labels}
        if identifying and any(identifying & set(a.labels.items()) for a in incident.alerts.values()):
            return 0
        if service is None:
            return None
        hops = [d for s in self._roots(incident) if (d := self.topology.distance(service, s)) is not None]
        return min(hops) if hops and min(hops) <= self.settings.max_hops else None

    def _roots(self, incident: Incident) -> set[str]:
        """The incident's services that call none of its other services (the most downstream)."""
        services = set(incident.services)
        return {s for s in services if not (self.topology.dependencies(s) & services)}

    def _open(self, signal: AlertSignal, result: Correlation) -> Incident:
        incident = Incident(
            id=incident_id(self.tenant, signal.fingerprint, signal.starts_at_ms),
            tenant=self.tenant,
            status=IncidentStatus.OPEN,
            title="",
            opened_at_ms=signal.starts_at_ms,
            updated_at_ms=signal.starts_at_ms,
            alerts={signal.fingerprint: IncidentAlert.of(signal)},
            timeline=[],
        )
        incident.note(signal.starts_at_ms, "opened", f"opened by {signal.name} on {signal.service or '-'}")
        self._assess(incident)
        result.opened.append(incident.id)
        return incident

    def _assess(self, incident: Incident) -> None:
        """Recompute the origin, title and priority (noting an origin change on the timeline)."""
        origin, reason = self._origin(incident)
        if origin != incident.origin and incident.origin is not None:
            incident.note(incident.updated_at_ms, "origin_changed", f"suspected origin now {origin}: {reason}")
        incident.origin, incident.origin_reason = origin, reason
        first = _by_start(incident.alerts.values())[0]
        others = len(incident.alerts) - 1
        where = origin or first.service or "unknown service"
        incident.title = f"{where}: {first.name}" + (
            f" and {others} more alert{'s' if others > 1 else ''} on {len(incident.services)} services"
            if others
            else ""
        )
        incident.priority = round(self._priority(incident), 1)
        incident.priority_label = priority_label(incident.priority)

    def _origin(self, incident: Incident) -> tuple[str | None, str]:
        """The most downstream alerting service (earliest alert on a tie), and why."""
        first_alert: dict[str, int] = {}
        for alert in incident.alerts.values():
            if alert.service:
                first_alert[alert.service] = min(first_alert.get(alert.service, alert.starts_at_ms), alert.starts_at_ms)
        if not first_alert:
            return None, "no alert names a service"
        services = set(first_alert)
        # Of the roots, the one most of the incident's other services depend on explains the most; then
        # the first to alert.
        explained = {s: self.topology.dependants(s) & services for s in self._roots(incident) or services}
        origin = min(explained, key=lambda s: (-len(explained[s]), first_alert[s], s))
        affected = explained[origin]
        if affected:
            reason = f"{len(affected)} other alerting service(s) depend on it ({', '.join(sorted(affected))})"
        elif len(services) > 1:
            reason = "the first to alert; the other alerting services do not call it"
        else:
            reason = "the only alerting service"
        return origin, reason

    def _priority(self, incident: Incident) -> float:
        severity = max(
            SEVERITY_WEIGHTS.get(a.severity.lower(), DEFAULT_SEVERITY_WEIGHT) for a in incident.alerts.values()
        )
        touched = set(incident.services)
        if incident.origin is not None:
            touched |= self.topology.dependants(incident.origin)
        estate = max(len(self.topology.services() | touched), 1)
        blast = len(touched) / estate
        tiers = [self.settings.tiers[s] for s in touched if s in self.settings.tiers]
        tier = TIER_WEIGHTS.get(min(tiers), UNTIERED_WEIGHT) if tiers else UNTIERED_WEIGHT
        rates = [self.false_positive_rates.get(a.name, 0.0) for a in incident.alerts.values()]
        false_positive = sum(rates) / len(rates)
        return 100.0 * severity * (0.4 + 0.6 * blast) * tier * (1.0 - 0.8 * false_positive)


def _by_start(alerts: Iterable[IncidentAlert]) -> list[IncidentAlert]:
    return sorted(alerts, key=lambda a: (a.starts_at_ms, a.fingerprint))


INCIDENT_SOURCE = "novacron.alerting"
INCIDENT_OPENED = "IncidentOpened"
INCIDENT_RESOLVED = "IncidentResolved"
INCIDENT_REOPENED = "IncidentReopened"
MAX_EVENT_ALERTS = 200  # EventBridge events are at most 256 KB


@dataclass(frozen=True)
class IncidentEvent:
    """An incident event for the bus: everything an analyser needs (tenant, window, services, origin,
    alerts) without reading anything else."""

    detail_type: str
    incident: Incident

    @property
    def source(self) -> str:
        """The EventBridge source of every incident event."""
        return INCIDENT_SOURCE

    def detail(self) -> dict[str, Any]:
        """The incident's JSON without its timeline, and at most MAX_EVENT_ALERTS alerts (firing first)."""
        data = self.incident.to_json()
        del data["timeline"]
        alerts = sorted(data["alerts"], key=lambda a: not a["firing"])
        data["alerts"], data["alerts_total"] = alerts[:MAX_EVENT_ALERTS], len(alerts)
        return data


def incident_events(result: Correlation) -> list[IncidentEvent]:
    """The events of one round of correlation: opened, reopened and resolved incidents."""
    kinds = (
        (result.opened, INCIDENT_OPENED),
        (result.reopened, INCIDENT_REOPENED),
        (result.resolved, INCIDENT_RESOLVED),
    )
    return [IncidentEvent(kind, result.changed[i]) for ids, kind in kinds for i in ids if i in result.changed]
