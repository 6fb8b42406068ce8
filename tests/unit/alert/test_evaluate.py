"""The rule evaluator: Prometheus's alert state machine, recording rules, ALERTS series, API shapes."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from novacron.alert.evaluate import (
    RESOLVED_RETENTION_MS,
    GroupEvaluation,
    OutputSample,
    RuleEvaluator,
    alerts_json,
    rules_json,
)
from novacron.alert.rule_state import GroupState, fingerprint
from novacron.alert.rules import RuleFile, RuleGroup, parse_rule_file
from novacron.promql import Engine
from novacron.query.memory_reader import InMemorySeriesReader
from novacron.series import STALE_NAN, STALE_NAN_BITS

M = 60_000


def rule_file(rules: str, group_extra: str = "") -> RuleFile:
    indented = "\n".join("    " + line for line in rules.strip().splitlines())
    return parse_rule_file(f"groups:\n- name: g\n{group_extra}  rules:\n{indented}\n")


@pytest.fixture
def reader() -> InMemorySeriesReader:
    return InMemorySeriesReader()


@pytest.fixture
def gauge(reader: InMemorySeriesReader) -> Callable[[dict[str, str], list[float | None]], None]:
    """Add a series with one value per minute from 0 (None: no sample)."""

    def add(labels: dict[str, str], values: list[float | None]) -> None:
        points = [(i * M, v) for i, v in enumerate(values) if v is not None]
        reader.add(labels, [t for t, _ in points], [v for _, v in points])

    return add


class Runner:
    """Evaluates one group minute by minute, carrying its state through JSON as a scheduler would."""

    def __init__(self, reader: InMemorySeriesReader, file: RuleFile) -> None:
        self.group: RuleGroup = file.groups[0]
        self.file = file

        def write(out: Sequence[OutputSample]) -> None:
            for s in out:
                reader.add(dict(s.labels), [s.t_ms], [s.value])

        self.evaluator = RuleEvaluator(Engine(reader).instant, external_labels={"cluster": "eu"}, write=write)
        self.state: GroupState | None = None

    def at(self, minute: int) -> GroupEvaluation:
        result = self.evaluator.evaluate_group(self.group, minute * M, self.state)
        self.state = GroupState.from_json(json.loads(json.dumps(result.state.to_json())))
        return result

    def alerts(self) -> list[tuple[str, dict[str, str]]]:
        assert self.state is not None
        return [(a["state"], a["labels"]) for a in alerts_json(self.file, {"g": self.state})["alerts"]]

    def rule_json(self, index: int = 0) -> dict[str, Any]:
        assert self.state is not None
        rules: list[dict[str, Any]] = rules_json(self.file, {"g": self.state})["groups"][0]["rules"]
        return rules[index]


def states(runner: Runner, minutes: range) -> list[str]:
    out = []
    for minute in minutes:
        runner.at(minute)
        found = runner.alerts()
        out.append(found[0][0] if found else "-")
    return out


def test_an_alert_goes_pending_then_fires_after_for(reader, gauge) -> None:
    # Given a value above the threshold from minute 2 to 6, and a rule with for: 2m
    gauge({"__name__": "load", "host": "a"}, [0, 0, 5, 5, 5, 5, 5, 0, 0])
    runner = Runner(reader, rule_file("- alert: Load\n  expr: load > 1\n  for: 2m"))

    # When evaluated every minute
    seen = states(runner, range(9))

    # Then it is pending for 2 minutes, firing until the value drops, then gone from the active list
    assert seen == ["-", "-", "pending", "pending", "firing", "firing", "firing", "-", "-"]


def test_for_zero_fires_at_once(reader, gauge) -> None:
    # Given a rule without for
    gauge({"__name__": "load"}, [5])
    runner = Runner(reader, rule_file("- alert: Load\n  expr: load > 1"))

    # When evaluated once, Then the alert fires immediately
    assert states(runner, range(1)) == ["firing"]


def test_a_pending_alert_that_clears_is_forgotten(reader, gauge) -> None:
    # Given a blip shorter than for
    gauge({"__name__": "load"}, [5, 0, 5, 5, 5])
    runner = Runner(reader, rule_file("- alert: Load\n  expr: load > 1\n  for: 2m"))

    # When evaluated
    seen = states(runner, range(5))

    # Then the second episode starts its own pending period (activeAt restarts)
    assert seen == ["pending", "-", "pending", "pending", "firing"]
    assert runner.rule_json()["alerts"][0]["activeAt"] == "1970-01-01T00:02:00Z"


def test_keep_firing_for_holds_a_firing_alert(reader, gauge) -> None:
    # Given a value that drops for two minutes, and keep_firing_for: 2m
    gauge({"__name__": "load"}, [5, 0, 0, 0, 5, 0, 5])
    runner = Runner(reader, rule_file("- alert: Load\n  expr: load > 1\n  keep_firing_for: 2m"))

    # When evaluated
    seen = states(runner, range(7))

    # Then it keeps firing two evaluations after the condition clears, then resolves; a new episode fires again
    assert seen == ["firing", "firing", "firing", "-", "firing", "firing", "firing"]


def test_keep_firing_since_is_reported_and_reset(reader, gauge) -> None:
    # Given a firing alert whose condition cleared at minute 1
    gauge({"__name__": "load"}, [5, 0, 5])
    runner = Runner(reader, rule_file("- alert: Load\n  expr: load > 1\n  keep_firing_for: 5m"))
    runner.at(0)
    runner.at(1)

    # Then the API shows since when it is kept firing, and the mark goes once the condition holds again
    assert runner.rule_json()["alerts"][0]["keepFiringSince"] == "1970-01-01T00:01:00Z"
    runner.at(2)
    assert "keepFiringSince" not in runner.rule_json()["alerts"][0]


def test_resolved_alerts_are_kept_fifteen_minutes_then_dropped(reader, gauge) -> None:
    # Given an alert that fired at minute 0 and resolved at minute 1
    gauge({"__name__": "load"}, [5, 0] + [0] * 20)
    runner = Runner(reader, rule_file("- alert: Load\n  expr: load > 1"))
    runner.at(0)
    runner.at(1)

    # Then it is kept as inactive with resolvedAt, not listed as active
    assert runner.state is not None
    (kept,) = next(iter(runner.state.rules.values())).alerts.values()
    assert (kept.state, kept.resolved_at_ms) == ("inactive", M)
    assert runner.alerts() == []

    # When more than 15 minutes pass, Then it is dropped
    runner.at(1 + RESOLVED_RETENTION_MS // M)
    assert len(next(iter(runner.state.rules.values())).alerts) == 1
    runner.at(2 + RESOLVED_RETENTION_MS // M)
    assert next(iter(runner.state.rules.values())).alerts == {}


def test_alert_labels_and_annotations_are_templated(reader, gauge) -> None:
    # Given a rule with templated labels and annotations
    gauge({"__name__": "errors", "job": "api", "instance": "a:1"}, [1500])
    rules = """
