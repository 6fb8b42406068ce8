"""`novacron detect settings get|set|history` and `novacron anomalies list|feedback` against a running local stack."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from novacron.adapters.anomalies import DynamoAnomalyStore
from novacron.auth import register_key
from novacron.cli import CliError
from novacron.detect.anomalies_cli import parse_override, parse_window
from novacron.detect.events import Status
from novacron.local.resources import physical_name
from novacron.local.runtime import LocalRuntime
from novacron.wiring import ANOMALIES_TABLE, KEYS_TABLE
from tests.integration.cli.test_keys_cli import free_port, run
from tests.unit.detect.test_adapters_detect import anomaly

ADMIN = "operator-admin-key-for-detection-tests"
READER = "acme-read-key-for-detection-tests"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with LocalRuntime(port=free_port()) as runtime:
        register_key(ADMIN, "default", "admin", physical_name(KEYS_TABLE))
        register_key(READER, "acme", "read", physical_name(KEYS_TABLE))
        yield runtime.url


def test_settings_get_set_and_history(url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = ("--url", url, "--api-key", ADMIN, "--tenant", "acme")
    # Given acme's defaults
    code, out, _ = run(capsys, "detect", "settings", "get", *target)
    assert (code, json.loads(out)["version"], json.loads(out)["defaults"]["sensitivity"]) == (0, 0, 0.5)
    # When the operator raises the sensitivity, ignores a metric and adds a window and an override
    code, out, err = run(
        capsys,
        "detect",
        "settings",
        "set",
        *target,
        "--sensitivity",
        "0.7",
        "--ignore",
        "debug_requests_total",
        "--override",
        '{env="dev"}:seasonality=none,sensitivity=0.2',
        "--maintenance",
        "2026-11-28T02:00:00Z/2026-11-28T03:00:00Z",
        "--comment",
        "db upgrade",
    )
    # Then version 1 holds them
    policy = json.loads(out)
    assert (code, err) == (0, "")
    assert (policy["version"], policy["defaults"]["sensitivity"], policy["ignore"]) == (
        1,
        0.7,
        ["debug_requests_total"],
    )
    assert policy["overrides"] == [{"match": '{env="dev"}', "sensitivity": 0.2, "seasonality": "none"}]
    assert policy["maintenance"][0]["comment"] == "db upgrade"
    # When a YAML file replaces the policy
    (tmp_path / "detection.yaml").write_text("defaults:\n  seasonality: daily\nwatch:\n  - '{job=\"api\"}'\n")
    code, out, _ = run(capsys, "detect", "settings", "set", *target, "--file", str(tmp_path / "detection.yaml"))
    policy = json.loads(out)
    assert (code, policy["version"], policy["defaults"]["seasonality"]) == (0, 2, "daily")
    assert (policy["watch"], policy["ignore"], policy["maintenance"]) == (['{job="api"}'], [], [])
    # Then the history shows both changes, newest first, with who and what
    code, out, _ = run(capsys, "detect", "settings", "history", *target)
    assert code == 0
    assert out.index("v1 → v2") < out.index("v0 → v1")
    assert "defaults.sensitivity: 0.5 → 0.7" in out
    assert "(default admin)" in out
    code, out, _ = run(capsys, "detect", "settings", "history", *target, "--limit", "1", "--json")
    assert [r["version"] for r in json.loads(out)] == [2]


def test_an_invalid_setting_is_one_line_naming_the_field(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    target = ("--url", url, "--api-key", ADMIN, "--tenant", "globex")
    code, _, err = run(capsys, "detect", "settings", "set", *target, "--sensitivity", "1.5")
    assert code == 1
    assert "HTTP 400" in err
    assert "invalid detection policy" in err


def test_anomalies_list_and_feedback(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an episode of acme an hour ago, and one two days ago
    now_ms = int(time.time() * 1000)
    recent, old = (anomaly("acme", now_ms - ago, Status.RESOLVED) for ago in (3_600_000, 2 * 86_400_000))
    DynamoAnomalyStore(physical_name(ANOMALIES_TABLE)).put_anomalies([recent, old], int(time.time()) + 3600)
    reader = ("--url", url, "--api-key", READER)
    # When a reader lists the last day's anomalies
    code, out, _ = run(capsys, "anomalies", "list", *reader)
    # Then only the recent one is shown, explained on one line
    assert code == 0
    assert recent.id in out
    assert old.id not in out
    assert 'latency_seconds{job="api"}  value 200 expected 100  spike' in out
    code, out, _ = run(capsys, "anomalies", "list", *reader, "--since", "3d", "--json")
    assert [a["id"] for a in json.loads(out)] == [recent.id, old.id]
    code, out, _ = run(capsys, "anomalies", "list", *reader, "--since", "3d", "--status", "open")
    assert (code, out) == (0, "")
    # When the operator marks it a false positive
    admin = ("--url", url, "--api-key", ADMIN, "--tenant", "acme")
    code, out, _ = run(capsys, "anomalies", "feedback", recent.id, *admin, "--verdict", "false_positive")
    assert (code, json.loads(out)["verdict"]) == (0, "false_positive")
    # Then the list shows it
    code, out, _ = run(capsys, "anomalies", "list", *reader)
    assert "[false_positive]" in out
    # And a reader cannot give feedback, and an unknown episode is an error naming it
    code, _, err = run(capsys, "anomalies", "feedback", recent.id, *reader, "--verdict", "true_positive")
    assert (code, "HTTP 403" in err) == (1, True)
    code, _, err = run(capsys, "anomalies", "feedback", "abc123", *admin, "--verdict", "true_positive")
    assert (code, "HTTP 404" in err) == (1, True)


@pytest.mark.parametrize(
    ("text", "override"),
    [
        ("http_errors_total:sensitivity=0.8", {"metric": "http_errors_total", "sensitivity": 0.8}),
        ("job:requests:rate5m:seasonality=weekly", {"metric": "job:requests:rate5m", "seasonality": "weekly"}),
        (
            '{env="a:b"}:seasonality=none, sensitivity=0',
            {"match": '{env="a:b"}', "seasonality": "none", "sensitivity": 0.0},
        ),
    ],
)
def test_overrides_parse_from_the_command_line(text: str, override: dict[str, object]) -> None:
    assert parse_override(text) == override


@pytest.mark.parametrize("text", ["up", "up:", "up:raw_days=2", "up:sensitivity=high", "up:sensitivity"])
def test_a_malformed_override_is_refused(text: str) -> None:
    with pytest.raises(CliError, match="--override"):
        parse_override(text)


def test_a_window_is_start_slash_end() -> None:
    assert parse_window("2026-11-28T02:00:00Z/2026-11-28T03:00:00Z", "x") == {
        "start": "2026-11-28T02:00:00Z",
        "end": "2026-11-28T03:00:00Z",
        "comment": "x",
    }
    with pytest.raises(CliError, match="START/END"):
        parse_window("2026-11-28T02:00:00Z", "")
