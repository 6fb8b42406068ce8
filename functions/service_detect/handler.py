"""Service scorer (every minute): each service with a model → service-level anomaly episodes and events."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.anomalies import DynamoAnomalyStore
from novacron.adapters.detector_state import DynamoStateStore
from novacron.adapters.dynamo_tier import DynamoBlockStore, DynamoIndexStore
from novacron.adapters.event_bus import EventBridgeSink
from novacron.adapters.model_store import S3ModelStore
from novacron.adapters.settings_table import SettingsTable
from novacron.config import ServiceDetectConfig
from novacron.detect.registry import ModelRegistry
from novacron.detect.service_scorer import ScorerSettings, ScoringReport, ServiceScorer
from novacron.scheduled import out_of_time
from novacron.storage.reader import HotTierReader
from novacron.telemetry import add_metrics

# A service takes a few seconds to score: one begun with less left might not be stored in time.
RESERVE_MS = 10_000
config = ServiceDetectConfig.from_env()
logger = Logger(service="novacron-service-detect")
tracer = Tracer()
metrics = Metrics()
blocks, index = DynamoBlockStore(config.blocks_table), DynamoIndexStore(config.index_table)
settings = SettingsTable(config.settings_table, config.settings_cache_ttl_s)
# Models stay in memory between invocations (a version never changes once written).
registry = ModelRegistry(S3ModelStore(config.models_bucket))
scorer = ServiceScorer(
    registry,
    DynamoStateStore(config.detector_state_table),
    DynamoAnomalyStore(config.anomalies_table),
    EventBridgeSink(config.event_bus),
    # The config's tuning fields are the settings' fields, by name.
    ScorerSettings(**config.model_dump(include={f.name for f in fields(ScorerSettings)})),
    policies=settings,
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report, stop = ScoringReport(), out_of_time(context, RESERVE_MS)
    for tenant in registry.tenants():  # only tenants with models have anything to score
        reader = HotTierReader(tenant, blocks, index, retention=settings.retention(tenant))
        report.add(scorer.score_tenant(tenant, reader, stop))
    add_metrics(metrics, report.counts())
    for anomaly_event in report.events:
        logger.info(
            "service anomaly event",
            extra={"detail_type": anomaly_event.detail_type, "anomaly_id": anomaly_event.anomaly.id},
        )
    summary = report.counts()
    logger.info("service scoring run", extra=summary)
    return summary
