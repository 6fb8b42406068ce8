"""The dispatcher: alerts into aggregation groups, and when each group notifies, as a state machine over time.

This is Alertmanager's dispatcher, aggregation groups and notification pipeline (``dispatch/``,
``notify/notify.go``), made deterministic: time only moves through the ``now`` given to
:meth:`Dispatcher.receive` and :meth:`Dispatcher.flush`, and all state round-trips through JSON
(:meth:`Dispatcher.to_dict`), so it can live in a table between scheduled runs.

- Each alert goes to every route it matches; on a route it joins the group of its ``group_by`` labels.
  A new group first flushes ``group_wait`` after its creation (at once if the alert started more than
  ``group_wait`` ago), then every ``group_interval``.
- At a flush, alerts whose ``ends_at`` has passed are resolved. Alerts muted by an inhibit rule or a
  silence are left out; if none is left, nothing is sent or logged.
- Per integration, a notification log entry (the alerts firing and resolved at the last notification)
  decides Alertmanager's way whether to send: a first notification needs a firing alert; a new firing
  alert always notifies; all alerts resolved notifies (only logged when ``send_resolved`` is off);
  newly resolved alerts notify when ``send_resolved`` is on; otherwise only after ``repeat_interval``
  (strictly longer, so a repeat falls on the first group_interval tick past it, as in Alertmanager).
- Resolved alerts are dropped from the group after the flush; an empty group is deleted (Alertmanager
  deletes it at its next 30 s maintenance pass; here it is at once), the log entries stay (120 h).
- An alert without ``ends_at`` is resolved ``resolve_timeout`` after it was last received, like one sent
  to Alertmanager's API without ``endsAt``; re-sending an alert refreshes it (merged as Alertmanager does).

- Time intervals (:mod:`novacron.alert.timeintervals`): at a flush when one of the route's
  ``mute_time_intervals`` is active, or none of its ``active_time_intervals`` is, nothing is sent nor
  logged, as in Alertmanager's time-mute stages; resolved alerts still leave the group, so the next
  unmuted flush notifies about what is still firing (and, like a first notification, only if something is).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from novacron.alert.amconfig import AlertmanagerConfig
from novacron.alert.inhibit import InhibitRule, inhibited
from novacron.alert.matchers import LABEL_NAME
from novacron.alert.routing import Route, build_routes
from novacron.alert.rule_state import fingerprint
from novacron.alert.silences import Silence, silenced_by

NFLOG_RETENTION_S = 120 * 3600.0
# When a run comes long after the last one, only this many missed group_interval ticks are replayed.
MAX_MISSED_TICKS = 100


class InvalidAlert(ValueError):
    """An alert the dispatcher refuses (no labels, a bad label name, ending before it starts)."""


def go_quote(value: str) -> str:
    """Go's ``%q`` of a string (``strconv.Quote``), which Alertmanager's group keys use."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def labelset_string(labels: Mapping[str, str]) -> str:
    """Prometheus's ``LabelSet.String()``: ``{a="1", b="2"}``, names sorted."""
    return "{" + ", ".join(f"{name}={go_quote(labels[name])}" for name in sorted(labels)) + "}"


@dataclass(frozen=True)
class Alert:
    """An alert as the dispatcher holds it. Times are seconds since the epoch."""

    labels: Mapping[str, str]
    starts_at: float
    ends_at: float | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    generator_url: str = ""
    updated_at: float = 0.0
    timeout: bool = False  # ends_at was set from resolve_timeout, not by the sender

    @functools.cached_property
    def fingerprint(self) -> str:
        """The identity of the alert: its labels' fingerprint."""
        return fingerprint(self.labels)

    def resolved_at(self, now: float) -> bool:
        """Whether the alert has ended by ``now``."""
        return self.ends_at is not None and self.ends_at <= now

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "generator_url": self.generator_url,
            "updated_at": self.updated_at,
            "timeout": self.timeout,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """The inverse of :meth:`to_dict`."""
        return cls(
            labels=dict(data["labels"]),
            starts_at=float(data["starts_at"]),
            ends_at=None if data.get("ends_at") is None else float(data["ends_at"]),
            annotations=dict(data.get("annotations", {})),
            generator_url=str(data.get("generator_url", "")),
            updated_at=float(data.get("updated_at", 0.0)),
            timeout=bool(data.get("timeout", False)),
        )


