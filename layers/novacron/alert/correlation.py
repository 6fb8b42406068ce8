"""A tenant's correlation document: how alerts join incidents, its declared topology and business tiers.

The document (YAML, or JSON, which YAML reads too) sets :class:`CorrelationSettings` and declares the
tenant's service topology (each service → the services it calls, added to the edges RPC client metrics
show) and business tiers (1 is the most important)::

    window: 10m              # alerts within this of an incident's last activity may join it
    max_hops: 3
    identifying_labels: [instance, pod, node, host]
    reopen_window: 30m
    topology:
      frontend: [checkout, product-catalog]
      checkout: [payment]
    tiers:
      checkout: 1
      payment: 1

Every field is optional; a missing one keeps the default the caller gives (the alert function's own
settings). ``parse_correlation`` checks everything and reports *every* problem, each naming its line (when
the text is YAML or JSON that YAML reads; JSON indented with tabs is read as JSON, without lines) and the
field at fault: unknown keys, repeated keys, bad durations, tiers outside 1..3, self-calls, names that are
not strings, more than :data:`MAX_SERVICES` services or :data:`MAX_CALLS` calls.
"""

from __future__ import annotations

import io
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

from novacron.alert.durations import format_duration, parse_duration_ms
from novacron.alert.incidents import CorrelationSettings
from novacron.alert.rules import LABEL_NAME_RE
from novacron.alert.topology import Topology

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_SERVICES = 1_000
MAX_CALLS = 20_000  # declared edges; also bounds the work a document of YAML aliases can cause
MAX_PROBLEMS = 100  # reported at once; checking stops there
MAX_NAME_CHARS = 200
MAX_HOPS = 10
MAX_WINDOW_S = 86_400  # a day: the window an alert may join an incident within
MAX_REOPEN_WINDOW_S = 7 * 86_400  # the alert function looks back a week for active incidents
TIERS = (1, 2, 3)
FIELDS = ("window", "max_hops", "identifying_labels", "reopen_window", "topology", "tiers")

# Shown until a tenant stores its own: the defaults of a default deployment, and how to extend them.
DEFAULT_TEXT = """\
# How alerts are correlated into incidents (docs/alerting.md, "Correlation settings").
window: 10m              # alerts within this of an incident's last activity may join it
max_hops: 3              # how far apart in the call graph two services may be and still be related
identifying_labels: [instance, pod, node, host]
reopen_window: 30m       # an alert firing again this soon after its incident resolved reopens it
topology: {}             # service: [the services it calls], added to what RPC client metrics show
tiers: {}                # service: business tier, 1 (the most important), 2 or 3
"""

_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_NULL_TAG = "tag:yaml.org,2002:null"
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Problem:
    """One problem of a document: its 1-based line (None when not known), the field and what is wrong."""

    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.field}: {self.message}" if self.field else f"{where}{self.message}"


class CorrelationError(ValueError):
    """An invalid correlation document; ``problems`` holds every problem found, in document order."""

    def __init__(self, problems: list[Problem]) -> None:
        # In document order (fields are checked in a fixed order); problems without a line keep theirs, last.
        self.problems = sorted(problems, key=lambda p: p.line if p.line is not None else sys.maxsize)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class CorrelationConfig:
    """A tenant's correlation settings and declared topology."""

    settings: CorrelationSettings = field(default_factory=CorrelationSettings)
    topology: Topology = field(default_factory=Topology)

    def to_json(self) -> dict[str, Any]:
        """The document, complete, as JSON-ready data (which ``parse_correlation`` reads back as it is)."""
        s = self.settings
        return {
            "window": format_duration(s.window_s * 1000),
            "max_hops": s.max_hops,
            "identifying_labels": list(s.identifying_labels),
            "reopen_window": format_duration(s.reopen_window_s * 1000),
            "topology": {caller: sorted(callees) for caller, callees in sorted(self.topology.calls.items())},
            "tiers": dict(sorted(s.tiers.items())),
        }

    def summary(self) -> dict[str, int]:
        """How much the document declares: services named (topology and tiers), calls and tiers."""
        services = self.topology.services() | set(self.settings.tiers)
        return {"services": len(services), "calls": len(self.topology.edges()), "tiers": len(self.settings.tiers)}


def parse_correlation(text: str, defaults: CorrelationSettings | None = None) -> CorrelationConfig:
    """The configuration of a correlation document; a field it leaves out keeps ``defaults``' value.

    Raises :class:`CorrelationError` listing every problem (at most :data:`MAX_PROBLEMS`).
    """
    root = _root(text)
    checker = _Checker()
    try:
        config = checker.document(root, defaults or CorrelationSettings())
    except _Stop:
        config = None
    if checker.problems or config is None:
        raise CorrelationError(checker.problems)
    return config


