"""Inhibition rules (Alertmanager's inhibit/inhibit.go)."""

from __future__ import annotations

import pytest

from novacron.alert.inhibit import InhibitRule, inhibited
from novacron.alert.matchers import parse_matchers


def rule(source: str, target: str, equal: tuple[str, ...] = ()) -> InhibitRule:
    return InhibitRule(tuple(parse_matchers(source)), tuple(parse_matchers(target)), equal)


CRITICAL_MUTES_WARNING = rule('severity="critical"', 'severity="warning"', ("cluster", "service"))


def test_firing_source_inhibits_target_with_equal_labels():
    # Given a firing critical in cluster c1 for service api
    critical = {"alertname": "Down", "severity": "critical", "cluster": "c1", "service": "api"}
    warning = {"alertname": "Slow", "severity": "warning", "cluster": "c1", "service": "api"}
    # When a warning with the same cluster and service is checked
    # Then it is inhibited by the critical
    assert inhibited(warning, [CRITICAL_MUTES_WARNING], [critical]) == critical


@pytest.mark.parametrize(
    "target",
    [
        {"severity": "warning", "cluster": "c2", "service": "api"},  # an equal label differs
        {"severity": "warning", "service": "api"},  # cluster absent on one side only
        {"severity": "info", "cluster": "c1", "service": "api"},  # not a target
    ],
)
def test_no_inhibition_without_equal_labels_or_target_match(target):
    # Given a firing critical in c1/api
    critical = {"severity": "critical", "cluster": "c1", "service": "api"}
    # When another alert is checked
    # Then it is not inhibited
    assert inhibited(target, [CRITICAL_MUTES_WARNING], [critical]) is None


def test_absent_equal_labels_count_as_equal():
    # Given source and target that both lack the equal labels
    # Then they are equal ("" on both sides) and the target is inhibited
    assert inhibited({"severity": "warning"}, [CRITICAL_MUTES_WARNING], [{"severity": "critical"}]) is not None


def test_no_firing_source_no_inhibition():
    # Given no firing alerts at all (resolved ones are left out by the caller)
    # Then nothing is inhibited
    assert inhibited({"severity": "warning"}, [CRITICAL_MUTES_WARNING], []) is None


def test_an_alert_does_not_inhibit_itself():
    # Given a rule whose source and target both match alerts named NodeDown
    r = rule('alertname="NodeDown"', 'alertname=~"Node.*"', ("node",))
    node_down = {"alertname": "NodeDown", "node": "n1"}
    # When the only firing alert is that same NodeDown
    # Then it is not inhibited (two-sided matches are excluded as sources)
    assert inhibited(node_down, [r], [node_down]) is None
    # And another alert matching only the target side is inhibited by it
    assert inhibited({"alertname": "NodeDiskFull", "node": "n1"}, [r], [node_down]) == node_down


def test_legacy_and_new_rules_in_any_order():
    # Given two rules, only the second applying
    rules = [rule('alertname="X"', 'alertname="Y"'), rule('severity="page"', 'team="db"')]
    # Then the second one inhibits
    assert inhibited({"team": "db"}, rules, [{"severity": "page"}]) == {"severity": "page"}
