"""OTLP function: OpenTelemetry OTLP/HTTP metrics onto the metrics stream, traces onto the spans stream."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.dynamo_tier import DynamoIndexStore
from novacron.adapters.keys_table import DynamoKeyStore
from novacron.adapters.kinesis import KinesisSink
from novacron.adapters.settings_table import SettingsTable
from novacron.auth import Role
from novacron.config import OtlpConfig
from novacron.http import body_bytes, principal_of, require_role
from novacron.ingest.otlp import Encoding, OtlpReceiver, OtlpResponse, TraceService
from novacron.ingest.service import IngestService, IngestSettings
from novacron.telemetry import add_metrics

config = OtlpConfig.from_env()
logger = Logger(service="novacron-otlp")
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()
settings = IngestSettings(
    config.max_decoded_bytes, config.max_sample_age_s, config.max_sample_future_s, config.settings_cache_ttl_s
)
policies = SettingsTable(config.settings_table, config.settings_cache_ttl_s)
metrics_service = IngestService(
    KinesisSink(config.metrics_stream), settings, policies=policies, cardinality=DynamoIndexStore(config.index_table)
)
receiver = OtlpReceiver(metrics_service, TraceService(KinesisSink(config.spans_stream)), config.max_decoded_bytes)
app.use([require_role(DynamoKeyStore(config.keys_table, config.key_cache_ttl_s), lambda _m, _p: Role.INGEST)])


def respond(answer: OtlpResponse, signal: str) -> Response[str | bytes]:
    """Copy the receiver's answer into the HTTP response, counting and logging what it says."""
    add_metrics(metrics, {f"{signal}Accepted": answer.accepted, f"{signal}Rejected": answer.rejected})
    if answer.status != 200:
        logger.info("request refused", extra={"status": answer.status, "signal": signal})
    elif answer.rejected:
        logger.warning("partial success", extra={"signal": signal, "rejected": answer.rejected})
    # Powertools would JSON-serialise a JSON response's bytes body again: JSON bodies go as text.
    body = answer.body.decode() if answer.content_type == Encoding.JSON else answer.body
    return Response(answer.status, answer.content_type, body, headers=answer.headers)


@app.post("/otlp/v1/metrics")
@tracer.capture_method
def export_metrics() -> Response[str | bytes]:
    principal = principal_of(app)
    answer = receiver.export_metrics(body_bytes(app), app.current_event.headers, principal.tenant, principal.labels)
    return respond(answer, "DataPoints")


@app.post("/otlp/v1/traces")
@tracer.capture_method
def export_traces() -> Response[str | bytes]:
    headers = app.current_event.headers
    return respond(receiver.export_traces(body_bytes(app), headers, principal_of(app).tenant), "Spans")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