def _root(text: str) -> yaml.Node | None:
    """The document's node tree: as YAML (with lines), else as JSON (without), else the YAML error."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        try:
            data = json.loads(text)
        except ValueError:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            raise CorrelationError(
                [Problem(line, "", f"invalid YAML: {getattr(exc, 'problem', None) or exc}")]
            ) from None
        # Nodes of JSON data carry no marks: problems are named by their field only.
        return yaml.SafeDumper(io.StringIO()).represent_data(data)


class _Stop(Exception):
    """Checking stopped: too many problems, or a document too large to go on with."""


def _line(node: yaml.Node) -> int | None:
    mark = node.start_mark
    return int(mark.line) + 1 if mark is not None else None


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


def _shown(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return repr(node.value) if node.tag == _STR_TAG else str(node.value)
    return "a mapping" if isinstance(node, yaml.MappingNode) else "a list"


class _Checker:
    """Walks the node tree, building the configuration and collecting problems."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.services: set[str] = set()
        self.calls = 0

    def problem(self, node: yaml.Node, where: str, message: str) -> None:
        self.problems.append(Problem(_line(node), where, message))
        if len(self.problems) >= MAX_PROBLEMS:
            self.problems.append(Problem(None, "", f"checking stopped after {MAX_PROBLEMS} problems"))
            raise _Stop

    def document(self, root: yaml.Node | None, defaults: CorrelationSettings) -> CorrelationConfig:
        if root is None or _is_null(root):
            return CorrelationConfig(defaults)
        top = self.mapping(root, "", FIELDS)
        window = self.duration(top["window"], "window", 1, MAX_WINDOW_S) if "window" in top else None
        hops = self.whole_number(top["max_hops"], "max_hops", MAX_HOPS) if "max_hops" in top else None
        labels = self.label_names(top["identifying_labels"]) if "identifying_labels" in top else None
        reopen = (
            self.duration(top["reopen_window"], "reopen_window", 0, MAX_REOPEN_WINDOW_S)
            if "reopen_window" in top
            else None
        )
        calls = self.topology(top["topology"]) if "topology" in top else {}
        tiers = self.tiers(top["tiers"]) if "tiers" in top else {}
        settings = CorrelationSettings(
            window_s=defaults.window_s if window is None else window,
            max_hops=defaults.max_hops if hops is None else hops,
            identifying_labels=defaults.identifying_labels if labels is None else labels,
            reopen_window_s=defaults.reopen_window_s if reopen is None else reopen,
            tiers=tiers if "tiers" in top else dict(defaults.tiers),
        )
        return CorrelationConfig(settings, Topology.declared(calls))

    # --- shapes ---

    def mapping(self, node: yaml.Node, where: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
        """A mapping's values by field name (unknown and repeated fields are problems)."""
        out: dict[str, yaml.Node] = {}
        for key, value in self.entries(node, where, "fields"):
            name = self.name(key, where, "field name")
            if name is None:
                continue
            if name not in allowed:
                self.problem(key, _path(where, name), f"unknown field (the fields are {', '.join(allowed)})")
            else:
                out[name] = value
        return out

    def entries(self, node: yaml.Node, where: str, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
        """A mapping's (key, value) pairs; a key set twice is a problem, and its second value left out."""
        if _is_null(node):
            return []
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, where or "the document", f"expected a mapping of {what}, not {_shown(node)}")
            return []
        seen: dict[str, yaml.Node] = {}
        pairs = []
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag == _STR_TAG:
                first = seen.setdefault(key.value, key)
                if first is not key:
                    at = _line(first)
                    self.problem(key, _path(where, key.value), "set twice" + (f" (first at line {at})" if at else ""))
                    continue
            pairs.append((key, value))
        return pairs

    def sequence(self, node: yaml.Node, where: str, what: str) -> list[yaml.Node]:
        if _is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, where, f"expected a list of {what}, not {_shown(node)}")
            return []
        return list(node.value)

    def name(self, node: yaml.Node, where: str, what: str) -> str | None:
        """A string scalar (a quoted number is one; a bare number, boolean or null is not)."""
        if not isinstance(node, yaml.ScalarNode) or node.tag != _STR_TAG:
            hint = f' (quote it: "{node.value}")' if isinstance(node, yaml.ScalarNode) else ""
            self.problem(node, where or "the document", f"a {what} must be a string, not {_shown(node)}{hint}")
            return None
        text = str(node.value)
        if not text.strip() or len(text) > MAX_NAME_CHARS or not text.isprintable():
            self.problem(
                node, where or "the document", f"{text!r} is not a {what}: 1 to {MAX_NAME_CHARS} printable characters"
            )
            return None
        return text

    # --- values ---

    def duration(self, node: yaml.Node, where: str, least_s: int, most_s: int) -> int | None:
        """Whole seconds of a Prometheus duration (``90s``, ``10m``, ``1h30m``) within [least_s, most_s]."""
        if not isinstance(node, yaml.ScalarNode) or node.tag not in (_STR_TAG, _INT_TAG):
            self.problem(node, where, f"expected a duration such as 10m, not {_shown(node)}")
            return None
        try:
            ms = parse_duration_ms(str(node.value))
        except ValueError as exc:
            self.problem(node, where, f"{exc} (a duration such as 90s, 10m or 1h30m)")
            return None
        if ms % 1000:
            self.problem(node, where, f"{node.value} is not a whole number of seconds")
            return None
        if not least_s <= ms // 1000 <= most_s:
            bounds = f"{format_duration(least_s * 1000)} to {format_duration(most_s * 1000)}"
            self.problem(node, where, f"{node.value} is out of range: {bounds}")
            return None
        return ms // 1000

    def whole_number(self, node: yaml.Node, where: str, most: int) -> int | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag != _INT_TAG or not _DIGITS.fullmatch(node.value):
            self.problem(node, where, f"expected a whole number from 0 to {most}, not {_shown(node)}")
            return None
        if int(node.value) > most:
            self.problem(node, where, f"{node.value} is out of range: 0 to {most}")
            return None
        return int(node.value)

    def label_names(self, node: yaml.Node) -> tuple[str, ...]:
        found: list[str] = []
        for i, item in enumerate(self.sequence(node, "identifying_labels", "label names")):
            where = f"identifying_labels[{i}]"
            label = self.name(item, where, "label name")
            if label is None:
                continue
            if not LABEL_NAME_RE.fullmatch(label):
                self.problem(item, where, f"{label!r} is not a label name")
            elif label in found:
                self.problem(item, where, f"{label!r} is listed twice")
            else:
                found.append(label)
        return tuple(found)

    def service(self, node: yaml.Node, where: str) -> str | None:
        """A service name, counted against :data:`MAX_SERVICES`."""
        name = self.name(node, where, "service name")
        if name is not None and name not in self.services:
            if len(self.services) >= MAX_SERVICES:
                self.problem(node, where, f"more than {MAX_SERVICES} services are named")
                raise _Stop
            self.services.add(name)
        return name

    def topology(self, node: yaml.Node) -> dict[str, list[str]]:
        calls: dict[str, list[str]] = {}
        for caller_node, callees_node in self.entries(node, "topology", "services"):
            caller = self.service(caller_node, "topology")
            if caller is None:
                continue
            where = _path("topology", caller)
            callees: list[str] = []
            for i, item in enumerate(self.sequence(callees_node, where, "the services it calls")):
                callee = self.service(item, f"{where}[{i}]")
                if callee is None:
                    continue
                if callee == caller:
                    self.problem(item, f"{where}[{i}]", f"{caller!r} cannot call itself")
                elif callee in callees:
                    self.problem(item, f"{where}[{i}]", f"{callee!r} is listed twice")
                else:
                    callees.append(callee)
                    self.calls += 1
                    if self.calls > MAX_CALLS:
                        self.problem(item, f"{where}[{i}]", f"more than {MAX_CALLS} calls are declared")
                        raise _Stop
            calls[caller] = callees
        return calls

    def tiers(self, node: yaml.Node) -> dict[str, int]:
        tiers: dict[str, int] = {}
        for service_node, tier_node in self.entries(node, "tiers", "services"):
            service = self.service(service_node, "tiers")
            if service is None:
                continue
            where = _path("tiers", service)
            valid = isinstance(tier_node, yaml.ScalarNode) and tier_node.tag == _INT_TAG
            if not valid or tier_node.value not in {str(t) for t in TIERS}:
                self.problem(tier_node, where, f"a tier is 1 (the most important), 2 or 3, not {_shown(tier_node)}")
                continue
            tiers[service] = int(tier_node.value)
        return tiers


def _path(where: str, name: str) -> str:
    """``topology.checkout``; a name that is not a plain word is quoted (``tiers."a.b"``)."""
    shown = name if re.fullmatch(r"[\w-]+", name) else json.dumps(name)
    return f"{where}.{shown}" if where else shown
