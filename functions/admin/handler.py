"""Admin function: API keys (the only writer of the keys table), ingest/retention/detection policies, feedback,
alerting (rule files, the Alertmanager configuration, silences, incident actions).

Paths and methods come from the wiring's routes of this function; what answers each is the table in
novacron.query.admin_routes.
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
from novacron.adapters.dynamo_tier import DynamoIndexStore
from novacron.adapters.event_bus import EventBridgeSink
from novacron.adapters.incidents import DynamoIncidentStore
from novacron.adapters.keys_table import DynamoKeyStore
from novacron.adapters.model_store import S3ModelStore
from novacron.adapters.notification_topic import NotificationTopic
from novacron.adapters.settings_table import SettingsTable
from novacron.alert.incidents_api import Announcer
from novacron.auth import Role
from novacron.config import AdminConfig
from novacron.detect.registry import ModelRegistry
from novacron.http import body_bytes, json_response, principal_of, request_params, require_role
from novacron.query.admin_routes import AdminRequest, admin_endpoints
from novacron.wiring import ADMIN, WIRING

config = AdminConfig.from_env()
logger = Logger(service="novacron-admin")
tracer = Tracer()
app = APIGatewayHttpResolver()
# No cache: a revocation must take effect for the next admin call at once.
keys = DynamoKeyStore(config.keys_table, cache_ttl_s=0)
# No cache either: a change is made against the stored version.
settings = SettingsTable(config.settings_table, cache_ttl_s=0)
app.use([require_role(keys, lambda _m, _p: Role.ADMIN)])
ENDPOINTS = admin_endpoints(
    keys,
    settings,
    DynamoIndexStore(config.index_table),
    DynamoAnomalyStore(config.anomalies_table),
    ModelRegistry(S3ModelStore(config.models_bucket)),
    DynamoAlertingStore(config.alerting_table),
    DynamoIncidentStore(config.incidents_table),
    Announcer(EventBridgeSink(config.event_bus), NotificationTopic(config.notifications_topic)),
)


def _serve(method: str, path: str) -> Callable[..., Response[str]]:
    endpoint = ENDPOINTS[(method, path)]

    def serve(**path_params: str) -> Response[str]:
        content_type = (app.current_event.headers.get("content-type") or "").split(";")[0].strip().lower()
        request = AdminRequest(
            principal_of(app), request_params(app), body_bytes(app), content_type, path_params, int(time.time())
        )
        status, body = endpoint(request)
        if method != "GET":
            # Path parameters nested: one called "name" would clash with the log record's own attribute.
            logger.info("admin change", extra={"route": f"{method} {path}", "path": path_params, "status": status})
        return json_response(status, body)

    return serve


for route in WIRING.routes_of(ADMIN):  # API Gateway's {name} is Powertools' <name>
    app.route(route.path.replace("{", "<").replace("}", ">"), method=route.method)(_serve(route.method, route.path))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
