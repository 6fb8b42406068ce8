"""Parquet archiver (scheduled): raw archive objects of completed received-hours → Parquet files."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.s3_archive import S3Archive
from novacron.adapters.settings_table import SettingsTable
from novacron.archive.archiver import Archiver, ArchiverSettings
from novacron.config import ArchiverConfig
from novacron.telemetry import add_metrics

# A run stops starting new parts when less than this is left (a part takes seconds, a large one a minute).
RESERVE_MS = 180_000
config = ArchiverConfig.from_env()
logger = Logger(service="novacron-parquet-archiver")
tracer = Tracer()
metrics = Metrics()
settings = ArchiverSettings(
    lookback_hours=config.archive_lookback_hours, max_part_raw_bytes=config.archive_part_raw_mb * 1024 * 1024
)
archive = S3Archive(config.archive_bucket)
# Files mix a tenant's series: each is tagged with the tenant's longest archive retention class.
policies = SettingsTable(config.settings_table, config.settings_cache_ttl_s)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # A manual invocation may look further back once, to backfill: {"lookback_hours": 72}.
    lookback = event.get("lookback_hours") if isinstance(event, dict) else None
    run_settings = settings
    if isinstance(lookback, int) and not isinstance(lookback, bool) and 0 < lookback <= 24 * 400:
        run_settings = replace(settings, lookback_hours=lookback)
    stats = Archiver(archive, run_settings, tags_for=lambda tenant: policies.retention(tenant).archive_tag()).run(
        int(time.time() * 1000), lambda: context.get_remaining_time_in_millis() > RESERVE_MS
    )
    add_metrics(metrics, {"ArchiveParts": stats.parts, "ArchiveRows": stats.rows, "ArchiveFiles": stats.files})
    summary = {k: v for k, v in vars(stats).items() if k != "written"}
    logger.info("archive run", extra=summary)
    return summary
