"""The alerting APIs through the real query and admin handlers against moto: rule files, /api/v1/rules and
/api/v1/alerts, the Alertmanager configuration, silences (v2 shape) and incidents."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from novacron.adapters.incidents import DynamoIncidentStore
from novacron.alert.incidents import AlertSignal, Correlator
from novacron.alert.silences import format_time
from novacron.alert.topology import Topology
from novacron.auth import key_id_of
from novacron.local.resources import physical_name
from novacron.wiring import INCIDENTS_TABLE
from tests.integration.handlers.conftest import Stack, body_json
from tests.unit.alert.test_rules_api import API_RULES

YAML = {"content-type": "text/yaml"}


def call(stack: Stack, fn: Any, method: str, path: str, key: str, body: bytes = b"", **kw: Any) -> tuple[int, Any]:
    answer = stack.http(fn, method, path, key=key, body=body, **kw)
    return answer["statusCode"], body_json(answer)


def status_of(stack: Stack, fn: Any, method: str, path: str, key: str, body: bytes = b"") -> int:
    """The status alone (refusals by the authentication middleware are plain text)."""
    answer = stack.http(fn, method, path, key=key, body=body)
    return int(answer["statusCode"])


def test_a_rule_file_uploaded_by_an_admin_is_served_by_the_rules_api(stack: Stack) -> None:
    admin, reader = stack.keys["acme-admin"], stack.keys["acme-read"]
    # When acme's admin uploads a rule file
    status, body = call(
        stack, stack.admin, "PUT", "/api/v1/rules/files/api.yml", admin, API_RULES.encode(), headers=YAML
    )
    assert (status, body["data"]["version"]) == (200, 1), body

    # Then acme's readers see its rules in Prometheus's shape (never evaluated yet), filters applied
    status, body = call(stack, stack.query, "GET", "/api/v1/rules", reader, query="type=alert")
    assert status == 200
    [group] = body["data"]["groups"]
    assert (group["file"], group["name"], [r["name"] for r in group["rules"]]) == ("api.yml", "api", ["HighLoad"])
    assert group["rules"][0]["health"] == "unknown"
    assert call(stack, stack.query, "GET", "/api/v1/alerts", reader) == (
        200,
        {"status": "success", "data": {"alerts": []}},
    )
    # And the file reads back as uploaded, listed with who changed it
    status, body = call(stack, stack.admin, "GET", "/api/v1/rules/files/api.yml", admin)
    assert (status, body["data"]["text"], body["data"]["updated_by"]) == (200, API_RULES, key_id_of(admin))
    # And globex sees nothing of it
    globex = stack.keys["globex-read"]
    assert call(stack, stack.query, "GET", "/api/v1/rules", globex)[1]["data"] == {"groups": []}

    # When it is deleted, then the rules are gone, and deleting again is a 404
    assert call(stack, stack.admin, "DELETE", "/api/v1/rules/files/api.yml", admin)[0] == 200
    assert call(stack, stack.query, "GET", "/api/v1/rules", reader)[1]["data"] == {"groups": []}
    assert call(stack, stack.admin, "DELETE", "/api/v1/rules/files/api.yml", admin)[0] == 404


def test_a_bad_rule_file_is_400_with_each_problem(stack: Stack) -> None:
    text = b"groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(\n"
    status, body = call(stack, stack.admin, "PUT", "/api/v1/rules/files/bad.yml", stack.keys["acme-admin"], text)
    assert (status, body["error"]) == (400, "bad.yml: 1 problem")
    assert body["details"][0].startswith("5:15: ")


def test_alerting_changes_need_an_admin_key(stack: Stack) -> None:
    reader = stack.keys["acme-read"]
    assert status_of(stack, stack.admin, "PUT", "/api/v1/rules/files/a.yml", reader, API_RULES.encode()) == 403
    assert status_of(stack, stack.admin, "GET", "/api/v1/admin/alertmanager", reader) == 403
    assert stack.http(stack.query, "GET", "/api/v2/silences")["statusCode"] == 401


def test_the_alertmanager_configuration_round_trips_with_secrets_masked(stack: Stack) -> None:
    admin = stack.keys["acme-admin"]
    # Given the default at first
    status, body = call(stack, stack.admin, "GET", "/api/v1/admin/alertmanager", admin)
    assert (status, body["data"]["default"], body["data"]["version"]) == (200, True, 0)

    # When a configuration with a PagerDuty key is stored
    config = b"route:\n  receiver: pd\nreceivers:\n  - name: pd\n    pagerduty_configs:\n      - routing_key: r0ut1ng\n"
    status, body = call(stack, stack.admin, "PUT", "/api/v1/admin/alertmanager", admin, config, headers=YAML)
    assert (status, body["data"]["version"]) == (200, 1), body

    # Then it reads back masked; a stale version is a conflict; a broken one names its line
    shown = call(stack, stack.admin, "GET", "/api/v1/admin/alertmanager", admin)[1]["data"]
    assert ("routing_key: <secret>" in shown["config"], "r0ut1ng" in shown["config"]) == (True, False)
    stale = call(stack, stack.admin, "PUT", "/api/v1/admin/alertmanager", admin, config, query="version=0")
    assert stale[0] == 409
    broken = call(stack, stack.admin, "PUT", "/api/v1/admin/alertmanager", admin, b"route:\n  receiver: nobody\n")
    assert (broken[0], "line 2:" in broken[1]["error"]) == (400, True)


def test_silences_are_created_listed_and_expired(stack: Stack) -> None:
    admin, reader = stack.keys["acme-admin"], stack.keys["acme-read"]
    now = time.time()
    silence = {
        "matchers": [{"name": "alertname", "value": "DbDown", "isRegex": False, "isEqual": True}],
        "startsAt": format_time(now),
        "endsAt": format_time(now + 3600),
        "comment": "maintenance",
    }
    # When an admin posts a silence
    status, body = call(stack, stack.admin, "POST", "/api/v2/silences", admin, json.dumps(silence).encode())
    assert status == 200, body
    silence_id = body["silenceID"]

    # Then readers list it and read it in Alertmanager's v2 shape, authored by the admin key
    status, listed = call(
        stack, stack.query, "GET", "/api/v2/silences", reader, query=urlencode({"filter": "alertname=DbDown"})
    )
    assert (status, [s["id"] for s in listed]) == (200, [silence_id])
    status, one = call(stack, stack.query, "GET", f"/api/v2/silence/{silence_id}", reader)
    assert (status, one["status"]["state"], one["createdBy"]) == (200, "active", key_id_of(admin))
    assert call(stack, stack.query, "GET", "/api/v2/silences", stack.keys["globex-read"]) == (200, [])

    # When it is expired, then it reads as expired; an unknown one is a 404; a bad one names the field
    assert call(stack, stack.admin, "DELETE", f"/api/v2/silence/{silence_id}", admin)[0] == 200
    assert call(stack, stack.query, "GET", f"/api/v2/silence/{silence_id}", reader)[1]["status"]["state"] == "expired"
    assert call(stack, stack.query, "GET", "/api/v2/silence/nope", reader)[0] == 404
    bad = call(stack, stack.admin, "POST", "/api/v2/silences", admin, json.dumps({**silence, "comment": ""}).encode())
    assert bad == (400, "comment is required")


@pytest.fixture
def incident_id(stack: Stack) -> str:
    """acme's open incident, stored in the incidents table as the alert function stores them."""
    at = int(time.time() * 1000) - 60_000
    signal = AlertSignal("fp", "Errors", (("alertname", "Errors"), ("service", "db")), "critical", True, at)
    store = DynamoIncidentStore(physical_name(INCIDENTS_TABLE))
    [incident] = Correlator("acme", Topology.declared({})).apply([], [signal], at).changed.values()
    return store.save(incident, at // 1000 + 86_400).id


def test_incidents_are_listed_and_acknowledged(stack: Stack, incident_id: str) -> None:
    admin, reader = stack.keys["acme-admin"], stack.keys["acme-read"]
    # When a reader lists acme's incidents, then the open one is there
    status, body = call(stack, stack.query, "GET", "/api/v1/incidents", reader)
    assert (status, [i["id"] for i in body["data"]["incidents"]]) == (200, [incident_id])

    # When an admin acknowledges it with a comment
    status, body = call(
        stack, stack.admin, "POST", f"/api/v1/incidents/{incident_id}/acknowledge", admin, b'{"comment": "on it"}'
    )

    # Then it is acknowledged by that key (the bus took the event), and reads so; a reader may not act
    assert (status, body["data"]["status"]) == (200, "acknowledged"), body
    status, body = call(stack, stack.query, "GET", f"/api/v1/incidents/{incident_id}", reader)
    assert (status, body["data"]["status"]) == (200, "acknowledged")
    assert [e["by"] for e in body["data"]["timeline"] if e["kind"] == "acknowledged"] == [key_id_of(admin)]
    assert status_of(stack, stack.admin, "POST", f"/api/v1/incidents/{incident_id}/resolve", reader) == 403
    assert call(stack, stack.query, "GET", "/api/v1/incidents/nope", stack.keys["globex-read"])[0] == 404
