"""`novacron policy`, `novacron cardinality` and `novacron keys create --label` against a running local stack."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from novacron.auth import register_key
from novacron.cli import build_parser
from novacron.local.resources import physical_name
from novacron.local.runtime import LocalRuntime
from novacron.wiring import KEYS_TABLE
from tests.integration.cli.test_keys_cli import free_port, run

ADMIN = "operator-admin-key-for-policy-tests"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with LocalRuntime(port=free_port()) as runtime:
        register_key(ADMIN, "default", "admin", physical_name(KEYS_TABLE))
        yield runtime.url


def test_policy_get_and_set(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    target = ("--url", url, "--api-key", ADMIN, "--tenant", "acme")
    # Given acme's default policy
    code, out, _ = run(capsys, "policy", "get", *target)
    assert (code, json.loads(out)["version"]) == (0, 0)
    # When the operator sets a mode, a default and a limit
    code, out, _ = run(
        capsys, "policy", "set", *target, "--mode", "reject", "--default", "owner=ops", "--max-series-per-metric", "500"
    )
    # Then the new version holds them, and the untouched fields are kept
    policy = json.loads(out)
    assert code == 0
    assert (policy["version"], policy["mode"], policy["defaults"], policy["max_series_per_metric"]) == (
        1,
        "reject",
        {"owner": "ops"},
        500,
    )
    assert policy["required_labels"] == ["source", "environment", "owner"]
    # And an invalid change is one line naming the field
    code, _, err = run(capsys, "policy", "set", *target, "--label-mode", "team=reject")
    assert code == 1
    assert "HTTP 400" in err


def test_policy_set_pii_switches(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    target = ("--url", url, "--api-key", ADMIN, "--tenant", "initech")
    # Given initech's default policy, which scrubs everything and exempts `instance`
    # When the operator turns IP scrubbing off and exempts another attribute
    code, out, _ = run(
        capsys, "policy", "set", *target, "--pii", "ip_addresses=off", "--pii-exempt", "instance,net.peer.ip"
    )
    # Then the stored policy says so, and the other switches stay on
    pii = json.loads(out)["pii"]
    assert code == 0
    assert (pii["ip_addresses"], pii["email"], pii["enabled"]) == (False, True, True)
    assert sorted(pii["exempt_attributes"]) == ["instance", "net.peer.ip"]
    # And a switch that does not exist is refused before anything is sent
    code, _, err = run(capsys, "policy", "set", *target, "--pii", "phone_numbers=off")
    assert code == 1
    assert "unknown switch" in err


def test_cardinality_approve_list_revoke(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    target = ("--url", url, "--api-key", ADMIN, "--tenant", "globex")
    # When a metric is approved
    code, out, _ = run(
        capsys, "cardinality", "approve", *target, "http_requests_total", "--limit", "90000", "--reason", "customers"
    )
    assert code == 0
    assert "up to 90000 series a day" in out
    # Then the listing shows it approved with its limit
    code, out, _ = run(capsys, "cardinality", "list", *target)
    assert code == 0
    assert "http_requests_total" in out
    assert "90000" in out
    assert "approved" in out
    # And it can be revoked, once
    assert run(capsys, "cardinality", "revoke", *target, "http_requests_total")[0] == 0
    code, _, err = run(capsys, "cardinality", "revoke", *target, "http_requests_total")
    assert (code, "HTTP 404" in err) == (1, True)


def test_recording_rule_names_can_be_approved(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # A metric name with colons (a recording rule's) travels in the path
    target = ("--url", url, "--api-key", ADMIN, "--tenant", "globex")
    code, out, err = run(
        capsys, "cardinality", "approve", *target, "job:requests:rate5m", "--limit", "9", "--reason", "r"
    )
    assert (code, err) == (0, "")
    assert "approved job:requests:rate5m" in out
    assert run(capsys, "cardinality", "revoke", *target, "job:requests:rate5m")[0] == 0


def test_keys_create_with_labels(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # When an ingest key is created with labels
    code, out, _ = run(
        capsys,
        "keys",
        "create",
        "--url",
        url,
        "--api-key",
        ADMIN,
        "--tenant",
        "acme",
        "--role",
        "ingest",
        "--label",
        "source=prometheus",
        "--label",
        "owner=team-a",
    )
    # Then the key carries them
    assert code == 0
    assert json.loads(out)["labels"] == {"owner": "team-a", "source": "prometheus"}
    # And a malformed label is refused before any call
    code, _, err = run(capsys, "keys", "create", "--url", url, "--api-key", ADMIN, "--role", "ingest", "--label", "x")
    assert (code, "name=value" in err) == (1, True)


def test_the_commands_dispatch() -> None:
    parser = build_parser()
    for argv in (
        ["policy", "get"],
        ["policy", "set", "--mode", "default"],
        ["cardinality", "list"],
        ["cardinality", "approve", "m", "--limit", "5", "--reason", "r"],
        ["cardinality", "revoke", "m"],
    ):
        assert callable(parser.parse_args(argv).run), argv
