"""Go's ``fmt`` and ``strconv`` as alert templates and Prometheus's API use them.

Prometheus runs its templates in Go, so a value prints the way ``fmt.Sprint`` prints it (``1e+06``,
``map[a:b]``, ``<nil>``), ``printf`` follows ``fmt.Sprintf``'s verbs and its ``%!d(string=x)``
complaints, and strings become numbers through ``strconv.ParseFloat``'s syntax, not Python's.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from novacron.promql.format import format_float, format_go_value

_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+")
_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf}
_SPECIAL |= {"+infinity": math.inf, "-infinity": -math.inf, "nan": math.nan, "+nan": math.nan, "-nan": math.nan}


def go_parse_float(text: str) -> float:
    """``strconv.ParseFloat(text, 64)``; raises ``ValueError`` worded as Go's error."""
    special = _SPECIAL.get(text.lower())
    if special is not None and text.lower() not in ("+nan", "-nan"):
        return special
    if _DECIMAL.fullmatch(text):
        value = float(text)
    elif _HEX.fullmatch(text):
        sign = -1.0 if text.startswith("-") else 1.0
        value = sign * float.fromhex(text.lstrip("+-"))
    else:
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax')
    if math.isinf(value):
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": value out of range')
    return value


def go_type(value: Any) -> str:
    """The Go type name of a template value, as Go's error messages print it."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if type(value).__name__ == "GoStruct":
        fields = "; ".join(f"{k} {go_type(v)}" for k, v in value.items())
        return f"struct {{ {fields} }}"
    if isinstance(value, Mapping):
        return "map[string]string"
    if isinstance(value, Sequence):
        return "[]interface {}"
    return type(value).__name__


def go_sprint(value: Any) -> str:
    """``fmt.Sprint`` of one value (``%v``)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_go_value(value)
    if type(value).__name__ == "GoStruct":
        return "{" + " ".join(go_sprint(v) for v in value.values()) + "}"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{go_sprint(k)}:{go_sprint(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, Sequence):
        return "[" + " ".join(go_sprint(v) for v in value) + "]"
    return str(value)


def go_float_text(value: float, verb: str = "g", precision: int | None = None) -> str:
    """``strconv.FormatFloat(value, verb, precision, 64)``; ``None`` precision is Go's -1 (shortest)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if verb in "gG" and precision is None:
        text = format_go_value(value)
        return text.upper() if verb == "G" else text
    if verb in "eE" and precision is None:
        text = _shortest_e(repr(float(value)))
        return text.upper() if verb == "E" else text
    if precision is None:  # shortest %f
        return format_float(value)
    return f"{value:.{precision}{verb}}"


def _shortest_e(shortest: str) -> str:
    """Python's shortest repr rewritten in Go's ``'e', -1`` form: ``1e+00``, ``1.5e-07``."""
    sign, digits, exponent = Decimal(shortest).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    power = len(text) - 1 + exponent
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"


_VERB = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?([a-zA-Z%])")


def _bad(verb: str, value: Any) -> str:
    return f"%!{verb}({go_type(value)}={go_sprint(value)})"


def _one(verb: str, flags: str, precision: int | None, value: Any) -> tuple[str, bool]:
    """One formatted operand and whether it is numeric (for zero padding and signs)."""
    if verb == "v":
        if isinstance(value, float) and not isinstance(value, bool):
            return go_float_text(value, "g", precision), True
        return go_sprint(value), isinstance(value, int) and not isinstance(value, bool)
    if verb == "s":
        if isinstance(value, str):
            return (value if precision is None else value[:precision]), False
        if isinstance(value, Mapping | list | tuple) or value is None:
            return go_sprint(value), False
        return _bad(verb, value), False
    if verb == "q":
        if isinstance(value, str):
            return json.dumps(value, ensure_ascii=False), False
        if isinstance(value, int) and not isinstance(value, bool):
            return "'" + chr(value) + "'", False
        return _bad(verb, value), False
    if verb == "t":
        return (("true" if value else "false"), False) if isinstance(value, bool) else (_bad(verb, value), False)
    if isinstance(value, bool) or value is None:
        return _bad(verb, value), False
    if verb in "dxXobc" and isinstance(value, int):
        if verb == "c":
            return chr(value), False
        base = {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb]
        text = format(abs(value), base)
        if "#" in flags and verb in "xX":
            text = "0" + verb + text
        return ("-" if value < 0 else "") + text, True
    if verb in "xX" and isinstance(value, str):
        text = value.encode().hex()
        return (text.upper() if verb == "X" else text), False
    if verb in "eEfFgG" and isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return go_float_text(value), True
        default = None if verb in "gG" else 6
        return go_float_text(value, verb, default if precision is None else precision), True
    return _bad(verb, value), False


def go_sprintf(fmt: str, args: Sequence[Any]) -> str:
    """``fmt.Sprintf`` for the verbs alert templates use: ``v s q d x X o b c t e E f F g G %``."""
    out: list[str] = []
    pos = 0
    used = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        value = args[used]
        used += 1
        precision = None if prec is None else int(prec or "0")
        text, numeric = _one(verb, flags, precision, value)
        if numeric and not text.startswith("-") and text[0:1] != "+":
            if "+" in flags:
                text = "+" + text
            elif " " in flags:
                text = " " + text
        if width is not None and len(text) < int(width):
            pad = int(width) - len(text)
            if "-" in flags:
                text += " " * pad
            elif "0" in flags and numeric and text[-1:].isdigit():
                sign = text[0] if text[0] in "+- " else ""
                text = sign + "0" * pad + text[len(sign) :]
            else:
                text = " " * pad + text
        out.append(text)
    out.append(fmt[pos:])
    if used < len(args):
        extra = ", ".join(f"{go_type(a)}={go_sprint(a)}" for a in args[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
