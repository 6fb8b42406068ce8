"""The retention model: defaults, validation messages, override precedence, horizons."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from novacron.ingest.policy import field_errors
from novacron.retention.policy import (
    DAY_MS,
    FOREVER_MS,
    MAX_HOT_DAYS,
    Retention,
    RetentionPolicy,
    Tier,
)
from novacron.series import Labels

NOW_MS = 1_790_000_000_000


def labels(name: str, **extra: str) -> Labels:
    return tuple(sorted({"__name__": name, **extra}.items()))


def policy(**doc: Any) -> RetentionPolicy:
    return RetentionPolicy.model_validate(doc)


def errors_of(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        RetentionPolicy.model_validate(doc)
    return field_errors(caught.value)


def test_the_defaults_keep_raw_data_as_long_as_the_writer_did() -> None:
    # Given no stored policy / When a series' retention is asked
    got = RetentionPolicy().retention_for(labels("up"))
    # Then it is the documented defaults (raw 15 days: the writer's former hot_retention_days)
    assert got == Retention(raw_days=15, rollup_1m_days=30, rollup_5m_days=90, rollup_1h_days=400, archive_days=400)


def test_the_first_matching_override_wins_per_field() -> None:
    # Given two overrides that both match debug_requests{env="dev"}, setting overlapping tiers
    p = policy(
        overrides=[
            {"match": '{__name__=~"debug_.*", env="dev"}', "raw_days": 2, "rollup_1m_days": 3},
            {"metric": "debug_requests", "raw_days": 7, "rollup_1m_days": 10, "archive_days": 30},
        ]
    )
    # When the retention of a dev series of that metric is resolved
    got = p.retention_for(labels("debug_requests", env="dev"))
    # Then raw and 1m come from the first override, archive from the second (the first leaves it unset)
    assert (got.raw_days, got.rollup_1m_days, got.archive_days) == (2, 3, 30)
    # And the tiers no override sets are the defaults
    assert (got.rollup_5m_days, got.rollup_1h_days) == (90, 400)
    # And a prod series of the metric only matches the second override
    assert p.retention_for(labels("debug_requests", env="prod")).raw_days == 7
    # And another metric gets the defaults
    assert p.retention_for(labels("up", env="dev")) == p.default_retention


def test_combined_overrides_keep_coarser_tiers_at_least_as_long() -> None:
    # Given one override lengthening raw data and an earlier one shortening 1m rollups
    p = policy(
        overrides=[
            {"metric": "slo_events", "rollup_1m_days": 20},
            {"match": '{team="sre"}', "raw_days": 25, "rollup_1m_days": 25},
        ]
    )
    # When both match a series
    got = p.retention_for(labels("slo_events", team="sre"))
    # Then 1m rollups are raised to the raw retention rather than outlived by it
    assert (got.raw_days, got.rollup_1m_days) == (25, 25)


def test_resolution_is_cached_per_label_set() -> None:
    p = policy(overrides=[{"metric": "a", "raw_days": 3, "rollup_1m_days": 3}])
    first = p.retention_for(labels("a"))
    # The same label set resolves to the same object, without matching again
    assert p.retention_for(labels("a")) is first


@pytest.mark.parametrize(
    ("doc", "field", "message"),
    [
        ({"defaults": {"raw_days": 0}}, "defaults.raw_days", "greater than or equal to 1"),
        ({"defaults": {"rollup_1h_days": MAX_HOT_DAYS + 1}}, "defaults.rollup_1h_days", "less than or equal"),
        ({"defaults": {"raw_days": 40}}, "defaults", "rollup_1m_days (30) must be at least raw_days (40)"),
        ({"defaults": {"archive_days": 4000}}, "defaults.archive_days", "less than or equal to 3650"),
        ({"defaults": {"raw": 3}}, "defaults.raw", "Extra inputs are not permitted"),
        ({"overrides": [{"metric": "up"}]}, "overrides.0", "set at least one of raw_days"),
        ({"overrides": [{"raw_days": 2}]}, "overrides.0", 'exactly one of "metric"'),
        ({"overrides": [{"metric": "a", "match": "{b='c'}", "raw_days": 2}]}, "overrides.0", 'exactly one of "metric"'),
        ({"overrides": [{"metric": "bad name", "raw_days": 2}]}, "overrides.0.metric", "invalid metric name"),
        ({"overrides": [{"match": '{env=~"("}', "raw_days": 2}]}, "overrides.0.match", "invalid series selector"),
        ({"overrides": [{"match": "rate(x[5m])", "raw_days": 2}]}, "overrides.0.match", "expected vector selector"),
        ({"overrides": [{"metric": "up", "raw_days": 60}]}, "overrides", "override 0 (on the defaults)"),
        ({"overrides": [{"metric": "up", "archive_days": -1}]}, "overrides.0.archive_days", "greater than or equal"),
    ],
)
def test_invalid_policies_name_the_field(doc: dict[str, Any], field: str, message: str) -> None:
    # When an invalid policy is validated / Then one error line names the field and says what is wrong
    lines = errors_of(doc)
    assert any(line.startswith(f"{field}:") and message in line for line in lines), lines


def test_too_many_overrides_are_refused() -> None:
    lines = errors_of({"overrides": [{"metric": f"m{i}", "archive_days": 30} for i in range(101)]})
    assert any(line.startswith("overrides:") for line in lines)


def test_horizons_per_tier() -> None:
    r = Retention(raw_days=2, rollup_1m_days=3, rollup_5m_days=4, rollup_1h_days=5, archive_days=0)
    # The oldest timestamp each tier still holds, by tier name or enum
    assert r.horizon_ms("raw", NOW_MS) == NOW_MS - 2 * DAY_MS
    assert r.horizon_ms(Tier.ROLLUP_1H, NOW_MS) == NOW_MS - 5 * DAY_MS
    assert r.horizon_ms("5m", NOW_MS) == NOW_MS - 4 * DAY_MS
    # And archive_days 0 keeps everything
    assert r.horizon_ms("archive", NOW_MS) == FOREVER_MS
    with pytest.raises(ValueError, match="'10s' is not a valid Tier"):
        r.horizon_ms("10s", NOW_MS)


def test_longest_days_cover_every_series_of_the_tenant() -> None:
    p = policy(
        overrides=[
            {"metric": "short", "raw_days": 1, "rollup_1m_days": 1},
            {"metric": "long", "raw_days": 60, "rollup_1m_days": 60, "rollup_5m_days": 90},
            {"metric": "audit", "archive_days": 0},
        ]
    )
    # A block or archive object mixing these series must live as long as the longest of them
    assert (p.longest_days("raw"), p.longest_days("1m"), p.longest_days("5m")) == (60, 60, 90)
    # And one series archived forever makes the tenant's archive objects forever
    assert p.longest_days("archive") == 0
    assert RetentionPolicy().longest_days("archive") == 400


def test_the_document_round_trips_without_unset_override_fields() -> None:
    p = policy(version=3, overrides=[{"match": '{env="dev"}', "raw_days": 2, "rollup_1m_days": 2}])
    doc = p.document()
    assert doc["overrides"] == [{"match": '{env="dev"}', "raw_days": 2, "rollup_1m_days": 2}]
    assert RetentionPolicy.model_validate(doc) == p
