"""The cold-start assembly shared by every function that takes data in (ingest, OTLP, Firehose).

Each of those handlers builds one ``IngestEdge`` from its config and then only routes requests, so
the three cannot drift apart in how they authenticate, apply the tenant's ingest policy (labels,
cardinality limits, PII scrubbing) and count what they accept and reject. This is the one module on
the ingest side that wires adapters to logic; the logic itself never sees an adapter's type.
"""

from __future__ import annotations

import functools
import gc
import time
from dataclasses import dataclass

from novacron.adapters.dynamo_tier import DynamoIndexStore
from novacron.adapters.keys_table import DynamoKeyStore
from novacron.adapters.kinesis import KinesisSink
from novacron.adapters.secrets import read_secret
from novacron.adapters.settings_table import SettingsTable
from novacron.auth import Role
from novacron.config import IngestConfig
from novacron.ingest.self_metrics import IngestCounters, new_instance_id, send_self_metrics
from novacron.ingest.service import IngestResult, IngestService, IngestSettings


def _now_ms() -> int:
    return int(time.time() * 1000)


def ingest_role(_method: str, _path: str) -> Role:
    """Every route of an ingest-type function needs a key with the ingest role."""
    return Role.INGEST


@dataclass
class IngestEdge:
    """What an ingest-type handler holds: the service, its own counters and the key store."""

    service: IngestService
    counters: IngestCounters
    keys: DynamoKeyStore

    def record(self, tenant: str, protocol: str, result: IngestResult) -> None:
        """Count a request's outcome as the tenant's ``novacron_ingest_*`` series."""
        self.counters.record(tenant, protocol, result)

    def after_request(self) -> None:
        """Send the counters when due; never raises (the user's request is answered either way)."""
        send_self_metrics(self.counters, self.service)


def ingest_edge(config: IngestConfig) -> IngestEdge:
    """Build the edge of an ingest-type function from its config (once, at cold start)."""
    # A warm function caches a verdict per series (a million objects at scale); the default GC
    # thresholds would rescan them every few thousand allocations. Collect young objects less often.
    gc.set_threshold(50_000, 20, 100)
    settings = IngestSettings(
        max_decoded_bytes=config.max_decoded_bytes,
        max_sample_age_s=config.max_sample_age_s,
        max_sample_future_s=config.max_sample_future_s,
        cardinality_ttl_s=config.settings_cache_ttl_s,
    )
    service = IngestService(
        KinesisSink(config.metrics_stream),
        settings,
        policies=SettingsTable(config.settings_table, config.settings_cache_ttl_s),
        cardinality=DynamoIndexStore(config.index_table),
        pii_secret=functools.partial(read_secret, config.pii_secret),
    )
    counters = IngestCounters(new_instance_id(), _now_ms)
    return IngestEdge(service, counters, DynamoKeyStore(config.keys_table, config.key_cache_ttl_s))
