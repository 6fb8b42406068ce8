"""Firehose function: CloudWatch metric streams delivered by Kinesis Data Firehose, onto the metrics stream."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.dynamo_tier import DynamoIndexStore
from novacron.adapters.keys_table import DynamoKeyStore
from novacron.adapters.kinesis import KinesisSink
from novacron.adapters.settings_table import SettingsTable
from novacron.auth import AuthError, Role
from novacron.config import FirehoseConfig
from novacron.http import body_bytes, json_response, principal_of, require_role
from novacron.ingest import firehose
from novacron.ingest.service import IngestError, IngestService, IngestSettings
from novacron.telemetry import add_metrics

config = FirehoseConfig.from_env()
logger = Logger(service="novacron-firehose")
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()
settings = IngestSettings(
    config.max_decoded_bytes, config.max_sample_age_s, config.max_sample_future_s, config.settings_cache_ttl_s
)
# The tenant's ingest policy (labels, cardinality limits) applies as on every ingest path.
service = IngestService(
    KinesisSink(config.metrics_stream),
    settings,
    policies=SettingsTable(config.settings_table, config.settings_cache_ttl_s),
    cardinality=DynamoIndexStore(config.index_table),
)
endpoint = firehose.FirehoseEndpoint(service, config.max_decoded_bytes)
store = DynamoKeyStore(config.keys_table, config.key_cache_ttl_s)


def refused(exc: IngestError | AuthError, headers: Mapping[str, str] | None = None) -> Response[str]:
    """A refusal in the contract's shape, echoing the request id; Firehose retries all but 413."""
    headers = app.current_event.headers if headers is None else headers
    request_id = firehose.request_id_of(headers)
    logger.info("request refused", extra={"status": exc.status, "reason": exc.message[:500], "request_id": request_id})
    extra = exc.headers if isinstance(exc, IngestError) else {}
    return json_response(exc.status, firehose.response_body(request_id, now_ms(), exc.message), extra)


def now_ms() -> int:
    return int(time.time() * 1000)


app.use([require_role(store, lambda _m, _p: Role.INGEST, firehose.credential_of, lambda h, exc: refused(exc, h))])
# Registered with a call, as in the ingest function: Powertools leaves the decorator unannotated.
app.exception_handler(IngestError)(refused)


@app.post("/aws/firehose")
@tracer.capture_method
def deliver() -> Response[str]:
    headers = app.current_event.headers
    principal = principal_of(app)
    delivery = endpoint.deliver(body_bytes(app), headers, principal.tenant, principal.labels)
    add_metrics(metrics, delivery.counts())
    # Rejected records and series would fail the same way on every retry: logged and counted, not retried.
    log = logger.warning if delivery.record_errors or delivery.ingest.rejected else logger.info
    log("delivery stored", extra=delivery.summary())
    return json_response(200, firehose.response_body(delivery.request_id, now_ms()))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
