"""Admin function: API key administration (the only function that writes the keys table)."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.keys_table import DynamoKeyStore
from novacron.auth import Role
from novacron.config import AdminConfig
from novacron.http import json_response, principal_of, request_params, require_role
from novacron.query import keys_api

config = AdminConfig.from_env()
logger = Logger(service="novacron-admin")
tracer = Tracer()
app = APIGatewayHttpResolver()
# No cache: a revocation must take effect for the next admin call at once.
keys = DynamoKeyStore(config.keys_table, cache_ttl_s=0)
app.use([require_role(keys, lambda _m, _p: Role.ADMIN)])


@app.route("/api/v1/admin/keys", method=["GET", "POST"])
def admin_keys() -> Response[str]:
    now = int(time.time())
    result = keys_api.handle(keys, principal_of(app), app.current_event.http_method, request_params(app), now)
    logger.info("keys", extra={"method": app.current_event.http_method, "status": result[0]})
    return json_response(*result)


@app.delete("/api/v1/admin/keys/<key_id>")
def revoke_key(key_id: str) -> Response[str]:
    result = keys_api.revoke(keys, principal_of(app), key_id, request_params(app), int(time.time()))
    logger.info("key revoked", extra={"key_id": key_id, "status": result[0]})
    return json_response(*result)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
