"""Function configuration: one pydantic model per function, read once at the handler's edge.

Values come from ``NOVACRON_*`` environment variables (``NOVACRON_METRICS_STREAM`` → ``metrics_stream``);
the wiring declaration decides which resource names each function receives.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

_PREFIX = "NOVACRON_"


class _FunctionConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Self:
        """Build the config from ``NOVACRON_*`` variables (``os.environ`` by default)."""
        source = os.environ if env is None else env
        values = {k[len(_PREFIX) :].lower(): v for k, v in source.items() if k.startswith(_PREFIX)}
        return cls.model_validate(values)


class IngestConfig(_FunctionConfig):
    """The ingest function; the OTLP and Firehose functions extend it."""

    keys_table: str
    metrics_stream: str
    settings_table: str
    index_table: str
    pii_secret: str  # the secret's id (a name locally, an ARN in AWS): read once per cold start
    key_cache_ttl_s: float = Field(30.0, ge=0)
    # How long a warm function trusts a tenant's ingest policy and cardinality counts before re-reading.
    settings_cache_ttl_s: float = Field(60.0, ge=0)
    # At most a day: series tables outlive their blocks by a day (storage/writer.py).
    max_sample_age_s: int = Field(2 * 3600, gt=0, le=86_400)
    max_sample_future_s: int = Field(600, ge=0)
    max_decoded_bytes: int = Field(64 * 1024 * 1024, gt=0)


class OtlpConfig(IngestConfig):
    """The OTLP/HTTP function (metrics and traces)."""

    spans_stream: str


class FirehoseConfig(IngestConfig):
    """The CloudWatch metric stream endpoint (Kinesis Data Firehose HTTP endpoint delivery)."""


class SpansArchiverConfig(_FunctionConfig):
    """The spans archiver (spans stream → S3)."""

    archive_bucket: str


class WriterConfig(_FunctionConfig):
    """The metrics writer."""

    blocks_table: str
    index_table: str
    archive_bucket: str
    hot_retention_days: int = Field(15, gt=0)
    # Tenants' retention policies set block TTLs (docs/retention.md); a change reaches a warm writer within this.
    settings_table: str
    settings_cache_ttl_s: float = Field(60.0, ge=0)
    # The optional Timestream sink (wiring.TimestreamSink): set, both of them, only when it is turned on.
    timestream_database: str | None = None
    timestream_table: str | None = None

    @model_validator(mode="after")
    def _timestream_names_together(self) -> Self:
        if (self.timestream_database is None) != (self.timestream_table is None):
            raise ValueError("timestream_database and timestream_table are set together or not at all")
        return self


class DetectorConfig(_FunctionConfig):
    """The streaming anomaly detector (metrics stream → detector states, anomalies and events)."""

    detector_state_table: str
    anomalies_table: str
    event_bus: str
    sensitivity: float = Field(0.5, ge=0, le=1)
    # Series scored per tenant and function instance; further series are counted, not scored.
    max_series_per_tenant: int = Field(5_000, gt=0)
    # Warm detectors kept in memory (~130 KB each with a week of history); the rest are read back as needed.
    max_cached_series: int = Field(3_000, gt=0)
    # A warm series' state is written back at most this often (and at once when an anomaly opens or closes).
    checkpoint_interval_s: int = Field(300, ge=0)
    episode_gap: int = Field(3, ge=0)  # normal samples allowed inside one anomaly episode
    state_ttl_days: int = Field(14, gt=0)
    anomaly_ttl_days: int = Field(30, gt=0)
    # Tenants' detection policies (novacron.detect.policy); a change reaches a warm detector within this.
    settings_table: str
    settings_cache_ttl_s: float = Field(60.0, ge=0)


class CompactorConfig(_FunctionConfig):
    """The compactor (the writer's blocks → compacted blocks and rollups, on a schedule)."""

    blocks_table: str
    keys_table: str
    settings_table: str
    settings_cache_ttl_s: float = Field(60.0, ge=0)


class ArchiverConfig(_FunctionConfig):
    """The Parquet archiver (raw archive objects → Parquet, on a schedule)."""

    archive_bucket: str
    settings_table: str
    settings_cache_ttl_s: float = Field(60.0, ge=0)
    # Hours looked at again on every run for late raw objects (the writer retries records for 6 hours).
    archive_lookback_hours: int = Field(8, gt=0, le=24 * 31)
    # Raw bytes converted per Parquet part: bounds the memory a run needs (see novacron.archive.archiver).
    archive_part_raw_mb: int = Field(48, gt=0, le=1024)


class QueryConfig(_FunctionConfig):
    """The query function."""

    keys_table: str
    blocks_table: str
    index_table: str
    results_table: str
    archive_bucket: str
    anomalies_table: str  # the detector's anomaly episodes, for /api/v1/anomalies
    alerting_table: str  # rule files, group states and silences: /api/v1/rules, /api/v1/alerts, /api/v2/silences
    incidents_table: str  # /api/v1/incidents
    notify_state_table: str  # the local inbox: /api/v1/notifications
    results_ttl_s: int = Field(24 * 3600, gt=0)
    # Tenants' retention policies cut raw reads (docs/retention.md); a change reaches a warm function within this.
    settings_table: str
    settings_cache_ttl_s: float = Field(60.0, ge=0)
    key_cache_ttl_s: float = Field(30.0, ge=0)
    lookback_s: int = Field(300, gt=0)
    max_samples: int = Field(50_000_000, gt=0)
    max_series: int = Field(100_000, gt=0)


class AdminConfig(_FunctionConfig):
    """The admin function (API keys, ingest policy, cardinality approvals, retention and detection policies)."""

    keys_table: str
    settings_table: str
    index_table: str
    anomalies_table: str  # users' feedback on anomaly episodes
    models_bucket: str  # the per-service models' registries, for /api/v1/admin/models
    alerting_table: str  # rule files, the Alertmanager configuration, silences
    incidents_table: str  # incident actions (acknowledge, resolve, reopen, comment) ...
    event_bus: str  # ... which put incident events on the bus
    notifications_topic: str  # ... and notification requests for the receivers already told


class DetectTrainerConfig(_FunctionConfig):
    """The trainer of per-service models (novacron.detect.trainer), on a schedule.

    The tuning fields are novacron.detect.trainer.TrainerSettings' fields, by name.
    """

    blocks_table: str
    index_table: str
    keys_table: str
    settings_table: str
    anomalies_table: str
    models_bucket: str
    settings_cache_ttl_s: float = Field(60.0, ge=0)
    window_s: int = Field(7 * 86_400, ge=3600, le=31 * 86_400)  # history trained on
    step_s: int = Field(60, ge=10, le=3600)
    # How long a new model runs in shadow before it is judged: one training period by default.
    shadow_trial_s: int = Field(6 * 3600, ge=0)
    min_points: int = Field(120, ge=10)
    metrics_lookback_s: int = Field(86_400, gt=0)
    max_features: int = Field(12, ge=1, le=32)
    max_services: int = Field(200, ge=1)
    sensitivity: float = Field(0.5, ge=0, le=1)


class ServiceDetectConfig(_FunctionConfig):
    """The per-minute scorer of services with a model (novacron.detect.service_scorer).

    The tuning fields are novacron.detect.service_scorer.ScorerSettings' fields, by name.
    """

    blocks_table: str
    index_table: str
    settings_table: str
    detector_state_table: str
    anomalies_table: str
    event_bus: str
    models_bucket: str
    settings_cache_ttl_s: float = Field(60.0, ge=0)
    sensitivity: float = Field(0.5, ge=0, le=1)
    delay_s: int = Field(30, ge=0, le=600)
    max_catchup_minutes: int = Field(15, ge=1, le=120)
    episode_gap: int = Field(3, ge=0)
    shadow_stats_every: int = Field(15, ge=1)
    state_ttl_days: int = Field(14, gt=0)
    anomaly_ttl_days: int = Field(30, gt=0)


class AlertConfig(_FunctionConfig):
    """The alert function (novacron.alert.service), every minute.

    The tuning fields are novacron.alert.service.AlertSettings' fields, by name.
    """

    keys_table: str
    blocks_table: str
    index_table: str
    settings_table: str
    metrics_stream: str
    anomalies_table: str
    incidents_table: str
    alerting_table: str
    event_bus: str
    notifications_topic: str  # the topic's ARN
    settings_cache_ttl_s: float = Field(60.0, ge=0)
    evaluation_interval_s: int = Field(60, ge=10, le=3600)
    max_catchup: int = Field(3, ge=1, le=60)
    query_timeout_s: int = Field(10, ge=1, le=50)
    anomaly_window_s: int = Field(24 * 3600, ge=60)
    max_anomalies: int = Field(1_000, ge=1)
    incident_lookback_s: int = Field(7 * 86_400, ge=3600)
    false_positive_days: int = Field(30, ge=1, le=400)
    false_positive_refresh_s: int = Field(900, ge=0)
    call_graph_window_s: int = Field(3600, ge=60)
    correlation_window_s: int = Field(600, ge=0)
    max_hops: int = Field(3, ge=0)
    reopen_window_s: int = Field(1800, ge=0)
    external_url: str = ""


class NotifierConfig(_FunctionConfig):
    """The notifier (notification requests from the ``notifications`` topic → receivers)."""

    alerting_table: str  # tenants' Alertmanager-style configurations
    notify_state_table: str
    notify_failures_queue: str
    email_topic: str  # an ARN: e-mail integrations publish to it
    max_attempts: int = Field(5, ge=1, le=10)
    # Per receiver and notification: well below the function's 60 s timeout.
    deadline_s: float = Field(40.0, gt=0, le=50)
    http_timeout_s: float = Field(10.0, gt=0, le=30)
