"""Rule evaluation with Prometheus's semantics: recording rules, alert states, ``ALERTS`` series.

``RuleEvaluator.evaluate_group`` runs a group's rules in order at one time against a PromQL query
function (``Engine.instant``). Recording rules yield samples renamed to the rule's ``record``;
alerting rules move each alert through Prometheus's state machine (inactive → pending → firing,
``keep_firing_for``, resolved alerts kept 15 minutes) and yield the ``ALERTS`` and
``ALERTS_FOR_STATE`` series, plus staleness markers for series a rule stopped producing. The
group's state is a plain value that round-trips through JSON, so a scheduled function can keep it
between invocations. A failing rule is recorded (health ``err``, ``lastError``) and the group goes on.
"""

from __future__ import annotations

import copy
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from novacron.alert.rule_state import Alert, GroupState, RuleState, fingerprint, rfc3339
from novacron.alert.rules import NEVER, AlertingRule, RecordingRule, Rule, RuleFile, RuleGroup, query_text
from novacron.alert.templating import GoStruct, alert_template_data, expand_alert_template
from novacron.promql import PromQLError, QueryResult
from novacron.series import METRIC_NAME, STALE_NAN, STALE_NAN_BITS, Labels

# Prometheus keeps a resolved alert this long, so that Alertmanager is told it resolved.
RESOLVED_RETENTION_MS = 15 * 60_000
ALERTS_METRIC = "ALERTS"
ALERTS_FOR_STATE_METRIC = "ALERTS_FOR_STATE"
ALERT_NAME = "alertname"
ALERT_STATE = "alertstate"

QueryFunc = Callable[[str, int], QueryResult]


def rule_keys(group: RuleGroup) -> list[str]:
    """A key per rule that survives edits elsewhere in the file: name, labels, and rank among equals.

    Prometheus carries alert state across a reload by rule name and labels the same way.
    """
    seen: dict[str, int] = {}
    keys = []
    for rule in group.rules:
        base = f"{type(rule).__name__}:{rule.name}:{sorted(rule.labels.items())}"
        seen[base] = seen.get(base, 0) + 1
        keys.append(f"{base}#{seen[base]}")
    return keys


@dataclass(frozen=True)
class OutputSample:
    """A sample a rule produced, for the caller to write (``value`` may be a staleness marker)."""

    labels: Labels
    t_ms: int
    value: float


@dataclass
class GroupEvaluation:
    """The outcome of one group evaluation: the samples to write and the new state."""

    samples: list[OutputSample]
    state: GroupState


class RuleError(Exception):
    """A rule whose evaluation failed (recorded as its ``lastError``)."""