@dataclass(frozen=True)
class Notification:
    """One message for one integration of one receiver about one aggregation group."""

    receiver: str
    integration: str  # "webhook[0]", "slack[1]", ...
    group_key: str
    group_labels: Mapping[str, str]
    firing: tuple[Alert, ...]
    resolved: tuple[Alert, ...]
    at: float

    @property
    def status(self) -> str:
        """``firing`` when any alert fires, else ``resolved`` (the webhook payload's ``status``)."""
        return "firing" if self.firing else "resolved"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "receiver": self.receiver,
            "integration": self.integration,
            "group_key": self.group_key,
            "group_labels": dict(self.group_labels),
            "firing": [a.to_dict() for a in self.firing],
            "resolved": [a.to_dict() for a in self.resolved],
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notification:
        """The inverse of :meth:`to_dict`."""
        return cls(
            receiver=data["receiver"],
            integration=data["integration"],
            group_key=data["group_key"],
            group_labels=dict(data["group_labels"]),
            firing=tuple(Alert.from_dict(a) for a in data["firing"]),
            resolved=tuple(Alert.from_dict(a) for a in data["resolved"]),
            at=float(data["at"]),
        )


@dataclass
class _Group:
    route_id: str
    key: str
    labels: dict[str, str]
    alerts: dict[str, Alert]
    next_flush: float
    has_flushed: bool = False


@dataclass(frozen=True)
class _LogEntry:
    firing: frozenset[str]
    resolved: frozenset[str]
    at: float


