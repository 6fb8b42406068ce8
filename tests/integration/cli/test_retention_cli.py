"""`novacron retention get|set|history` against a running local stack, and its option parsing."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from novacron.auth import register_key
from novacron.cli import CliError
from novacron.local.resources import physical_name
from novacron.local.runtime import LocalRuntime
from novacron.retention_cli import changed_retention, parse_override
from novacron.wiring import KEYS_TABLE
from tests.integration.cli.test_keys_cli import free_port, run

ADMIN = "operator-admin-key-for-retention-tests"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with LocalRuntime(port=free_port()) as runtime:
        register_key(ADMIN, "default", "admin", physical_name(KEYS_TABLE))
        yield runtime.url


def test_get_set_and_history(url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = ("--url", url, "--api-key", ADMIN, "--tenant", "acme")
    # Given acme's defaults
    code, out, _ = run(capsys, "retention", "get", *target)
    assert (code, json.loads(out)["version"], json.loads(out)["defaults"]["raw_days"]) == (0, 0, 15)
    # When the operator shortens raw data and adds an override by selector
    code, out, err = run(
        capsys, "retention", "set", *target, "--raw-days", "7", "--override", '{env="dev"}:raw_days=2,rollup_1m_days=2'
    )
    # Then version 1 holds both
    policy = json.loads(out)
    assert (code, err) == (0, "")
    assert (policy["version"], policy["defaults"]["raw_days"]) == (1, 7)
    assert policy["overrides"] == [{"match": '{env="dev"}', "raw_days": 2, "rollup_1m_days": 2}]
    # When a YAML file replaces the policy
    (tmp_path / "retention.yaml").write_text(
        "defaults:\n  raw_days: 10\n  archive_days: 0\noverrides:\n  - metric: audit_events\n    rollup_1h_days: 3650\n"
    )
    code, out, _ = run(capsys, "retention", "set", *target, "--file", str(tmp_path / "retention.yaml"))
    policy = json.loads(out)
    assert (code, policy["version"], policy["defaults"]["archive_days"]) == (0, 2, 0)
    assert policy["overrides"] == [{"metric": "audit_events", "rollup_1h_days": 3650}]
    assert policy["archive"]["tag"] == "novacron-retention=forever"
    # Then the history shows both changes, newest first, with who and what
    code, out, _ = run(capsys, "retention", "history", *target)
    assert code == 0
    assert out.index("v1 → v2") < out.index("v0 → v1")
    assert "defaults.raw_days: 7 → 10" in out
    assert "(default admin)" in out
    code, out, _ = run(capsys, "retention", "history", *target, "--limit", "1", "--json")
    assert [r["version"] for r in json.loads(out)] == [2]


def test_an_invalid_change_is_one_line_naming_the_field(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    target = ("--url", url, "--api-key", ADMIN, "--tenant", "globex")
    code, _, err = run(capsys, "retention", "set", *target, "--raw-days", "60")
    assert code == 1
    assert "HTTP 400" in err
    assert "invalid retention policy" in err


@pytest.mark.parametrize(
    ("text", "override"),
    [
        ("debug_requests:raw_days=2", {"metric": "debug_requests", "raw_days": 2}),
        ("job:requests:rate5m:archive_days=30", {"metric": "job:requests:rate5m", "archive_days": 30}),
        ('{env="a:b"}:raw_days=1, rollup_1m_days=1', {"match": '{env="a:b"}', "raw_days": 1, "rollup_1m_days": 1}),
    ],
)
def test_overrides_parse_from_the_command_line(text: str, override: dict[str, object]) -> None:
    assert parse_override(text) == override


@pytest.mark.parametrize("text", ["debug_requests", "x:raw=2", "x:raw_days=two", ":raw_days=2"])
def test_malformed_overrides_are_refused(text: str) -> None:
    with pytest.raises(CliError, match="--override"):
        parse_override(text)


def test_options_apply_on_the_stored_policy() -> None:
    current = {"version": 4, "defaults": {"raw_days": 15}, "overrides": [{"metric": "a", "raw_days": 1}]}
    args = argparse.Namespace(
        file=None,
        raw_days=None,
        rollup_1m_days=None,
        rollup_5m_days=None,
        rollup_1h_days=None,
        archive_days=30,
        override=["b:raw_days=3"],
        clear_overrides=False,
    )
    body = changed_retention(current, args)
    assert body == {
        "version": 4,
        "defaults": {"raw_days": 15, "archive_days": 30},
        "overrides": [{"metric": "a", "raw_days": 1}, {"metric": "b", "raw_days": 3}],
    }
    args.clear_overrides = True
    assert changed_retention(current, args)["overrides"] == [{"metric": "b", "raw_days": 3}]