@dataclass
class RuleEvaluator:
    """Evaluates rule groups against a query function (e.g. ``Engine(reader).instant``).

    ``write``, when given, receives each rule's samples as soon as the rule is evaluated, so that a
    later rule of the same group sees an earlier recording rule's output, as in Prometheus.
    """

    query: QueryFunc
    external_labels: Mapping[str, str] = field(default_factory=dict)
    external_url: str = ""
    write: Callable[[Sequence[OutputSample]], None] | None = None
    clock: Callable[[], float] = time.perf_counter

    def evaluate_group(self, group: RuleGroup, t_ms: int, state: GroupState | None = None) -> GroupEvaluation:
        """Evaluate every rule of ``group`` at ``t_ms``; ``state`` is the previous evaluation's (not modified)."""
        previous = GroupState() if state is None else state
        keys = rule_keys(group)
        new_state = GroupState(last_evaluation_ms=t_ms)
        samples: list[OutputSample] = []
        started = self.clock()
        query_t = t_ms - group.query_offset_ms
        for key, rule in zip(keys, group.rules, strict=True):
            rule_state = copy.deepcopy(previous.rules.get(key, RuleState()))
            rule_started = self.clock()
            try:
                if isinstance(rule, RecordingRule):
                    out = self._record(rule, group, query_t)
                else:
                    out = self._alert(rule, group, t_ms, query_t, rule_state)
            except (RuleError, PromQLError) as exc:
                rule_state.health, rule_state.last_error = "err", str(exc)
                out = None
            else:
                rule_state.health, rule_state.last_error = "ok", ""
            if out is not None:
                out += self._stale_markers(rule_state, out, query_t)
                rule_state.series = sorted({s.labels for s in out if not _is_stale(s.value)})
                samples += out
                if self.write is not None and out:
                    self.write(out)
            rule_state.last_evaluation_ms = t_ms
            rule_state.evaluation_time_s = self.clock() - rule_started
            new_state.rules[key] = rule_state
        new_state.evaluation_time_s = self.clock() - started
        return GroupEvaluation(samples, new_state)

    def _run_query(self, expr: str, t_ms: int) -> list[tuple[Labels, float]]:
        """The expression's result as (labels, value) pairs; a scalar is one sample without labels."""
        result = self.query(expr, t_ms)
        if result.result_type == "scalar" and result.scalar is not None:
            return [((), float(result.scalar[1]))]
        if result.result_type != "vector":
            raise RuleError("rule result is not a vector or scalar")
        return [(s.labels, float(s.values[0])) for s in result.series]

    def _record(self, rule: RecordingRule, group: RuleGroup, t_ms: int) -> list[OutputSample]:
        rule_labels = {**group.labels, **rule.labels}
        out = []
        seen: set[Labels] = set()
        for labels, value in self._run_query(rule.expr, t_ms):
            merged = {**dict(labels), METRIC_NAME: rule.record}
            for name, label_value in rule_labels.items():
                merged[name] = label_value
            key = _labels(merged)
            if key in seen:
                raise RuleError("vector contains metrics with the same labelset after applying rule labels")
            seen.add(key)
            out.append(OutputSample(key, t_ms, value))
        if group.limit and len(out) > group.limit:
            raise RuleError(f"exceeded limit of {group.limit} with {len(out)} series")
        return out

    def _template_query(self, t_ms: int) -> Callable[[str], list[GoStruct]]:
        def run(expr: str) -> list[GoStruct]:
            return [GoStruct(Labels=dict(lb), Value=v) for lb, v in self._run_query(expr, t_ms)]

        return run

    def _alert(
        self, rule: AlertingRule, group: RuleGroup, t_ms: int, query_t: int, state: RuleState
    ) -> list[OutputSample]:
        rule_labels = {**group.labels, **rule.labels}
        template_query = self._template_query(query_t)
        current: dict[str, Alert] = {}
        for labels, value in self._run_query(rule.expr, query_t):
            data = alert_template_data(dict(labels), self.external_labels, self.external_url, value)
            name = f"__alert_{rule.alert}"
            alert_labels = {n: v for n, v in labels if n != METRIC_NAME}
            for label, text in rule_labels.items():
                expanded = expand_alert_template(text, name, data, template_query)
                if expanded:
                    alert_labels[label] = expanded
                else:
                    alert_labels.pop(label, None)  # Go's labels.Builder drops empty values
            alert_labels[ALERT_NAME] = rule.alert
            annotations = {k: expand_alert_template(v, name, data, template_query) for k, v in rule.annotations.items()}
            fp = fingerprint(alert_labels)
            if fp in current:
                raise RuleError("vector contains metrics with the same labelset after applying alert labels")
            current[fp] = Alert(dict(sorted(alert_labels.items())), annotations, "pending", t_ms, value)
        for fp, fresh in current.items():
            known = state.alerts.get(fp)
            if known is not None and known.state != "inactive":
                known.value, known.annotations = fresh.value, fresh.annotations
                continue
            state.alerts[fp] = fresh
        out: list[OutputSample] = []
        active = 0
        for fp, alert in list(state.alerts.items()):
            if fp not in current:
                keep_firing = False
                if alert.state == "firing" and rule.keep_firing_for_ms > 0:
                    if alert.keep_firing_since_ms is None:
                        alert.keep_firing_since_ms = t_ms
                    keep_firing = t_ms - alert.keep_firing_since_ms < rule.keep_firing_for_ms
                if alert.state == "pending" or (
                    alert.resolved_at_ms is not None and t_ms - alert.resolved_at_ms > RESOLVED_RETENTION_MS
                ):
                    del state.alerts[fp]
                if alert.state != "inactive" and not keep_firing:
                    alert.state, alert.resolved_at_ms = "inactive", t_ms
                if not keep_firing:
                    continue
            else:
                alert.keep_firing_since_ms = None
            active += 1
            if alert.state == "pending" and t_ms - alert.active_at_ms >= rule.for_ms:
                alert.state, alert.fired_at_ms = "firing", t_ms
            out += alert_series(alert, query_t)
        if group.limit and active > group.limit:
            state.alerts.clear()
            raise RuleError(f"exceeded limit of {group.limit} with {active} alerts")
        return out

    @staticmethod
    def _stale_markers(state: RuleState, out: list[OutputSample], t_ms: int) -> list[OutputSample]:
        written = {s.labels for s in out}
        return [OutputSample(labels, t_ms, STALE_NAN) for labels in state.series if labels not in written]


