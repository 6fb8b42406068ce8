"""NovaCron's Alertmanager semantics against the real Alertmanager 0.25 (Debian's prometheus-alertmanager).

- ``amtool check-config`` and ``novacron.alert.amconfig.parse_config`` agree on which configs are valid;
- ``amtool config routes test`` and ``novacron.alert.routing`` send the same label sets to the same
  receivers, in the same order, on a tree with ``continue``, nesting, regexes and negative matchers;
- a running Alertmanager with a webhook receiver (a local HTTP server here) and NovaCron's dispatcher,
  fed the same alerts, notify the same groups (same group keys, same alerts) and inhibit the same alerts.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from novacron.alert.amconfig import ConfigError, parse_config
from novacron.alert.grouping import Alert, Dispatcher
from novacron.alert.routing import build_routes, receivers_for
from tests.e2e.conftest import require_binary

pytestmark = pytest.mark.differential

ROUTE_TREE = """
route:
  receiver: default
  group_by: [alertname]
  routes:
    - matchers: ['team="db"', 'severity=~"crit.*"']
      receiver: db-pager
      continue: true
    - match: {team: db}
      receiver: db-chat
      routes:
        - matchers: [env!=prod]
          receiver: db-dev
        - match_re: {service: "pg.*|mysql"}
          receiver: db-engines
          continue: true
        - matchers: ['{region=~"eu-.*", tier!~"gold|silver"}']
          receiver: db-eu
    - matchers: ['service!~"api|web"', 'env="prod"']
      receiver: prod-backend
      continue: true
      routes:
        - matchers: [severity="page"]
          receiver: prod-pager
    - matchers: [env=prod]
      receiver: prod-other
    - matchers: ['msg="a, b"']
      receiver: quoted
receivers:
  - name: default
  - name: db-pager
  - name: db-chat
  - name: db-dev
  - name: db-engines
  - name: db-eu
  - name: prod-backend
  - name: prod-pager
  - name: prod-other
  - name: quoted
"""

LABEL_SETS = [
    {"alertname": "x"},
    {"team": "db"},
    {"team": "db", "severity": "critical"},
    {"team": "db", "severity": "critical", "env": "prod"},
    {"team": "db", "env": "prod", "service": "pg-main"},
    {"team": "db", "env": "prod", "service": "pgx", "region": "eu-west"},
    {"team": "db", "env": "prod", "service": "mysql", "region": "eu-west", "tier": "gold"},
    {"team": "db", "env": "prod", "region": "us-east"},
    {"team": "db", "env": "prod", "region": "eu-central", "tier": "bronze"},
    {"team": "db", "env": "prod", "service": "mysqlx"},
    {"env": "prod"},
    {"env": "prod", "service": "api"},
    {"env": "prod", "service": "web", "severity": "page"},
    {"env": "prod", "service": "queue", "severity": "page"},
    {"env": "staging", "service": "queue"},
    {"severity": "crit"},
    {"msg": "a, b"},
    {"msg": "a"},
]

VALID_CONFIGS = {
    "minimal": "route: {receiver: r}\nreceivers: [{name: r}]\n",
    "tree": ROUTE_TREE,
    "timers and group_by all": (
        "route:\n  receiver: r\n  group_by: ['...']\n  group_wait: 1s\n  group_interval: 1m\n"
        "  repeat_interval: 1d\nreceivers: [{name: r}]\n"
    ),
    "integrations": """
global: {slack_api_url: "https://hooks.slack.com/services/T/B/X", opsgenie_api_key: k, smtp_from: a@b.c,
         smtp_smarthost: "localhost:25", resolve_timeout: 2m}
route: {receiver: r}
receivers:
  - name: r
    slack_configs: [{channel: "#ops"}]
    pagerduty_configs: [{routing_key: rk}, {service_key: sk, send_resolved: false}]
    opsgenie_configs: [{api_url: "https://api.eu.opsgenie.com/"}]
    webhook_configs: [{url: "http://127.0.0.1:9/hook", max_alerts: 5}]
    email_configs: [{to: x@y.z}]
""",
    "inhibit rules": """
