"""Rule files (``/api/v1/rules/files``) and the Prometheus ``/api/v1/rules`` and ``/api/v1/alerts``, over the
in-memory alerting store."""

from __future__ import annotations

from typing import Any

import pytest

from novacron.alert.evaluate import RuleEvaluator
from novacron.alert.rule_state import GroupState
from novacron.alert.rules import parse_rule_file
from novacron.alert.rules_api import (
    RuleLimits,
    alerts,
    delete_rule_file,
    get_rule_file,
    list_rule_files,
    put_rule_file,
    rules,
)
from novacron.alert.uploads import MAX_DOCUMENT_BYTES
from novacron.auth import Principal, Role
from novacron.promql import Engine
from novacron.query.memory_reader import InMemorySeriesReader
from tests.fakes import MemoryAlertingStore

NOW = 1_800_000_000
ADMIN = Principal("acme", Role.ADMIN, "key-admin")
API_RULES = """\
groups:
  - name: api
    interval: 30s
    rules:
      - alert: HighLoad
        expr: load > 1
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.host }} is loaded"
      - record: job:load:max
        expr: max by (job) (load)
"""
DB_RULES = """\
groups:
  - name: db
    rules:
      - alert: DbDown
        expr: up{job="db"} == 0
        labels:
          severity: warning
"""


@pytest.fixture
def store() -> MemoryAlertingStore:
    return MemoryAlertingStore()


def put(store: MemoryAlertingStore, name: str, text: str, **params: str) -> tuple[int, dict[str, Any]]:
    return put_rule_file(store, ADMIN, name, {k: [v] for k, v in params.items()}, text.encode(), "text/yaml", NOW)


@pytest.fixture
def uploaded(store: MemoryAlertingStore) -> MemoryAlertingStore:
    """acme has api.yml and db.yml; api's group was evaluated once with host a's load above 1."""
    assert put(store, "api.yml", API_RULES)[0] == 200
    assert put(store, "db.yml", DB_RULES)[0] == 200
    reader = InMemorySeriesReader()
    reader.add({"__name__": "load", "host": "a", "job": "web"}, [NOW * 1000 - 10_000], [5.0])
    reader.add({"__name__": "load", "host": "b", "job": "web"}, [NOW * 1000 - 10_000], [0.5])
    group = parse_rule_file(API_RULES, "api.yml").groups[0]
    state = RuleEvaluator(Engine(reader).instant).evaluate_group(group, NOW * 1000).state
    store.put_group_states("acme", {"api.yml/api": state, "other.yml/api": GroupState()})
    return store


# --- uploads -------------------------------------------------------------------------------------


def test_a_valid_file_is_stored_with_version_and_provenance(store: MemoryAlertingStore) -> None:
    # When an admin uploads a rule file
    status, body = put(store, "api.yml", API_RULES)

    # Then it is stored as sent, at version 1, by that key
    assert status == 200
    assert body["data"] == {
        "name": "api.yml",
        "version": 1,
        "groups": ["api"],
        "rules": 2,
        "updated_at": NOW,
        "updated_by": "key-admin",
    }
    assert store.rule_files("acme")["api.yml"].text == API_RULES


