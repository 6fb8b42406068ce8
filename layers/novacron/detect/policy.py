"""A tenant's detection policy: which series are scored, how sensitively, and when anomalies stay quiet.

A policy has ``defaults`` (``sensitivity`` in [0, 1], ``seasonality`` ``auto``/``none``/``daily``/``weekly``)
and ordered ``overrides``, each matching series by metric name or by a PromQL series selector, like
retention overrides: for each setting, the first matching override that sets it wins. ``watch`` lists
the selectors of the series scored (empty: every series), ``ignore`` those never scored (it wins over
``watch``). ``maintenance`` windows (RFC 3339 ``start``/``end``, optional ``matchers``: default every
series) are times during which anomalies are still stored, marked ``suppressed``, but put no event on
the bus.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from novacron.auth import Principal
from novacron.ingest.policy import check_based_on
from novacron.ingest.validate import METRIC_NAME_RE
from novacron.retention.changes import RetentionChange, audit_record
from novacron.retention.policy import SeriesOverride, parse_series_selector
from novacron.series import METRIC_NAME, Labels, Matcher, matches_all

DETECTION_KEY = "detection"  # the settings table's sort key of the current policy
MAX_OVERRIDES = 100
MAX_SELECTORS = 100
MAX_WINDOWS = 100
MAX_COMMENT = 500
# Labels → resolved settings, per policy object; cleared when it grows past this.
_MAX_CACHED_SERIES = 200_000


class Seasonality(StrEnum):
    """Which seasonal model the detector uses: its own choice (``auto``) or a forced one."""

    AUTO = "auto"
    NONE = "none"
    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True)
class SeriesSettings:
    """The resolved detection settings of one series."""

    sensitivity: float
    seasonality: Seasonality


def _selector_matchers(text: str) -> tuple[Matcher, ...]:
    """The matchers of a selector: a metric name or a PromQL series selector (ValueError when invalid)."""
    if METRIC_NAME_RE.fullmatch(text):
        return (Matcher(METRIC_NAME, "=", text),)
    return tuple(parse_series_selector(text))


class Settings(BaseModel):
    """A policy's defaults: how every series is scored unless an override says otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sensitivity: float = Field(default=0.5, ge=0, le=1)
    seasonality: Seasonality = Seasonality.AUTO


class Override(SeriesOverride):
    """Settings of the series matching ``metric`` (a name) or ``match`` (a PromQL series selector)."""

    sensitivity: float | None = Field(None, ge=0, le=1)
    seasonality: Seasonality | None = None

    def _check_settings(self) -> None:
        if self.sensitivity is None and self.seasonality is None:
            raise ValueError("set at least one of sensitivity, seasonality")


