"""Metrics writer: metrics-stream records → hot-tier blocks, series index and raw archive."""

from __future__ import annotations

import gc
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.dynamo_tier import DynamoBlockStore, DynamoIndexStore
from novacron.adapters.s3_archive import S3Archive
from novacron.config import WriterConfig
from novacron.storage.writer import MetricsWriter, WriterSettings, archive_stored_records
from novacron.telemetry import add_metrics

# A warm function caches a verdict per series (a million objects at scale); the default GC thresholds
# would rescan them every few thousand allocations. Collect young objects less often instead.
gc.set_threshold(50_000, 20, 100)
config = WriterConfig.from_env()
logger = Logger(service="novacron-metrics-writer")
tracer = Tracer()
metrics = Metrics()
writer = MetricsWriter(
    DynamoBlockStore(config.blocks_table),
    DynamoIndexStore(config.index_table),
    WriterSettings(hot_retention_days=config.hot_retention_days),
)
archive = S3Archive(config.archive_bucket)
processor = BatchProcessor(event_type=EventType.KinesisDataStreams)


@tracer.capture_method
def write_record(record: KinesisStreamRecord) -> tuple[bytes, int, int]:
    data = record.kinesis.data_as_bytes()
    stats = writer.write_record(data, record.kinesis.sequence_number)
    return data, stats.samples, stats.block_bytes


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    with processor(records=event["Records"], handler=write_record, lambda_context=context):
        outcomes = processor.process()
    written = [(rec["kinesis"]["sequenceNumber"], out) for status, out, rec in outcomes if status == "success"]
    stored = [(sequence, data) for sequence, (data, _, _) in written]
    add_metrics(metrics, {"SamplesWritten": sum(n for _, (_, n, _) in written)})
    add_metrics(metrics, {"BlockBytes": sum(b for _, (_, _, b) in written)}, MetricUnit.Bytes)
    if stored:
        shard = event["Records"][0]["eventID"].split(":")[0]
        # Raising here fails the whole batch; block writes are idempotent, so the retry is safe.
        archive_stored_records(archive, shard, stored)
    return processor.response()