class Dispatcher:
    """Aggregation groups, their timers and the notification log of one tenant's Alertmanager config."""

    def __init__(self, config: AlertmanagerConfig, silences: Sequence[Silence] = ()) -> None:
        self.config = config
        self.root: Route = build_routes(config.route)
        self.routes: dict[str, Route] = {r.id: r for r in self.root.walk()}
        self.rules: tuple[InhibitRule, ...] = config.inhibit_rules
        self.silences: Sequence[Silence] = silences  # loaded per run; not part of the saved state
        self._alerts: dict[str, Alert] = {}
        self._groups: dict[tuple[str, str], _Group] = {}  # (route id, group fingerprint)
        self._log: dict[tuple[str, str, str], _LogEntry] = {}  # (group key, receiver, integration)
        self._outbox: list[Notification] = []
        self._clock = float("-inf")
        self._reroute = False  # the route tree changed since the state was saved

    # --- the two operations ---

    def receive(self, alerts: Iterable[Alert], now: float) -> None:
        """Take alerts received at ``now`` (due flushes before ``now`` happen first)."""
        incoming = list(alerts)
        for alert in incoming:
            _validate(alert)
        self._advance(now)
        for alert in incoming:
            stored = self._store(alert, now)
            for route in self.root.match(stored.labels):
                self._insert(route, stored, now)

    def flush(self, now: float) -> list[Notification]:
        """The notifications due by ``now``, in the order they fell due; each is returned once."""
        self._advance(now)
        out, self._outbox = self._outbox, []
        return out

    def next_due(self) -> float | None:
        """When the next group flush falls due (to schedule the next run), or ``None`` with no groups."""
        return min((g.next_flush for g in self._groups.values()), default=None)

    def muted_by(self, alert: Alert, now: float) -> list[str]:
        """Why an alert is muted at ``now``: ``inhibited by <fingerprint>`` and/or silence ids."""
        reasons = [f"inhibited by {fingerprint(src)}"] if (src := self._inhibitor(alert, now)) is not None else []
        return reasons + silenced_by(self.silences, alert.labels, now)

    def route_muted(self, route: Route, now: float) -> bool:
        """Whether the route's time intervals mute its notifications at ``now``."""
        intervals = self.config.time_intervals
        if any(intervals[name].active_at(now) for name in route.opts.mute_time_intervals):
            return True
        active = route.opts.active_time_intervals
        return bool(active) and not any(intervals[name].active_at(now) for name in active)

    # --- state ---

    def to_dict(self) -> dict[str, Any]:
        """The dispatcher's state as JSON-able data (the config and silences are not part of it)."""
        return {
            "clock": self._clock if self._clock != float("-inf") else None,
            "routes": sorted(self.routes),
            "alerts": [a.to_dict() for a in self._alerts.values()],
            "groups": [
                {
                    "route_id": g.route_id,
                    "key": g.key,
                    "labels": g.labels,
                    "alerts": sorted(g.alerts),
                    "next_flush": g.next_flush,
                    "has_flushed": g.has_flushed,
                }
                for g in self._groups.values()
            ],
            "log": [
                {
                    "group_key": k[0],
                    "receiver": k[1],
                    "integration": k[2],
                    "firing": sorted(e.firing),
                    "resolved": sorted(e.resolved),
                    "at": e.at,
                }
                for k, e in self._log.items()
            ],
            "outbox": [n.to_dict() for n in self._outbox],
        }

    @classmethod
    def from_dict(
        cls, config: AlertmanagerConfig, data: Mapping[str, Any], silences: Sequence[Silence] = ()
    ) -> Dispatcher:
        """A dispatcher resumed from :meth:`to_dict`'s data under ``config``.

        When the route tree changed, the groups are rebuilt from the held alerts at the next ``now``,
        as Alertmanager does on a configuration reload; the notification log is kept either way.
        """
        d = cls(config, silences)
        d._clock = float("-inf") if data.get("clock") is None else float(data["clock"])
        d._alerts = {a.fingerprint: a for a in map(Alert.from_dict, data.get("alerts", []))}
        d._log = {
            (e["group_key"], e["receiver"], e["integration"]): _LogEntry(
                frozenset(e["firing"]), frozenset(e["resolved"]), float(e["at"])
            )
            for e in data.get("log", [])
        }
        d._outbox = [Notification.from_dict(n) for n in data.get("outbox", [])]
        if sorted(data.get("routes", [])) == sorted(d.routes):
            for g in data.get("groups", []):
                alerts = {fp: d._alerts[fp] for fp in g["alerts"] if fp in d._alerts}
                group = _Group(
                    g["route_id"], g["key"], dict(g["labels"]), alerts, float(g["next_flush"]), bool(g["has_flushed"])
                )
                d._groups[(group.route_id, fingerprint(group.labels))] = group
        else:
            d._reroute = True
        return d

    # --- internals ---

    def _store(self, alert: Alert, now: float) -> Alert:
        """Alertmanager's API defaults and its merge with the alert already held."""
        starts_at = alert.starts_at if alert.starts_at > 0 else (alert.ends_at if alert.ends_at is not None else now)
        new = replace(alert, starts_at=starts_at, updated_at=now)
        if alert.ends_at is None:
            new = replace(new, ends_at=now + self.config.global_.resolve_timeout, timeout=True)
        old = self._alerts.get(new.fingerprint)
        if old is not None and _overlaps(old, new):
            new = _merge(old, new, now)
        self._alerts[new.fingerprint] = new
        return new

    def _insert(self, route: Route, alert: Alert, now: float) -> None:
        labels = route.opts.group_labels(alert.labels)
        gid = (route.id, fingerprint(labels))
        group = self._groups.get(gid)
        wait_over = alert.starts_at + route.opts.group_wait < now
        if group is None:
            key = f"{route.key}:{labelset_string(labels)}"
            group = _Group(route.id, key, labels, {}, now if wait_over else now + route.opts.group_wait)
            self._groups[gid] = group
        elif not group.has_flushed and wait_over:
            group.next_flush = min(group.next_flush, now)
        group.alerts[alert.fingerprint] = alert

    def _advance(self, now: float) -> None:
        """Run every flush that fell due by ``now``, in time order."""
        if self._reroute:
            self._reroute = False
            for alert in self._alerts.values():
                if not alert.resolved_at(now):
                    for route in self.root.match(alert.labels):
                        self._insert(route, alert, now)
        now = max(now, self._clock)
        while True:
            due = [(g.next_flush, gid) for gid, g in self._groups.items() if g.next_flush <= now]
            if not due:
                break
            tick, gid = min(due)
            group = self._groups[gid]
            interval = self.routes[group.route_id].opts.group_interval
            missed = int((now - tick) // interval)
            if missed > MAX_MISSED_TICKS:
                tick += (missed - MAX_MISSED_TICKS) * interval
            self._flush_group(gid, group, tick)
        self._clock = now
        self._alerts = {
            fp: a for fp, a in self._alerts.items() if not a.resolved_at(now) or _in_group(self._groups, fp)
        }
        self._log = {k: e for k, e in self._log.items() if e.at + NFLOG_RETENTION_S > now}

    def _flush_group(self, gid: tuple[str, str], group: _Group, tick: float) -> None:
        route = self.routes[group.route_id]
        group.next_flush = tick + route.opts.group_interval
        group.has_flushed = True
        alerts = [a if a.resolved_at(tick) else replace(a, ends_at=None) for a in group.alerts.values()]
        alerts.sort(key=functools.cmp_to_key(_alert_order))
        unmuted = [a for a in alerts if not self.muted_by(a, tick)]
        if unmuted and not self.route_muted(route, tick):
            receiver = self.config.receivers[route.opts.receiver]
            for integration in receiver.integrations:
                self._notify(group, route, integration.name, integration.send_resolved, unmuted, tick)
        for alert in alerts:
            if alert.resolved_at(tick):
                del group.alerts[alert.fingerprint]
        if not group.alerts:
            del self._groups[gid]

    def _notify(
        self, group: _Group, route: Route, integration: str, send_resolved: bool, alerts: list[Alert], tick: float
    ) -> None:
        firing = [a for a in alerts if a.ends_at is None]
        resolved = [a for a in alerts if a.ends_at is not None]
        firing_fps = frozenset(a.fingerprint for a in firing)
        resolved_fps = frozenset(a.fingerprint for a in resolved)
        log_key = (group.key, route.opts.receiver, integration)
        entry = self._log.get(log_key)
        if not _needs_update(entry, firing_fps, resolved_fps, send_resolved, route.opts.repeat_interval, tick):
            return
        if firing or send_resolved:
            self._outbox.append(
                Notification(
                    route.opts.receiver, integration, group.key, dict(group.labels), tuple(firing),
                    tuple(resolved) if send_resolved else (), tick,
                )
            )  # fmt: skip
        # Logged even when nothing is sent, so that the firing alerts are cleared from the log.
        self._log[log_key] = _LogEntry(firing_fps, resolved_fps, tick)

    def _inhibitor(self, alert: Alert, now: float) -> Mapping[str, str] | None:
        if not self.rules:
            return None
        firing = (a.labels for a in self._alerts.values() if not a.resolved_at(now))
        return inhibited(alert.labels, self.rules, firing)


def _needs_update(
    entry: _LogEntry | None,
    firing: frozenset[str],
    resolved: frozenset[str],
    send_resolved: bool,
    repeat_interval: float,
    now: float,
) -> bool:
    """Alertmanager's ``DedupStage.needsUpdate``."""
    if entry is None:
        return bool(firing)
    if not firing <= entry.firing:
        return True
    if not firing:
        # All resolved: notify only if the receiver was told about firing alerts.
        return bool(entry.firing)
    if send_resolved and not resolved <= entry.resolved:
        return True
    return entry.at < now - repeat_interval


def _validate(alert: Alert) -> None:
    if not alert.labels:
        raise InvalidAlert("alert has no labels")
    for name, value in alert.labels.items():
        if not LABEL_NAME.fullmatch(name) or ":" in name:
            raise InvalidAlert(f"invalid label name {name!r} in alert {dict(alert.labels)}")
        if value == "":
            raise InvalidAlert(f"empty value for label {name!r} in alert {dict(alert.labels)}")
    if alert.ends_at is not None and alert.starts_at > 0 and alert.ends_at < alert.starts_at:
        raise InvalidAlert(f"alert {dict(alert.labels)} ends before it starts")


def _overlaps(old: Alert, new: Alert) -> bool:
    """Alertmanager merges a re-sent alert into the held one only when their active ranges overlap."""
    old_end = old.ends_at if old.ends_at is not None else float("inf")
    new_end = new.ends_at if new.ends_at is not None else float("inf")
    return (old.starts_at < new_end < old_end) or (old.starts_at < new.starts_at < old_end)


def _merge(old: Alert, new: Alert, now: float) -> Alert:
    """Alertmanager's ``Alert.Merge``: the younger alert wins, the earliest start and latest real end kept."""
    if new.updated_at < old.updated_at:
        old, new = new, old
    merged = replace(new, starts_at=min(old.starts_at, new.starts_at))
    old_end, new_end = old.ends_at or 0.0, new.ends_at or 0.0
    if new.resolved_at(now):
        if old.resolved_at(now) and old_end > new_end:
            merged = replace(merged, ends_at=old.ends_at)
    elif old_end > new_end and not old.timeout:
        merged = replace(merged, ends_at=old.ends_at, timeout=False)
    return merged


def _in_group(groups: Mapping[tuple[str, str], _Group], fp: str) -> bool:
    return any(fp in g.alerts for g in groups.values())


def _labels_before(a: Mapping[str, str], b: Mapping[str, str]) -> int:
    """Prometheus's ``LabelSet.Before`` as a comparison: fewer labels first, then by sorted pairs."""
    if len(a) != len(b):
        return -1 if len(a) < len(b) else 1
    for name in sorted({*a, *b}):
        if name not in a:
            return -1
        if name not in b:
            return 1
        if a[name] != b[name]:
            return -1 if a[name] < b[name] else 1
    return 0


def _alert_order(x: Alert, y: Alert) -> int:
    """Alertmanager's alert order in a notification: by ``job``, then ``instance``, then labels."""
    for name in ("job", "instance"):
        xv, yv = x.labels.get(name), y.labels.get(name)
        if xv is None and yv is None:
            continue
        if xv is None:
            return 1
        if yv is None:
            return -1
        if xv != yv:
            return -1 if xv < yv else 1
    return _labels_before(x.labels, y.labels)
