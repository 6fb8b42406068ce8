"""Metrics writer: metrics-stream records → hot-tier blocks, series index and raw archive."""

from __future__ import annotations

import gc
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.dynamo_tier import DynamoBlockStore, DynamoIndexStore
from novacron.adapters.s3_archive import S3Archive
from novacron.adapters.settings_table import SettingsTable
from novacron.adapters.timestream import TimestreamSink
from novacron.config import WriterConfig
from novacron.storage.writer import MetricsWriter, WriterSettings, archive_stored_records
from novacron.stream_batch import kinesis_records, settle
from novacron.telemetry import add_metrics

# A warm function caches a verdict per series (a million objects at scale); the default GC thresholds
# would rescan them every few thousand allocations. Collect young objects less often instead.
gc.set_threshold(50_000, 20, 100)
config = WriterConfig.from_env()
logger = Logger(service="novacron-metrics-writer")
tracer = Tracer()
metrics = Metrics()
index = DynamoIndexStore(config.index_table)
# None unless the deployment turned the optional Timestream sink on (docs/deploy.md).
timestream = TimestreamSink.optional(config.timestream_database, config.timestream_table)
# Tenants' retention policies: block TTLs, and the retention class archive objects are tagged with.
retention = SettingsTable(config.settings_table, config.settings_cache_ttl_s)
# The index also holds the per-day cardinality summary the ingest side's limits read.
writer = MetricsWriter(
    DynamoBlockStore(config.blocks_table),
    index,
    WriterSettings(hot_retention_days=config.hot_retention_days),
    cardinality=index,
    sink=timestream,
    retention=retention,
)
archive = S3Archive(config.archive_bucket)
processor = BatchProcessor(event_type=EventType.KinesisDataStreams)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    batch, shard = kinesis_records(event)
    # The whole batch is written at once (a write failure raises: Lambda retries, keys are idempotent);
    # records that cannot be stored become batch item failures.
    outcomes = dict(zip((sequence for sequence, _ in batch), writer.write_batch(batch), strict=True))
    written = settle(processor, event, context, outcomes)
    add_metrics(metrics, {"SamplesWritten": sum(s.samples for s in written.values())})
    add_metrics(metrics, {"BlockBytes": sum(s.block_bytes for s in written.values())}, MetricUnit.Bytes)
    if timestream is not None:
        add_metrics(metrics, timestream.drain_counts())
    stored = [(sequence, data, written[sequence]) for sequence, data in batch if sequence in written]
    if stored:
        # Raising here fails the whole batch; block writes are idempotent, so the retry is safe.
        archive_stored_records(archive, shard, stored, lambda tenant: retention.retention(tenant).archive_tag())
    return processor.response()