def test_problems_are_listed_with_line_and_column(store: MemoryAlertingStore) -> None:
    # Given a file with a bad expression (line 4) and a bad duration (line 5)
    text = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(\n        for: soon\n"

    # When it is uploaded
    status, body = put(store, "bad.yml", text)

    # Then it is refused with every problem, each at its place, and nothing is stored
    assert (status, body["errorType"], body["error"]) == (400, "bad_data", "bad.yml: 2 problems")
    assert [d.split(":")[:2] for d in body["details"]] == [["5", "15"], ["6", "14"]]
    assert "soon" in body["details"][1]
    assert store.rule_files("acme") == {}


def test_a_version_that_moved_on_is_a_conflict(store: MemoryAlertingStore) -> None:
    # Given api.yml at version 1
    put(store, "api.yml", API_RULES)

    # When a change is sent against version 0 (someone else created it meanwhile), then against 1
    stale = put(store, "api.yml", DB_RULES, version="0")
    fresh = put(store, "api.yml", DB_RULES, version="1")

    # Then the stale one is refused and the fresh one stored as version 2
    assert (stale[0], stale[1]["errorType"]) == (409, "conflict")
    assert "stored version is 1" in stale[1]["error"]
    assert (fresh[0], fresh[1]["data"]["version"]) == (200, 2)


def test_a_write_that_loses_a_race_is_a_conflict(store: MemoryAlertingStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a store whose conditional write fails (another upload landed between read and write)
    monkeypatch.setattr(store, "put_rule_file", lambda *_args: False)

    # When a file is uploaded, then it is a 409 telling to read again
    status, body = put(store, "api.yml", API_RULES)
    assert status == 409
    assert "read it again" in body["error"]


@pytest.mark.parametrize(
    ("name", "body", "content_type", "params", "expected"),
    [
        ("a/b", API_RULES.encode(), "text/yaml", {}, (400, "invalid rule file name 'a/b'")),
        ("..", API_RULES.encode(), "text/yaml", {}, (400, "invalid rule file name")),
        ("x" * 129, API_RULES.encode(), "text/yaml", {}, (400, "invalid rule file name")),
        ("a.yml", API_RULES.encode(), "application/json", {}, (415, "Content-Type 'application/json'")),
        ("a.yml", b"#" * (MAX_DOCUMENT_BYTES + 1), "text/plain", {}, (413, "at most 1048576")),
        ("a.yml", b"\xff\xfe", "text/yaml", {}, (400, "not UTF-8")),
        ("a.yml", b"  \n", "application/yaml", {}, (400, "empty")),
        ("a.yml", API_RULES.encode(), "", {"version": ["one"]}, (400, 'invalid parameter "version"')),
        ("a.yml", API_RULES.encode(), "", {"tenant": ["globex"]}, (403, "cannot manage tenant 'globex'")),
    ],
)
def test_bad_uploads_are_4xx_naming_what_is_wrong(
    store: MemoryAlertingStore,
    name: str,
    body: bytes,
    content_type: str,
    params: dict[str, list[str]],
    expected: tuple[int, str],
) -> None:
    # When a bad upload is made, then it is refused with the status and a message naming the problem
    status, answer = put_rule_file(store, ADMIN, name, params, body, content_type, NOW)
    assert status == expected[0]
    assert expected[1] in answer["error"]
    assert store.rule_files("acme") == {}


@pytest.mark.parametrize(
    ("limits", "named"),
    [
        (RuleLimits(max_files=1), "2 rule files, at most 1"),
        (RuleLimits(max_groups=1), "2 rule groups, at most 1"),
        (RuleLimits(max_rules=2), "3 rules, at most 2"),
    ],
)
def test_tenant_limits_name_the_limit(store: MemoryAlertingStore, limits: RuleLimits, named: str) -> None:
    # Given api.yml stored (one group, two rules)
    put(store, "api.yml", API_RULES)

    # When a second file would go over a limit, then it is refused naming it
    status, body = put_rule_file(store, ADMIN, "db.yml", {}, DB_RULES.encode(), "text/yaml", NOW, limits)
    assert (status, body["errorType"]) == (400, "bad_data")
    assert named in body["error"]
    # And replacing the stored file counts it once, not twice
    assert put_rule_file(store, ADMIN, "api.yml", {}, API_RULES.encode(), "", NOW, RuleLimits(1, 1, 2))[0] == 200


def test_list_show_and_delete(uploaded: MemoryAlertingStore) -> None:
    # When the files are listed
    status, body = list_rule_files(uploaded, ADMIN, {})
    # Then each is there with its groups and rule counts, by name
    assert status == 200
    assert [(f["name"], f["groups"], f["rules"], f["version"]) for f in body["data"]["files"]] == [
        ("api.yml", ["api"], 2, 1),
        ("db.yml", ["db"], 1, 1),
    ]
    # And one file reads back as uploaded
    assert get_rule_file(uploaded, ADMIN, "db.yml", {})[1]["data"]["text"] == DB_RULES

    # When one is deleted, then it is gone, with its groups' states (other files' states stay)
    assert delete_rule_file(uploaded, ADMIN, "api.yml", {})[0] == 200
    assert list(uploaded.rule_files("acme")) == ["db.yml"]
    assert list(uploaded.group_states("acme")) == ["other.yml/api"]


def test_unknown_files_are_404(uploaded: MemoryAlertingStore) -> None:
    assert get_rule_file(uploaded, ADMIN, "nope.yml", {})[0] == 404
    assert delete_rule_file(uploaded, ADMIN, "nope.yml", {})[0] == 404


def test_files_are_scoped_by_tenant(uploaded: MemoryAlertingStore) -> None:
    # Given acme's files; when globex's admin lists and reads, then it sees none of them
    globex = Principal("globex", Role.ADMIN, "key-globex")
    assert list_rule_files(uploaded, globex, {})[1]["data"] == {"files": []}
    assert get_rule_file(uploaded, globex, "api.yml", {})[0] == 404
    assert rules(uploaded, "globex", {})[1]["data"] == {"groups": []}


# --- /api/v1/rules and /api/v1/alerts -----------------------------------------------------------


HIGH_LOAD = ("api.yml", "api", ["HighLoad"])
DB_DOWN = ("db.yml", "db", ["DbDown"])
RECORDED = ("api.yml", "api", ["job:load:max"])


def group_rules(body: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    return [(g["file"], g["name"], [r["name"] for r in g["rules"]]) for g in body["data"]["groups"]]


def test_rules_answer_in_prometheus_shape_with_states(uploaded: MemoryAlertingStore) -> None:
    # When every rule is asked for
    status, body = rules(uploaded, "acme", {})

    # Then both files' groups are there with the last evaluation of api's rules
    assert status == 200
    assert group_rules(body) == [("api.yml", "api", ["HighLoad", "job:load:max"]), ("db.yml", "db", ["DbDown"])]
    api = body["data"]["groups"][0]
    assert api["interval"] == 30
    high_load = api["rules"][0]
    assert (high_load["type"], high_load["state"], high_load["health"]) == ("alerting", "firing", "ok")
    assert [a["labels"]["host"] for a in high_load["alerts"]] == ["a"]
    assert high_load["alerts"][0]["annotations"] == {"summary": "a is loaded"}
    db = body["data"]["groups"][1]
    assert (db["interval"], db["rules"][0]["health"], db["rules"][0]["state"]) == (60, "unknown", "inactive")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"type": "alert"}, [HIGH_LOAD, DB_DOWN]),
        ({"type": "RECORD"}, [RECORDED]),
        (
            {"rule_name[]": ["DbDown", "job:load:max"]},
            [RECORDED, DB_DOWN],
        ),
        ({"rule_group[]": ["db"]}, [DB_DOWN]),
        ({"file[]": ["api.yml"]}, [("api.yml", "api", ["HighLoad", "job:load:max"])]),
        ({"match[]": ['{severity="warning"}']}, [DB_DOWN]),
        (
            {"match[]": ['{severity="critical"}', '{severity="warning"}']},
            [HIGH_LOAD, DB_DOWN],
        ),
        ({"rule_name[]": ["nothing"]}, []),
    ],
)
def test_rules_filters(uploaded: MemoryAlertingStore, params: dict[str, Any], expected: list[Any]) -> None:
    # When rules are asked with a filter, then only the matching rules are there, and emptied groups go
    status, body = rules(uploaded, "acme", params)
    assert (status, group_rules(body)) == (200, expected)


