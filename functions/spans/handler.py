"""Spans archiver: spans-stream records → one gzip'd OTLP object per tenant per batch in the archive bucket."""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.s3_archive import S3Archive
from novacron.config import SpansArchiverConfig
from novacron.records import RecordFormatError
from novacron.spans import archive_span_records
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
    batch = [(r["kinesis"]["sequenceNumber"], base64.b64decode(r["kinesis"]["data"])) for r in event["Records"]]
    shard = event["Records"][0]["eventID"].split(":")[0] if batch else ""
    # The batch is archived at once (an S3 failure raises: Lambda retries the batch, keys are
    # deterministic); the batch processor turns per-record outcomes into the partial batch response.
    outcomes: dict[str, int | RecordFormatError] = dict(
        zip((sequence for sequence, _ in batch), archive_span_records(archive, shard, batch), strict=True)
    )

    def settle(record: KinesisStreamRecord) -> int:
        outcome = outcomes[record.kinesis.sequence_number]
        if isinstance(outcome, RecordFormatError):
            raise outcome
        return outcome

    with processor(records=event["Records"], handler=settle, lambda_context=context):
        settled = processor.process()
    add_metrics(metrics, {"SpansArchived": sum(spans for status, spans, _ in settled if status == "success")})
    return processor.response()