- alert: Errors
  expr: errors > 10
  labels:
    severity: '{{ if gt $value 1000.0 }}page{{ else }}ticket{{ end }}'
    empty: ''
  annotations:
    summary: '{{ $labels.job }}: {{ humanize $value }} in {{ $externalLabels.cluster }}'
"""
    runner = Runner(reader, rule_file(rules))

    # When evaluated
    runner.at(0)

    # Then labels are the series' (without __name__) plus templated rule labels and alertname
    (alert,) = runner.rule_json()["alerts"]
    assert alert["labels"] == {"alertname": "Errors", "instance": "a:1", "job": "api", "severity": "page"}
    assert alert["annotations"] == {"summary": "api: 1.5k in eu"}
    assert alert["value"] == "1.5e+03"


def test_annotations_follow_the_latest_value(reader, gauge) -> None:
    # Given an alert whose value changes while it fires
    gauge({"__name__": "errors"}, [20, 30])
    runner = Runner(reader, rule_file("- alert: E\n  expr: errors > 10\n  annotations:\n    v: '{{ $value }}'"))

    # When evaluated twice, Then the annotation shows the latest value and activeAt stays
    runner.at(0)
    runner.at(1)
    (alert,) = runner.rule_json()["alerts"]
    assert (alert["annotations"]["v"], alert["activeAt"]) == ("30", "1970-01-01T00:00:00Z")


def test_alerts_series_are_written_as_prometheus_writes_them(reader, gauge) -> None:
    # Given an alert pending at minute 0 and firing at minute 1, gone at minute 2
    gauge({"__name__": "load", "host": "a"}, [5, 5, 0])
    runner = Runner(reader, rule_file("- alert: Load\n  expr: load > 1\n  for: 1m\n  labels: {team: x}"))

    # When evaluated
    first, second, third = runner.at(0), runner.at(1), runner.at(2)

    # Then ALERTS carries alertstate, ALERTS_FOR_STATE the activeAt seconds, and a gone series gets a stale marker
    common = (("alertname", "Load"), ("host", "a"), ("team", "x"))
    alerts_pending = tuple(sorted((("__name__", "ALERTS"), ("alertstate", "pending"), *common)))
    alerts_firing = tuple(sorted((("__name__", "ALERTS"), ("alertstate", "firing"), *common)))
    for_state = tuple(sorted((("__name__", "ALERTS_FOR_STATE"), *common)))
    assert {(s.labels, s.value) for s in first.samples} == {(alerts_pending, 1.0), (for_state, 0.0)}
    assert {s.labels for s in second.samples} == {alerts_firing, for_state, alerts_pending}
    stale = {s.labels for s in second.samples if math.isnan(s.value)}
    assert stale == {alerts_pending}
    assert {s.labels for s in third.samples} == {alerts_firing, for_state}
    assert all(is_stale(s.value) for s in third.samples)


def is_stale(value: float) -> bool:
    bits: int = struct.unpack("<Q", struct.pack("<d", value))[0]
    return bits == STALE_NAN_BITS


def test_recording_rules_rename_and_relabel_and_feed_later_rules(reader, gauge) -> None:
    # Given a recording rule and an alert on its output, in one group
    gauge({"__name__": "errors", "job": "api", "instance": "a"}, [3])
    gauge({"__name__": "errors", "job": "api", "instance": "b"}, [4])
    rules = """
