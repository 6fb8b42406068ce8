"""Model trainer (scheduled): per tenant and service, a new Isolation Forest → shadow → compared → promoted."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.anomalies import DynamoAnomalyStore
from novacron.adapters.dynamo_tier import DynamoBlockStore, DynamoIndexStore
from novacron.adapters.keys_table import DynamoKeyStore
from novacron.adapters.model_store import S3ModelStore
from novacron.adapters.settings_table import SettingsTable
from novacron.config import DetectTrainerConfig
from novacron.detect.registry import ModelRegistry
from novacron.detect.trainer import Trainer, TrainerSettings, TrainingReport
from novacron.scheduled import out_of_time, tenants_in_turn
from novacron.storage.reader import HotTierReader
from novacron.telemetry import add_metrics

# A run stops starting new services when less than this is left; the next run goes on from there.
RESERVE_MS = 120_000
config = DetectTrainerConfig.from_env()
logger = Logger(service="novacron-detect-trainer")
tracer = Tracer()
metrics = Metrics()
keys = DynamoKeyStore(config.keys_table, cache_ttl_s=0)
blocks, index = DynamoBlockStore(config.blocks_table), DynamoIndexStore(config.index_table)
settings = SettingsTable(config.settings_table, config.settings_cache_ttl_s)
trainer = Trainer(
    ModelRegistry(S3ModelStore(config.models_bucket)),
    DynamoAnomalyStore(config.anomalies_table),
    # The config's tuning fields are the settings' fields, by name.
    TrainerSettings(**config.model_dump(include={f.name for f in fields(TrainerSettings)})),
    policies=settings,
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    stop = out_of_time(context, RESERVE_MS)
    tenants = tenants_in_turn(keys)
    report = TrainingReport()
    for tenant in tenants:
        if stop():
            break
        reader = HotTierReader(tenant, blocks, index, retention=settings.retention(tenant))
        report.outcomes.extend(trainer.train_tenant(tenant, reader, stop).outcomes)
    add_metrics(metrics, report.counts())
    summary = {"tenants": len(tenants), **report.counts()}
    logger.info("model training run", extra=summary)
    return summary
