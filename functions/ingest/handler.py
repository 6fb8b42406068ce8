"""Ingest function: Prometheus remote write (1.0 and 2.0) and native JSON, onto the metrics stream."""

from __future__ import annotations

import gc
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.dynamo_tier import DynamoIndexStore
from novacron.adapters.keys_table import DynamoKeyStore
from novacron.adapters.kinesis import KinesisSink
from novacron.adapters.settings_table import SettingsTable
from novacron.auth import Role
from novacron.config import IngestConfig
from novacron.http import body_bytes, error_response, json_response, principal_of, require_role
from novacron.ingest.self_metrics import IngestCounters, new_instance_id, send_self_metrics
from novacron.ingest.service import IngestError, IngestResult, IngestService, IngestSettings
from novacron.telemetry import add_metrics

# A warm function caches a verdict per series (a million objects at scale); the default GC thresholds
# would rescan them every few thousand allocations. Collect young objects less often instead.
gc.set_threshold(50_000, 20, 100)
config = IngestConfig.from_env()
logger = Logger(service="novacron-ingest")
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()
settings = IngestSettings(
    max_decoded_bytes=config.max_decoded_bytes,
    max_sample_age_s=config.max_sample_age_s,
    max_sample_future_s=config.max_sample_future_s,
    cardinality_ttl_s=config.settings_cache_ttl_s,
)
service = IngestService(
    KinesisSink(config.metrics_stream),
    settings,
    policies=SettingsTable(config.settings_table, config.settings_cache_ttl_s),
    cardinality=DynamoIndexStore(config.index_table),
)
# NovaCron's own ingest metrics, per tenant, as series the tenant can query (ingest/self_metrics.py).
counters = IngestCounters(new_instance_id(), lambda: int(time.time() * 1000))
PROTOCOLS = {"/api/v1/write": "remote_write", "/api/v1/ingest": "json"}
app.use([require_role(DynamoKeyStore(config.keys_table, config.key_cache_ttl_s), lambda _m, _p: Role.INGEST)])


def _record(result: IngestResult) -> None:
    add_metrics(metrics, result.metric_counts())
    counters.record(principal_of(app).tenant, PROTOCOLS.get(app.current_event.path, "unknown"), result)


@app.post("/api/v1/write")
@tracer.capture_method
def remote_write() -> Response[str]:
    event = app.current_event
    principal = principal_of(app)
    result = service.remote_write(body_bytes(app), event.headers, principal.tenant, principal.labels)
    _record(result)
    # Remote write 2.0 senders read the written counts, on partial rejections too (empty for 1.0).
    headers = result.response_headers()
    if result.rejected:
        return error_response(400, result.rejection_message(), headers)
    return Response(204, headers=headers)


@app.post("/api/v1/ingest")
@tracer.capture_method
def native_json() -> Response[str]:
    principal = principal_of(app)
    result = service.ingest_json(body_bytes(app), principal.tenant, principal.labels)
    _record(result)
    body = {"series_accepted": result.series_accepted, "samples_accepted": result.samples_accepted}
    if result.rejected:
        return json_response(400, {**body, "error": result.rejection_message(), "rejected": result.rejected[:100]})
    return json_response(200, body)


def refused(exc: IngestError) -> Response[str]:
    logger.info("request refused", extra={"status": exc.status, "reason": exc.message[:500]})
    counters.add_refused(principal_of(app).tenant, PROTOCOLS.get(app.current_event.path, "unknown"), exc.status)
    return error_response(exc.status, exc.message, exc.headers)


# Registered with a call rather than as a decorator: Powertools leaves the decorator it returns unannotated,
# which would make ``refused`` untyped. The registration (and the function it keeps) is the same.
app.exception_handler(IngestError)(refused)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)
    send_self_metrics(counters, service)  # never raises: the user's request is answered either way
    return response
