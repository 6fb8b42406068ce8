"""Ingest function: Prometheus remote write (1.0 and 2.0) and native JSON, onto the metrics stream."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.config import IngestConfig
from novacron.http import body_bytes, error_response, json_response, principal_of, require_role
from novacron.ingest.edge import ingest_edge, ingest_role
from novacron.ingest.service import IngestError, IngestResult
from novacron.telemetry import add_metrics

edge = ingest_edge(IngestConfig.from_env())
logger = Logger(service="novacron-ingest")
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()
app.use([require_role(edge.keys, ingest_role)])
PROTOCOLS = {"/api/v1/write": "remote_write", "/api/v1/ingest": "json"}


def _record(result: IngestResult) -> None:
    add_metrics(metrics, result.metric_counts())
    edge.record(principal_of(app).tenant, PROTOCOLS.get(app.current_event.path, "unknown"), result)


@app.post("/api/v1/write")
@tracer.capture_method
def remote_write() -> Response[str]:
    principal = principal_of(app)
    result = edge.service.remote_write(body_bytes(app), app.current_event.headers, principal.tenant, principal.labels)
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
    result = edge.service.ingest_json(body_bytes(app), principal.tenant, principal.labels)
    _record(result)
    body = {"series_accepted": result.series_accepted, "samples_accepted": result.samples_accepted}
    if result.rejected:
        return json_response(400, {**body, "error": result.rejection_message(), "rejected": result.rejected[:100]})
    return json_response(200, body)


def refused(exc: IngestError) -> Response[str]:
    logger.info("request refused", extra={"status": exc.status, "reason": exc.message[:500]})
    edge.counters.add_refused(principal_of(app).tenant, PROTOCOLS.get(app.current_event.path, "unknown"), exc.status)
    return error_response(exc.status, exc.message, exc.headers)


# Registered with a call rather than as a decorator: Powertools leaves the decorator it returns unannotated.
app.exception_handler(IngestError)(refused)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)
    edge.after_request()
    return response
