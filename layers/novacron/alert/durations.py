"""Prometheus's duration strings (``model.ParseDuration``), as rule files and Alertmanager configs write them.

Kept apart from the rule file parser so that what only reads durations (the Alertmanager configuration, the
notifier) does not import the PromQL parser.
"""

from __future__ import annotations

import re

_DURATION_RE = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?")
_DURATION_UNITS_MS = (365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1)


def parse_duration_ms(text: str) -> int:
    """Prometheus's ``model.ParseDuration`` (``1h30m``, ``90s``, ``0``) in milliseconds."""
    if text == "0":
        return 0
    if text == "":
        raise ValueError("empty duration string")
    m = _DURATION_RE.fullmatch(text)
    if m is None:
        raise ValueError(f'not a valid duration string: "{text}"')
    return sum(int(part) * unit for part, unit in zip(m.groups(), _DURATION_UNITS_MS, strict=True) if part)


def format_duration(ms: int) -> str:
    """A duration as Prometheus prints one (``1h30m``, ``5m``, ``0s``)."""
    if ms == 0:
        return "0s"
    out = []
    for suffix, unit in zip(("y", "w", "d", "h", "m", "s", "ms"), _DURATION_UNITS_MS, strict=True):
        if ms >= unit:
            out.append(f"{ms // unit}{suffix}")
            ms %= unit
    return "".join(out)
