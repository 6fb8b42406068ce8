"""The alerting table against moto: documents with versions, states, silences, the dispatcher, tenants."""

from __future__ import annotations

import boto3
import pytest

from novacron.adapters.alerting_table import DynamoAlertingStore
from novacron.alert.matchers import new_matcher
from novacron.alert.rule_state import Alert, GroupState, RuleState
from novacron.alert.silences import Silence
from novacron.local.resources import physical_name
from novacron.wiring import ALERTING_TABLE

T0 = 1_800_000_000


@pytest.fixture
def store(moto_wiring: None) -> DynamoAlertingStore:
    return DynamoAlertingStore(physical_name(ALERTING_TABLE))


def big_state(alerts: int) -> GroupState:
    """A group state with many alert instances (far more than 400 KB as plain JSON)."""
    found = {}
    for i in range(alerts):
        alert = Alert(
            {"alertname": "HighLatency", "pod": f"pod-{i:05d}", "service": "checkout"},
            {"summary": f"pod-{i:05d}: p99 latency well above normal " * 3},
            "firing",
            T0 * 1000,
            1.5,
            fired_at_ms=T0 * 1000 + 60_000,
        )
        found[alert.fingerprint] = alert
    return GroupState({"AlertingRule:HighLatency:[]#1": RuleState("ok", alerts=found)}, T0 * 1000, 0.02)


def test_rule_files_are_written_only_over_the_version_read(store: DynamoAlertingStore) -> None:
    # Given a rule file uploaded once
    assert store.put_rule_file("acme", "api.yml", "groups: []\n", "key-1", T0, expected_version=0)

    # When a second upload names version 1 and a stale one names version 0 (or 1 again)
    assert store.put_rule_file("acme", "api.yml", "groups: [] # v2\n", "key-2", T0 + 5, expected_version=1)
    stale = store.put_rule_file("acme", "api.yml", "groups: [] # lost\n", "key-3", T0 + 6, expected_version=1)
    new_again = store.put_rule_file("acme", "api.yml", "groups: [] # lost\n", "key-3", T0 + 6, expected_version=0)

    # Then only the first two went in, with their provenance; other tenants see nothing
    assert (stale, new_again) == (False, False)
    stored = store.rule_files("acme")["api.yml"]
    assert (stored.text, stored.version, stored.updated_at, stored.updated_by) == (
        "groups: [] # v2\n",
        2,
        T0 + 5,
        "key-2",
    )
    assert store.rule_files("globex") == {}


def test_deleting_a_rule_file_deletes_its_groups_states_only(store: DynamoAlertingStore) -> None:
    # Given two files with group states
    for name in ("api.yml", "api.yml.bak"):
        assert store.put_rule_file("acme", name, "groups: []\n", "key-1", T0, 0)
    store.put_group_states("acme", {"api.yml/g1": GroupState(), "api.yml.bak/g1": GroupState(last_evaluation_ms=5)})

    # When the first file is deleted (twice)
    first, second = store.delete_rule_file("acme", "api.yml"), store.delete_rule_file("acme", "api.yml")

    # Then its states are gone, the other file's remain
    assert (first, second) == (True, False)
    assert list(store.rule_files("acme")) == ["api.yml.bak"]
    assert list(store.group_states("acme")) == ["api.yml.bak/g1"]


def test_a_large_group_state_round_trips_compressed(store: DynamoAlertingStore) -> None:
    # Given a state of 3000 firing alerts
    state = big_state(3000)

    # When stored and read back
    store.put_group_states("acme", {"api.yml/latency": state})

    # Then it is the same state
    assert store.group_states("acme")["api.yml/latency"] == state


def test_the_alertmanager_configuration_silences_and_dispatcher_state_round_trip(store: DynamoAlertingStore) -> None:
    # Given nothing stored yet
    assert store.alertmanager_config("acme") is None
    assert store.dispatcher_state("acme") is None

    # When a configuration, a silence (twice: replaced by id) and a dispatcher state are stored
    assert store.put_alertmanager_config("acme", "route: {receiver: a}\n", "key-1", T0, 0)
    assert not store.put_alertmanager_config("acme", "route: {receiver: b}\n", "key-2", T0, 0)
    silence = Silence("s-1", (new_matcher("service", "=", "payment"),), T0, T0 + 3600, "ops", "deploy", T0)
    store.put_silence("acme", silence)
    store.put_silence("acme", Silence("s-1", silence.matchers, T0, T0 + 60, "ops", "shorter", T0 + 1))
    store.put_dispatcher_state("acme", {"clock": 12.5, "groups": [], "notified": {"i-1": {}}})

    # Then each reads back as written (the silence's latest version)
    config = store.alertmanager_config("acme")
    assert config is not None
    assert (config.text, config.version) == ("route: {receiver: a}\n", 1)
    (read,) = store.silences("acme")
    assert (read.id, read.comment, read.ends_at, read.matchers) == ("s-1", "shorter", T0 + 60, silence.matchers)
    assert store.dispatcher_state("acme") == {"clock": 12.5, "groups": [], "notified": {"i-1": {}}}


def test_tenants_are_those_with_rule_files_or_a_configuration(store: DynamoAlertingStore) -> None:
    # Given one tenant with a file, one with a configuration, one with only a dispatcher state
    store.put_rule_file("acme", "api.yml", "groups: []\n", "key-1", T0, 0)
    store.put_alertmanager_config("globex", "route: {receiver: a}\n", "key-1", T0, 0)
    store.put_dispatcher_state("initech", {})

    # When listed / Then
    assert store.tenants() == ["acme", "globex"]


def test_items_are_keyed_by_tenant_and_kind(store: DynamoAlertingStore) -> None:
    # Given one of each item
    store.put_rule_file("acme", "api.yml", "groups: []\n", "key-1", T0, 0)
    store.put_group_states("acme", {"api.yml/g": GroupState()})
    store.put_dispatcher_state("acme", {})

    # When the table is scanned / Then the keys are the documented ones
    table = boto3.client("dynamodb").scan(TableName=physical_name(ALERTING_TABLE))
    keys = sorted((i["pk"]["S"], i["sk"]["S"]) for i in table["Items"])
    assert keys == [("acme", "dispatcher"), ("acme", "group#api.yml/g"), ("acme", "rules#api.yml")]
