"""``novacron rules|silences|alertmanager|incidents`` against a fake NovaCron: an HTTP server answering the
wiring's alerting routes with the real route tables (novacron.query.query_routes / admin_routes) over
in-memory stores."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from novacron.alert.incidents import AlertSignal, Correlator, IncidentEvent
from novacron.alert.incidents_api import Announcer
from novacron.alert.state import NotificationRequest
from novacron.alert.topology import Topology
from novacron.auth import Principal, Role
from novacron.cli import main
from novacron.query.admin_routes import AdminRequest, admin_endpoints
from novacron.query.query_routes import QueryLimits, query_endpoints
from novacron.storage.reader import HotTierReader
from novacron.wiring import ADMIN, QUERY, WIRING
from tests.fakes import MemoryAlertingStore, MemoryBlockStore, MemoryIncidentStore, MemoryIndexStore
from tests.unit.alert.test_rules_api import API_RULES

KEYS = {"admin-key": Principal("acme", Role.ADMIN, "key-admin"), "read-key": Principal("acme", Role.READ, "key-read")}


@dataclass
class FakeNovaCron:
    """The alerting routes of the query and admin functions, with the role each function requires."""

    alerting: MemoryAlertingStore = field(default_factory=MemoryAlertingStore)
    incidents: MemoryIncidentStore = field(default_factory=MemoryIncidentStore)
    events: list[IncidentEvent] = field(default_factory=list)
    requests: list[NotificationRequest] = field(default_factory=list)

    def put_events(self, events: Sequence[IncidentEvent]) -> None:
        self.events.extend(events)

    def publish(self, requests: Sequence[NotificationRequest]) -> None:
        self.requests.extend(requests)

    def answer(self, method: str, url: str, headers: Any, body: bytes) -> tuple[int, Any]:
        principal = KEYS.get(headers.get("Authorization", "").removeprefix("Bearer "))
        if principal is None:
            return 401, "unauthenticated"
        parts = urlsplit(url)
        params = parse_qs(parts.query, keep_blank_values=True)
        for route in WIRING.routes:
            pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route.path) + "$"
            found = re.match(pattern, parts.path)
            if route.method != method or found is None or route.function not in (QUERY, ADMIN):
                continue
            if route.function == ADMIN:
                if principal.role is not Role.ADMIN:
                    return 403, "an admin key is required"
                content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
                request = AdminRequest(principal, params, body, content_type, found.groupdict(), int(time.time()))
                return self.admin[(method, route.path)](request)
            reader = HotTierReader(principal.tenant, MemoryBlockStore(), MemoryIndexStore())
            return self.query[route.path](reader, params, found.groupdict(), int(time.time() * 1000))
        return 404, "no route"

    def __post_init__(self) -> None:
        none: Any = None
        self.admin = admin_endpoints(none, none, none, none, none, self.alerting, self.incidents, Announcer(self, self))
        limits = QueryLimits(300_000, 1000, 1000)
        self.query = query_endpoints(limits, none, none, self.alerting, self.incidents, none)


@pytest.fixture
def fake() -> Iterator[tuple[FakeNovaCron, str]]:
    server_state = FakeNovaCron()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, answer = server_state.answer(self.command, self.path, self.headers, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = _serve  # noqa: N815 (http.server's method names)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server_state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def target(url: str, key: str = "admin-key") -> tuple[str, ...]:
    return ("--url", url, "--api-key", key)


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "api.yml"
    path.write_text(API_RULES)
    return path


@pytest.fixture
def bad_rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yml"
    path.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(\n        for: soon\n")
    return path


# --- rules ---------------------------------------------------------------------------------------


def test_rules_push_list_show_delete(fake: tuple[FakeNovaCron, str], rules_file: Path, capsys: Any) -> None:
    server, url = fake
    # When a rule file is pushed
    code, out, _ = run(capsys, "rules", "push", str(rules_file), *target(url))
    # Then it is stored as version 1
    assert (code, out.strip()) == (0, "api.yml: version 1, 1 groups, 2 rules")
    assert server.alerting.rule_files("acme")["api.yml"].text == API_RULES

    # And it is listed, shown as pushed, and deleted
    code, out, _ = run(capsys, "rules", "list", *target(url))
    assert code == 0
    assert re.fullmatch(r"api.yml  v1  2 rules in api  updated \S+Z by key-admin\n", out)
    assert run(capsys, "rules", "show", "api.yml", *target(url))[1] == API_RULES
    assert run(capsys, "rules", "delete", "api.yml", *target(url))[:2] == (0, "deleted api.yml\n")
    assert server.alerting.rule_files("acme") == {}


def test_rules_push_of_a_bad_file_prints_problems_and_exits_2(
    fake: tuple[FakeNovaCron, str], bad_rules_file: Path, capsys: Any
) -> None:
    _, url = fake
    # When a file with two problems is pushed under another name
    code, _, err = run(capsys, "rules", "push", str(bad_rules_file), "--name", "team.yml", *target(url))

    # Then each problem is printed at its line and column, and the exit status is 2
    assert code == 2
    lines = err.splitlines()
    assert lines[0].startswith(f"{bad_rules_file}:5:15: ")
    assert lines[1].startswith(f"{bad_rules_file}:6:14: ")
    assert lines[2] == "novacron: team.yml rejected: 2 problem(s)"


def test_rules_push_with_a_stale_version_fails_with_409(
    fake: tuple[FakeNovaCron, str], rules_file: Path, capsys: Any
) -> None:
    _, url = fake
    run(capsys, "rules", "push", str(rules_file), *target(url))
    code, _, err = run(capsys, "rules", "push", str(rules_file), "--version", "0", *target(url))
    assert code == 1
    assert "HTTP 409" in err


def test_rules_check_offline(rules_file: Path, bad_rules_file: Path, capsys: Any) -> None:
    # When a good and a bad file are checked offline
    code, out, err = run(capsys, "rules", "check", str(rules_file), str(bad_rules_file))

    # Then the good one is a success with its counts, the bad one lists its problems, and the status is 1
    assert code == 1
    assert "SUCCESS: 2 rules found (1 alerting, 1 recording)" in out
    assert f"{bad_rules_file}:5:15:" in err
    assert run(capsys, "rules", "check", str(rules_file))[0] == 0


def test_a_read_key_cannot_push(fake: tuple[FakeNovaCron, str], rules_file: Path, capsys: Any) -> None:
    _, url = fake
    code, _, err = run(capsys, "rules", "push", str(rules_file), *target(url, "read-key"))
    assert code == 1
    assert "HTTP 403" in err


# --- silences ------------------------------------------------------------------------------------


def test_silences_add_list_expire(fake: tuple[FakeNovaCron, str], capsys: Any) -> None:
    server, url = fake
    # When a silence is added for two hours
    code, out, _ = run(
        capsys,
        "silences",
        "add",
        "-m",
        'alertname="DbDown"',
        "-m",
        "service=~db|cache",
        "--duration",
        "2h",
        "--comment",
        "maintenance",
        *target(url),
    )
    # Then its id is printed and it is stored, authored by the key
    assert code == 0
    silence_id = out.strip()
    stored = server.alerting.silences("acme")
    assert [(s.id, s.created_by, s.ends_at - s.starts_at) for s in stored] == [(silence_id, "key-admin", 7200)]

    # And a read key lists it (not among the expired ones), with a filter too
    code, out, _ = run(capsys, "silences", "list", *target(url, "read-key"))
    assert code == 0
    assert silence_id in out
    assert '{alertname="DbDown",service=~"db|cache"}' in out
    # (a filter matches the silence's matcher values: service's is the pattern "db|cache")
    assert (
        silence_id
        in run(capsys, "silences", "list", "-f", "alertname=DbDown", "-f", "service=db|cache", *target(url))[1]
    )
    assert run(capsys, "silences", "list", "-f", "service=db", *target(url))[1] == ""
    assert run(capsys, "silences", "list", "--expired", *target(url))[1] == ""

    # When it is expired, then it is listed among the expired ones only
    assert run(capsys, "silences", "expire", silence_id, *target(url))[:2] == (0, f"expired {silence_id}\n")
    assert silence_id in run(capsys, "silences", "list", "--expired", *target(url))[1]
    # And expiring it again is an error naming the conflict
    code, _, err = run(capsys, "silences", "expire", silence_id, *target(url))
    assert (code, "HTTP 409" in err, "already expired" in err) == (1, True, True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-m", "alertname=", "--duration", "1h"), "HTTP 400: at least one matcher must not match the empty string"),
        (("-m", "alertname", "--duration", "1h"), "--matcher: bad matcher format"),
        (("-m", "a=b", "--duration", "soon"), "--duration"),
        (("-m", "a=b", "--end", "tomorrow"), "--end 'tomorrow' is not an RFC 3339 time"),
        (("-m", "a=b", "--end", "2020-01-01T00:00:00Z"), "end time can't be in the past"),
    ],
)
def test_silences_add_refusals(
    fake: tuple[FakeNovaCron, str], capsys: Any, args: tuple[str, ...], message: str
) -> None:
    server, url = fake
    code, _, err = run(capsys, "silences", "add", *args, "--comment", "x", *target(url))
    assert code == 1
    assert message in err
    assert server.alerting.silences("acme") == []


# --- alertmanager --------------------------------------------------------------------------------


def test_alertmanager_get_set_check(fake: tuple[FakeNovaCron, str], tmp_path: Path, capsys: Any) -> None:
    _, url = fake
    # Given no configuration stored: get prints the default
    code, out, err = run(capsys, "alertmanager", "get", *target(url))
    assert (code, "group_by: [incident]" in out, err.strip()) == (0, True, "# the default")

    # When a configuration with a secret is set
    config = tmp_path / "am.yml"
    config.write_text(
        "route:\n  receiver: hook\nreceivers:\n  - name: hook\n    webhook_configs:\n"
        "      - url: https://hooks.example.com/t0k3n\n"
    )
    assert run(capsys, "alertmanager", "set", str(config), *target(url))[:2] == (
        0,
        "stored version 1: receivers hook\n",
    )

    # Then get shows it with the secret masked
    code, out, err = run(capsys, "alertmanager", "get", *target(url))
    assert "url: <secret>" in out
    assert "t0k3n" not in out
    assert err.strip() == "# version 1 by key-admin"
    # And check validates offline: the file is good, a broken one names its line
    assert run(capsys, "alertmanager", "check", str(config))[0] == 0
    config.write_text("route:\n  receiver: nobody\n")
    code, _, err = run(capsys, "alertmanager", "check", str(config))
    assert (code, "line 2:" in err) == (1, True)


# --- incidents (the existing CLI, registered and routed) -----------------------------------------


def test_incidents_list_and_acknowledge(fake: tuple[FakeNovaCron, str], capsys: Any) -> None:
    server, url = fake
    # Given one open incident of acme
    at = int(time.time() * 1000) - 60_000
    signal = AlertSignal("fp", "Errors", (("alertname", "Errors"), ("service", "db")), "critical", True, at)
    for incident in Correlator("acme", Topology.declared({})).apply([], [signal], at).changed.values():
        server.incidents.save(incident, 0)
    [incident_id] = [i.id for i in server.incidents.list_incidents("acme", 0, at)]

    # When it is listed with a read key and acknowledged with the admin key
    code, out, _ = run(capsys, "incidents", "list", *target(url, "read-key"))
    assert (code, incident_id in out) == (0, True)
    code, out, _ = run(capsys, "incidents", "ack", incident_id, "-m", "on it", *target(url))

    # Then it is acknowledged by that key, and an event went to the bus
    assert (code, "acknowledged" in out) == (0, True)
    assert [e.detail_type for e in server.events] == ["IncidentAcknowledged"]