route: {receiver: r}
receivers: [{name: r}]
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity=~"warning|info"]
    equal: [cluster, service]
  - source_match: {alertname: NodeDown}
    target_match_re: {alertname: ".+"}
""",
    "matchers in braces, bare values, colon names": (
        "route:\n  receiver: r\n  routes:\n    - matchers: ['{a=\"b\",c=~\"d\"}', 'x = y z', 'a:b=c', 'q==r']\n"
        "receivers: [{name: r}]\n"
    ),
    "templates ignored": "route: {receiver: r}\nreceivers: [{name: r}]\ntemplates: ['/x/*.tmpl']\n",
    "time intervals referenced": """
route: {receiver: r, routes: [{receiver: r, matchers: [a=b], mute_time_intervals: [nights]}]}
receivers: [{name: r}]
time_intervals:
  - name: nights
    time_intervals: [{times: [{start_time: "00:00", end_time: "06:00"}]}]
""",
}


def _with_interval(periods: str) -> str:
    """A config whose child route is muted by the interval ``t`` made of ``periods`` (YAML flow list)."""
    return (
        "route: {receiver: r, routes: [{receiver: r, matchers: [a=b], mute_time_intervals: [t]}]}\n"
        f"receivers: [{{name: r}}]\ntime_intervals:\n  - name: t\n    time_intervals: {periods}\n"
    )


VALID_CONFIGS |= {
    "interval: every field": _with_interval(
        '[{times: [{start_time: "09:00", end_time: "17:00"}], weekdays: ["monday:friday", "Sunday"],'
        ' days_of_month: ["1:5", "-3:-1", "3:-2", 15], months: ["january:march", "12", "1:may"],'
        ' years: ["2020:2022", "2030"], location: "Europe/Berlin"}]'
    ),
    "interval: 24:00 and Local": _with_interval(
        '[{times: [{start_time: "00:00", end_time: "24:00"}], location: Local}]'
    ),
    "interval: an empty period": _with_interval("[{}]"),
    "interval: no periods": _with_interval("[]"),
}
INVALID_INTERVALS = {
    "interval: start after end": '[{times: [{start_time: "17:00", end_time: "09:00"}]}]',
    "interval: equal times": '[{times: [{start_time: "09:00", end_time: "09:00"}]}]',
    "interval: one-digit hour": '[{times: [{start_time: "9:00", end_time: "17:00"}]}]',
    "interval: no end time": '[{times: [{start_time: "09:00"}]}]',
    "interval: 24:30": '[{times: [{start_time: "00:00", end_time: "24:30"}]}]',
    "interval: saturday:sunday": '[{weekdays: ["saturday:sunday"]}]',
    "interval: weekday number": '[{weekdays: ["1"]}]',
    "interval: spaced range": '[{weekdays: ["monday : friday"]}]',
    "interval: bad weekday": '[{weekdays: ["funday"]}]',
    "interval: day zero": '[{days_of_month: ["0"]}]',
    "interval: day 32": '[{days_of_month: ["32"]}]',
    "interval: -1:5": '[{days_of_month: ["-1:5"]}]',
    "interval: days reversed": '[{days_of_month: ["5:1"]}]',
    "interval: months reversed": '[{months: ["march:january"]}]',
    "interval: years reversed": '[{years: ["2022:2020"]}]',
    "interval: year not a number": '[{years: ["twenty"]}]',
    "interval: three-part range": '[{years: ["2020:2021:2022"]}]',
    "interval: unknown zone": '[{location: "Mars/Olympus"}]',
    "interval: unknown field": '[{hours: ["1"]}]',
}
# Alertmanager 0.25 accepts these, though they can never match; NovaCron refuses them as the mistakes they are.
STRICTER_INTERVALS = {
    "interval: month 13": '[{months: ["13"]}]',
    "interval: year 0": '[{years: ["0"]}]',
}

INVALID_CONFIGS = {
    "empty": "",
    "no route": "receivers: [{name: r}]\n",
    "root without receiver": "route: {group_by: [a]}\nreceivers: [{name: r}]\n",
    "root with matchers": "route: {receiver: r, matchers: [a=b]}\nreceivers: [{name: r}]\n",
    "undefined receiver": "route: {receiver: r, routes: [{receiver: nope, matchers: [a=b]}]}\nreceivers: [{name: r}]\n",
    "duplicate receiver": "route: {receiver: r}\nreceivers: [{name: r}, {name: r}]\n",
    "receiver without name": "route: {receiver: r}\nreceivers: [{name: r}, {webhook_configs: []}]\n",
    "unknown field": "route: {receiver: r, recevier: x}\nreceivers: [{name: r}]\n",
    "bad matcher": "route: {receiver: r, routes: [{matchers: ['1a=b']}]}\nreceivers: [{name: r}]\n",
    "bad regex": "route: {receiver: r, routes: [{matchers: ['a=~\"(\"']}]}\nreceivers: [{name: r}]\n",
    "unbalanced quote": "route: {receiver: r, routes: [{matchers: ['a=\"b']}]}\nreceivers: [{name: r}]\n",
    "bad duration": "route: {receiver: r, group_wait: 5 minutes}\nreceivers: [{name: r}]\n",
    "zero group_interval": "route: {receiver: r, group_interval: 0s}\nreceivers: [{name: r}]\n",
    "group_by all and names": "route: {receiver: r, group_by: ['...', a]}\nreceivers: [{name: r}]\n",
    "duplicate group_by": "route: {receiver: r, group_by: [a, a]}\nreceivers: [{name: r}]\n",
    "bad group_by name": "route: {receiver: r, group_by: [a-b]}\nreceivers: [{name: r}]\n",
    "bad match label": "route: {receiver: r, routes: [{match: {a-b: c}}]}\nreceivers: [{name: r}]\n",
    "webhook without url": "route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{}]}]\n",
    "webhook bad scheme": "route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: 'ftp://x/y'}]}]\n",
    "slack without url": "route: {receiver: r}\nreceivers: [{name: r, slack_configs: [{channel: x}]}]\n",
    "pagerduty without key": "route: {receiver: r}\nreceivers: [{name: r, pagerduty_configs: [{}]}]\n",
    "opsgenie without key": "route: {receiver: r}\nreceivers: [{name: r, opsgenie_configs: [{}]}]\n",
    "email without to": (
        "route: {receiver: r}\nreceivers: [{name: r, email_configs: [{from: a@b, smarthost: 'h:25'}]}]\n"
    ),
    "email without smarthost": "route: {receiver: r}\nreceivers: [{name: r, email_configs: [{to: a@b, from: a@b}]}]\n",
    "undefined time interval": (
        "route: {receiver: r, routes: [{receiver: r, matchers: [a=b], mute_time_intervals: [x]}]}\n"
        "receivers: [{name: r}]\n"
    ),
    "quoted bool": "route: {receiver: r, routes: [{continue: 'yes'}]}\nreceivers: [{name: r}]\n",
    "regex lookahead (not RE2)": (
        "route: {receiver: r, routes: [{matchers: ['a=~\"(?=b)\"']}]}\nreceivers: [{name: r}]\n"
    ),
    "float duration": "route: {receiver: r, group_wait: 1.5s}\nreceivers: [{name: r}]\n",
    "colon in group_by": "route: {receiver: r, group_by: ['a:b']}\nreceivers: [{name: r}]\n",
    "bad equal label": "route: {receiver: r}\nreceivers: [{name: r}]\ninhibit_rules: [{equal: ['a-b']}]\n",
    **{name: _with_interval(periods) for name, periods in INVALID_INTERVALS.items()},
}


@pytest.fixture(scope="module")
def amtool() -> str:
    return require_binary("amtool")


def amtool_valid(amtool: str, path: Path) -> bool:
    done = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60)
    return done.returncode == 0


def novacron_valid(text: str) -> bool:
    try:
        parse_config(text)
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize(("name", "text", "valid"), [
    *((n, t, True) for n, t in VALID_CONFIGS.items()),
    *((n, t, False) for n, t in INVALID_CONFIGS.items()),
])  # fmt: skip
def test_check_config_agrees_with_amtool(amtool, tmp_path, name, text, valid):
    # Given a config that Alertmanager's documentation calls valid or invalid
    path = tmp_path / "alertmanager.yml"
    path.write_text(text)
    # When both amtool and NovaCron check it
    # Then they agree, and agree with the expectation
    assert amtool_valid(amtool, path) is valid, f"amtool on {name}"
    assert novacron_valid(text) is valid, f"NovaCron on {name}"


@pytest.mark.parametrize(("name", "periods"), STRICTER_INTERVALS.items())
def test_novacron_refuses_intervals_that_can_never_match(amtool, tmp_path, name, periods):
    # Given a time interval Alertmanager accepts though no instant can ever be in it
    path = tmp_path / "alertmanager.yml"
    path.write_text(_with_interval(periods))
    # When both check it, Then amtool accepts it and NovaCron refuses it (a deliberate difference)
    assert amtool_valid(amtool, path), f"amtool on {name}: if it refuses it now, move it to INVALID_INTERVALS"
    assert not novacron_valid(_with_interval(periods)), name


def test_routes_test_agrees_with_amtool(amtool, tmp_path):
    # Given a tree with continue, nesting, legacy match/match_re, regex and negative matchers
    path = tmp_path / "alertmanager.yml"
    path.write_text(ROUTE_TREE)
    root = build_routes(parse_config(ROUTE_TREE).route)
    for labels in LABEL_SETS:
        # When amtool and NovaCron route the same label set
        args = [f"{k}={json.dumps(v)}" for k, v in labels.items()]
        done = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={path}", *args],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        # Then the receivers are the same, in the same order
        assert done.stdout.strip().split(",") == receivers_for(root, labels), labels


# --- a running Alertmanager ---

SCENARIO_CONFIG = """
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 2s
  group_interval: 4s
  repeat_interval: 1h
  routes:
    - matchers: [team="db"]
      receiver: hook
      group_by: [alertname, cluster]
