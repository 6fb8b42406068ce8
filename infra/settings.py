"""Deployment settings read from CDK context (``cdk.json`` or ``cdk deploy -c key=value``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Node

from novacron.config import WriterConfig

PREFIX = "novacron:"

_RETENTION: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def _as_bool(value: Any) -> bool:
    """Context values from ``-c`` arrive as strings; ``cdk.json`` values keep their JSON type."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


@dataclass(frozen=True)
class Settings:
    """Every knob of the stack that is not part of the wiring."""

    stack_name: str = "NovaCron"
    log_retention_days: int = 30
    retain_data: bool = True
    alarm_email: str | None = None
    iterator_age_alarm_s: int = 300
    api_throttle_rate: int = 1000
    api_throttle_burst: int = 2000
    # The optional Timestream sink (infra/constructs/timestream.py, docs/deploy.md): off by default.
    timestream: bool = False
    # Memory store: must hold what the writer may still be retrying (ingest accepts samples up to 2 h
    # old, the writer retries a batch for up to 6 h); older samples go to the magnetic store.
    timestream_memory_hours: int = 24
    # Magnetic store: the default tenant's raw retention (the writer's hot_retention_days).
    timestream_magnetic_days: int = WriterConfig.model_fields["hot_retention_days"].default
    # Archive objects of a retention class longer than this move to Glacier Instant Retrieval after it
    # (docs/retention.md); 0: never.
    archive_glacier_after_days: int = 90

    def __post_init__(self) -> None:
        if self.log_retention_days not in _RETENTION:
            raise ValueError(
                f"{PREFIX}logRetentionDays={self.log_retention_days} is not a CloudWatch Logs retention; "
                f"use one of {sorted(_RETENTION)}"
            )
        # Timestream's own bounds (Developer Guide, "Quotas").
        if not 1 <= self.timestream_memory_hours <= 8766:
            raise ValueError(f"{PREFIX}timestreamMemoryHours must be 1-8766, got {self.timestream_memory_hours}")
        if not 1 <= self.timestream_magnetic_days <= 73000:
            raise ValueError(f"{PREFIX}timestreamMagneticDays must be 1-73000, got {self.timestream_magnetic_days}")
        if not 0 <= self.archive_glacier_after_days <= 3650:
            raise ValueError(
                f"{PREFIX}archiveGlacierAfterDays must be 0 (never) to 3650, got {self.archive_glacier_after_days}"
            )

    @property
    def log_retention(self) -> logs.RetentionDays:
        """The CloudWatch Logs retention for every log group of the stack."""
        return _RETENTION[self.log_retention_days]

    @property
    def data_removal_policy(self) -> RemovalPolicy:
        """What happens to tables, buckets and the stream when the stack is deleted."""
        return RemovalPolicy.RETAIN if self.retain_data else RemovalPolicy.DESTROY

    @classmethod
    def from_context(cls, node: Node) -> Settings:
        """Read ``novacron:*`` context values, falling back to the defaults above."""
        defaults = cls()

        def get(key: str, default: Any) -> Any:
            value = node.try_get_context(PREFIX + key)
            return default if value is None else value

        email = get("alarmEmail", None)
        return cls(
            stack_name=str(get("stackName", defaults.stack_name)),
            log_retention_days=int(get("logRetentionDays", defaults.log_retention_days)),
            retain_data=_as_bool(get("retainData", defaults.retain_data)),
            alarm_email=str(email) if email else None,
            iterator_age_alarm_s=int(get("iteratorAgeAlarmSeconds", defaults.iterator_age_alarm_s)),
            api_throttle_rate=int(get("apiThrottleRate", defaults.api_throttle_rate)),
            api_throttle_burst=int(get("apiThrottleBurst", defaults.api_throttle_burst)),
            timestream=_as_bool(get("timestream", defaults.timestream)),
            timestream_memory_hours=int(get("timestreamMemoryHours", defaults.timestream_memory_hours)),
            timestream_magnetic_days=int(get("timestreamMagneticDays", defaults.timestream_magnetic_days)),
            archive_glacier_after_days=int(get("archiveGlacierAfterDays", defaults.archive_glacier_after_days)),
        )
