"""Query function: the Prometheus HTTP API over the hot tier.

Paths and methods come from the wiring's routes of this function, so API Gateway, the local
gateway and this resolver answer the same set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.dynamo_tier import DynamoBlockStore, DynamoIndexStore
from novacron.adapters.keys_table import DynamoKeyStore
from novacron.adapters.results_table import DynamoResultsStore
from novacron.adapters.settings_table import SettingsTable
from novacron.auth import Role
from novacron.config import QueryConfig
from novacron.http import json_response, principal_of, request_params, require_role
from novacron.promql import Engine
from novacron.query import prom_api, status
from novacron.query.results_cache import LruResultsStore, ResultsCache, TieredResultsStore
from novacron.storage.reader import HotTierReader
from novacron.wiring import QUERY, WIRING

config = QueryConfig.from_env()
logger = Logger(service="novacron-query")
tracer = Tracer()
app = APIGatewayHttpResolver()
keys = DynamoKeyStore(config.keys_table, config.key_cache_ttl_s)
blocks, index = DynamoBlockStore(config.blocks_table), DynamoIndexStore(config.index_table)
settings = SettingsTable(config.settings_table, config.settings_cache_ttl_s)  # tenants' retention policies
app.use([require_role(keys, lambda _m, _p: Role.READ)])
# Keys carry the tenant. This instance's recent chunks first, then those every instance shared.
results = TieredResultsStore(LruResultsStore(), DynamoResultsStore(config.results_table, config.results_ttl_s))

Endpoint = Callable[[HotTierReader, dict[str, list[str]], dict[str, str]], tuple[int, dict[str, Any]]]


def _results_scope(reader: HotTierReader) -> str:
    # Chunks computed under an older retention policy may hold data it no longer shows ('#' is not in tenant ids).
    return f"{reader.tenant}#retention-v{reader.retention.version if reader.retention else 0}"


def _engine(reader: HotTierReader) -> Engine:
    return Engine(reader, lookback_ms=config.lookback_s * 1000, max_samples=config.max_samples)


ENDPOINTS: dict[str, Endpoint] = {
    "/api/v1/query": lambda r, p, _: prom_api.query(r, p, engine=_engine(r), max_series=config.max_series),
    "/api/v1/query_range": lambda r, p, _: prom_api.query_range(
        r, p, engine=_engine(r), max_series=config.max_series, results_cache=ResultsCache(results, _results_scope(r))
    ),
    "/api/v1/series": lambda r, p, _: prom_api.series(r, p, max_series=config.max_series),
    "/api/v1/labels": lambda r, p, _: prom_api.labels(r, p),
    "/api/v1/label/{name}/values": lambda r, p, path: prom_api.label_values(r, path["name"], p),
    "/api/v1/metadata": lambda r, p, _: prom_api.metadata(r, p),
    "/api/v1/query_exemplars": lambda r, p, _: prom_api.query_exemplars(r, p),
    "/api/v1/format_query": lambda _r, p, _: prom_api.format_query(p),
    "/api/v1/rules": lambda _r, p, _: prom_api.rules(p),
    "/api/v1/alerts": lambda _r, p, _: prom_api.alerts(p),
    "/api/v1/status/buildinfo": lambda _r, _p, _: prom_api.buildinfo(),
    "/api/v1/status/tsdb": lambda r, p, _: status.tsdb_status(r, p, int(time.time() * 1000)),
}


def _serve(endpoint: Endpoint) -> Callable[..., Response[str]]:
    def serve(**path: str) -> Response[str]:
        tenant = principal_of(app).tenant
        reader = HotTierReader(tenant, blocks, index, retention=settings.retention(tenant))
        return json_response(*endpoint(reader, request_params(app), path))

    return serve


for route in WIRING.routes:
    if route.function == QUERY:  # API Gateway's {name} is Powertools' <name>
        app.route(route.path.replace("{", "<").replace("}", ">"), method=route.method)(_serve(ENDPOINTS[route.path]))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
