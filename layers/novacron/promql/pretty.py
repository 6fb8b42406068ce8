"""PromQL expressions printed as Prometheus's ``format_query`` prints them."""

from __future__ import annotations

import re

from novacron.promql.engine import FUNCTION_ALIASES, STRING_LITERAL, parse
from novacron.promql.format import format_go_value

# A number token of the parser's printed form: not part of a name or a duration (``5m``, ``1h30m``),
# nor an ``@`` time (printed, as by Prometheus, in seconds with three decimals).
_NUMBER = re.compile(r"(?<![\w.])(?<!@ )(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?![\w.])|(?<![\w.+-])Inf\b|\bNaN\b")
_RENAMED = {new: old for old, new in FUNCTION_ALIASES.items()}
_RENAMED_CALL = re.compile(r"(?<![\w:])(" + "|".join(_RENAMED) + r")(?=\()")


def pretty(query: str) -> str:
    """``query`` formatted like Prometheus's ``Pretty``: the parser's layout, Go's number literals.

    The parser prints numbers as decimals (``1700000000``, ``Inf``) where Prometheus prints Go's
    ``%v`` (``1.7e+09``, ``+Inf``); and it knows Prometheus 2's ``holt_winters`` by its Prometheus 3
    name, printed back as the name the query used.
    """
    text = parse(query).prettify()
    aliased = any(old in query for old in FUNCTION_ALIASES)
    out, pos = [], 0
    for literal in STRING_LITERAL.finditer(text):
        out.append(_literals(text[pos : literal.start()], aliased))
        out.append(literal.group())
        pos = literal.end()
    out.append(_literals(text[pos:], aliased))
    return "".join(out)


def _literals(code: str, aliased: bool) -> str:
    code = _NUMBER.sub(lambda m: format_go_value(float(m.group().replace("Inf", "inf"))), code)
    return _RENAMED_CALL.sub(lambda m: _RENAMED[m.group(1)], code) if aliased else code
