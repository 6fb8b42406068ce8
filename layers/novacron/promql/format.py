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
