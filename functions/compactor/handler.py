"""Compactor (scheduled): the writer's blocks of ended windows → compacted blocks and 1m/5m/1h rollups."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.dynamo_tier import DynamoBlockStore
from novacron.adapters.keys_table import DynamoKeyStore
from novacron.adapters.settings_table import SettingsTable
from novacron.config import CompactorConfig
from novacron.scheduled import out_of_time, tenants_in_turn
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
    stop = out_of_time(context, RESERVE_MS)
    tenants = tenants_in_turn(keys)
    stats = CompactionStats()
    for tenant in tenants:
        if stop():
            break
        stats.add(compactor.compact_tenant(tenant, stop))
    add_metrics(metrics, {"CompactedWindows": stats.windows, "CompactedSamples": stats.samples})
    add_metrics(metrics, {"CompactedBytes": stats.compacted_bytes, "RollupBytes": stats.rollup_bytes}, MetricUnit.Bytes)
    summary = {"tenants": len(tenants), **asdict(stats)}
    logger.info("compaction run", extra=summary)
    return summary
