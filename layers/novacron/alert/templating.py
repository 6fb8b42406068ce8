"""The Go ``text/template`` subset Prometheus expands in alert labels and annotations.

Prometheus prefixes every label/annotation text with ``{{$labels := .Labels}}{{$externalLabels :=
.ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}`` and runs it with
``missingkey=zero`` and its own function map (``humanize``, ``reReplaceAll``...). This module parses
that language (actions, pipelines, variables, ``if``/``else if``/``else``/``range``/``with``/``end``,
``break``/``continue``, trim markers, comments) and executes it with Go's formatting rules, so that
expanded texts equal Prometheus's. Unknown functions and undefined variables are parse errors, as in Go.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus, urlsplit

from novacron.alert.gofmt import go_float_text, go_parse_float, go_sprint, go_sprintf, go_type

# Prometheus's prefix: the variables every alert template can use.
ALERT_TEMPLATE_DEFS = (
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}"
)


class TemplateSyntaxError(Exception):
    """A template that does not parse: ``template: NAME:LINE: message`` as Go words it."""

    def __init__(self, name: str, line: int, message: str) -> None:
        super().__init__(f"template: {name}:{line}: {message}")
        self.line = line
        self.detail = message


class TemplateExecError(Exception):
    """A template that parsed but failed while running (a bad argument, an incompatible comparison)."""


# --- lexing ----------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n]+)
  | (?P<declare>:=)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?))
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<variable>\$[A-Za-z0-9_]*)
  | (?P<dot>\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[()|,=])
    """,
    re.VERBOSE,
)
_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block", "nil"}
_UNSUPPORTED_KEYWORDS = {"define", "template", "block"}
_SPACES = " \t\r\n"


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int  # byte offset of the token in the whole template text


# --- syntax tree -----------------------------------------------------------------------------------


@dataclass
class _Node:
    pos: int


@dataclass
class _Literal(_Node):
    value: Any
    text: str


@dataclass
class _Dot(_Node):
    pass


@dataclass
class _Field(_Node):
    names: list[str]  # .A.B on dot


@dataclass
class _Var(_Node):
    name: str
    names: list[str]  # $x.A.B


@dataclass
class _Ident(_Node):
    name: str


@dataclass
class _Chain(_Node):
    node: _Node  # (pipeline).A.B
    names: list[str]


@dataclass
class _Command(_Node):
    args: list[_Node]


@dataclass
class _Pipe(_Node):
    decl: list[str]
    assign: bool  # ``=`` rather than ``:=``
    cmds: list[_Command]


@dataclass
class _Text(_Node):
    text: str


@dataclass
class _Action(_Node):
    pipe: _Pipe


@dataclass
class _Branch(_Node):
    kind: str  # if, range, with
    pipe: _Pipe
    body: list[_Node]
    otherwise: list[_Node] = field(default_factory=list)


@dataclass
class _Loop(_Node):
    kind: str  # break, continue


def _describe(node: _Node) -> str:
    """A node as Go's ``String()`` writes it (used in execution error messages)."""
    if isinstance(node, _Literal):
        return node.text
    if isinstance(node, _Dot):
        return "."
    if isinstance(node, _Field):
        return "." + ".".join(node.names)
    if isinstance(node, _Var):
        return ".".join([node.name, *node.names])
    if isinstance(node, _Ident):
        return node.name
    if isinstance(node, _Chain):
        return f"{_describe(node.node)}.{'.'.join(node.names)}"
    if isinstance(node, _Command):
        return " ".join(_describe(a) for a in node.args)
    if isinstance(node, _Pipe):
        inner = " | ".join(_describe(c) for c in node.cmds)
        if node.decl:
            inner = f"{', '.join(node.decl)} {'=' if node.assign else ':='} {inner}"
        return f"({inner})"
    return type(node).__name__


