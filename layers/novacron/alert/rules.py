"""Prometheus rule files: the model, the parser and the validation ``promtool check rules`` does.

A file is parsed with YAML's node API so that every error points at the line and column of the
offending node, and every error is collected (not only the first), as ``promtool check rules``
reports them. The accepted shape is Prometheus's own (``groups`` of alerting and recording rules);
``query_offset`` and group ``labels`` (newer Prometheus fields) are accepted too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from novacron.alert.durations import parse_duration_ms
from novacron.alert.templating import check_alert_template
from novacron.promql import BadData, parse
from novacron.promql.pretty import pretty

METRIC_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_GROUP_KEYS = ("name", "interval", "limit", "query_offset", "labels", "rules")
_RULE_KEYS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")
# What Prometheus's API reports for a rule that has never been evaluated.
NEVER = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class RuleIssue:
    """One problem in a rule file, at the 1-based line and column of the node it is about."""

    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message}"


class RuleFileError(ValueError):
    """A rule file with problems; ``issues`` holds all of them, in file order."""

    def __init__(self, source: str, issues: list[RuleIssue]) -> None:
        self.source = source
        self.issues = sorted(issues, key=lambda i: (i.line, i.column))
        super().__init__("\n".join(f"{source}:{issue}" for issue in self.issues))


@dataclass(frozen=True)
class RecordingRule:
    """``record: name`` with ``expr`` and optional ``labels``."""

    record: str
    expr: str
    labels: dict[str, str] = field(default_factory=dict)
    line: int = 0

    @property
    def name(self) -> str:
        """The rule's name (the recorded metric)."""
        return self.record

    def to_json(self) -> dict[str, Any]:
        """The rule in ``/api/v1/rules`` shape, never evaluated."""
        out: dict[str, Any] = {"name": self.record, "query": query_text(self.expr)}
        if self.labels:  # Prometheus omits a recording rule's empty labels
            out["labels"] = dict(sorted(self.labels.items()))
        return out | {"health": "unknown", "evaluationTime": 0, "lastEvaluation": NEVER, "type": "recording"}


@dataclass(frozen=True)
class AlertingRule:
    """``alert: name`` with ``expr``, ``for``, ``keep_firing_for``, ``labels`` and ``annotations``."""

    alert: str
    expr: str
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    line: int = 0

    @property
    def name(self) -> str:
        """The rule's name (the ``alertname`` label of its alerts)."""
        return self.alert

    def to_json(self) -> dict[str, Any]:
        """The rule in ``/api/v1/rules`` shape, never evaluated."""
        return {
            "state": "inactive",
            "name": self.alert,
            "query": query_text(self.expr),
            "duration": self.for_ms / 1000,
            "keepFiringFor": self.keep_firing_for_ms / 1000,
            "labels": dict(sorted(self.labels.items())),
            "annotations": dict(sorted(self.annotations.items())),
            "alerts": [],
            "health": "unknown",
            "evaluationTime": 0,
            "lastEvaluation": NEVER,
            "type": "alerting",
        }


Rule = RecordingRule | AlertingRule


@dataclass(frozen=True)
class RuleGroup:
    """A named group of rules evaluated in order, every ``interval`` (None: the global default)."""

    name: str
    rules: tuple[Rule, ...]
    interval_ms: int | None = None
    limit: int = 0
    query_offset_ms: int = 0
    labels: dict[str, str] = field(default_factory=dict)

    def effective_interval_ms(self, default_ms: int) -> int:
        """The group's interval, or ``default_ms`` when the file gives none."""
        return self.interval_ms if self.interval_ms else default_ms


@dataclass(frozen=True)
class RuleFile:
    """A parsed, valid rule file."""

    source: str
    groups: tuple[RuleGroup, ...]

    def to_json(self, default_interval_ms: int = 60_000) -> dict[str, Any]:
        """The file's groups in the shape of ``/api/v1/rules``'s ``data`` (rules never evaluated)."""
        return {
            "groups": [
                {
                    "name": g.name,
                    "file": self.source,
                    "rules": [r.to_json() for r in g.rules],
                    "interval": g.effective_interval_ms(default_interval_ms) / 1000,
                    "limit": g.limit,
                    "evaluationTime": 0,
                    "lastEvaluation": NEVER,
                }
                for g in self.groups
            ]
        }


def query_text(expr: str) -> str:
    """An expression as Prometheus's API shows it: the parser's one-line form."""
    try:
        text = pretty(expr)
    except BadData:
        return expr.strip()
    return text if "\n" not in text else " ".join(expr.split())


# --- parsing -------------------------------------------------------------------------------------


