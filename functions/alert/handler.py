"""Alerting (every minute): rules evaluated, alerts and anomalies correlated into incidents, notifications."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.alerting_table import DynamoAlertingStore
from novacron.adapters.anomalies import DynamoAnomalyStore
from novacron.adapters.dynamo_tier import DynamoBlockStore, DynamoIndexStore
from novacron.adapters.event_bus import EventBridgeSink
from novacron.adapters.incidents import DynamoIncidentStore
from novacron.adapters.keys_table import DynamoKeyStore
from novacron.adapters.kinesis import KinesisSink
from novacron.adapters.notification_topic import NotificationTopic
from novacron.adapters.settings_table import SettingsTable
from novacron.alert.rule_runs import RuleSampleWriter
from novacron.alert.service import AlertingService, AlertSettings
from novacron.config import AlertConfig
from novacron.ingest.service import IngestService
from novacron.scheduled import out_of_time
from novacron.storage.reader import HotTierReader
from novacron.telemetry import add_metrics

# A run stops starting tenants when less than this is left; the next run (a minute later) goes on.
RESERVE_MS = 15_000
config = AlertConfig.from_env()
logger = Logger(service="novacron-alert")
tracer = Tracer()
metrics = Metrics()
keys = DynamoKeyStore(config.keys_table, cache_ttl_s=0)
blocks, index = DynamoBlockStore(config.blocks_table), DynamoIndexStore(config.index_table)
settings = SettingsTable(config.settings_table, config.settings_cache_ttl_s)  # tenants' retention policies
service = AlertingService(
    DynamoAlertingStore(config.alerting_table),
    DynamoIncidentStore(config.incidents_table),
    DynamoAnomalyStore(config.anomalies_table),
    EventBridgeSink(config.event_bus),
    NotificationTopic(config.notifications_topic),
    # Rule output takes the ingest path's encoding onto the metrics stream, without the ingest policy.
    RuleSampleWriter(IngestService(KinesisSink(config.metrics_stream))),
    lambda tenant: HotTierReader(tenant, blocks, index, retention=settings.retention(tenant)),
    # The config's tuning fields are the settings' fields, by name.
    AlertSettings(**config.model_dump(include=AlertSettings.names())),
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Every tenant with a key: tenants with anomalies but no rules get incidents too.
    report = service.run(keys.tenants(), int(time.time() * 1000), out_of_time(context, RESERVE_MS))
    counts = report.counts()
    add_metrics(metrics, counts)
    summary = {**counts, "failed": report.failed, "skipped": report.skipped}
    logger.info("alerting run", extra=summary)
    return summary
