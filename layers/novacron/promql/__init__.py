"""PromQL evaluation over a ``SeriesReader``: parse with ``promql_parser``, evaluate with numpy.

The engine (and with it ``promql_parser``, the science layer's package) is imported on first use of
``Engine``, ``parse`` or ``parse_selector``, so that code needing only the value types, the errors or
the number formatting (the notifier, through the alerting store) runs without that layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from novacron.promql.errors import BadData, ExecutionError, PromQLError, QueryTimeout, TooManySamples
from novacron.promql.format import format_float, format_sample
from novacron.promql.values import QueryResult

if TYPE_CHECKING:
    from novacron.promql.engine import Engine, parse, parse_selector

_FROM_ENGINE = frozenset({"Engine", "parse", "parse_selector"})

__all__ = [
    "BadData",
    "Engine",
    "ExecutionError",
    "PromQLError",
    "QueryResult",
    "QueryTimeout",
    "TooManySamples",
    "format_float",
    "format_sample",
    "parse",
    "parse_selector",
]


def __getattr__(name: str) -> Any:
    if name in _FROM_ENGINE:
        from novacron.promql import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
