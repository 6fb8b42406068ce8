"""``GET /api/v1/anomalies``: a tenant's anomaly episodes, newest first, each with its explanation.

Parameters (all optional): ``start`` and ``end`` (Prometheus times; default the last 24 hours) bound the
episodes' start; ``status`` (``open``/``resolved``), ``severity`` (``warning``/``critical``) and
``metric`` (a metric name) filter them; ``limit`` (default 100, at most 1,000) caps how many come back.
Each episode carries its latest user ``feedback`` (``null`` when none; see POST
``/api/v1/anomalies/{id}/feedback``).
Answers use the Prometheus envelope and error types, like the rest of the query API.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from novacron.detect.events import Anomaly, Feedback, Severity, Status
from novacron.promql import BadData
from novacron.query.prom_api import Params, Response, _param, _run, listing_limit, success, window_params

DEFAULT_RANGE_MS = 24 * 3_600_000
DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000
# Filters are applied after the read: read this many times the limit so that a filtered page is full.
FILTER_READ_FACTOR = 10


class AnomalyReader(Protocol):
    """What the API reads (``novacron.adapters.anomalies.DynamoAnomalyStore``)."""

    def list_anomalies(
        self, tenant: str, start_ms: int, end_ms: int, limit: int = 100, newest_first: bool = False
    ) -> list[Anomaly]:
        """The tenant's episodes that started within [start_ms, end_ms], at most ``limit``."""
        ...


class FeedbackReader(Protocol):
    """Users' verdicts on episodes (``novacron.adapters.anomalies.DynamoAnomalyStore``)."""

    def latest_feedback(self, tenant: str, anomaly_ids: Collection[str]) -> dict[str, Feedback]:
        """The latest verdict on each of ``anomaly_ids`` that has one."""
        ...


def _choice(params: Params, name: str, allowed: type[Status] | type[Severity]) -> str | None:
    text = _param(params, name)
    if text == "":
        return None
    values = [str(v) for v in allowed]
    if text not in values:
        raise BadData(f'invalid parameter "{name}": {text!r} is not one of {", ".join(values)}')
    return text


def list_anomalies(
    store: AnomalyReader, tenant: str, params: Params, now_ms: int, feedback: FeedbackReader | None = None
) -> Response:
    """The answer to ``GET /api/v1/anomalies`` for ``tenant`` (with each episode's latest ``feedback``)."""

    def run() -> Response:
        start, end = window_params(params, now_ms, DEFAULT_RANGE_MS)
        limit = listing_limit(params, DEFAULT_LIMIT, MAX_LIMIT, "anomalies")
        status, severity = _choice(params, "status", Status), _choice(params, "severity", Severity)
        metric = _param(params, "metric") or None
        filtered = status is not None or severity is not None or metric is not None
        found = store.list_anomalies(
            tenant, start, end, limit * FILTER_READ_FACTOR if filtered else limit, newest_first=True
        )
        kept = [
            a
            for a in found
            if (status is None or str(a.status) == status)
            and (severity is None or str(a.severity) == severity)
            and (metric is None or a.metric == metric)
        ]
        page = kept[:limit]
        verdicts = feedback.latest_feedback(tenant, [a.id for a in page]) if feedback is not None else {}
        return success([{**a.to_json(), "feedback": _feedback_of(verdicts.get(a.id))} for a in page])

    return _run(run)


def _feedback_of(feedback: Feedback | None) -> dict[str, object] | None:
    return None if feedback is None else feedback.to_json()
