"""The correlation document: settings, declared topology and business tiers, validated with lines."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.alert.correlation import (
    DEFAULT_TEXT,
    MAX_CALLS,
    MAX_PROBLEMS,
    MAX_SERVICES,
    CorrelationConfig,
    CorrelationError,
    parse_correlation,
)
from novacron.alert.incidents import CorrelationSettings
from novacron.alert.topology import Topology

DOCUMENT = """\
window: 10m              # alerts within this of an incident's last activity may join it
max_hops: 3
identifying_labels: [instance, pod, node, host]
reopen_window: 30m
topology:                # service → the services it calls (added to what RPC client metrics show)
  frontend: [checkout, product-catalog]
  checkout: [payment]
tiers:                   # business tiers: 1 is the most important (1, 2 or 3)
  checkout: 1
  payment: 1
"""


def problems(text: str) -> list[str]:
    """The problems ``text`` is refused with (failing the test when it is accepted)."""
    with pytest.raises(CorrelationError) as refused:
        parse_correlation(text)
    return [str(p) for p in refused.value.problems]


def test_the_documented_example_parses_into_settings_and_a_declared_topology() -> None:
    # When the example of docs/alerting.md is parsed
    config = parse_correlation(DOCUMENT)

    # Then its settings and its graph are those it declares
    assert config.settings == CorrelationSettings(
        window_s=600,
        max_hops=3,
        identifying_labels=("instance", "pod", "node", "host"),
        reopen_window_s=1800,
        tiers={"checkout": 1, "payment": 1},
    )
    assert config.topology.edges() == [
        ("checkout", "payment"),
        ("frontend", "checkout"),
        ("frontend", "product-catalog"),
    ]
    assert config.summary() == {"services": 4, "calls": 3, "tiers": 2}


def test_omitted_fields_keep_the_defaults_given() -> None:
    # Given the alert function's defaults (a deployment tuned them)
    defaults = CorrelationSettings(window_s=300, max_hops=2, reopen_window_s=60, identifying_labels=("pod",))

    # When a document sets only the tiers
    config = parse_correlation("tiers: {db: 2}\n", defaults)

    # Then the rest is the defaults', and no topology is declared
    assert config.settings == CorrelationSettings(300, 2, ("pod",), 60, {"db": 2})
    assert config.topology == Topology()


@pytest.mark.parametrize("text", ["", "# nothing set yet\n", "{}"])
def test_an_empty_document_is_the_defaults(text: str) -> None:
    assert parse_correlation(text) == CorrelationConfig()


def test_the_default_text_is_the_default_settings() -> None:
    # The default shown until a tenant stores one reads back as the built-in defaults
    assert parse_correlation(DEFAULT_TEXT) == CorrelationConfig()


def test_to_json_reads_back_as_the_same_configuration() -> None:
    # Given a parsed document
    config = parse_correlation(DOCUMENT)

    # When its JSON is sent as a document, then it is the same configuration, in the documented shape
    data = config.to_json()
    assert parse_correlation(json.dumps(data)) == config
    assert data["window"] == "10m"
    assert data["reopen_window"] == "30m"
    assert data["topology"] == {"checkout": ["payment"], "frontend": ["checkout", "product-catalog"]}


def test_json_indented_with_tabs_is_read_as_json_with_field_names_instead_of_lines() -> None:
    # Given JSON that YAML cannot read (tabs), valid apart from a tier
    text = '{\n\t"window": "5m",\n\t"tiers": {"db": 7}\n}'

    # Then the problem names the field, without a line
    assert problems(text) == ["tiers.db: a tier is 1 (the most important), 2 or 3, not 7"]
    assert parse_correlation('{\n\t"window": "5m"\n}').settings.window_s == 300


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("windw: 10m\n", "line 1: windw: unknown field"),
        ("window: 10x\n", 'line 1: window: not a valid duration string: "10x"'),
        ("window: 600\n", 'line 1: window: not a valid duration string: "600"'),
        ("window: 0\n", "line 1: window: 0 is out of range: 1s to 1d"),
        ("window: 2d\n", "line 1: window: 2d is out of range"),
        ("window: 1500ms\n", "line 1: window: 1500ms is not a whole number of seconds"),
        ("reopen_window: [1m]\n", "line 1: reopen_window: expected a duration such as 10m, not a list"),
        ("max_hops: -1\n", "line 1: max_hops: expected a whole number from 0 to 10, not -1"),
        ("max_hops: 11\n", "line 1: max_hops: 11 is out of range: 0 to 10"),
        ("max_hops: true\n", "line 1: max_hops: expected a whole number from 0 to 10, not true"),
        ("identifying_labels: pod\n", "line 1: identifying_labels: expected a list of label names"),
        ("identifying_labels: [pod, 1pod]\n", "line 1: identifying_labels[1]: '1pod' is not a label name"),
        ("identifying_labels: [pod, pod]\n", "line 1: identifying_labels[1]: 'pod' is listed twice"),
        ("tiers:\n  checkout: 4\n", "line 2: tiers.checkout: a tier is 1 (the most important), 2 or 3, not 4"),
        ("tiers:\n  checkout: 0\n", "line 2: tiers.checkout: a tier is 1"),
        ("tiers:\n  checkout: '1'\n", "line 2: tiers.checkout: a tier is 1 (the most important), 2 or 3, not '1'"),
        ("tiers: [checkout]\n", "line 1: tiers: expected a mapping of services, not a list"),
        ("topology:\n  api: [api]\n", "line 2: topology.api[0]: 'api' cannot call itself"),
        ("topology:\n  api: [db, db]\n", "line 2: topology.api[1]: 'db' is listed twice"),
        ("topology:\n  api: db\n", "line 2: topology.api: expected a list of the services it calls, not 'db'"),
        ("topology:\n  404: [db]\n", 'line 2: topology: a service name must be a string, not 404 (quote it: "404")'),
        ("topology:\n  api: [true]\n", "line 2: topology.api[0]: a service name must be a string, not true"),
        ("topology:\n  api: [{db: 1}]\n", "line 2: topology.api[0]: a service name must be a string, not a mapping"),
        ("topology:\n  '': [db]\n", "line 2: topology: '' is not a service name"),
        ("topology:\n  api: [db]\n  api: [cache]\n", "line 3: topology.api: set twice (first at line 2)"),
        ("window: 1m\nwindow: 2m\n", "line 2: window: set twice (first at line 1)"),
        ("- window\n", "line 1: the document: expected a mapping of fields, not a list"),
        ("window: [\n", "line 2: invalid YAML"),
    ],
)
def test_each_problem_names_its_line_and_field(text: str, expected: str) -> None:
    (found,) = problems(text)
    assert found.startswith(expected)


def test_every_problem_is_reported_in_document_order() -> None:
    # Given a document with problems in several fields (checked in a fixed order, not the document's)
    text = "tiers:\n  a: 9\nbogus: 1\nwindow: soon\ntopology:\n  a: [a]\n"

    # Then each is reported, by line
    assert [p.split(":")[0] for p in problems(text)] == ["line 2", "line 3", "line 4", "line 6"]


def test_a_name_can_be_quoted_to_be_a_string() -> None:
    # Given service names that YAML would read as a number or a boolean, quoted
    config = parse_correlation("topology:\n  '404': ['yes']\ntiers:\n  '404': 2\n")

    # Then they are names
    assert config.topology.edges() == [("404", "yes")]
    assert config.settings.tiers == {"404": 2}


def test_more_than_the_services_allowed_is_refused_at_the_first_one_too_many() -> None:
    # Given a topology naming one service more than allowed (each calls "db")
    lines = [f"  s{i}: [db]" for i in range(MAX_SERVICES)]
    text = "topology:\n" + "\n".join(lines) + "\n"

    # Then it is refused at the first service over the limit
    assert problems(text)[-1] == f"line {MAX_SERVICES + 1}: topology: more than {MAX_SERVICES} services are named"
    # And one fewer is fine
    accepted = "topology:\n" + "\n".join(lines[:-1]) + "\n"
    assert parse_correlation(accepted).summary()["services"] == MAX_SERVICES


def test_aliases_cannot_multiply_the_calls_beyond_the_limit() -> None:
    # Given a list of 500 services, named by an alias under 100 callers (50,000 calls from a small text)
    callees = ", ".join(f"c{i}" for i in range(500))
    text = "topology:\n" + f"  s0: &all [{callees}]\n" + "".join(f"  s{i}: *all\n" for i in range(1, 100))

    # Then checking stops at the limit
    assert problems(text)[-1].endswith(f"more than {MAX_CALLS} calls are declared")


def test_a_document_full_of_problems_stops_at_the_limit() -> None:
    text = "tiers:\n" + "".join(f"  s{i}: 9\n" for i in range(MAX_PROBLEMS * 2))
    found = problems(text)
    assert len(found) == MAX_PROBLEMS + 1
    assert found[-1] == f"checking stopped after {MAX_PROBLEMS} problems"


NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(
    calls=st.dictionaries(NAMES, st.lists(NAMES, max_size=4, unique=True), max_size=8),
    tiers=st.dictionaries(NAMES, st.sampled_from([1, 2, 3]), max_size=8),
    window_s=st.integers(1, 86_400),
    hops=st.integers(0, 10),
)
def test_any_valid_configuration_round_trips_through_its_json(
    calls: dict[str, list[str]], tiers: dict[str, int], window_s: int, hops: int
) -> None:
    # Given any configuration the document can express (self-calls aside)
    topology = Topology.declared({caller: [c for c in callees if c != caller] for caller, callees in calls.items()})
    config = CorrelationConfig(CorrelationSettings(window_s=window_s, max_hops=hops, tiers=tiers), topology)

    # Then its JSON, uploaded, is that configuration
    assert parse_correlation(json.dumps(config.to_json())) == config