def alert_series(alert: Alert, t_ms: int) -> list[OutputSample]:
    """The ``ALERTS`` and ``ALERTS_FOR_STATE`` samples Prometheus writes for an active alert."""
    alerts = _labels({**alert.labels, METRIC_NAME: ALERTS_METRIC, ALERT_STATE: alert.state})
    for_state = _labels({**alert.labels, METRIC_NAME: ALERTS_FOR_STATE_METRIC})
    return [OutputSample(alerts, t_ms, 1.0), OutputSample(for_state, t_ms, float(alert.active_at_ms // 1000))]


def _labels(mapping: Mapping[str, str]) -> Labels:
    return tuple(sorted((k, v) for k, v in mapping.items() if v != ""))


def _is_stale(value: float) -> bool:
    bits: int = struct.unpack("<Q", struct.pack("<d", value))[0]
    return bits == STALE_NAN_BITS


# --- the Prometheus API shapes -------------------------------------------------------------------


def _rule_json(rule: Rule, state: RuleState) -> dict[str, Any]:
    out = rule.to_json()
    out["health"] = state.health
    if state.last_error:
        out["lastError"] = state.last_error
    out["evaluationTime"] = state.evaluation_time_s
    out["lastEvaluation"] = NEVER if state.last_evaluation_ms is None else rfc3339(state.last_evaluation_ms)
    if isinstance(rule, AlertingRule):
        out["alerts"] = [a.api_json() for a in state.active_alerts()]
        out["state"] = state.rule_state()
    return out


def rules_json(
    rule_file: RuleFile, states: Mapping[str, GroupState], default_interval_ms: int = 60_000
) -> dict[str, Any]:
    """``/api/v1/rules``'s ``data``: the file's groups with each rule's last evaluation (states by group name)."""
    data = rule_file.to_json(default_interval_ms)
    for group, group_json in zip(rule_file.groups, data["groups"], strict=True):
        state = states.get(group.name, GroupState())
        group_json["rules"] = [
            _rule_json(rule, state.rules.get(key, RuleState()))
            for key, rule in zip(rule_keys(group), group.rules, strict=True)
        ]
        group_json["evaluationTime"] = state.evaluation_time_s
        if state.last_evaluation_ms is not None:
            group_json["lastEvaluation"] = rfc3339(state.last_evaluation_ms)
    return data


def alerts_json(rule_file: RuleFile, states: Mapping[str, GroupState]) -> dict[str, Any]:
    """``/api/v1/alerts``'s ``data``: every pending and firing alert of the file's rules."""
    alerts = []
    for group in rule_file.groups:
        state = states.get(group.name, GroupState())
        for key, rule in zip(rule_keys(group), group.rules, strict=True):
            if isinstance(rule, AlertingRule) and key in state.rules:
                alerts += [a.api_json() for a in state.rules[key].active_alerts()]
    return {"alerts": alerts}


__all__ = [
    "Alert",
    "GroupEvaluation",
    "GroupState",
    "OutputSample",
    "RuleEvaluator",
    "RuleState",
    "alert_series",
    "alerts_json",
    "fingerprint",
    "query_text",
    "rfc3339",
    "rules_json",
]
