"""Query function: the Prometheus HTTP API over the hot tier.

Paths and methods come from the wiring's routes of this function, so API Gateway, the local
gateway and this resolver answer the same set; what answers each is the table in
novacron.query.query_routes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.alerting_table import DynamoAlertingStore
from novacron.adapters.anomalies import DynamoAnomalyStore
from novacron.adapters.dynamo_tier import DynamoBlockStore, DynamoIndexStore
from novacron.adapters.incidents import DynamoIncidentStore
from novacron.adapters.keys_table import DynamoKeyStore
from novacron.adapters.notify_state import DynamoInbox
from novacron.adapters.results_table import DynamoResultsStore
from novacron.adapters.s3_archive import S3Archive
from novacron.adapters.settings_table import SettingsTable
from novacron.auth import Role
from novacron.config import QueryConfig
from novacron.http import json_response, principal_of, request_params, require_role
from novacron.query.query_routes import QueryLimits, query_endpoints
from novacron.query.results_cache import LruResultsStore, TieredResultsStore
from novacron.storage.reader import HotTierReader
from novacron.wiring import QUERY, WIRING

config = QueryConfig.from_env()
logger = Logger(service="novacron-query")
tracer = Tracer()
app = APIGatewayHttpResolver()
keys = DynamoKeyStore(config.keys_table, config.key_cache_ttl_s)
blocks, index = DynamoBlockStore(config.blocks_table), DynamoIndexStore(config.index_table)
settings = SettingsTable(config.settings_table, config.settings_cache_ttl_s)  # tenants' retention policies
archive = S3Archive(config.archive_bucket)
app.use([require_role(keys, lambda _m, _p: Role.READ)])
# Keys carry the tenant. This instance's recent chunks first, then those every instance shared.
results = TieredResultsStore(LruResultsStore(), DynamoResultsStore(config.results_table, config.results_ttl_s))
limits = QueryLimits(config.lookback_s * 1000, config.max_samples, config.max_series)
ENDPOINTS = query_endpoints(
    limits,
    results,
    DynamoAnomalyStore(config.anomalies_table),
    DynamoAlertingStore(config.alerting_table),
    DynamoIncidentStore(config.incidents_table),
    DynamoInbox(config.notify_state_table),
)


def _archive(tenant: str) -> Callable[[], Any]:
    def open_archive() -> Any:
        from novacron.archive.reader import ArchiveReader  # pyarrow: imported by the queries that need it

        return ArchiveReader(tenant, archive)

    return open_archive


def _serve(path: str) -> Callable[..., Response[str]]:
    endpoint = ENDPOINTS[path]

    def serve(**path_params: str) -> Response[str]:
        tenant = principal_of(app).tenant
        reader = HotTierReader(tenant, blocks, index, retention=settings.retention(tenant), archive=_archive(tenant))
        return json_response(*endpoint(reader, request_params(app), path_params, int(time.time() * 1000)))

    return serve


for route in WIRING.routes_of(QUERY):  # API Gateway's {name} is Powertools' <name>
    app.route(route.path.replace("{", "<").replace("}", ">"), method=route.method)(_serve(route.path))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
