"""Construct ids derived from wiring names."""

from __future__ import annotations

import re


def pascal(name: str) -> str:
    """``series-index`` -> ``SeriesIndex``: readable, stable construct (and logical) ids."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name) if part)
