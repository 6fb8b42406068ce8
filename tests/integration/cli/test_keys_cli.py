"""`novacron keys` against a running local stack."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from novacron.auth import register_key
from novacron.cli import main
from novacron.local.resources import physical_name
from novacron.local.runtime import LocalRuntime
from novacron.wiring import KEYS_TABLE

ADMIN = "operator-admin-key-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with LocalRuntime(port=free_port()) as runtime:
        register_key(ADMIN, "default", "admin", physical_name(KEYS_TABLE))
        yield runtime.url


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_list_revoke(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # When the operator creates a read key for tenant acme
    code, out, _ = run(
        capsys,
        "keys",
        "create",
        "--url",
        url,
        "--api-key",
        ADMIN,
        "--role",
        "read",
        "--tenant",
        "acme",
        "--description",
        "grafana",
    )
    created = json.loads(out)
    # Then it is printed once, bound to acme
    assert code == 0
    assert created["tenant"] == "acme"
    assert created["role"] == "read"
    assert created["key"].startswith("nck_")
    # And listing acme's keys shows it active, without the secret
    code, out, _ = run(capsys, "keys", "list", "--url", url, "--api-key", ADMIN, "--tenant", "acme")
    assert code == 0
    assert created["key_id"] in out
    assert "active" in out
    assert created["key"] not in out
    # And revoking it shows it revoked
    code, out, _ = run(
        capsys, "keys", "revoke", "--url", url, "--api-key", ADMIN, "--tenant", "acme", created["key_id"]
    )
    assert (code, out.strip()) == (0, f"revoked {created['key_id']}")
    _, out, _ = run(capsys, "keys", "list", "--url", url, "--api-key", ADMIN, "--tenant", "acme")
    assert "revoked" in out


def test_errors_are_one_line(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "keys", "revoke", "--url", url, "--api-key", ADMIN, "nope")
    assert code == 1
    assert "HTTP 404" in err
    assert "no key 'nope'" in err
    code, _, err = run(capsys, "keys", "list", "--url", url, "--api-key", "wrong-key")
    assert code == 1
    assert "HTTP 401" in err
    code, _, err = run(capsys, "keys", "list", "--url", "file:///etc/passwd", "--api-key", ADMIN)
    assert code == 1
    assert "must be an http:// or https:// URL" in err


def test_every_command_dispatches(capsys: pytest.CaptureFixture[str]) -> None:
    # Every subcommand must reach its own handler, not fall back to the top-level help.
    from novacron.cli import build_parser

    parser = build_parser()
    for argv in (
        ["local"],
        ["simulate", "--target", "http://x", "--api-key", "k"],
        ["demo"],
        ["keys", "list"],
        ["keys", "create", "--role", "read"],
        ["keys", "revoke", "id"],
    ):
        assert callable(parser.parse_args(argv).run), argv
