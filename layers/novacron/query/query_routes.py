"""The query function's routes: which logic answers each path the wiring sends to it.

The handler builds a tenant's reader and calls the endpoint of the request's path; this table is the
only per-route glue, so a new query route is a wiring line plus an entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from novacron.alert import incidents_api, rules_api, silences_api
from novacron.alert.incidents_api import IncidentStore
from novacron.alert.state import AlertingStore
from novacron.detect import api as anomalies_api
from novacron.forecast import api as forecast_api
from novacron.notify import inbox_api
from novacron.promql import Engine
from novacron.query import prom_api, status
from novacron.query.results_cache import ResultsCache, ResultsStore
from novacron.storage.reader import HotTierReader

Params = dict[str, list[str]]
# The body is an object, except the Alertmanager v2 routes' (lists, and strings for errors).
Endpoint = Callable[[HotTierReader, Params, Mapping[str, str], int], tuple[int, Any]]


@dataclass(frozen=True)
class QueryLimits:
    """The engine's settings and the answers' bounds (from the function's configuration)."""

    lookback_ms: int
    max_samples: int
    max_series: int


def results_scope(reader: HotTierReader) -> str:
    """What cached chunks are keyed by besides the query: the tenant and its retention policy's version,
    since chunks computed under an older policy may hold data it no longer shows ('#' is not in tenant ids)."""
    return f"{reader.tenant}#retention-v{reader.retention.version if reader.retention else 0}"


class AnomalyStore(anomalies_api.AnomalyReader, anomalies_api.FeedbackReader, Protocol):
    """The anomalies table: episodes and users' feedback on them."""


def query_endpoints(
    limits: QueryLimits,
    results: ResultsStore,
    anomalies: AnomalyStore,
    alerting: AlertingStore,
    incidents: IncidentStore,
    inbox: inbox_api.InboxReader,
) -> dict[str, Endpoint]:
    """Every query route's endpoint: (reader, parameters, path parameters, now in ms) → (status, body)."""

    def engine(reader: HotTierReader) -> Engine:
        return Engine(reader, lookback_ms=limits.lookback_ms, max_samples=limits.max_samples)

    def query_range(reader: HotTierReader, params: Params, _path: Mapping[str, str], _now: int) -> Any:
        cache = ResultsCache(results, results_scope(reader))
        return prom_api.query_range(
            reader, params, engine=engine(reader), max_series=limits.max_series, results_cache=cache
        )

    def forecast(reader: HotTierReader, params: Params, _path: Mapping[str, str], now: int) -> Any:
        cache = ResultsCache(results, results_scope(reader))
        return forecast_api.forecast(
            reader, params, now, engine=engine(reader), max_series=limits.max_series, results_cache=cache
        )

    return {
        "/api/v1/query": lambda r, p, _, __: prom_api.query(r, p, engine=engine(r), max_series=limits.max_series),
        "/api/v1/query_range": query_range,
        "/api/v1/series": lambda r, p, _, __: prom_api.series(r, p, max_series=limits.max_series),
        "/api/v1/labels": lambda r, p, _, __: prom_api.labels(r, p),
        "/api/v1/label/{name}/values": lambda r, p, path, _: prom_api.label_values(r, path["name"], p),
        "/api/v1/metadata": lambda r, p, _, __: prom_api.metadata(r, p),
        "/api/v1/query_exemplars": lambda r, p, _, __: prom_api.query_exemplars(r, p),
        "/api/v1/format_query": lambda _r, p, _, __: prom_api.format_query(p),
        "/api/v1/rules": lambda r, p, _, __: rules_api.rules(alerting, r.tenant, p),
        "/api/v1/alerts": lambda r, _p, _, __: rules_api.alerts(alerting, r.tenant),
        "/api/v1/status/buildinfo": lambda _r, _p, _, __: prom_api.buildinfo(),
        "/api/v1/status/tsdb": lambda r, p, _, now: status.tsdb_status(r, p, now),
        "/api/v1/forecast": forecast,
        "/api/v1/anomalies": lambda r, p, _, now: anomalies_api.list_anomalies(anomalies, r.tenant, p, now, anomalies),
        "/api/v1/incidents": lambda r, p, _, now: incidents_api.list_incidents(incidents, r.tenant, p, now),
        "/api/v1/incidents/{id}": lambda r, _p, path, _: incidents_api.get_incident(incidents, r.tenant, path["id"]),
        "/api/v1/notifications": lambda r, p, _, __: inbox_api.list_notifications(inbox, r.tenant, p),
        "/api/v2/silences": lambda r, p, _, now: silences_api.list_silences(alerting, r.tenant, p, now / 1000),
        "/api/v2/silence/{id}": lambda r, _p, path, now: silences_api.get_silence(
            alerting, r.tenant, path["id"], now / 1000
        ),
    }
