"""A tenant's retention policy: how long each tier keeps a series' data (see docs/retention.md).

The hot tier (DynamoDB) keeps raw samples and 1-minute, 5-minute and 1-hour rollups; the archive
(S3) keeps raw data. A policy has ``defaults`` for every tier and ordered ``overrides``, each matching
series by metric name or by a PromQL series selector and setting any subset of the tiers. For each
tier, the first override that matches a series *and* sets that tier wins; tiers no matching
override sets come from the defaults.

Rules: every hot tier keeps at least 1 day and at most MAX_HOT_DAYS; a coarser rollup lives at least
as long as a finer one (raw ≤ 1m ≤ 5m ≤ 1h), which is validated for the defaults and for each
override applied on them, and enforced (coarser tiers raised) when several overrides combine;
``archive_days`` is 0 (forever) or 1..MAX_ARCHIVE_DAYS, and rounds up to an archive class.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from novacron.ingest.validate import METRIC_NAME_RE
from novacron.retention.archive import MAX_ARCHIVE_DAYS, archive_retention_tag
from novacron.series import METRIC_NAME, Labels, Matcher, matches_all

RETENTION_KEY = "retention"  # the settings table's sort key of the current policy
DAY_MS = 86_400_000
MAX_HOT_DAYS = 3650
MAX_OVERRIDES = 100
# The horizon of data kept forever: older than any timestamp.
FOREVER_MS = -(2**63)
# Labels → resolved retention, per policy object; cleared when it grows past this.
_MAX_CACHED_SERIES = 200_000


class Tier(StrEnum):
    """A kind of stored data with its own retention."""

    RAW = "raw"
    ROLLUP_1M = "1m"
    ROLLUP_5M = "5m"
    ROLLUP_1H = "1h"
    ARCHIVE = "archive"


HOT_FIELDS = ("raw_days", "rollup_1m_days", "rollup_5m_days", "rollup_1h_days")  # finest to coarsest
FIELDS = (*HOT_FIELDS, "archive_days")
_FIELD_OF = dict(zip(Tier, FIELDS, strict=True))


@dataclass(frozen=True)
class Retention:
    """The resolved retention of one series, in days per tier (``archive_days`` 0: forever)."""

    raw_days: int
    rollup_1m_days: int
    rollup_5m_days: int
    rollup_1h_days: int
    archive_days: int

    def days(self, tier: Tier | str) -> int:
        """Days ``tier`` (``raw``, ``1m``, ``5m``, ``1h``, ``archive``) keeps data; 0 means forever."""
        return int(getattr(self, _FIELD_OF[Tier(tier)]))

    def horizon_ms(self, tier: Tier | str, now_ms: int) -> int:
        """The oldest timestamp ``tier`` still holds at ``now_ms`` (FOREVER_MS when it keeps everything)."""
        days = self.days(tier)
        return FOREVER_MS if days == 0 else now_ms - days * DAY_MS


def ordering_problem(days: dict[str, int]) -> str | None:
    """Why hot-tier days break raw ≤ 1m ≤ 5m ≤ 1h, or None."""
    for finer, coarser in itertools.pairwise(HOT_FIELDS):
        if days[coarser] < days[finer]:
            return f"{coarser} ({days[coarser]}) must be at least {finer} ({days[finer]}): coarser data lives longer"
    return None


class RetentionDays(BaseModel):
    """Days each tier keeps data: a policy's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    raw_days: int = Field(default=15, ge=1, le=MAX_HOT_DAYS)
    rollup_1m_days: int = Field(default=30, ge=1, le=MAX_HOT_DAYS)
    rollup_5m_days: int = Field(default=90, ge=1, le=MAX_HOT_DAYS)
    rollup_1h_days: int = Field(default=400, ge=1, le=MAX_HOT_DAYS)
    archive_days: int = Field(default=400, ge=0, le=MAX_ARCHIVE_DAYS)  # 0: forever

    @model_validator(mode="after")
    def _ordered(self) -> RetentionDays:
        problem = ordering_problem(self.model_dump())
        if problem is not None:
            raise ValueError(problem)
        return self


