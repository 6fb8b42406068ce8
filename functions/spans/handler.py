"""Spans archiver: spans-stream records → one gzip'd OTLP object per tenant per batch in the archive bucket."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.s3_archive import S3Archive
from novacron.config import SpansArchiverConfig
from novacron.spans import archive_span_records
from novacron.stream_batch import kinesis_records, settle
from novacron.telemetry import add_metrics

config = SpansArchiverConfig.from_env()
logger = Logger(service="novacron-spans-archiver")
tracer = Tracer()
metrics = Metrics()
archive = S3Archive(config.archive_bucket)
processor = BatchProcessor(event_type=EventType.KinesisDataStreams)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    batch, shard = kinesis_records(event)
    # The batch is archived at once (an S3 failure raises: Lambda retries the batch, keys are
    # deterministic); poison records become batch item failures.
    outcomes = dict(zip((sequence for sequence, _ in batch), archive_span_records(archive, shard, batch), strict=True))
    archived = settle(processor, event, context, outcomes)
    add_metrics(metrics, {"SpansArchived": sum(archived.values())})
    return processor.response()
