"""The route tree (Alertmanager's dispatch/route.go): matching, continue, inheritance, keys."""

from __future__ import annotations

import textwrap

import pytest

from novacron.alert.amconfig import parse_config
from novacron.alert.routing import build_routes, receivers_for

TREE = """\
route:
  receiver: default
  group_by: [alertname]
  group_wait: 10s
  routes:
    - matchers: [team="db"]
      receiver: db
      group_by: [alertname, cluster]
      repeat_interval: 1h
      continue: true
      routes:
        - matchers: [severity="critical"]
          receiver: db-pager
          group_interval: 1m
    - matchers: [team=~"db|infra"]
      receiver: infra
      group_by: ['...']
    - matchers: ['env!="prod"']
      receiver: nonprod
receivers: [{name: default}, {name: db}, {name: db-pager}, {name: infra}, {name: nonprod}]
"""


@pytest.fixture
def root():
    return build_routes(parse_config(textwrap.dedent(TREE)).route)


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"alertname": "A", "env": "prod"}, ["default"]),  # nothing below matches: the root itself
        ({"team": "db", "env": "prod"}, ["db", "infra"]),  # continue on db, then infra stops
        ({"team": "db", "severity": "critical", "env": "prod"}, ["db-pager", "infra"]),  # the deepest match
        ({"team": "infra", "env": "prod"}, ["infra"]),
        ({"team": "web"}, ["nonprod"]),  # absent env is "" which is != "prod"
        ({"team": "web", "env": "prod"}, ["default"]),
    ],
)
def test_alerts_go_to_the_documented_routes(root, labels, receivers):
    # Given the tree
    # When a label set is routed
    # Then the receivers are those of Alertmanager's depth-first, continue-aware match
    assert receivers_for(root, labels) == receivers


def test_options_inherit_from_the_parent(root):
    # Given a nested route that sets only group_interval
    (pager,) = [r for r in root.match({"team": "db", "severity": "critical"}) if r.opts.receiver == "db-pager"]
    # Then group_by and repeat_interval come from its parent, group_wait from the root, and the rest default
    assert pager.opts.group_by == frozenset({"alertname", "cluster"})
    assert pager.opts.repeat_interval == 3600.0
    assert pager.opts.group_wait == 10.0
    assert pager.opts.group_interval == 60.0
    # And the root has Alertmanager's defaults where unset
    assert (root.opts.group_interval, root.opts.repeat_interval) == (300.0, 4 * 3600.0)


def test_group_by_all_and_group_labels(root):
    # Given the infra route (group_by ['...']) and the root (group_by [alertname])
    (infra,) = root.match({"team": "infra", "env": "prod"})
    labels = {"team": "infra", "env": "prod", "alertname": "X"}
    # Then infra groups by every label and the root only by alertname (absent labels left out)
    assert infra.opts.group_labels(labels) == labels
    assert root.opts.group_labels({"env": "prod"}) == {}
    assert root.opts.group_labels(labels) == {"alertname": "X"}


def test_route_keys_and_ids_are_alertmanagers(root):
    # Given the built tree
    keys = [r.key for r in root.walk()]
    ids = [r.id for r in root.walk()]
    # Then keys chain the sorted matchers of the ancestors, ids add the position among siblings
    assert keys == [
        "{}",
        '{}/{team="db"}',
        '{}/{team="db"}/{severity="critical"}',
        '{}/{team=~"db|infra"}',
        '{}/{env!="prod"}',
    ]
    assert ids[0] == "{}"
    assert ids[2] == '{}/{team="db"}/{severity="critical"}/0'
    assert ids[4] == '{}/{env!="prod"}/2'


def test_defaults_when_nothing_is_set():
    # Given a bare root route
    root = build_routes(parse_config("route: {receiver: r}\nreceivers: [{name: r}]\n").route)
    # Then the timers are Alertmanager's defaults and grouping is by no label (one group)
    assert (root.opts.group_wait, root.opts.group_interval, root.opts.repeat_interval) == (30.0, 300.0, 14400.0)
    assert root.opts.group_labels({"a": "1"}) == {}
