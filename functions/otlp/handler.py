"""OTLP function: OpenTelemetry OTLP/HTTP metrics onto the metrics stream, traces onto the spans stream."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.kinesis import KinesisSink
from novacron.config import OtlpConfig
from novacron.http import body_bytes, principal_of, require_role
from novacron.ingest.edge import ingest_edge, ingest_role
from novacron.ingest.otlp import Encoding, OtlpReceiver, OtlpResponse, TraceService
from novacron.telemetry import add_metrics

config = OtlpConfig.from_env()
edge = ingest_edge(config)
# Span attributes are scrubbed with the tenant's PII rules and key, as metric labels are.
traces = TraceService(KinesisSink(config.spans_stream), scrubber_for=edge.service.scrubber)
receiver = OtlpReceiver(edge.service, traces, config.max_decoded_bytes)
logger = Logger(service="novacron-otlp")
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()
app.use([require_role(edge.keys, ingest_role)])


def respond(answer: OtlpResponse, signal: str) -> Response[str | bytes]:
    """Copy the receiver's answer into the HTTP response, counting and logging what it says."""
    add_metrics(metrics, {f"{signal}Accepted": answer.accepted, f"{signal}Rejected": answer.rejected})
    tenant = principal_of(app).tenant
    if answer.status != 200:
        logger.info("request refused", extra={"status": answer.status, "signal": signal})
        edge.counters.add_refused(tenant, f"otlp_{signal.lower()}", answer.status)
    elif answer.rejected:
        logger.warning("partial success", extra={"signal": signal, "rejected": answer.rejected})
    if answer.ingest is not None:
        edge.record(tenant, "otlp", answer.ingest)
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
    answer = receiver.export_traces(body_bytes(app), app.current_event.headers, principal_of(app).tenant)
    return respond(answer, "Spans")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)
    edge.after_request()
    return response
