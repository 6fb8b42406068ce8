"""PromQL evaluation over a ``SeriesReader``: parse with ``promql_parser``, evaluate with numpy."""

from novacron.promql.engine import Engine, parse, parse_selector
from novacron.promql.errors import BadData, ExecutionError, PromQLError, QueryTimeout, TooManySamples
from novacron.promql.format import format_float, format_sample
from novacron.promql.values import QueryResult

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