class MaintenanceWindow(BaseModel):
    """A time during which the anomalies of the matching series (all, without ``matchers``) are suppressed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: AwareDatetime
    end: AwareDatetime
    matchers: tuple[str, ...] = Field(default=(), max_length=MAX_SELECTORS)
    comment: str = Field(default="", max_length=MAX_COMMENT)
    _selectors: tuple[tuple[Matcher, ...], ...] = PrivateAttr(default=())

    @field_validator("matchers")
    @classmethod
    def _selectors_valid(cls, matchers: tuple[str, ...]) -> tuple[str, ...]:
        for text in matchers:
            _selector_matchers(text)
        return matchers

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end.isoformat()}) must be after start ({self.start.isoformat()})")
        self._selectors = tuple(_selector_matchers(text) for text in self.matchers)
        return self

    def covers(self, labels: Labels, timestamp_ms: int) -> bool:
        """Whether a sample of the series at ``timestamp_ms`` falls in this window."""
        if not _ms(self.start) <= timestamp_ms < _ms(self.end):
            return False
        return not self._selectors or any(matches_all(labels, s) for s in self._selectors)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class DetectionPolicy(BaseModel):
    """A tenant's detection settings (version 0: the defaults, nothing stored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(default=0, ge=0)
    defaults: Settings = Field(default_factory=Settings)
    overrides: tuple[Override, ...] = Field(default=(), max_length=MAX_OVERRIDES)
    watch: tuple[str, ...] = Field(default=(), max_length=MAX_SELECTORS)  # empty: every series
    ignore: tuple[str, ...] = Field(default=(), max_length=MAX_SELECTORS)
    maintenance: tuple[MaintenanceWindow, ...] = Field(default=(), max_length=MAX_WINDOWS)
    updated_by: str = ""  # key id of the last change
    updated_at: int = 0  # epoch seconds
    _watch: tuple[tuple[Matcher, ...], ...] = PrivateAttr(default=())
    _ignore: tuple[tuple[Matcher, ...], ...] = PrivateAttr(default=())
    _cache: dict[Labels, SeriesSettings | None] = PrivateAttr(default_factory=dict)

    @field_validator("watch", "ignore")
    @classmethod
    def _selectors_valid(cls, selectors: tuple[str, ...]) -> tuple[str, ...]:
        for text in selectors:
            _selector_matchers(text)
        return selectors

    @model_validator(mode="after")
    def _compile(self) -> DetectionPolicy:
        self._watch = tuple(_selector_matchers(text) for text in self.watch)
        self._ignore = tuple(_selector_matchers(text) for text in self.ignore)
        return self

    def settings_for(self, labels: Labels) -> SeriesSettings | None:
        """How the series with ``labels`` is scored, or None when it is not scored (cached per label set)."""
        if labels in self._cache:
            return self._cache[labels]
        resolved: SeriesSettings | None = None
        if self._watched(labels):
            sensitivity, seasonality = self.defaults.sensitivity, self.defaults.seasonality
            sensitivity_set = seasonality_set = False
            for override in self.overrides:
                if override.matches(labels):
                    if not sensitivity_set and override.sensitivity is not None:
                        sensitivity, sensitivity_set = override.sensitivity, True
                    if not seasonality_set and override.seasonality is not None:
                        seasonality, seasonality_set = override.seasonality, True
            resolved = SeriesSettings(sensitivity, seasonality)
        if len(self._cache) >= _MAX_CACHED_SERIES:
            self._cache.clear()
        self._cache[labels] = resolved
        return resolved

    def _watched(self, labels: Labels) -> bool:
        if any(matches_all(labels, s) for s in self._ignore):
            return False
        return not self._watch or any(matches_all(labels, s) for s in self._watch)

    def suppressed(self, labels: Labels, timestamp_ms: int) -> bool:
        """Whether a sample of the series at ``timestamp_ms`` falls in a maintenance window."""
        return any(window.covers(labels, timestamp_ms) for window in self.maintenance)

    def document(self) -> dict[str, Any]:
        """The JSON form the API answers with and the table stores (unset override fields left out)."""
        doc = self.model_dump(mode="json", exclude={"overrides"})
        doc["overrides"] = [o.model_dump(mode="json", exclude_none=True) for o in self.overrides]
        return doc


# --- versioned changes and their audit records (as for retention: novacron.retention.changes) -----------

EDITABLE_FIELDS = ("defaults", "overrides", "watch", "ignore", "maintenance")


class DetectionChange(RetentionChange):
    """The audit record of one version of a tenant's detection policy (the fields of a retention record)."""


def updated_detection(current: DetectionPolicy, body: Any, by: str, now: int) -> DetectionPolicy:
    """The policy an admin's PUT body makes of ``current``.

    The body holds the editable fields (omitted: their defaults) and the ``version`` it was based on.
    Raises ValueError for a body that is not an object or lacks ``version``, PolicyConflict when
    ``version`` is not the current one, and pydantic's ValidationError for invalid fields.
    """
    body = check_based_on(body, current.version, "detection policy")
    unknown = sorted(set(body) - {*EDITABLE_FIELDS, "version", "tenant", "updated_by", "updated_at"})
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(unknown)}; a policy has {', '.join(EDITABLE_FIELDS)}")
    editable = {k: body[k] for k in EDITABLE_FIELDS if k in body}
    server = {"version": current.version + 1, "updated_by": by, "updated_at": now}
    return DetectionPolicy.model_validate({**editable, **server})


def change_record(before: DetectionPolicy, after: DetectionPolicy, principal: Principal) -> DetectionChange:
    """The audit record of ``after`` replacing ``before``."""
    return audit_record(before, after, principal, EDITABLE_FIELDS, DetectionChange)