- record: job:errors:sum
  expr: sum by (job) (errors)
  labels: {source: rule}
- alert: JobErrors
  expr: job:errors:sum > 5
"""
    runner = Runner(reader, rule_file(rules, "  labels: {team: core}\n"))

    # When evaluated once
    result = runner.at(0)

    # Then the recorded sample is renamed, carries rule and group labels, and the alert already sees it
    recorded = [s for s in result.samples if dict(s.labels)["__name__"] == "job:errors:sum"]
    assert [(dict(s.labels), s.value) for s in recorded] == [
        ({"__name__": "job:errors:sum", "job": "api", "source": "rule", "team": "core"}, 7.0)
    ]
    assert runner.alerts() == [("firing", {"alertname": "JobErrors", "job": "api", "source": "rule", "team": "core"})]


def test_a_scalar_result_is_one_sample_without_labels(reader) -> None:
    # Given rules whose expressions are scalars
    runner = Runner(reader, rule_file("- record: one\n  expr: '1 + 1'\n- alert: Always\n  expr: vector(1)"))

    # When evaluated, Then the recording has just its name and the alert just alertname
    result = runner.at(0)
    assert (dict(result.samples[0].labels), result.samples[0].value) == ({"__name__": "one"}, 2.0)
    assert runner.alerts() == [("firing", {"alertname": "Always"})]


def test_a_failing_rule_is_recorded_and_the_group_goes_on(reader, gauge) -> None:
    # Given a rule whose result is a range vector (an error) before a good rule
    gauge({"__name__": "load"}, [5])
    runner = Runner(reader, rule_file("- record: bad\n  expr: load[5m]\n- alert: Load\n  expr: load > 1"))

    # When evaluated
    runner.at(0)

    # Then the bad rule has health err and its error, and the next rule still ran
    bad, good = runner.rule_json(0), runner.rule_json(1)
    assert (bad["health"], bad["lastError"]) == ("err", "rule result is not a vector or scalar")
    assert good["health"] == "ok"
    assert "lastError" not in good
    assert good["state"] == "firing"


def test_duplicate_label_sets_after_rule_labels_are_an_error(reader, gauge) -> None:
    # Given two series that differ only in a label the rule overwrites
    gauge({"__name__": "up", "instance": "a"}, [0])
    gauge({"__name__": "up", "instance": "b"}, [0])
    runner = Runner(reader, rule_file("- alert: Down\n  expr: up == 0\n  labels: {instance: all}"))

    # When evaluated, Then the rule fails as Prometheus's does
    runner.at(0)
    assert runner.rule_json()["lastError"] == (
        "vector contains metrics with the same labelset after applying alert labels"
    )


def test_the_group_limit_is_honoured(reader, gauge) -> None:
    # Given three alerting series and a group limit of 2
    for host in "abc":
        gauge({"__name__": "up", "host": host}, [0])
    runner = Runner(reader, rule_file("- alert: Down\n  expr: up == 0", "  limit: 2\n"))

    # When evaluated, Then the rule fails with Prometheus's message and keeps no alerts
    result = runner.at(0)
    assert runner.rule_json()["lastError"] == "exceeded limit of 2 with 3 alerts"
    assert runner.alerts() == []
    assert result.samples == []


def test_recording_limit_counts_series(reader, gauge) -> None:
    # Given three series and a limit of 2 on a recording rule
    for host in "abc":
        gauge({"__name__": "up", "host": host}, [1])
    runner = Runner(reader, rule_file("- record: up:copy\n  expr: up", "  limit: 2\n"))

    # When evaluated, Then the rule fails
    runner.at(0)
    assert runner.rule_json()["lastError"] == "exceeded limit of 2 with 3 series"


def test_recorded_series_that_disappear_get_a_staleness_marker(reader, gauge) -> None:
    # Given a series that exists at minute 0 only (then marked stale in the input)
    gauge({"__name__": "up", "host": "a"}, [1])
    reader.add({"__name__": "up", "host": "a"}, [M], [STALE_NAN])
    runner = Runner(reader, rule_file("- record: up:copy\n  expr: up"))

    # When evaluated at minutes 0 and 1
    runner.at(0)
    second = runner.at(1)

    # Then the rule's output series is marked stale at minute 1
    assert [(dict(s.labels)["__name__"], is_stale(s.value)) for s in second.samples] == [("up:copy", True)]


def test_query_offset_shifts_the_query_time(reader, gauge) -> None:
    # Given a value that appears at minute 3, and a group query_offset of 2m
    gauge({"__name__": "load"}, [None, None, None, 5, 5, 5])
    runner = Runner(reader, rule_file("- alert: Load\n  expr: load > 1", "  query_offset: 2m\n"))

    # When evaluated, Then the alert appears two minutes later
    assert states(runner, range(6)) == ["-", "-", "-", "-", "-", "firing"]


def test_rules_json_reports_the_evaluation(reader, gauge) -> None:
    # Given an evaluated group
    gauge({"__name__": "load"}, [5])
    runner = Runner(reader, rule_file("- alert: Load\n  expr: load > 1\n  for: 5m"))
    runner.at(0)

    # Then the rule has state, health, lastEvaluation and its alerts in the API shape
    rule = runner.rule_json()
    assert rule["state"] == "pending"
    assert rule["health"] == "ok"
    assert rule["lastEvaluation"] == "1970-01-01T00:00:00Z"
    assert rule["evaluationTime"] >= 0
    assert rule["alerts"][0]["state"] == "pending"


def test_fingerprint_is_alertmanagers() -> None:
    # Given label sets, When fingerprinted, Then order does not matter and the empty set is FNV's offset
    assert fingerprint({}) == "cbf29ce484222325"
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})
    assert len(fingerprint({"alertname": "X"})) == 16


def test_state_survives_a_json_round_trip(reader, gauge) -> None:
    # Given a state with pending, firing and resolved alerts
    gauge({"__name__": "load", "host": "a"}, [5, 5, 5])
    gauge({"__name__": "load", "host": "b"}, [5, 0])
    runner = Runner(reader, rule_file("- alert: Load\n  expr: load > 1\n  for: 1m"))
    runner.at(0)
    result = runner.evaluator.evaluate_group(runner.group, M, runner.state)

    # When it goes through JSON, Then it is the same state
    assert GroupState.from_json(json.loads(json.dumps(result.state.to_json()))) == result.state
