"""Admin function: API keys (the only function that writes the keys table), ingest policy, cardinality."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.dynamo_tier import DynamoIndexStore
from novacron.adapters.keys_table import DynamoKeyStore
from novacron.adapters.settings_table import SettingsTable
from novacron.auth import Role
from novacron.config import AdminConfig
from novacron.http import body_bytes, json_response, principal_of, request_params, require_role
from novacron.query import keys_api, policy_api

config = AdminConfig.from_env()
logger = Logger(service="novacron-admin")
tracer = Tracer()
app = APIGatewayHttpResolver()
# No cache: a revocation must take effect for the next admin call at once.
keys = DynamoKeyStore(config.keys_table, cache_ttl_s=0)
# No cache either: a change is made against the stored version.
settings = SettingsTable(config.settings_table, cache_ttl_s=0)
index = DynamoIndexStore(config.index_table)
app.use([require_role(keys, lambda _m, _p: Role.ADMIN)])


def _json_body() -> bytes:
    """The body if it is JSON (a form-encoded POST carries its fields as parameters instead)."""
    content_type = (app.current_event.headers.get("content-type") or "").split(";")[0].strip().lower()
    return body_bytes(app) if content_type in ("", "application/json") else b""


@app.route("/api/v1/admin/keys", method=["GET", "POST"])
def admin_keys() -> Response[str]:
    now = int(time.time())
    method, params = app.current_event.http_method, request_params(app)
    result = keys_api.handle(keys, principal_of(app), method, params, now, _json_body() if method == "POST" else b"")
    logger.info("keys", extra={"method": app.current_event.http_method, "status": result[0]})
    return json_response(*result)


@app.delete("/api/v1/admin/keys/<key_id>")
def revoke_key(key_id: str) -> Response[str]:
    result = keys_api.revoke(keys, principal_of(app), key_id, request_params(app), int(time.time()))
    logger.info("key revoked", extra={"key_id": key_id, "status": result[0]})
    return json_response(*result)


@app.route("/api/v1/admin/ingest-policy", method=["GET", "PUT"])
def ingest_policy() -> Response[str]:
    if app.current_event.http_method == "GET":
        result = policy_api.get_policy(settings, principal_of(app), request_params(app))
    else:
        result = policy_api.put_policy(settings, principal_of(app), request_params(app), body_bytes(app), _now())
        logger.info("ingest policy", extra={"status": result[0]})
    return json_response(*result)


@app.get("/api/v1/admin/cardinality")
def cardinality() -> Response[str]:
    params = request_params(app)
    return json_response(*policy_api.cardinality(settings, index, principal_of(app), params, _now() * 1000))


@app.get("/api/v1/admin/cardinality/approvals")
def approvals() -> Response[str]:
    return json_response(*policy_api.list_approvals(settings, principal_of(app), request_params(app)))


@app.route("/api/v1/admin/cardinality/approvals/<metric>", method=["PUT", "DELETE"])
def approval(metric: str) -> Response[str]:
    # Metric names hold no '%': unquoting undoes a client's or gateway's encoding of ':' only.
    principal, params, metric = principal_of(app), request_params(app), unquote(metric)
    if app.current_event.http_method == "PUT":
        result = policy_api.put_approval(settings, principal, metric, params, body_bytes(app), _now())
    else:
        result = policy_api.delete_approval(settings, principal, metric, params, _now())
    logger.info("cardinality approval", extra={"metric": metric, "status": result[0]})
    return json_response(*result)


def _now() -> int:
    return int(time.time())


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