class SeriesOverride(BaseModel):
    """Settings of the series matching ``metric`` (a name) or ``match`` (a PromQL series selector).

    The selector half that retention and detection overrides share: a subclass adds its settings and
    ``_check_settings``, which says when none is set.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str | None = None
    match: str | None = None
    _matchers: tuple[Matcher, ...] = PrivateAttr(default=())

    @field_validator("metric")
    @classmethod
    def _metric_name(cls, metric: str | None) -> str | None:
        if metric is not None and not METRIC_NAME_RE.fullmatch(metric):
            raise ValueError(f"invalid metric name {metric!r}: must match [a-zA-Z_:][a-zA-Z0-9_:]*")
        return metric

    @field_validator("match")
    @classmethod
    def _selector(cls, match: str | None) -> str | None:
        if match is not None:
            parse_series_selector(match)
        return match

    @model_validator(mode="after")
    def _one_selector_and_a_setting(self) -> SeriesOverride:
        if (self.metric is None) == (self.match is None):
            raise ValueError('give exactly one of "metric" (a metric name) or "match" (a series selector)')
        self._check_settings()
        if self.metric is not None:
            self._matchers = (Matcher(METRIC_NAME, "=", self.metric),)
        else:
            self._matchers = tuple(parse_series_selector(self.match or ""))
        return self

    def _check_settings(self) -> None:
        """Raise ValueError when the override sets nothing."""

    def matches(self, labels: Labels) -> bool:
        """Whether this override applies to a series."""
        return matches_all(labels, self._matchers)


class Override(SeriesOverride):
    """Retention of the series matching ``metric`` (a name) or ``match`` (a PromQL series selector)."""

    raw_days: int | None = Field(None, ge=1, le=MAX_HOT_DAYS)
    rollup_1m_days: int | None = Field(None, ge=1, le=MAX_HOT_DAYS)
    rollup_5m_days: int | None = Field(None, ge=1, le=MAX_HOT_DAYS)
    rollup_1h_days: int | None = Field(None, ge=1, le=MAX_HOT_DAYS)
    archive_days: int | None = Field(None, ge=0, le=MAX_ARCHIVE_DAYS)

    def _check_settings(self) -> None:
        if not self.days():
            raise ValueError(f"set at least one of {', '.join(FIELDS)}")

    def days(self) -> dict[str, int]:
        """The tiers this override sets."""
        return {name: value for name in FIELDS if (value := getattr(self, name)) is not None}


def parse_series_selector(text: str) -> list[Matcher]:
    """The matchers of ``text`` (``{__name__=~"debug_.*", env="dev"}``), raising ValueError when invalid.

    The PromQL parser is imported here, not at module level: code that only needs archive classes
    does not load it.
    """
    from novacron.promql import parse_selector
    from novacron.promql.errors import BadData

    try:
        matchers = parse_selector(text)
    except BadData as exc:
        raise ValueError(f"invalid series selector {text!r}: {exc}") from None
    if not matchers:
        raise ValueError(f"series selector {text!r} has no matchers")
    return matchers


class RetentionPolicy(BaseModel):
    """A tenant's retention: defaults and ordered overrides (version 0: the defaults, nothing stored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(default=0, ge=0)
    defaults: RetentionDays = Field(default_factory=RetentionDays)
    overrides: tuple[Override, ...] = Field(default=(), max_length=MAX_OVERRIDES)
    updated_by: str = ""  # key id of the last change
    updated_at: int = 0  # epoch seconds
    _cache: dict[Labels, Retention] = PrivateAttr(default_factory=dict)

    @field_validator("overrides")
    @classmethod
    def _overrides_ordered(cls, overrides: tuple[Override, ...], info: ValidationInfo) -> tuple[Override, ...]:
        defaults = info.data.get("defaults")
        if defaults is None:  # the defaults were invalid: reported on their own
            return overrides
        for i, override in enumerate(overrides):
            problem = ordering_problem({**defaults.model_dump(), **override.days()})
            if problem is not None:
                raise ValueError(f"override {i} (on the defaults): {problem}")
        return overrides

    def retention_for(self, labels: Labels) -> Retention:
        """The retention of the series with ``labels`` (cached per label set: called per series)."""
        if not self.overrides:
            return self.default_retention
        cached = self._cache.get(labels)
        if cached is not None:
            return cached
        days = self.defaults.model_dump()
        unset = set(FIELDS)
        for override in self.overrides:
            if unset and override.matches(labels):
                for name, value in override.days().items():
                    if name in unset:
                        days[name] = value
                        unset.discard(name)
        # Overrides that each respect the ordering can break it together: coarser tiers are raised.
        for finer, coarser in itertools.pairwise(HOT_FIELDS):
            days[coarser] = max(days[coarser], days[finer])
        retention = Retention(**days)
        if len(self._cache) >= _MAX_CACHED_SERIES:
            self._cache.clear()
        self._cache[labels] = retention
        return retention

    @property
    def default_retention(self) -> Retention:
        """The retention of a series no override matches."""
        return Retention(**self.defaults.model_dump())

    def longest_days(self, tier: Tier | str) -> int:
        """The longest retention of ``tier`` any series of the tenant can have (0 when one is forever).

        What covers data of mixed series: a hot-tier block, the series index, an archive object.
        """
        name = _FIELD_OF[Tier(tier)]
        candidates = [getattr(self.defaults, name)]
        # An override's value can be raised by the ordering of the tiers before it, never beyond theirs.
        for override in self.overrides:
            values = {**self.defaults.model_dump(), **override.days()}
            upto = HOT_FIELDS[: HOT_FIELDS.index(name) + 1] if name in HOT_FIELDS else (name,)
            candidates.append(max(values[f] for f in upto))
        if Tier(tier) is Tier.ARCHIVE and 0 in candidates:
            return 0
        return int(max(candidates))

    def longest_hot_days(self) -> int:
        """The longest any hot tier (raw or a rollup) keeps any series of the tenant."""
        return max(self.longest_days(tier) for tier in (Tier.RAW, Tier.ROLLUP_1M, Tier.ROLLUP_5M, Tier.ROLLUP_1H))

    def archive_tag(self) -> dict[str, str]:
        """The S3 tag of the tenant's archive objects: they mix series, so the longest archive retention."""
        return archive_retention_tag(self.longest_days(Tier.ARCHIVE))

    def document(self) -> dict[str, Any]:
        """The JSON form the API answers with and the table stores (unset override fields left out)."""
        doc = self.model_dump(mode="json", exclude={"overrides"})
        doc["overrides"] = [o.model_dump(mode="json", exclude_none=True) for o in self.overrides]
        return doc