# --- parsing ---------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the actions; checks functions and variables as Go's parser does."""

    def __init__(self, text: str, name: str, funcs: Mapping[str, Callable[..., Any]]) -> None:
        self.text = text
        self.name = name
        self.funcs = funcs
        self.scopes: list[list[str]] = [["$"]]
        self.loops = 0
        self.items: list[tuple[int, str | list[_Tok]]] = []
        self.k = 0

    def fail(self, pos: int, message: str) -> TemplateSyntaxError:
        return TemplateSyntaxError(self.name, self.text.count("\n", 0, pos) + 1, message)

    def split(self) -> list[tuple[int, str | list[_Tok]]]:
        """Text pieces (str) and actions (their tokens), with the trim markers applied."""
        items: list[tuple[int, str | list[_Tok]]] = []
        text, pos = self.text, 0
        while True:
            start = text.find("{{", pos)
            if start < 0:
                items.append((pos, text[pos:]))
                return items
            body = start + 2
            literal = text[pos:start]
            trim_left = text[body : body + 1] == "-" and text[body + 1 : body + 2] in _SPACES
            if trim_left:
                literal = literal.rstrip(_SPACES)
                body += 2
            items.append((pos, literal))
            if text.startswith("/*", body):
                close = text.find("*/", body)
                end = text.find("}}", close) if close >= 0 else -1
                between = text[close + 2 : end] if end >= 0 else ""
                if close < 0:
                    raise self.fail(start, "unclosed comment")
                if end < 0 or between not in ("", " -"):
                    raise self.fail(start, "comment ends before closing delimiter")
                pos = end + 2
                if between == " -":
                    pos = len(text) - len(text[pos:].lstrip(_SPACES))
                continue
            end = self._closing(body, start)
            content = text[body:end]
            pos = end + 2
            if content.endswith("-") and content[-2:-1] in tuple(_SPACES):
                content = content[:-1]
                pos = len(text) - len(text[pos:].lstrip(_SPACES))
            toks = self.tokens(body, content)
            if not toks:
                raise self.fail(start, "missing value for command")
            items.append((body, toks))

    def _closing(self, body: int, start: int) -> int:
        """Where the action's ``}}`` is, skipping quoted strings that may contain braces."""
        i, text = body, self.text
        while i < len(text):
            if text.startswith("}}", i):
                return i
            if text[i] in "\"'`":
                m = _TOKEN.match(text, i)
                if m is None or m.lastgroup not in ("string", "raw", "char"):
                    raise self.fail(i, "unterminated quoted string")
                i = m.end()
                continue
            i += 1
        raise self.fail(start, "unclosed action")

    def tokens(self, pos: int, body: str) -> list[_Tok]:
        out: list[_Tok] = []
        i = 0
        while i < len(body):
            m = _TOKEN.match(body, i)
            if m is None:
                raise self.fail(pos + i, f'unexpected "{body[i]}" in command')
            kind = m.lastgroup or ""
            if kind != "space":
                text = m.group()
                if kind == "ident" and text in ("true", "false"):
                    kind = "bool"
                elif kind == "ident" and text in _KEYWORDS:
                    kind = text
                out.append(_Tok(kind, text, pos + i))
            i = m.end()
        return out

    def parse(self) -> list[_Node]:
        self.items = self.split()
        nodes, stop = self.until(())
        assert stop is None
        return nodes

    def until(self, stops: tuple[str, ...]) -> tuple[list[_Node], list[_Tok] | None]:
        """Nodes up to an ``{{else}}``/``{{end}}`` in ``stops`` (returned), or to the end of the text."""
        nodes: list[_Node] = []
        while self.k < len(self.items):
            pos, item = self.items[self.k]
            self.k += 1
            if isinstance(item, str):
                if item:
                    nodes.append(_Text(pos, item))
                continue
            head = item[0]
            if head.kind in ("else", "end"):
                if head.kind not in stops:
                    raise self.fail(head.pos, f"unexpected {{{{{head.kind}}}}}")
                return nodes, item
            if head.kind in _UNSUPPORTED_KEYWORDS:
                raise self.fail(head.pos, f"{{{{{head.kind}}}}} is not supported in alert templates")
            if head.kind in ("if", "range", "with"):
                nodes.append(self.branch(item))
            elif head.kind in ("break", "continue"):
                if self.loops == 0:
                    raise self.fail(head.pos, f"{{{{{head.kind}}}}} outside {{{{range}}}}")
                if len(item) > 1:
                    raise self.fail(item[1].pos, f"unexpected {item[1].text} in {{{{{head.kind}}}}}")
                nodes.append(_Loop(head.pos, head.kind))
            else:
                nodes.append(_Action(head.pos, self.pipeline(item, head, "command")))
        if stops:
            raise self.fail(len(self.text), "unexpected EOF")
        return nodes, None

    def branch(self, toks: list[_Tok]) -> _Branch:
        """``if``/``range``/``with`` up to its ``{{end}}``; ``else if`` nests an ``if`` sharing that end."""
        head = toks[0]
        self.scopes.append([])
        pipe = self.pipeline(toks[1:], head, head.kind)
        self.loops += head.kind == "range"
        body, stop = self.until(("else", "end"))
        self.loops -= head.kind == "range"
        node = _Branch(head.pos, head.kind, pipe, body)
        assert stop is not None
        if stop[0].kind == "else":
            if len(stop) > 1 and stop[1].kind in ("if", "with"):
                node.otherwise = [self.branch(stop[1:])]
            else:
                if len(stop) > 1:
                    raise self.fail(stop[1].pos, f'unexpected "{stop[1].text}" in else')
                node.otherwise, stop = self.until(("end",))
                assert stop is not None
        if stop[0].kind == "end" and len(stop) > 1:
            raise self.fail(stop[1].pos, f'unexpected "{stop[1].text}" in end')
        self.scopes.pop()
        return node

    # pipeline := [decl] command ('|' command)*
    def pipeline(self, toks: list[_Tok], head: _Tok, context: str) -> _Pipe:
        if not toks:
            raise self.fail(head.pos, f"missing value for {context}")
        decl: list[str] = []
        assign = False
        i = 0
        if len(toks) >= 2 and toks[0].kind == "variable" and "." not in toks[0].text:
            if toks[1].kind == "declare" or toks[1].text == "=":
                decl, assign, i = [toks[0].text], toks[1].text == "=", 2
            elif toks[1].text == "," and context == "range" and len(toks) >= 4 and toks[3].kind == "declare":
                decl, i = [toks[0].text, toks[2].text], 4
        if assign and not self._defined(decl[0]):
            raise self.fail(toks[0].pos, f'undefined variable "{decl[0]}"')
        cmds: list[_Command] = []
        while True:
            cmd, i = self.command(toks, i, head)
            cmds.append(cmd)
            if i >= len(toks):
                break
            if toks[i].text == "|":
                i += 1
                continue
            raise self.fail(toks[i].pos, f'unexpected "{toks[i].text}" in operand')
        if not assign:
            self.scopes[-1].extend(decl)
        return _Pipe(head.pos, decl, assign, cmds)

    def command(self, toks: list[_Tok], i: int, head: _Tok) -> tuple[_Command, int]:
        args: list[_Node] = []
        start = toks[i].pos if i < len(toks) else head.pos
        while i < len(toks) and not (toks[i].kind == "punct" and toks[i].text in "|)"):
            node, i = self.operand(toks, i)
            args.append(node)
        if not args:
            raise self.fail(start, "missing value for command")
        return _Command(start, args), i

    def operand(self, toks: list[_Tok], i: int) -> tuple[_Node, int]:
        tok = toks[i]
        node: _Node
        if tok.kind == "string":
            node = _Literal(tok.pos, _unquote(tok.text, self.fail(tok.pos, "invalid syntax")), tok.text)
        elif tok.kind == "raw":
            node = _Literal(tok.pos, tok.text[1:-1], tok.text)
        elif tok.kind == "char":
            char = _unquote('"' + tok.text[1:-1] + '"', self.fail(tok.pos, "invalid syntax"))
            if len(char) != 1:
                raise self.fail(tok.pos, f"malformed character constant: {tok.text}")
            node = _Literal(tok.pos, ord(char), tok.text)
        elif tok.kind == "number":
            node = _Literal(tok.pos, self._number(tok), tok.text)
        elif tok.kind == "bool":
            node = _Literal(tok.pos, tok.text == "true", tok.text)
        elif tok.kind == "nil":
            node = _Literal(tok.pos, None, "nil")
        elif tok.kind == "dot":
            node = _Dot(tok.pos)
        elif tok.kind == "field":
            node = _Field(tok.pos, tok.text[1:].split("."))
        elif tok.kind == "variable":
            if not self._defined(tok.text):
                raise self.fail(tok.pos, f'undefined variable "{tok.text}"')
            node = _Var(tok.pos, tok.text, [])
        elif tok.kind == "ident":
            if tok.text not in self.funcs:
                raise self.fail(tok.pos, f'function "{tok.text}" not defined')
            node = _Ident(tok.pos, tok.text)
        elif tok.kind == "punct" and tok.text == "(":
            j = self._matching_paren(toks, i)
            node = self.pipeline(toks[i + 1 : j], tok, "parenthesized pipeline")
            i = j
        else:
            raise self.fail(tok.pos, f'unexpected "{tok.text}" in operand')
        i += 1
        # A field chain written right after a term, without a space: $x.A, (pipe).A.
        if i < len(toks) and toks[i].kind == "field" and toks[i].pos == toks[i - 1].pos + len(toks[i - 1].text):
            names = toks[i].text[1:].split(".")
            if isinstance(node, _Var):
                node.names = names
            elif isinstance(node, _Pipe):
                node = _Chain(node.pos, node, names)
            else:
                raise self.fail(toks[i].pos, f'unexpected . after term "{_describe(node)}"')
            i += 1
        return node, i

    def _matching_paren(self, toks: list[_Tok], i: int) -> int:
        depth = 0
        for j in range(i, len(toks)):
            if toks[j].kind == "punct" and toks[j].text == "(":
                depth += 1
            elif toks[j].kind == "punct" and toks[j].text == ")":
                depth -= 1
                if depth == 0:
                    return j
        raise self.fail(toks[i].pos, "unclosed left paren")

    def _number(self, tok: _Tok) -> int | float:
        text = tok.text.replace("_", "")
        try:
            if re.fullmatch(r"[+-]?0[xXbBoO].*", text):
                return int(text, 0)
            if re.fullmatch(r"[+-]?\d+", text):
                return int(text, 10)
            return float(text)
        except ValueError:
            raise self.fail(tok.pos, f'illegal number syntax: "{tok.text}"') from None

    def _defined(self, variable: str) -> bool:
        return any(variable in scope for scope in self.scopes)


