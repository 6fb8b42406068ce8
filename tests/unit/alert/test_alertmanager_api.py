"""``/api/v1/admin/alertmanager``: the Alertmanager-style configuration, over the in-memory alerting store."""

from __future__ import annotations

from typing import Any

import pytest

from novacron.alert.alertmanager_api import MASK, get_config, masked, put_config
from novacron.alert.amconfig import DEFAULT_CONFIG_TEXT, parse_config
from novacron.auth import Principal, Role
from tests.fakes import MemoryAlertingStore

NOW = 1_800_000_000
ADMIN = Principal("acme", Role.ADMIN, "key-admin")
SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
CONFIG = f"""\
global:
  opsgenie_api_key: og-secret-key  # the team's key
route:
  receiver: team
  group_by: [incident]
receivers:
  - name: team
    slack_configs:
      - api_url: "{SLACK_URL}"
        channel: "#ops"
    pagerduty_configs:
      - routing_key: pd-secret-routing
    webhook_configs:
      - url: https://hooks.example.com/t0k3n
        hmac_secret: hmac-secret
        http_config:
          authorization:
            credentials: bearer-secret
    opsgenie_configs:
      - responders: [{{name: ops, type: team}}]
"""
SECRETS = (SLACK_URL, "og-secret-key", "pd-secret-routing", "t0k3n", "hmac-secret", "bearer-secret")


@pytest.fixture
def store() -> MemoryAlertingStore:
    return MemoryAlertingStore()


def put(store: MemoryAlertingStore, text: str, content_type: str = "text/yaml", **params: str) -> tuple[int, Any]:
    return put_config(store, ADMIN, {k: [v] for k, v in params.items()}, text.encode(), content_type, NOW)


def test_the_default_is_shown_until_one_is_stored(store: MemoryAlertingStore) -> None:
    # When a tenant without a configuration reads it
    status, body = get_config(store, ADMIN, {})

    # Then it gets the default routing (inbox, grouped by incident), version 0, which is itself valid
    assert status == 200
    assert body["data"] == {
        "config": DEFAULT_CONFIG_TEXT,
        "version": 0,
        "default": True,
        "updated_at": None,
        "updated_by": None,
    }
    assert parse_config(DEFAULT_CONFIG_TEXT).route.group_by == ("incident",)


def test_a_stored_configuration_reads_back_with_secrets_masked(store: MemoryAlertingStore) -> None:
    # Given a configuration with secrets in global, receivers and http_config
    status, body = put(store, CONFIG)
    assert (status, body["data"]["version"], body["data"]["receivers"]) == (200, 1, ["team"])

    # When it is read back
    shown = get_config(store, ADMIN, {})[1]["data"]

    # Then no secret is in it, each masked as Alertmanager does, and the rest (comments too) is as uploaded
    assert not [s for s in SECRETS if s in shown["config"]]
    assert shown["config"].count(MASK) == len(SECRETS)
    assert "# the team's key" in shown["config"]
    assert 'channel: "#ops"' in shown["config"]
    assert (shown["version"], shown["default"], shown["updated_by"]) == (1, False, "key-admin")
    # And the stored text keeps the real secrets for the notifier
    assert SLACK_URL in store.alertmanager_config("acme").text  # type: ignore[union-attr]


def test_masking_keeps_the_document_valid_yaml_with_the_same_structure() -> None:
    # When a configuration is masked, then it parses to the same keys with masked values
    import yaml

    original, shown = yaml.safe_load(CONFIG), yaml.safe_load(masked(CONFIG))
    assert shown["receivers"][0]["slack_configs"][0] == {"api_url": MASK, "channel": "#ops"}
    assert shown["route"] == original["route"]


def test_errors_name_the_line(store: MemoryAlertingStore) -> None:
    # Given a route naming a receiver that does not exist (line 2)
    text = "route:\n  receiver: nobody\nreceivers:\n  - name: team\n"

    # When it is uploaded, then it is a 400 naming the line, and nothing is stored
    status, body = put(store, text)
    assert (status, body["errorType"]) == (400, "bad_data")
    assert body["error"].startswith("invalid Alertmanager configuration: line 2:")
    assert "nobody" in body["error"]
    assert store.alertmanager_config("acme") is None


def test_a_masked_value_sent_back_is_refused(store: MemoryAlertingStore) -> None:
    # Given the masked configuration a GET returned
    put(store, CONFIG)
    shown = get_config(store, ADMIN, {})[1]["data"]["config"]
    edited = shown.replace(f"api_url: {MASK}", f'api_url: "{SLACK_URL}"')

    # When it is sent back with secrets still masked (the first one: the Opsgenie key, line 2)
    status, body = put(store, edited)

    # Then it is refused naming the line, and the stored secrets stay
    assert status == 400
    assert "line 2: opsgenie_api_key is <secret>" in body["error"]
    assert "pd-secret-routing" in store.alertmanager_config("acme").text  # type: ignore[union-attr]


def test_versions_guard_concurrent_edits(store: MemoryAlertingStore) -> None:
    # Given version 1 stored
    put(store, DEFAULT_CONFIG_TEXT)

    # When a change is made against version 0, then against version 1
    stale = put(store, CONFIG, version="0")
    fresh = put(store, CONFIG, version="1")

    # Then the stale change is a conflict and the fresh one is version 2
    assert (stale[0], stale[1]["errorType"]) == (409, "conflict")
    assert (fresh[0], fresh[1]["data"]["version"]) == (200, 2)


def test_a_lost_race_is_a_conflict(store: MemoryAlertingStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "put_alertmanager_config", lambda *_args: False)
    assert put(store, CONFIG)[0] == 409


@pytest.mark.parametrize(
    ("body", "content_type", "params", "expected"),
    [
        (CONFIG, "application/json", {}, (415, "Content-Type")),
        ("", "text/yaml", {}, (400, "empty")),
        ("route: [", "text/yaml", {}, (400, "invalid YAML")),
        (CONFIG, "text/yaml", {"tenant": "globex"}, (403, "cannot manage tenant")),
    ],
)
def test_bad_uploads_are_4xx(
    store: MemoryAlertingStore, body: str, content_type: str, params: dict[str, str], expected: tuple[int, str]
) -> None:
    status, answer = put(store, body, content_type, **params)
    assert status == expected[0]
    assert expected[1] in answer["error"]
    assert store.alertmanager_config("acme") is None


def test_the_operator_manages_another_tenant(store: MemoryAlertingStore) -> None:
    # Given the operator's admin key; when it sets globex's configuration, then globex has it, not acme
    operator = Principal("default", Role.ADMIN, "key-operator")
    params = {"tenant": ["globex"]}
    assert put_config(store, operator, params, CONFIG.encode(), "text/yaml", NOW)[0] == 200
    assert store.alertmanager_config("globex") is not None
    assert get_config(store, ADMIN, {})[1]["data"]["default"] is True
