"""Alertmanager label matchers (0.25 syntax), as routes, inhibit rules and silences use them.

The syntax is Alertmanager's ``pkg/labels`` one, which is looser than PromQL's selector syntax:
``name op value`` with op one of ``=``, ``!=``, ``=~``, ``!~``; the value may be bare
(``severity=critical``) or double-quoted with OpenMetrics escapes (``\\"``, ``\\n``, ``\\\\``; any other
backslash is literal); a list is comma-separated, with optional braces and a tolerated trailing comma
(``{a="b", c=~"d.*",}``). Label names are Prometheus ones (``[a-zA-Z_:][a-zA-Z0-9_:]*``): UTF-8 label
names came to Alertmanager only in 0.27. Values must be valid UTF-8 (a Python ``str`` from decoded
input always is).

Matching reuses :class:`novacron.series.Matcher` with one difference that matters: Alertmanager anchors a
regex as ``^(?:re)$`` *without* PromQL's ``(?s)``, so ``.`` does not match a newline, and ``$`` is the
end of the text (Go), never "before a final newline" (Python's ``$``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from novacron.series import Matcher

LABEL_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# '=~' before '=': otherwise '=' would be taken and '~' would start the value.
_MATCHER = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*?)\s*$", re.DOTALL)
# Alertmanager's MatchType order, which breaks ties when matchers are sorted (route keys).
_OP_ORDER = {"=": 0, "!=": 1, "=~": 2, "!~": 3}
# Python-only regex constructs that Go's RE2 (Alertmanager's engine) rejects.
_NOT_RE2 = re.compile(r"\(\?(?:=|!|<=|<!|>|P=)|(?<!\\)\\[1-9]")


class MatcherError(ValueError):
    """A matcher that does not parse (the message quotes the offending text)."""


@dataclass(frozen=True)
class AlertMatcher(Matcher):
    """One Alertmanager matcher: PromQL's operators, Alertmanager's regex anchoring and string form."""

    @cached_property
    def regex(self) -> re.Pattern[str]:
        # Go's `^(?:re)$`: no DOTALL, and `\Z` because Python's `$` also matches before a final newline.
        if _NOT_RE2.search(self.value):
            raise MatcherError(
                f"invalid regular expression {self.value!r} in matcher for {self.name!r}: "
                "lookarounds, backreferences and atomic groups are not RE2 syntax"
            )
        try:
            return re.compile(f"^(?:{self.value})\\Z")
        except re.error as exc:
            raise MatcherError(
                f"invalid regular expression {self.value!r} in matcher for {self.name!r}: {exc}"
            ) from exc

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{openmetrics_escape(self.value)}"'

    def sort_key(self) -> tuple[str, str, int]:
        """Alertmanager's matcher order: name, then value, then operator."""
        return (self.name, self.value, _OP_ORDER[self.op])

    def to_api(self) -> dict[str, object]:
        """The Alertmanager v2 API form (``name``, ``value``, ``isRegex``, ``isEqual``)."""
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.op in ("=~", "!~"),
            "isEqual": self.op in ("=", "=~"),
        }


def new_matcher(name: str, op: str, value: str) -> AlertMatcher:
    """A matcher, its regex compiled now so that a bad one fails where it is declared."""
    if not LABEL_NAME.fullmatch(name):
        raise MatcherError(f"invalid label name {name!r}")
    try:
        return AlertMatcher(name, op, value)
    except MatcherError:
        raise
    except ValueError as exc:
        raise MatcherError(str(exc)) from exc


def openmetrics_escape(value: str) -> str:
    """Escape a value for a double-quoted matcher (``\\``, newline and ``"``)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def parse_matcher(text: str) -> AlertMatcher:
    """Parse one matcher such as ``severity="critical"``, ``team=~db|infra`` or ``env!=""``."""
    found = _MATCHER.match(text)
    if found is None:
        raise MatcherError(f"bad matcher format: {text}")
    name, op, raw = found.groups()
    return new_matcher(name, op, _unquote(raw))


def _unquote(raw: str) -> str:
    """The value of a matcher's third token, with Alertmanager's tolerant unescaping."""
    quoted = raw.startswith('"')
    body = raw[1:] if quoted else raw
    out: list[str] = []
    escaped = False
    closed = False
    for i, ch in enumerate(body):
        if escaped:
            escaped = False
            out.append({"n": "\n", '"': '"', "\\": "\\"}.get(ch, "\\" + ch))
            continue
        if ch == "\\" and i < len(body) - 1:
            escaped = True
        elif ch == '"':
            if not quoted or i < len(body) - 1:
                raise MatcherError(f"matcher value contains unescaped double quote: {raw}")
            closed = True
        else:
            out.append(ch)
    if quoted and not closed:
        raise MatcherError(f"matcher value contains unescaped double quote: {raw}")
    return "".join(out)


def parse_matchers(text: str) -> list[AlertMatcher]:
    """Parse a comma-separated list of matchers, optionally in braces: ``{a="b", c=~"d"}``.

    Commas inside double quotes do not separate; an empty list (``{}``) is valid.
    """
    body = text.removeprefix("{").removesuffix("}")
    tokens: list[str] = []
    current: list[str] = []
    inside_quotes = escaped = False
    for ch in body:
        if ch == "," and not inside_quotes:
            tokens.append("".join(current))
            current = []
            continue
        if ch == '"':
            if escaped:
                escaped = False
            else:
                inside_quotes = not inside_quotes
        elif ch == "\\":
            escaped = not escaped
        else:
            escaped = False
        current.append(ch)
    last = "".join(current).strip()
    if last:
        tokens.append(last)
    return [parse_matcher(token) for token in tokens]


def sorted_matchers(matchers: Iterable[AlertMatcher]) -> list[AlertMatcher]:
    """The matchers in Alertmanager's canonical order."""
    return sorted(matchers, key=AlertMatcher.sort_key)


def matchers_string(matchers: Sequence[AlertMatcher]) -> str:
    """Alertmanager's ``Matchers.String()``: ``{a="b",c=~"d"}`` (no spaces), in the given order."""
    return "{" + ",".join(str(m) for m in matchers) + "}"


def matches_labels(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher accepts the label set (an absent label reads as ``""``)."""
    return all(m.matches(labels.get(m.name, "")) for m in matchers)