def test_exclude_alerts_answers_null_alerts(uploaded: MemoryAlertingStore) -> None:
    # When alerts are excluded, then alerting rules carry "alerts": null, as Prometheus's do
    body = rules(uploaded, "acme", {"exclude_alerts": "true", "type": "alert"})[1]
    assert [r["alerts"] for g in body["data"]["groups"] for r in g["rules"]] == [None, None]
    assert body["data"]["groups"][0]["rules"][0]["state"] == "firing"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"type": "recording"}, 'invalid parameter "type": not supported value "recording"'),
        ({"exclude_alerts": "maybe"}, 'invalid parameter "exclude_alerts": strconv.ParseBool'),
        ({"match[]": ["sum("]}, "parse error"),
    ],
)
def test_rules_validate_params(store: MemoryAlertingStore, params: dict[str, Any], message: str) -> None:
    status, body = rules(store, "acme", params)
    assert (status, body["errorType"]) == (400, "bad_data")
    assert message in body["error"]


def test_no_files_is_prometheus_empty_state(store: MemoryAlertingStore) -> None:
    assert rules(store, "acme", {"type": "alert"}) == (200, {"status": "success", "data": {"groups": []}})
    assert alerts(store, "acme") == (200, {"status": "success", "data": {"alerts": []}})


def test_alerts_lists_active_alerts(uploaded: MemoryAlertingStore) -> None:
    # When the active alerts are asked, then host a's firing alert is the only one
    status, body = alerts(uploaded, "acme")
    assert status == 200
    assert [(a["labels"]["alertname"], a["labels"]["host"], a["state"]) for a in body["data"]["alerts"]] == [
        ("HighLoad", "a", "firing")
    ]


def test_a_stored_file_that_no_longer_parses_is_a_warning(uploaded: MemoryAlertingStore) -> None:
    # Given a stored file that does not parse (written before a parser change, say)
    uploaded.put_rule_file("acme", "old.yml", "groups: [{name: x, rules: [{alert: A, expr: 'sum('}]}]", "k", NOW, 0)

    # When rules and alerts are read, then the other files answer and the broken one is a warning
    for status, body in (rules(uploaded, "acme", {}), alerts(uploaded, "acme")):
        assert status == 200
        assert body["warnings"][0].startswith("rule file 'old.yml' skipped: 1 problems")
    assert len(rules(uploaded, "acme", {})[1]["data"]["groups"]) == 2
