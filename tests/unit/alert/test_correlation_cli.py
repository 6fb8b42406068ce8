"""``novacron correlation get|set|check`` against the fake NovaCron of the alerting CLI tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from novacron.alert.correlation import parse_correlation
from tests.unit.alert.test_alerting_cli import FakeNovaCron, run, target
from tests.unit.alert.test_alerting_cli import fake as fake  # the fixture, shared
from tests.unit.alert.test_correlation import DOCUMENT


def test_correlation_get_set_check(fake: tuple[FakeNovaCron, str], tmp_path: Path, capsys: Any) -> None:
    server, url = fake
    # Given no document stored: get prints the default
    code, out, err = run(capsys, "correlation", "get", *target(url))
    assert (code, "topology: {}" in out, err.strip()) == (0, True, "# the default")

    # When the documented example is set
    document = tmp_path / "correlation.yml"
    document.write_text(DOCUMENT)
    code, out, _ = run(capsys, "correlation", "set", str(document), *target(url))

    # Then it is stored as version 1, and get prints it as written
    assert (code, out) == (0, "stored version 1: 4 services, 3 calls, 2 tiers\n")
    stored = server.alerting.correlation_config("acme")
    assert stored is not None
    assert stored.text == DOCUMENT
    code, out, err = run(capsys, "correlation", "get", *target(url))
    assert (code, out, err.strip()) == (0, DOCUMENT, "# version 1 by key-admin")


def test_correlation_set_sends_json_files_as_json(fake: tuple[FakeNovaCron, str], tmp_path: Path, capsys: Any) -> None:
    server, url = fake
    # Given a JSON document
    document = tmp_path / "correlation.json"
    document.write_text('{"topology": {"api": ["db"]}, "tiers": {"db": 1}}')

    # When it is set, then it is stored and means what it says
    assert run(capsys, "correlation", "set", str(document), *target(url))[0] == 0
    stored = server.alerting.correlation_config("acme")
    assert stored is not None
    assert parse_correlation(stored.text).topology.edges() == [("api", "db")]


def test_a_rejected_document_prints_each_problem_and_exits_2(
    fake: tuple[FakeNovaCron, str], tmp_path: Path, capsys: Any
) -> None:
    server, url = fake
    # Given a document with two problems
    document = tmp_path / "bad.yml"
    document.write_text("window: soon\ntiers:\n  db: 4\n")

    # When it is set, then each problem is printed with the file and line, exit status 2, nothing stored
    code, _, err = run(capsys, "correlation", "set", str(document), *target(url))
    assert code == 2
    assert f"{document}: line 1: window:" in err
    assert f"{document}: line 3: tiers.db:" in err
    assert server.alerting.correlation_config("acme") is None


def test_correlation_check_validates_offline(tmp_path: Path, capsys: Any) -> None:
    # Given a good and a broken document
    good, bad = tmp_path / "good.yml", tmp_path / "bad.yml"
    good.write_text(DOCUMENT)
    bad.write_text("topology:\n  api: [api]\n")

    # Then the good one passes, and the broken one fails naming its line
    code, out, _ = run(capsys, "correlation", "check", str(good))
    assert (code, "SUCCESS: 4 services, 3 calls, 2 tiers" in out) == (0, True)
    code, _, err = run(capsys, "correlation", "check", str(bad))
    assert (code, "line 2: topology.api[0]: 'api' cannot call itself" in err) == (1, True)
