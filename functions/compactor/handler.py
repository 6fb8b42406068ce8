"""Compactor (scheduled): the writer's blocks of ended windows → compacted blocks and 1m/5m/1h rollups."""

from __future__ import annotations

import random
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.dynamo_tier import DynamoBlockStore
from novacron.adapters.keys_table import DynamoKeyStore
from novacron.adapters.settings_table import SettingsTable
from novacron.config import CompactorConfig
from novacron.storage.compaction import CompactionStats, Compactor
from novacron.telemetry import add_metrics

# A run stops starting new buckets when less than this is left; the next run goes on from there.
RESERVE_MS = 120_000
config = CompactorConfig.from_env()
logger = Logger(service="novacron-compactor")
tracer = Tracer()
metrics = Metrics()
keys = DynamoKeyStore(config.keys_table, cache_ttl_s=0)
compactor = Compactor(
    DynamoBlockStore(config.blocks_table), retention=SettingsTable(config.settings_table, config.settings_cache_ttl_s)
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    def out_of_time() -> bool:
        return context.get_remaining_time_in_millis() < RESERVE_MS

    tenants = keys.tenants()
    random.shuffle(tenants)  # a run cut short by time does not always leave the same tenants for later
    stats = CompactionStats()
    for tenant in tenants:
        if out_of_time():
            break
        stats.add(compactor.compact_tenant(tenant, out_of_time))
    add_metrics(metrics, {"CompactedWindows": stats.windows, "CompactedSamples": stats.samples})
    add_metrics(metrics, {"CompactedBytes": stats.compacted_bytes, "RollupBytes": stats.rollup_bytes}, MetricUnit.Bytes)
    summary = {"tenants": len(tenants), **asdict(stats)}
    logger.info("compaction run", extra=summary)
    return summary
