"""Rule evaluation checked by the real Prometheus: ``promtool test rules`` and ``promtool check rules``.

NovaCron evaluates a rule file over input series, every minute as promtool does, and writes what it
computed (the firing alerts with their labels and annotations at each time, and the values of the
recorded series and of ``ALERTS``/``ALERTS_FOR_STATE``) as the expectations of a promtool unit-test
file. promtool then evaluates the same rules over the same series with Prometheus 2.42's own rule
engine; the test passes only if every expectation holds there too.

Samples sit on whole minutes and rules are evaluated on whole minutes, so range windows are
written in odd lengths (``[150s]``) and series end with a staleness marker: Prometheus 2.42
includes a window's left edge and NovaCron (as Prometheus 3) does not, and no sample ever sits there.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from novacron.alert.evaluate import OutputSample, RuleEvaluator
from novacron.alert.rule_state import GroupState
from novacron.alert.rules import AlertingRule, RuleFileError, parse_rule_file
from novacron.promql import Engine
from novacron.query.memory_reader import InMemorySeriesReader
from novacron.series import STALE_NAN, Labels
from tests.e2e.conftest import require_binary

pytestmark = pytest.mark.differential

MINUTE_MS = 60_000

RULES = """
groups:
  - name: api
    rules:
      - record: job:http_errors:sum
        expr: sum by (job) (http_errors)
      - record: instance:cpu:max150s
        expr: max_over_time(cpu_usage[150s])
        labels:
          source: recorded
      - alert: HighErrors
        expr: job:http_errors:sum > 10
        for: 3m
        labels:
          severity: '{{ if gt $value 100.0 }}critical{{ else }}warning{{ end }}'
        annotations:
          summary: '{{ $labels.job | toUpper }} errors at {{ humanize $value }}'
          detail: '{{ printf "%.2f" $value }} errors ({{ humanizePercentage 0.1234 }} of budget)'
      - alert: CpuHot
        expr: cpu_usage > 0.8
        keep_firing_for: 2m
        labels:
          team: infra
        annotations:
          description: '{{ $labels.instance }} at {{ $value }} ({{ humanize1024 $value }})'
          since: 'up {{ humanizeDuration 5400 }}, {{ title "hot cpu" }}'
  - name: disk
    rules:
      - alert: DiskFilling
        expr: disk_free_bytes / disk_size_bytes < 0.1
        for: 2m
        labels:
          severity: page
          volume: '{{ reReplaceAll "/dev/(.*)" "$1" $labels.device }}'
        annotations:
          summary: '{{ $labels.device }} has {{ humanize1024 $value }} left of {{ humanize 1234567 }}'
