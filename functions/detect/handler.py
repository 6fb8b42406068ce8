"""Streaming anomaly detector: metrics-stream records → detector states, anomaly episodes and events."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.anomalies import DynamoAnomalyStore
from novacron.adapters.detector_state import DynamoStateStore
from novacron.adapters.event_bus import EventBridgeSink
from novacron.adapters.settings_table import SettingsTable
from novacron.config import DetectorConfig
from novacron.detect.service import DetectionService, DetectorSettings
from novacron.stream_batch import kinesis_records, settle
from novacron.telemetry import add_metrics

config = DetectorConfig.from_env()
logger = Logger(service="novacron-detect")
tracer = Tracer()
metrics = Metrics()
# Detectors stay warm in memory between invocations; the state table is the truth after a cold start.
service = DetectionService(
    DynamoStateStore(config.detector_state_table),
    DynamoAnomalyStore(config.anomalies_table),
    EventBridgeSink(config.event_bus),
    # The config's tuning fields are the settings' fields, by name.
    DetectorSettings(**config.model_dump(include={f.name for f in fields(DetectorSettings)})),
    # Tenants' detection policies, re-read by a warm function every settings_cache_ttl_s.
    policies=SettingsTable(config.settings_table, config.settings_cache_ttl_s),
)
processor = BatchProcessor(event_type=EventType.KinesisDataStreams)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    batch, _ = kinesis_records(event)
    # A storage or bus failure raises (Lambda retries the batch; episode ids are deterministic);
    # records that cannot be decoded become batch item failures.
    report = service.detect_batch(batch)
    settle(processor, event, context, dict(zip((sequence for sequence, _ in batch), report.outcomes, strict=True)))
    add_metrics(metrics, report.counts())
    for anomaly_event in report.events:
        logger.info(
            "anomaly event",
            extra={"detail_type": anomaly_event.detail_type, "anomaly_id": anomaly_event.anomaly.id},
        )
    return processor.response()