class _Checker:
    """Walks the YAML node tree, building the model and collecting issues."""

    def __init__(self) -> None:
        self.issues: list[RuleIssue] = []

    def issue(self, node: yaml.Node, message: str, line_offset: int = 0) -> None:
        mark = node.start_mark
        self.issues.append(RuleIssue(mark.line + 1 + line_offset, mark.column + 1, message))

    def mapping(self, node: yaml.Node, what: str, allowed: tuple[str, ...]) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """A mapping node's entries by key, reporting unknown and repeated keys."""
        if not isinstance(node, yaml.MappingNode):
            self.issue(node, f"{what} must be a mapping, not {_kind(node)}")
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else ""
            if name in out:
                self.issue(key, f'mapping key "{name}" already defined at line {out[name][0].start_mark.line + 1}')
            elif name not in allowed:
                self.issue(key, f"field {name} not found in {what} (allowed: {', '.join(allowed)})")
            else:
                out[name] = (key, value)
        return out

    def scalar(self, node: yaml.Node, what: str) -> str | None:
        if isinstance(node, yaml.ScalarNode):
            return str(node.value) if node.tag != "tag:yaml.org,2002:null" else ""
        self.issue(node, f"{what} must be a string, not {_kind(node)}")
        return None

    def duration(self, node: yaml.Node, what: str) -> int:
        text = self.scalar(node, what)
        if text is None:
            return 0
        try:
            return parse_duration_ms(text)
        except ValueError as exc:
            self.issue(node, f"{what}: {exc}")
            return 0

    def string_map(
        self, node: yaml.Node, what: str, check_name: Callable[[str], bool], where: str = ""
    ) -> dict[str, str]:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.issue(node, f"{what}s must be a mapping, not {_kind(node)}")
            return {}
        out: dict[str, str] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else ""
            if name in out:
                self.issue(key, f'mapping key "{name}" already defined')
                continue
            if not check_name(name):
                self.issue(key, f"{where}invalid {what} name: {name}")
            text = self.scalar(value, f"{what} {name!r}")
            out[name] = text if text is not None else ""
        return out

    # --- the document ---

    def file(self, root: yaml.Node | None) -> list[RuleGroup]:
        if root is None:
            return []
        top = self.mapping(root, "the rule file", ("groups",))
        if "groups" not in top:
            return []
        groups_node = top["groups"][1]
        if isinstance(groups_node, yaml.ScalarNode) and groups_node.tag == "tag:yaml.org,2002:null":
            return []
        if not isinstance(groups_node, yaml.SequenceNode):
            self.issue(groups_node, f"groups must be a list, not {_kind(groups_node)}")
            return []
        groups: list[RuleGroup] = []
        seen: dict[str, int] = {}
        for node in groups_node.value:
            group = self.group(node)
            if group is None:
                continue
            if group.name in seen:
                self.issue(
                    node, f'groupname: "{group.name}" is repeated in the same file (first at line {seen[group.name]})'
                )
            seen.setdefault(group.name, node.start_mark.line + 1)
            groups.append(group)
        return groups

    def group(self, node: yaml.Node) -> RuleGroup | None:
        entries = self.mapping(node, "a rule group", _GROUP_KEYS)
        if not isinstance(node, yaml.MappingNode):
            return None
        name = self.scalar(entries["name"][1], "name") if "name" in entries else ""
        if not name:
            self.issue(entries["name"][1] if "name" in entries else node, "Groupname must not be empty")
        interval = self.duration(entries["interval"][1], "interval") if "interval" in entries else None
        offset = self.duration(entries["query_offset"][1], "query_offset") if "query_offset" in entries else 0
        limit = 0
        if "limit" in entries:
            text = self.scalar(entries["limit"][1], "limit")
            if text is not None and re.fullmatch(r"\d+", text):
                limit = int(text)
            elif text is not None:
                self.issue(entries["limit"][1], f"limit must be a non-negative integer, not {text!r}")
        labels = self._labels(entries["labels"][1]) if "labels" in entries else {}
        rules: list[Rule] = []
        rules_node = entries["rules"][1] if "rules" in entries else None
        if isinstance(rules_node, yaml.SequenceNode):
            for index, rule_node in enumerate(rules_node.value, start=1):
                rule = self.rule(rule_node, name or "", index)
                if rule is not None:
                    rules.append(rule)
        elif rules_node is not None and not (
            isinstance(rules_node, yaml.ScalarNode) and rules_node.tag == "tag:yaml.org,2002:null"
        ):
            self.issue(rules_node, f"rules must be a list, not {_kind(rules_node)}")
        return RuleGroup(name or "", tuple(rules), interval, limit, offset, labels)

    def _labels(self, node: yaml.Node, where: str = "") -> dict[str, str]:
        valid: Callable[[str], bool] = lambda n: LABEL_NAME_RE.fullmatch(n) is not None and n != "__name__"  # noqa: E731
        return self.string_map(node, "label", valid, where)

    def rule(self, node: yaml.Node, group: str, index: int) -> Rule | None:
        entries = self.mapping(node, "a rule", _RULE_KEYS)
        if not isinstance(node, yaml.MappingNode):
            return None
        before = len(self.issues)
        record = self.scalar(entries["record"][1], "record") if "record" in entries else ""
        alert = self.scalar(entries["alert"][1], "alert") if "alert" in entries else ""
        name = record or alert or ""
        where = f'group "{group}", rule {index}, "{name}"'
        if record and alert:
            self.issue(entries["alert"][0], f"{where}: only one of 'record' and 'alert' must be set")
        elif not record and not alert:
            self.issue(node, f"{where}: one of 'record' or 'alert' must be set")
        expr = self._expr(entries, node, where)
        for_ms = self.duration(entries["for"][1], f"{where}: for") if "for" in entries else 0
        keep_ms = (
            self.duration(entries["keep_firing_for"][1], f"{where}: keep_firing_for")
            if "keep_firing_for" in entries
            else 0
        )
        labels = self._labels(entries["labels"][1], f"{where}: ") if "labels" in entries else {}
        annotations = {}
        if "annotations" in entries:
            valid: Callable[[str], bool] = lambda n: LABEL_NAME_RE.fullmatch(n) is not None  # noqa: E731
            annotations = self.string_map(entries["annotations"][1], "annotation", valid, f"{where}: ")
        if record:
            if not METRIC_NAME_RE.fullmatch(record):
                self.issue(entries["record"][1], f"{where}: invalid recording rule name: {record}")
            for key in ("annotations", "for", "keep_firing_for"):
                if key in entries:
                    self.issue(entries[key][0], f"{where}: invalid field '{key}' in recording rule")
        if alert:
            self._templates(entries, alert, where)
        if len(self.issues) > before or not (record or alert) or (record and alert):
            return None
        if record:
            return RecordingRule(record, expr, labels, node.start_mark.line + 1)
        return AlertingRule(alert or "", expr, for_ms, keep_ms, labels, annotations, node.start_mark.line + 1)

    def _expr(self, entries: dict[str, tuple[yaml.Node, yaml.Node]], node: yaml.Node, where: str) -> str:
        if "expr" not in entries:
            self.issue(node, f"{where}: field 'expr' must be set in rule")
            return ""
        expr_node = entries["expr"][1]
        expr = self.scalar(expr_node, "expr")
        if expr is None:
            return ""
        if expr.strip() == "":
            self.issue(expr_node, f"{where}: field 'expr' must be set in rule")
            return ""
        try:
            parse(expr)
        except BadData as exc:
            self.issue(expr_node, f"{where}: could not parse expression: {exc}")
        return expr

    def _templates(self, entries: dict[str, tuple[yaml.Node, yaml.Node]], alert: str, where: str) -> None:
        """Every label and annotation of an alerting rule must parse as a template."""
        for key in ("labels", "annotations"):
            node = entries.get(key, (None, None))[1]
            if not isinstance(node, yaml.MappingNode):
                continue
            for name_node, value_node in node.value:
                if not isinstance(value_node, yaml.ScalarNode):
                    continue
                error = check_alert_template(str(value_node.value), f"__{alert}")
                if error is not None:
                    line = _template_error_line(error)
                    kind = "label" if key == "labels" else "annotation"
                    self.issue(value_node, f'{where}: {kind} "{name_node.value}": {error}', line - 1)


def _template_error_line(error: str) -> int:
    m = re.search(r"template: [^:]*:(\d+):", error)
    return int(m.group(1)) if m else 1


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"the scalar {node.value!r}"


def parse_rule_file(text: str, source: str = "rules.yml") -> RuleFile:
    """Parse and validate a Prometheus rule file; raises ``RuleFileError`` listing every problem."""
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise RuleFileError(source, [RuleIssue(line, column, f"invalid YAML: {exc.problem}")]) from None
    checker = _Checker()
    if len(documents) > 1:
        checker.issue(documents[1], "a rule file holds one YAML document")
    groups = checker.file(documents[0] if documents else None)
    if checker.issues:
        raise RuleFileError(source, checker.issues)
    return RuleFile(source, tuple(groups))


def iter_rules(rule_file: RuleFile) -> Iterator[tuple[RuleGroup, Rule]]:
    """Every (group, rule) of a file, in evaluation order."""
    for group in rule_file.groups:
        for rule in group.rules:
            yield group, rule