"""


def _values(*parts: str) -> list[str]:
    """Per-minute value tokens: numbers, ``_`` (no sample) and ``stale``."""
    return [token for part in parts for token in part.split()]


# Each series: 30 minutes. Errors climb past 10 then past 100 and drop (pending → firing with a
# label change → resolved); CPU flaps (keep_firing_for holds it); disks fill on one device only.
SERIES: dict[str, list[str]] = {
    'http_errors{job="api",instance="a"}': _values(
        "1 1 2 3 6 8 9 9 9 9", "60 60 60 60 2 2 2 2 2 2", "1 1 1 1 1 1 1 1 1 stale"
    ),
    'http_errors{job="api",instance="b"}': _values(
        "1 1 2 3 6 8 9 9 9 9", "60 60 60 60 2 2 2 2 2 2", "1 1 1 1 1 1 1 1 1 stale"
    ),
    'http_errors{job="web",instance="c"}': _values(
        "0 0 0 0 0 20 20 20 20 20", "20 20 20 20 20 _ 20 20 20 0", "0 0 0 stale"
    ),
    'cpu_usage{instance="a"}': _values("0.5 0.9 0.95 0.5 0.5 0.5 0.5 0.9 0.5 0.9", "0.9 0.9 0.3 0.3 0.3 stale"),
    'cpu_usage{instance="b"}': _values("0.1 0.1 0.1 0.1 0.1 0.1 0.1 0.1 0.1 0.1", "0.85 0.85 0.85 0.85 stale"),
    'disk_free_bytes{device="/dev/sda1"}': _values("500 400 300 200 90 80 70 60 50 40", "30 20 600 600 600 stale"),
    'disk_free_bytes{device="/dev/sdb1"}': _values("900 900 900 900 900 900 900 900 900 900", "900 900 stale"),
    'disk_size_bytes{device="/dev/sda1"}': _values("1000 " * 15, "stale"),
    'disk_size_bytes{device="/dev/sdb1"}': _values("1000 " * 12, "stale"),
}
EVAL_MINUTES = range(0, 26)
# Series queried after each evaluation and compared with promtool's storage (rule outputs only).
CHECKED_EXPRESSIONS = ("job:http_errors:sum", "instance:cpu:max150s", "ALERTS", "ALERTS_FOR_STATE")


def _series_labels(text: str) -> dict[str, str]:
    name, _, rest = text.partition("{")
    labels = {"__name__": name}
    for pair in rest.rstrip("}").split(","):
        if pair:
            key, _, value = pair.partition("=")
            labels[key] = json.loads(value)
    return labels


def _load(reader: InMemorySeriesReader) -> None:
    for text, tokens in SERIES.items():
        points = [(i * MINUTE_MS, STALE_NAN if t == "stale" else float(t)) for i, t in enumerate(tokens) if t != "_"]
        reader.add(_series_labels(text), [t for t, _ in points], [v for _, v in points])


def _promql_labels(labels: Labels) -> str:
    inner = ",".join(f"{name}={json.dumps(value)}" for name, value in labels if name != "__name__")
    return f"{dict(labels).get('__name__', '')}{{{inner}}}"


@dataclass
class Expectations:
    """What NovaCron computed: firing alerts per (minute, alertname), query results per (minute, expr)."""

    alerts: dict[tuple[int, str], list[dict[str, dict[str, str]]]] = field(default_factory=dict)
    samples: dict[tuple[int, str], list[tuple[str, float]]] = field(default_factory=dict)


def novacron_expectations(rules_text: str) -> Expectations:
    """Evaluate every group each minute, as promtool does, and record what promtool will be asked."""
    rule_file = parse_rule_file(rules_text)
    reader = InMemorySeriesReader()
    _load(reader)
    engine = Engine(reader)

    def write(samples: Sequence[OutputSample]) -> None:
        for s in samples:
            reader.add(dict(s.labels), [s.t_ms], [s.value])

    evaluator = RuleEvaluator(engine.instant, write=write)
    states: dict[str, GroupState] = {}
    out = Expectations()
    for minute in EVAL_MINUTES:
        t = minute * MINUTE_MS
        for group in rule_file.groups:
            result = evaluator.evaluate_group(group, t, states.get(group.name))
            states[group.name] = GroupState.from_json(json.loads(json.dumps(result.state.to_json())))
            for rule, rule_state in zip(group.rules, states[group.name].rules.values(), strict=True):
                if isinstance(rule, AlertingRule):
                    firing = [a for a in rule_state.active_alerts() if a.state == "firing"]
                    out.alerts[(minute, rule.alert)] = [
                        {
                            "exp_labels": {k: v for k, v in a.labels.items() if k != "alertname"},
                            "exp_annotations": a.annotations,
                        }
                        for a in firing
                    ]
        for expr in CHECKED_EXPRESSIONS:
            answer = engine.instant(expr, t)
            out.samples[(minute, expr)] = [(_promql_labels(s.labels), float(s.values[0])) for s in answer.series]
    return out


def promtool_test_file(rules_path: Path, expected: Expectations) -> str:
    """A promtool unit-test file over ``SERIES`` whose expectations are NovaCron's answers."""
    alert_tests = [
        {"eval_time": f"{minute}m", "alertname": name, "exp_alerts": alerts}
        for (minute, name), alerts in sorted(expected.alerts.items())
    ]
    expr_tests = [
        {
            "expr": expr,
            "eval_time": f"{minute}m",
            "exp_samples": [{"labels": labels, "value": value} for labels, value in samples],
        }
        for (minute, expr), samples in sorted(expected.samples.items())
    ]
    document = {
        "rule_files": [str(rules_path)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": " ".join(v)} for s, v in SERIES.items()],
                "alert_rule_test": alert_tests,
                "promql_expr_test": expr_tests,
            }
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_binary("promtool")


@pytest.fixture
def rules_path(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text(RULES)
    return path


def test_promtool_agrees_with_novacron_rule_evaluation(promtool: str, rules_path: Path, tmp_path: Path) -> None:
    # Given expectations computed by NovaCron's evaluator over the input series
    expected = novacron_expectations(RULES)
    # (the scenario exercises what it claims to: alerts fire, resolve, and are kept firing)
    firing = {name for (_, name), alerts in expected.alerts.items() if alerts}
    assert firing == {"HighErrors", "CpuHot", "DiskFilling"}
    assert expected.alerts[(25, "HighErrors")] == []
    test_file = tmp_path / "rules_test.yml"
    test_file.write_text(promtool_test_file(rules_path, expected))

    # When promtool evaluates the same rules over the same series
    run = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120)

    # Then every expectation holds in Prometheus too
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]


