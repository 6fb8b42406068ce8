"""The detection policy: validation, what it resolves per series, maintenance windows, versioned changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from novacron.auth import Principal, Role
from novacron.detect.policy import (
    DetectionPolicy,
    Seasonality,
    SeriesSettings,
    change_record,
    updated_detection,
)
from novacron.detect.seasonality import SeasonalProfile
from novacron.ingest.policy import PolicyConflict, field_errors
from tests.unit.detect.conftest import seasonal_series

API = (("__name__", "latency_seconds"), ("env", "prod"), ("job", "api"))
DEV = (("__name__", "latency_seconds"), ("env", "dev"), ("job", "api"))
DEBUG = (("__name__", "debug_requests_total"), ("env", "prod"), ("job", "api"))
WINDOW = {"start": "2026-11-27T10:00:00Z", "end": "2026-11-27T11:00:00+00:00"}
ADMIN = Principal(tenant="acme", role=Role.ADMIN, key_id="key-1")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def problems(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        DetectionPolicy.model_validate(doc)
    return field_errors(caught.value)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"defaults": {"sensitivity": 1.5}}, "defaults.sensitivity: Input should be less than or equal to 1"),
        ({"defaults": {"seasonality": "hourly"}}, "defaults.seasonality: Input should be 'auto', 'none'"),
        ({"watch": ["{job="]}, "watch: Value error, invalid series selector '{job='"),
        ({"ignore": ["9bad"]}, "ignore: Value error, invalid series selector '9bad'"),
        ({"overrides": [{"metric": "up"}]}, "overrides.0: Value error, set at least one of sensitivity, seasonality"),
        ({"overrides": [{"sensitivity": 0.2}]}, 'overrides.0: Value error, give exactly one of "metric"'),
        ({"overrides": [{"metric": "a-b", "sensitivity": 0.2}]}, "overrides.0.metric: Value error, invalid metric"),
        (
            {"maintenance": [{**WINDOW, "start": "2026-11-27T10:00:00"}]},
            "maintenance.0.start: Input should have timezone",
        ),
        (
            {"maintenance": [{**WINDOW, "end": "2026-11-27T09:00:00Z"}]},
            "maintenance.0: Value error, end (2026-11-27T09",
        ),
        ({"maintenance": [{**WINDOW, "matchers": ["{"]}]}, "maintenance.0.matchers: Value error, invalid series"),
        ({"maintenance": [{**WINDOW, "comment": "x" * 501}]}, "maintenance.0.comment: String should have at most 500"),
        ({"sensitivity": 0.3}, "sensitivity: Extra inputs are not permitted"),
    ],
)
def test_an_invalid_policy_names_the_field_and_the_problem(doc: dict[str, Any], expected: str) -> None:
    # When an invalid policy is validated, Then the one problem names its field
    found = problems(doc)
    assert len(found) == 1
    assert found[0].startswith(expected), found


def test_without_settings_every_series_is_scored_at_the_defaults() -> None:
    policy = DetectionPolicy()
    assert policy.settings_for(API) == SeriesSettings(0.5, Seasonality.AUTO)
    assert not policy.suppressed(API, ms("2026-11-27T10:30:00"))


def test_the_first_matching_override_sets_each_setting() -> None:
    # Given overrides by name and by selector, each setting only some fields
    policy = DetectionPolicy.model_validate(
        {
            "defaults": {"sensitivity": 0.4, "seasonality": "auto"},
            "overrides": [
                {"match": '{env="dev"}', "sensitivity": 0.1},
                {"metric": "latency_seconds", "sensitivity": 0.9, "seasonality": "weekly"},
            ],
        }
    )
    # Then a dev series takes the first override's sensitivity and the second's seasonality
    assert policy.settings_for(DEV) == SeriesSettings(0.1, Seasonality.WEEKLY)
    assert policy.settings_for(API) == SeriesSettings(0.9, Seasonality.WEEKLY)
    # And a series no override matches keeps the defaults
    assert policy.settings_for(DEBUG) == SeriesSettings(0.4, Seasonality.AUTO)


def test_watch_limits_the_scored_series_and_ignore_wins_over_it() -> None:
    policy = DetectionPolicy.model_validate({"watch": ['{job="api"}'], "ignore": ["debug_requests_total"]})
    assert policy.settings_for(API) is not None
    assert policy.settings_for(DEBUG) is None  # watched by job, but ignored by name
    assert policy.settings_for((("__name__", "up"), ("job", "db"))) is None  # not watched


def test_a_maintenance_window_covers_its_time_and_its_series_only() -> None:
    policy = DetectionPolicy.model_validate(
        {"maintenance": [{**WINDOW, "matchers": ['{env="prod"}', "debug_requests_total"], "comment": "upgrade"}]}
    )
    inside = ms("2026-11-27T10:30:00")
    # Then samples of matching series from start (included) to end (excluded) are suppressed
    assert policy.suppressed(API, ms("2026-11-27T10:00:00"))
    assert policy.suppressed(API, inside)
    assert not policy.suppressed(API, ms("2026-11-27T11:00:00"))
    assert not policy.suppressed(API, ms("2026-11-27T09:59:59"))
    # And series no matcher matches are not
    assert not policy.suppressed(DEV, inside)
    # And a window without matchers covers every series
    assert DetectionPolicy.model_validate({"maintenance": [WINDOW]}).suppressed(DEV, inside)


def test_the_document_round_trips_and_leaves_unset_override_fields_out() -> None:
    doc = {
        "defaults": {"sensitivity": 0.7, "seasonality": "daily"},
        "overrides": [{"metric": "up", "seasonality": "none"}],
        "watch": ['{job="api"}'],
        "ignore": ["debug_requests_total"],
        "maintenance": [{**WINDOW, "matchers": [], "comment": "upgrade"}],
    }
    policy = DetectionPolicy.model_validate(doc)
    stored = policy.document()
    assert stored["overrides"] == [{"metric": "up", "seasonality": "none"}]
    assert stored["maintenance"][0]["end"] == "2026-11-27T11:00:00Z"
    assert DetectionPolicy.model_validate(stored) == policy


def test_a_change_bumps_the_version_and_records_who_and_what() -> None:
    # Given the stored defaults
    current = DetectionPolicy()
    # When an admin changes the sensitivity and adds a window, based on version 0
    body = {"version": 0, "tenant": "acme", "defaults": {"sensitivity": 0.8}, "maintenance": [WINDOW]}
    changed = updated_detection(current, body, "key-1", 1_800_000_000)
    record = change_record(current, changed, ADMIN)
    # Then version 1 is made by the key at that time, and the record lists the changes
    assert (changed.version, changed.updated_by, changed.updated_at) == (1, "key-1", 1_800_000_000)
    assert (record.version, record.previous_version, record.changed_by, record.changed_by_role) == (
        1,
        0,
        "key-1",
        "admin",
    )
    assert "defaults.sensitivity: 0.5 → 0.8" in record.changes
    assert any(line.startswith("maintenance[0]: - → ") for line in record.changes)


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ({"version": 3}, PolicyConflict, "is at version 0, the change was made to version 3"),
        ({"defaults": {}}, ValueError, "version: required"),
        ({"version": 0, "sensitivity": 0.2}, ValueError, "unknown fields: sensitivity"),
        ([], ValueError, "body must be a JSON object"),
    ],
)
def test_a_change_that_cannot_apply_says_why(body: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(")):
        updated_detection(DetectionPolicy(), body, "key-1", 0)


def test_forcing_a_seasonal_model_holds_through_the_comparisons_until_released() -> None:
    # Given two profiles fed three days of a daily-seasonal series, one forced to no seasonality
    times, values = seasonal_series(3)
    chosen, forced = SeasonalProfile(), SeasonalProfile()
    forced.force("none")
    for t, v in zip(times, values, strict=True):
        chosen.add(t, v)
        forced.add(t, v)
    # Then the free one found the daily pattern, the forced one kept none
    assert chosen.model == "daily"
    assert (forced.model, forced.forced_model) == ("none", "none")
    # When a model is forced on a warm profile, it is used at once (the baseline is rebuilt)
    version = forced.version
    forced.force("weekly")
    assert forced.model == "weekly"
    assert forced.version > version
    # When released, the next comparison decides again
    forced.force(None)
    forced.add(times[-1] + 3_600_000, values[-1])
    assert forced.model == "daily"
    with pytest.raises(ValueError, match="unknown seasonal model"):
        forced.force("hourly")
