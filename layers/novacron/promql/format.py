"""Number formatting exactly as Prometheus writes sample values."""

from __future__ import annotations

import math
from decimal import Decimal


def format_float(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)``: shortest round-trip digits, never an exponent.

    Also how Prometheus renders ``+Inf``, ``-Inf`` and ``NaN`` in its JSON API.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(float(value))  # Python's repr is also the shortest round-tripping form
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    if text.endswith(".0"):
        text = text[:-2]
    return text


def format_sample(value: float) -> str:
    """A vector or matrix sample value as Prometheus's JSON API writes it.

    Prometheus writes sample values with an exponent below 1e-6 and from 1e21 on (Go's
    ``AppendFloat(v, 'e', -1, 64)``: ``1e-07``, ``1e+21``), and like ``format_float`` otherwise;
    scalar results and ``count_values`` labels always use ``format_float``.
    """
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21) and not math.isinf(magnitude):
        return repr(float(value))  # Python's shortest exponent form is Go's: two exponent digits at least
    return format_float(value)


def format_go_value(value: float) -> str:
    """Go's ``fmt.Sprint`` of a float64 (how PromQL prints number literals): ``1.7e+09``, ``1e-05``, ``+Inf``.

    Shortest round-trip digits; an exponent when it is below -4 or at least 6 (Go's ``%v`` is ``%g``
    with the shortest precision, which decides on the exponent as if the precision were 6).
    """
    if math.isnan(value) or math.isinf(value) or value == 0:
        return format_float(value)
    _, digits, exponent = Decimal(repr(abs(float(value)))).normalize().as_tuple()
    assert isinstance(exponent, int)  # finite
    text = "".join(map(str, digits))
    point = len(text) + exponent  # digits before the decimal point
    if -4 <= point - 1 < 6:
        return format_float(value)
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    power = point - 1
    return f"{'-' if value < 0 else ''}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