receivers:
  - name: hook
    webhook_configs: [{url: "URL", send_resolved: true}]
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [cluster]
"""


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[float, dict[str, Any]]]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append((time.monotonic(), body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _alertmanager(tmp_path: Path, config: str) -> Iterator[tuple[str, list[tuple[float, dict[str, Any]]]]]:
    binary = require_binary("prometheus-alertmanager")
    hook = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    hook.received = []  # type: ignore[attr-defined]
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    (tmp_path / "am.yml").write_text(config.replace("URL", f"http://127.0.0.1:{hook.server_port}/"))
    port = _free_port()
    log = (tmp_path / "am.log").open("w")
    process = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.skip(
                    f"LOUD SKIP: prometheus-alertmanager did not start: {(tmp_path / 'am.log').read_text()[-1500:]}"
                )
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
                if answer.status == 200:
                    break
            time.sleep(0.2)
        yield url, hook.received  # type: ignore[attr-defined]
    finally:
        process.terminate()
        process.wait(timeout=10)
        hook.shutdown()
        log.close()


def _post_alerts(url: str, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{url}/api/v2/alerts", data=json.dumps(alerts).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _summary(group_key: str, status: str, alerts: list[dict[str, Any]]) -> tuple[str, str, tuple[str, ...]]:
    names = tuple(
        sorted(f"{a['labels'].get('alertname')}/{a['labels'].get('cluster', '')}:{a['status']}" for a in alerts)
    )
    return group_key, status, names


def test_running_alertmanager_groups_and_inhibits_like_novacron(tmp_path):
    # Given a real Alertmanager (group_wait 2s, group_interval 4s) and NovaCron's dispatcher on one config
    config = SCENARIO_CONFIG.replace("URL", "http://127.0.0.1:9/")
    dispatcher = Dispatcher(parse_config(config))
    with _alertmanager(tmp_path, SCENARIO_CONFIG) as (url, received):
        t0 = time.time()
        start = time.monotonic()
        # When a db critical and a db warning fire in cluster c1 (the warning is inhibited), a warning in
        # c2 (not inhibited), and an alert off the db route; then, 5 s later, the c1 critical resolves
        first = [
            {"labels": {"alertname": "DbDown", "team": "db", "cluster": "c1", "severity": "critical"}},
            {"labels": {"alertname": "DbSlow", "team": "db", "cluster": "c1", "severity": "warning"}},
            {"labels": {"alertname": "DbSlow", "team": "db", "cluster": "c2", "severity": "warning"}},
            {"labels": {"alertname": "Disk", "cluster": "c1"}},
        ]
        for a in first:
            a["startsAt"] = _iso(t0)
        _post_alerts(url, first)
        dispatcher.receive([Alert(a["labels"], starts_at=t0) for a in first], now=t0)
        time.sleep(5)
        t1 = time.time()
        resolved = {**first[0], "endsAt": _iso(t1)}
        _post_alerts(url, [resolved])
        dispatcher.receive([Alert(resolved["labels"], starts_at=t0, ends_at=t1)], now=t1)
        time.sleep(8)
        ours = dispatcher.flush(now=t0 + 13)

    # Then both sent the same notifications: the same group keys with the same alerts, first after group_wait
    theirs = [_summary(body["groupKey"], body["status"], body["alerts"]) for _, body in received]
    mine = [
        _summary(n.group_key, n.status, [
            *({"labels": dict(a.labels), "status": "firing"} for a in n.firing),
            *({"labels": dict(a.labels), "status": "resolved"} for a in n.resolved),
        ])
        for n in ours
    ]  # fmt: skip
    assert sorted(theirs) == sorted(mine)
    # The inhibited warning (DbSlow in c1) was only sent once its inhibiting critical had resolved
    first_wave = {key for (key, _, _) in theirs[:3]}
    assert '{}/{team="db"}:{alertname="DbSlow", cluster="c1"}' not in first_wave
    first_at = received[0][0] - start
    assert 1.5 <= first_at <= 4.0, f"first notification after {first_at:.1f}s, group_wait is 2s"


TIME_INTERVAL_CONFIG = """
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - matchers: [team="db"]
      receiver: hook
      mute_time_intervals: [always]
    - matchers: [team="web"]
      receiver: hook
      active_time_intervals: [long-ago]
    - matchers: [team="api"]
      receiver: hook
      active_time_intervals: [long-ago, always]