def test_a_wrong_expectation_is_caught_by_promtool(promtool: str, rules_path: Path, tmp_path: Path) -> None:
    # Given NovaCron's expectations with one firing alert's annotation altered
    expected = novacron_expectations(RULES)
    key = next(k for k, alerts in sorted(expected.alerts.items()) if alerts and k[1] == "HighErrors")
    expected.alerts[key][0]["exp_annotations"]["summary"] += " (wrong)"
    test_file = tmp_path / "rules_test.yml"
    test_file.write_text(promtool_test_file(rules_path, expected))

    # When promtool runs it
    run = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120)

    # Then it fails: the oracle is really comparing
    assert run.returncode == 1
    assert "(wrong)" in run.stdout + run.stderr


GOOD_FILES = {
    "minimal": "groups: []\n",
    "full": RULES,
    "durations": "groups:\n- name: d\n  interval: 1h30m\n  rules:\n  - alert: A\n    expr: up == 0\n    for: 1d12h\n",
    "template control": (
        "groups:\n- name: t\n  rules:\n  - alert: T\n    expr: up\n    annotations:\n"
        "      a: '{{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}'\n"
        "      b: '{{- with $labels.job }}{{ . }}{{ else }}none{{ end -}}'\n"
    ),
}
BAD_FILES = {
    "unknown rule key": "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    severity: page\n",
    "missing expr": "groups:\n- name: g\n  rules:\n  - alert: A\n",
    "record and alert": "groups:\n- name: g\n  rules:\n  - alert: A\n    record: a\n    expr: up\n",
    "neither record nor alert": "groups:\n- name: g\n  rules:\n  - expr: up\n",
    "bad record name": "groups:\n- name: g\n  rules:\n  - record: 'a-b'\n    expr: up\n",
    "bad label name": "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      'x-y': z\n",
    "duplicate group": "groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n",
    "bad duration": "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 5 minutes\n",
    "for on recording rule": "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n    for: 1m\n",
    "promql error": "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: 'sum(up'\n",
    "template error": (
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      s: '{{ $value '\n"
    ),
    "unknown template function": (
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      s: '{{ nope $value }}'\n"
    ),
    "empty group name": "groups:\n- name: ''\n  rules: []\n",
}


@pytest.mark.parametrize(("name", "text"), [*GOOD_FILES.items(), *BAD_FILES.items()], ids=[*GOOD_FILES, *BAD_FILES])
def test_promtool_check_rules_agrees_with_parse_rule_file(promtool: str, tmp_path: Path, name: str, text: str) -> None:
    # Given a rule file, good or bad
    path = tmp_path / "rules.yml"
    path.write_text(text)

    # When promtool and NovaCron check it
    run = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    try:
        parse_rule_file(text)
        novacron_ok = True
    except RuleFileError:
        novacron_ok = False

    # Then both accept it or both reject it
    assert novacron_ok == (run.returncode == 0), f"promtool said: {run.stdout}{run.stderr}"
    assert novacron_ok == (name in GOOD_FILES)
