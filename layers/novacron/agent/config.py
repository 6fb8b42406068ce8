"""The agent's configuration file (``agent.yaml``), as a pydantic model.

See docs/agent.md for every field and a full example (docs/agent.example.yaml).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_API_KEY_ENV = "NOVACRON_API_KEY"


class ConfigError(Exception):
    """The configuration file is missing, not YAML, or not a valid agent configuration."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return value


ListenAddress = Annotated[str, AfterValidator(_host_port)]


def split_host_port(value: str) -> tuple[str, int]:
    """``"127.0.0.1:8125"`` → ``("127.0.0.1", 8125)`` (brackets around an IPv6 host removed)."""
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


class StatsdSection(_Section):
    """The StatsD/DogStatsD UDP listener."""

    enabled: bool = True
    listen: ListenAddress = "127.0.0.1:8125"
    flush_interval_s: float = Field(default=10.0, gt=0)
    # The receive buffer asked of the kernel: bursts queue here while the aggregator catches up.
    receive_buffer_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    # Passed to the aggregator's ``StatsdSettings`` (see the StatsD section of docs/agent.md).
    settings: dict[str, Any] = Field(default_factory=dict)


class ScrapeTarget(_Section):
    """One Prometheus text / OpenMetrics endpoint to scrape."""

    url: str
    job: str
    interval_s: float = Field(default=15.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"scrape url must be http:// or https://, not {value!r}")
        return value


class OtlpSection(_Section):
    """The local OTLP/HTTP receiver (``/v1/metrics``, ``/v1/traces``)."""

    enabled: bool = True
    listen: ListenAddress = "127.0.0.1:4318"
    max_body_bytes: int = Field(default=16 * 1024 * 1024, gt=0)


class QueueSection(_Section):
    """The disk queue."""

    dir: Path
    max_bytes: int = Field(default=1024**3, gt=0)
    segment_bytes: int = Field(default=16 * 1024**2, gt=0)

    @model_validator(mode="after")
    def _room_for_segments(self) -> Self:
        if self.max_bytes < 4 * self.segment_bytes:
            raise ValueError("queue.max_bytes must be at least 4 times queue.segment_bytes")
        return self


class SendSection(_Section):
    """How entries are built and sent."""

    batch_bytes: int = Field(default=1024 * 1024, gt=0)  # uncompressed WriteRequest size per request
    timeout_s: float = Field(default=30.0, gt=0)
    min_backoff_s: float = Field(default=0.5, gt=0)
    max_backoff_s: float = Field(default=30.0, gt=0)
    max_retry_after_s: float = Field(default=600.0, gt=0)
    # On SIGTERM, how long to keep sending what is queued before exiting (the rest stays on disk).
    shutdown_grace_s: float = Field(default=5.0, ge=0)


class HealthSection(_Section):
    """The agent's own metrics, sent through the same queue."""

    enabled: bool = True
    interval_s: float = Field(default=15.0, gt=0)
    # How often the one-line status goes to the log at INFO.
    log_interval_s: float = Field(default=60.0, gt=0)


class AgentConfig(_Section):
    """The whole ``agent.yaml``."""

    endpoint: str
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    api_key_env: str = DEFAULT_API_KEY_ENV
    # Added to every series that lacks them (typically source, environment, owner).
    labels: dict[str, str] = Field(default_factory=dict)
    statsd: StatsdSection = StatsdSection()
    scrape: list[ScrapeTarget] = Field(default_factory=list)
    otlp: OtlpSection = OtlpSection()
    queue: QueueSection
    send: SendSection = SendSection()
    health: HealthSection = HealthSection()

    @field_validator("endpoint")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"endpoint must be an http:// or https:// URL, not {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_key_source(self) -> Self:
        if self.api_key is not None and self.api_key_file is not None:
            raise ValueError("give api_key or api_key_file, not both")
        return self

    def resolve_api_key(self, env: Mapping[str, str]) -> str:
        """The key: ``api_key``, else the first line of ``api_key_file``, else ``env[api_key_env]``."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_file is not None:
            try:
                key = self.api_key_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"api_key_file {self.api_key_file}: {exc.strerror}") from None
            if not key:
                raise ConfigError(f"api_key_file {self.api_key_file} is empty")
            return key
        key = env.get(self.api_key_env, "").strip()
        if not key:
            raise ConfigError(f"no API key: set api_key or api_key_file in the config, or ${self.api_key_env}")
        return key


def load_config(path: Path) -> AgentConfig:
    """Read and validate ``path``; relative ``queue.dir`` and ``api_key_file`` are relative to the file."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        config = AgentConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
    base = path.parent
    queue = config.queue
    if not queue.dir.is_absolute():
        queue = queue.model_copy(update={"dir": base / queue.dir})
    key_file = config.api_key_file
    if key_file is not None and not key_file.is_absolute():
        key_file = base / key_file
    return config.model_copy(update={"queue": queue, "api_key_file": key_file})
