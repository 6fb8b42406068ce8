"""Firehose function: CloudWatch metric streams delivered by Kinesis Data Firehose, onto the metrics stream."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.auth import AuthError
from novacron.config import FirehoseConfig
from novacron.http import body_bytes, json_response, principal_of, require_role
from novacron.ingest import firehose
from novacron.ingest.edge import ingest_edge, ingest_role
from novacron.ingest.service import IngestError
from novacron.telemetry import add_metrics

config = FirehoseConfig.from_env()
edge = ingest_edge(config)
endpoint = firehose.FirehoseEndpoint(edge.service, config.max_decoded_bytes)
logger = Logger(service="novacron-firehose")
tracer = Tracer()
metrics = Metrics()
app = APIGatewayHttpResolver()


def refused(exc: IngestError | AuthError, headers: Mapping[str, str] | None = None) -> Response[str]:
    """A refusal in the contract's shape, echoing the request id; Firehose retries all but 413."""
    headers = app.current_event.headers if headers is None else headers
    request_id = firehose.request_id_of(headers)
    logger.info("request refused", extra={"status": exc.status, "reason": exc.message[:500], "request_id": request_id})
    if isinstance(exc, IngestError):
        edge.counters.add_refused(principal_of(app).tenant, "firehose", exc.status)
    extra = exc.headers if isinstance(exc, IngestError) else {}
    return json_response(exc.status, firehose.response_body(request_id, int(time.time() * 1000), exc.message), extra)


app.use([require_role(edge.keys, ingest_role, firehose.credential_of, lambda h, exc: refused(exc, h))])
app.exception_handler(IngestError)(refused)  # a call: Powertools leaves the decorator unannotated


@app.post("/aws/firehose")
@tracer.capture_method
def deliver() -> Response[str]:
    principal = principal_of(app)
    delivery = endpoint.deliver(body_bytes(app), app.current_event.headers, principal.tenant, principal.labels)
    add_metrics(metrics, delivery.counts())
    edge.record(principal.tenant, "firehose", delivery.ingest)
    if delivery.record_errors:
        edge.counters.add(principal.tenant, "firehose", "rejected", "bad_record", len(delivery.record_errors))
    # Rejected records and series would fail the same way on every retry: logged and counted, not retried.
    log = logger.warning if delivery.record_errors or delivery.ingest.rejected else logger.info
    log("delivery stored", extra=delivery.summary())
    return json_response(200, firehose.response_body(delivery.request_id, int(time.time() * 1000)))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)
    edge.after_request()
    return response