receivers:
  - name: hook
    webhook_configs: [{url: "URL", send_resolved: true}]
time_intervals:
  - name: always
    time_intervals: [{weekdays: ["sunday:saturday"]}]
  - name: long-ago
    time_intervals: [{years: ["2000:2001"]}, {months: ["1:12"], years: ["1999"]}]
"""


def test_running_alertmanager_mutes_by_time_interval_like_novacron(tmp_path):
    # Given a real Alertmanager and NovaCron's dispatcher: one route muted always, one active only long ago,
    # one active in either of those two intervals
    dispatcher = Dispatcher(parse_config(TIME_INTERVAL_CONFIG.replace("URL", "http://127.0.0.1:9/")))
    with _alertmanager(tmp_path, TIME_INTERVAL_CONFIG) as (url, received):
        t0 = time.time()
        # When an alert arrives on each route, and one on the root
        alerts = [
            {"labels": {"alertname": "DbDown", "team": "db"}},
            {"labels": {"alertname": "WebSlow", "team": "web"}},
            {"labels": {"alertname": "ApiErrors", "team": "api"}},
            {"labels": {"alertname": "Disk"}},
        ]
        for a in alerts:
            a["startsAt"] = _iso(t0)
        _post_alerts(url, alerts)
        dispatcher.receive([Alert(a["labels"], starts_at=t0) for a in alerts], now=t0)
        time.sleep(4)
        ours = dispatcher.flush(now=t0 + 4)

    # Then both notified the same groups: the root's and the route active now, never the muted ones
    theirs = sorted(_summary(body["groupKey"], body["status"], body["alerts"]) for _, body in received)
    mine = sorted(
        _summary(n.group_key, n.status, [{"labels": dict(a.labels), "status": "firing"} for a in n.firing])
        for n in ours
    )
    assert theirs == mine
    assert [names for _, _, names in mine] == [("ApiErrors/:firing",), ("Disk/:firing",)]
