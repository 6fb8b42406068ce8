"""Typed PromQL errors, each mapped to Prometheus's API ``errorType`` and HTTP status."""

from __future__ import annotations


class PromQLError(Exception):
    """Base class of every error the engine raises on purpose."""

    error_type = "internal"
    http_status = 500


class BadData(PromQLError):
    """The query or a parameter is malformed (parse errors, bad durations…)."""

    error_type = "bad_data"
    http_status = 400


class ExecutionError(PromQLError):
    """The query is valid but cannot be evaluated on this data."""

    error_type = "execution"
    http_status = 422


class TooManySamples(ExecutionError):
    """The query would hold more samples in memory than the engine allows."""

    def __init__(self, where: str = "query execution") -> None:
        super().__init__(f"query processing would load too many samples into memory in {where}")


class QueryTimeout(PromQLError):
    """The evaluation ran past its deadline."""

    error_type = "timeout"
    http_status = 503

    def __init__(self, where: str = "expression evaluation") -> None:
        super().__init__(f"query timed out in {where}")