def _unquote(text: str, error: TemplateSyntaxError) -> str:
    """A Go double-quoted string literal's value."""
    out: list[str] = []
    i = 1
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b"}
    escapes |= {"f": "\f", "v": "\v"}
    while i < len(text) - 1:
        c = text[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt in escapes:
            out.append(escapes[nxt])
            i += 2
        elif nxt in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            digits = text[i + 2 : i + 2 + width]
            if len(digits) != width or not all(ch in "0123456789abcdefABCDEF" for ch in digits):
                raise error
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif nxt in "01234567":
            digits = text[i + 1 : i + 4]
            if len(digits) != 3 or not all(ch in "01234567" for ch in digits):
                raise error
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise error
    return "".join(out)


# --- execution -------------------------------------------------------------------------------------


class GoStruct(dict[str, Any]):
    """A Go struct value: fields by name; a missing field is an error, not a zero value."""


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def truth(value: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings, maps and slices are false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True


@dataclass
class Template:
    """A parsed template; ``execute`` runs it on a data value."""

    name: str
    text: str
    nodes: list[_Node]
    funcs: Mapping[str, Callable[..., Any]]

    def execute(self, data: Any) -> str:
        """The expanded text; raises ``TemplateExecError`` with Go's wording on failure."""
        out: list[str] = []
        _Run(self, data, out).run(self.nodes, data, [("$", data)])
        return "".join(out)


class _Run:
    def __init__(self, template: Template, data: Any, out: list[str]) -> None:
        self.t = template
        self.data = data
        self.out = out

    def fail(self, node: _Node, message: str) -> TemplateExecError:
        text = self.t.text[: node.pos]
        line = text.count("\n") + 1
        col = len(text.encode()) - len(text[: text.rfind("\n") + 1].encode()) if "\n" in text else len(text.encode())
        name = self.t.name
        return TemplateExecError(f'template: {name}:{line}:{col}: executing "{name}" at <{_describe(node)}>: {message}')

    def run(self, nodes: Sequence[_Node], dot: Any, scope: list[tuple[str, Any]]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                self.out.append(node.text)
            elif isinstance(node, _Action):
                value = self.pipe(node.pipe, dot, scope)
                if not node.pipe.decl:
                    self.out.append(self.printable(node, value))
            elif isinstance(node, _Branch):
                self.branch(node, dot, scope)
            elif isinstance(node, _Loop):
                raise _Break() if node.kind == "break" else _Continue()

    def printable(self, node: _Node, value: Any) -> str:
        if isinstance(value, Callable):  # type: ignore[arg-type]
            raise self.fail(node, "can't print function value")
        return "<no value>" if value is None else go_sprint(value)

    def branch(self, node: _Branch, dot: Any, scope: list[tuple[str, Any]]) -> None:
        inner = list(scope)
        if node.kind != "range":
            value = self.pipe(node.pipe, dot, inner)
            if truth(value):
                self.run(node.body, value if node.kind == "with" else dot, inner)
            else:
                self.run(node.otherwise, dot, list(scope))
            return
        pipe = _Pipe(node.pipe.pos, [], False, node.pipe.cmds)
        value = self.pipe(pipe, dot, inner)
        if isinstance(value, Mapping):
            items: list[tuple[Any, Any]] = sorted(value.items())
        elif isinstance(value, list | tuple):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        elif value is None:
            items = []
        else:
            raise self.fail(node, f"range can't iterate over {go_sprint(value)}")
        if not items:
            self.run(node.otherwise, dot, list(scope))
            return
        for key, element in items:
            loop_scope = list(inner)
            if len(node.pipe.decl) == 1:
                loop_scope.append((node.pipe.decl[0], element))
            elif len(node.pipe.decl) == 2:
                loop_scope += [(node.pipe.decl[0], key), (node.pipe.decl[1], element)]
            try:
                self.run(node.body, element, loop_scope)
            except _Break:
                break
            except _Continue:
                continue

    def pipe(self, pipe: _Pipe, dot: Any, scope: list[tuple[str, Any]]) -> Any:
        value: Any = _NOTHING
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, scope, value)
        for name in pipe.decl:
            if pipe.assign:
                for k in range(len(scope) - 1, -1, -1):
                    if scope[k][0] == name:
                        scope[k] = (name, value)
                        break
            else:
                scope.append((name, value))
        return value

    def command(self, cmd: _Command, dot: Any, scope: list[tuple[str, Any]], piped: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, _Ident):
            args = [self.arg(a, dot, scope) for a in cmd.args[1:]]
            if piped is not _NOTHING:
                args.append(piped)
            return self.call(cmd, first.name, args)
        if len(cmd.args) > 1 or piped is not _NOTHING:
            raise self.fail(first, f"can't give argument to non-function {_describe(first)}")
        return self.arg(first, dot, scope)

    def call(self, node: _Node, name: str, args: list[Any]) -> Any:
        func = self.t.funcs[name]
        try:
            return func(*args)
        except _ArgError as exc:
            raise self.fail(node, f"wrong number of args for {name}: {exc}") from None
        except TemplateExecError as exc:
            raise self.fail(node, f"error calling {name}: {exc}") from None

    def arg(self, node: _Node, dot: Any, scope: list[tuple[str, Any]]) -> Any:
        if isinstance(node, _Literal):
            return node.value
        if isinstance(node, _Dot):
            return dot
        if isinstance(node, _Field):
            return self.fields(node, dot, node.names)
        if isinstance(node, _Var):
            value = next((v for k, v in reversed(scope) if k == node.name), None)
            return self.fields(node, value, node.names)
        if isinstance(node, _Ident):
            return self.call(node, node.name, [])
        if isinstance(node, _Pipe):
            return self.pipe(node, dot, list(scope))
        if isinstance(node, _Chain):
            return self.fields(node, self.arg(node.node, dot, scope), node.names)
        raise self.fail(node, "unsupported node")

    def fields(self, node: _Node, value: Any, names: Sequence[str]) -> Any:
        for name in names:
            if isinstance(value, GoStruct):
                if name not in value:
                    raise self.fail(node, f"can't evaluate field {name} in type {go_type(value)}")
                value = value[name]
            elif isinstance(value, Mapping):
                value = value.get(name, "")  # missingkey=zero on map[string]string
            elif value is None:
                raise self.fail(node, f"nil pointer evaluating interface {{}}.{name}")
            else:
                raise self.fail(node, f"can't evaluate field {name} in type {go_type(value)}")
        return value


_NOTHING = object()


class _ArgError(Exception):
    pass


# --- the function map ------------------------------------------------------------------------------


def _float_arg(value: Any) -> float:
    """Prometheus's ``convertToFloat``: numbers, and strings through ``strconv.ParseFloat``."""
    if isinstance(value, bool):
        raise TemplateExecError("can't convert bool to float")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return go_parse_float(value)
        except ValueError as exc:
            raise TemplateExecError(str(exc)) from None
    raise TemplateExecError(f"can't convert {go_type(value)} to float")


def _string_arg(value: Any) -> str:
    if not isinstance(value, str):
        raise TemplateExecError(f"wrong type for value; expected string; got {go_type(value)}")
    return value


def _g4(value: float) -> str:
    """Go's ``%.4g``."""
    return go_sprintf("%.4g", [value])


def humanize(value: Any) -> str:
    """SI prefixes, four significant digits: ``1.235k``, ``12.35m``."""
    v = _float_arg(value)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return _g4(v) + prefix
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return _g4(v) + prefix


def humanize1024(value: Any) -> str:
    """Binary prefixes: ``1ki``, ``1.5Mi``."""
    v = _float_arg(value)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return _g4(v) + prefix


def humanize_duration(value: Any) -> str:
    """Seconds as ``1d 2h 3m 4s``, or ``1.5s``, ``12ms`` below a minute."""
    v = _float_arg(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        whole = int(v)
        seconds, minutes, hours, days = whole % 60, whole // 60 % 60, whole // 3600 % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(value: Any) -> str:
    """A ratio as a percentage: ``0.1234`` → ``12.34%``."""
    return _g4(_float_arg(value) * 100) + "%"


def humanize_timestamp(value: Any) -> str:
    """Unix seconds as Go prints a UTC ``time.Time``: ``2023-01-01 00:00:00.5 +0000 UTC``."""
    v = _float_arg(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    nanos = int(v * 1e9)
    seconds, frac = divmod(nanos, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    fraction = f".{frac:09d}".rstrip("0") if frac else ""
    return f"{stamp}{fraction} +0000 UTC"


def title(text: Any) -> str:
    """Go's ``strings.Title``: the first letter of every word upper-cased."""
    out: list[str] = []
    previous = " "
    for c in _string_arg(text):
        separator = not (previous.isalnum() or previous == "_")
        out.append(c.upper() if separator else c)
        previous = c
    return "".join(out)


def go_regex(pattern: str) -> re.Pattern[str]:
    """A Go RE2 pattern compiled by Python's ``re`` (the syntaxes agree on what alert templates use)."""
    try:
        return re.compile(re.sub(r"\(\?P<", "(?P<", pattern))
    except re.error as exc:
        raise TemplateExecError(f"error parsing regexp: {exc}") from None


def re_replace_all(pattern: Any, replacement: Any, text: Any) -> str:
    """Go's ``regexp.ReplaceAllString``: ``$1``, ``${1}``, ``$name`` expand to groups, ``$$`` is ``$``."""
    regex = go_regex(_string_arg(pattern))
    template = _string_arg(replacement)

    def expand(m: re.Match[str]) -> str:
        out: list[str] = []
        i = 0
        while i < len(template):
            c = template[i]
            if c != "$" or i + 1 >= len(template):
                out.append(c)
                i += 1
                continue
            if template[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            braced = template[i + 1] == "{"
            name_match = re.match(r"[A-Za-z0-9_]+", template[i + 2 if braced else i + 1 :])
            if name_match is None or (braced and not template.startswith("}", i + 2 + name_match.end())):
                out.append(c)
                i += 1
                continue
            name = name_match.group()
            out.append(_group(m, name))
            i += (2 + len(name) + 1) if braced else (1 + len(name))
        return "".join(out)

    return regex.sub(expand, _string_arg(text))


def _group(m: re.Match[str], name: str) -> str:
    try:
        value = m.group(int(name)) if name.isdigit() else m.group(name)
    except IndexError:  # no such group: Go expands it to nothing
        return ""
    return value or ""


def _match(pattern: Any, text: Any) -> bool:
    return go_regex(_string_arg(pattern)).search(_string_arg(text)) is not None


_KIND_ORDER = {bool: "bool", int: "int", float: "float", str: "string"}


def _kind(value: Any) -> str:
    for typ, name in _KIND_ORDER.items():
        if type(value) is typ:
            return name
    return "invalid" if value is None else "other"


def eq(first: Any, *others: Any) -> bool:
    """Go's ``eq``: true if ``first`` equals any of the others; kinds must agree."""
    if not others:
        raise TemplateExecError("missing argument for comparison")
    for other in others:
        if _kind(first) != _kind(other):
            if first is not None and other is not None:
                raise TemplateExecError("incompatible types for comparison")
            continue
        if _kind(first) == "other" and not isinstance(first, str | int | float):
            raise TemplateExecError(f"non-comparable type {go_sprint(first)}: {go_type(first)}")
        if first == other:
            return True
    return False


def ne(first: Any, second: Any) -> bool:
    """Go's ``ne``."""
    return not eq(first, second)


def lt(first: Any, second: Any) -> bool:
    """Go's ``lt``: ordered basic kinds only (numbers, strings), both of one kind."""
    k1, k2 = _kind(first), _kind(second)
    if k1 not in ("int", "float", "string") or k2 not in ("int", "float", "string"):
        raise TemplateExecError("invalid type for comparison")
    if k1 != k2:
        raise TemplateExecError("incompatible types for comparison")
    return bool(first < second)


def le(first: Any, second: Any) -> bool:
    """Go's ``le``."""
    return lt(first, second) or eq(first, second)


def gt(first: Any, second: Any) -> bool:
    """Go's ``gt``."""
    return not le(first, second)


def ge(first: Any, second: Any) -> bool:
    """Go's ``ge``."""
    return not lt(first, second)


def _and(first: Any, *rest: Any) -> Any:
    for value in (first, *rest):
        if not truth(value):
            return value
    return rest[-1] if rest else first


def _or(first: Any, *rest: Any) -> Any:
    for value in (first, *rest):
        if truth(value):
            return value
    return rest[-1] if rest else first


def _not(value: Any) -> bool:
    return not truth(value)


def _len(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list | tuple | dict):
        return len(value)
    raise TemplateExecError(f"len of type {go_type(value)}")


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, Mapping):
            value = value.get(key, "")
        elif isinstance(value, list | tuple) and isinstance(key, int):
            if not 0 <= key < len(value):
                raise TemplateExecError(f"error calling index: index out of range: {key}")
            value = value[key]
        else:
            raise TemplateExecError(f"can't index item of type {go_type(value)}")
    return value


def _print(*args: Any) -> str:
    # fmt.Sprint: a space between operands when neither side is a string.
    out = ""
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_sprint(arg)
    return out


def _println(*args: Any) -> str:
    return " ".join(go_sprint(a) for a in args) + "\n"


def _printf(fmt: Any, *args: Any) -> str:
    return go_sprintf(_string_arg(fmt), list(args))


def _args(*values: Any) -> dict[str, Any]:
    return {f"arg{i}": v for i, v in enumerate(values)}


def _unary(func: Callable[[Any], Any]) -> Callable[..., Any]:
    """A one-argument function that reports Go's arity error when called with another count."""

    def call(*args: Any) -> Any:
        if len(args) != 1:
            raise _ArgError(f"want 1 got {len(args)}")
        return func(args[0])

    return call


def _strings(func: Callable[[str], str]) -> Callable[..., Any]:
    return _unary(lambda v: func(_string_arg(v)))


def _safe_html(value: Any) -> str:
    return _string_arg(value)


def prometheus_functions(
    external_url: str = "", query: Callable[[str], list[GoStruct]] | None = None
) -> dict[str, Callable[..., Any]]:
    """Go's builtins plus Prometheus's template functions (``query`` and friends when given a query function)."""

    def run_query(text: Any) -> list[GoStruct]:
        if query is None:
            raise TemplateExecError("query is not available here")
        return query(_string_arg(text))

    def first(result: Any) -> GoStruct:
        if not isinstance(result, list) or not result:
            raise TemplateExecError("first() called on vector with no elements")
        element: GoStruct = result[0]
        return element

    def sort_by_label(label: Any, result: Any) -> list[GoStruct]:
        return sorted(result, key=lambda s: s["Labels"].get(label, ""))

    return {
        "and": _and,
        "or": _or,
        "not": _unary(_not),
        "len": _unary(_len),
        "index": _index,
        "print": _print,
        "println": _println,
        "printf": _printf,
        "eq": eq,
        "ne": ne,
        "lt": lt,
        "le": le,
        "gt": gt,
        "ge": ge,
        "html": _unary(lambda v: _string_arg(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")),
        "urlquery": _unary(lambda v: quote_plus(go_sprint(v))),
        "humanize": _unary(humanize),
        "humanize1024": _unary(humanize1024),
        "humanizeDuration": _unary(humanize_duration),
        "humanizePercentage": _unary(humanize_percentage),
        "humanizeTimestamp": _unary(humanize_timestamp),
        "toUpper": _strings(str.upper),
        "toLower": _strings(str.lower),
        "title": _unary(title),
        "reReplaceAll": re_replace_all,
        "match": _match,
        "args": _args,
        "safeHtml": _unary(_safe_html),
        "query": _unary(run_query),
        "first": _unary(first),
        "label": lambda label, sample: sample["Labels"].get(label, ""),
        "value": _unary(lambda sample: sample["Value"]),
        "strvalue": _unary(lambda sample: sample["Labels"].get("__value__", "")),
        "sortByLabel": sort_by_label,
        "pathPrefix": lambda: urlsplit(external_url).path,
        "externalURL": lambda: external_url,
    }


# The functions a parse checks names against (the same names whatever the data).
PARSE_FUNCTIONS = prometheus_functions()


def parse_template(text: str, name: str, funcs: Mapping[str, Callable[..., Any]] | None = None) -> Template:
    """Parse a template; raises ``TemplateSyntaxError`` (unknown functions and variables included)."""
    table = PARSE_FUNCTIONS if funcs is None else funcs
    return Template(name, text, _Parser(text, name, table).parse(), table)


def check_alert_template(text: str, name: str) -> str | None:
    """Prometheus's rule-file check of one label/annotation: None, or the parse error's text."""
    try:
        parse_template(ALERT_TEMPLATE_DEFS + text, name)
    except TemplateSyntaxError as exc:
        return f"error parsing template {name}: {exc}"
    return None


def alert_template_data(
    labels: Mapping[str, str], external_labels: Mapping[str, str], external_url: str, value: float
) -> GoStruct:
    """The data Prometheus hands alert templates: ``.Labels``, ``.ExternalLabels``, ``.ExternalURL``, ``.Value``."""
    return GoStruct(Labels=dict(labels), ExternalLabels=dict(external_labels), ExternalURL=external_url, Value=value)


def expand_alert_template(
    text: str,
    name: str,
    data: GoStruct,
    query: Callable[[str], list[GoStruct]] | None = None,
) -> str:
    """Expand a label/annotation as Prometheus does; failures become ``<error expanding template: ...>``."""
    full = ALERT_TEMPLATE_DEFS + text
    funcs = prometheus_functions(str(data.get("ExternalURL", "")), query)
    try:
        template = parse_template(full, name, funcs)
    except TemplateSyntaxError as exc:
        return f"<error expanding template: error parsing template {name}: {exc}>"
    try:
        return template.execute(data)
    except TemplateExecError as exc:
        return f"<error expanding template: error executing template {name}: {exc}>"
    except RecursionError:
        return f"<error expanding template: error executing template {name}: template nests too deeply>"


__all__ = [
    "ALERT_TEMPLATE_DEFS",
    "GoStruct",
    "Template",
    "TemplateExecError",
    "TemplateSyntaxError",
    "alert_template_data",
    "check_alert_template",
    "expand_alert_template",
    "go_float_text",
    "humanize",
    "humanize1024",
    "humanize_duration",
    "humanize_percentage",
    "humanize_timestamp",
    "parse_template",
    "prometheus_functions",
    "title",
]
