"""Correlating alerts into incidents: what joins, what stays apart, origin, priority and lifecycle."""

from __future__ import annotations

import pytest

from novacron.alert.incidents import (
    AlertSignal,
    CorrelationSettings,
    Correlator,
    Incident,
    IncidentStatus,
    Source,
    priority_label,
)
from novacron.alert.topology import Topology

MIN = 60_000
T0 = 1_800_000_000_000

# frontend → checkout → {payment, product-catalog → postgres}; frontend → recommendation
SHOP = Topology.declared(
    {
        "frontend": ["checkout", "recommendation"],
        "checkout": ["payment", "product-catalog"],
        "product-catalog": ["postgres"],
    }
)


def alert(
    name: str,
    service: str | None,
    at_min: float,
    *,
    firing: bool = True,
    severity: str = "warning",
    fingerprint: str | None = None,
    **labels: str,
) -> AlertSignal:
    named = {"alertname": name, **({"service": service} if service else {}), **labels}
    return AlertSignal(
        fingerprint=fingerprint or f"{name}/{service}",
        name=name,
        labels=tuple(sorted(named.items())),
        severity=severity,
        firing=firing,
        starts_at_ms=T0 + int(at_min * MIN),
        ends_at_ms=None if firing else T0 + int(at_min * MIN) + MIN,
    )


@pytest.fixture
def correlator() -> Correlator:
    return Correlator("acme", SHOP, CorrelationSettings(tiers={"checkout": 1}))


def run(
    correlator: Correlator, incidents: list[Incident], *signals: AlertSignal, now_min: float = 30
) -> list[Incident]:
    result = correlator.apply(incidents, signals, T0 + int(now_min * MIN))
    merged = {i.id: i for i in incidents} | result.changed
    return sorted(merged.values(), key=lambda i: i.opened_at_ms)


def test_a_database_slowdown_felt_up_the_call_chain_is_one_incident_with_the_database_as_origin(
    correlator: Correlator,
) -> None:
    # Given alerts on the callers first, then on the database they all depend on
    signals = [
        alert("HighLatency", "frontend", 0),
        alert("HighLatency", "checkout", 1),
        alert("HighLatency", "product-catalog", 2),
        alert("SlowQueries", "postgres", 3, severity="critical"),
    ]

    # When they are correlated
    incidents = run(correlator, [], *signals)

    # Then they form one incident whose suspected origin is postgres
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident.services == ["checkout", "frontend", "postgres", "product-catalog"]
    assert incident.origin == "postgres"
    assert "depend on it" in incident.origin_reason
    assert incident.title.startswith("postgres: HighLatency and 3 more alerts")
    assert any(e.kind == "origin_changed" for e in incident.timeline)


def test_services_that_depend_on_a_silent_database_join_one_incident(correlator: Correlator) -> None:
    # Given a topology where inventory and product-catalog both call postgres, which raises no alert itself
    shop = Topology.declared({"inventory": ["postgres"], "product-catalog": ["postgres"], "checkout": ["payment"]})
    correlator = Correlator("acme", shop)

    # When both alert at the same moment, and an unrelated payment alert too
    incidents = run(
        correlator,
        [],
        alert("Slow", "inventory", 0),
        alert("Slow", "product-catalog", 0),
        alert("Errors", "payment", 0),
    )

    # Then the database's dependants are one incident, and payment is its own
    assert sorted(i.services for i in incidents) == [["inventory", "product-catalog"], ["payment"]]


def test_two_faults_that_only_share_a_caller_stay_two_incidents(correlator: Correlator) -> None:
    # Given payment failing and, at the same time, recommendation failing (both called by the frontend side)
    signals = [alert("Errors", "payment", 0), alert("Errors", "recommendation", 1)]

    # When correlated
    incidents = run(correlator, [], *signals)

    # Then they are separate incidents, each its own origin
    assert [i.origin for i in incidents] == ["payment", "recommendation"]


def test_an_alert_related_to_two_incidents_joins_the_closer(correlator: Correlator) -> None:
    # Given incidents on payment and on postgres
    incidents = run(correlator, [], alert("Errors", "payment", 0), alert("Slow", "postgres", 0.5))

    # When product-catalog (which calls postgres directly, and reaches payment only via no path) alerts
    incidents = run(correlator, incidents, alert("Slow", "product-catalog", 2))

    # Then it joins the postgres incident and the payment incident is untouched
    by_origin = {i.origin: i for i in incidents}
    assert set(by_origin) == {"payment", "postgres"}
    assert by_origin["postgres"].services == ["postgres", "product-catalog"]
    assert by_origin["payment"].services == ["payment"]


def test_alerts_far_apart_in_time_open_separate_incidents(correlator: Correlator) -> None:
    # Given an alert on checkout, and one on payment 45 minutes later (the window is 10 minutes)
    incidents = run(correlator, [], alert("Errors", "checkout", 0))

    # When the second arrives
    incidents = run(correlator, incidents, alert("Errors", "payment", 45), now_min=50)

    # Then it is a new incident
    assert len(incidents) == 2


def test_a_shared_identifying_label_joins_alerts_without_a_service(correlator: Correlator) -> None:
    # Given a disk alert on a host, and a node-exporter alert on the same host with no service label
    incidents = run(correlator, [], alert("DiskFull", "postgres", 0, instance="db-1:9100"))

    # When the host alert arrives
    incidents = run(correlator, incidents, alert("HostDown", None, 1, instance="db-1:9100"))

    # Then it joins
    assert len(incidents) == 1
    assert len(incidents[0].alerts) == 2


def test_the_incident_auto_resolves_when_every_alert_resolves_and_reopens_when_one_fires_again(
    correlator: Correlator,
) -> None:
    # Given an incident of two alerts
    first, second = alert("Errors", "payment", 0), alert("Errors", "checkout", 1)
    incidents = run(correlator, [], first, second)

    # When both resolve
    incidents = run(
        correlator,
        incidents,
        alert("Errors", "payment", 0, firing=False),
        alert("Errors", "checkout", 1, firing=False),
        now_min=5,
    )

    # Then the incident is resolved, with a timeline saying why
    (incident,) = incidents
    assert incident.status is IncidentStatus.RESOLVED
    assert incident.timeline[-1].text == "every alert resolved"

    # When one of its alerts fires again soon after
    incidents = run(correlator, incidents, alert("Errors", "payment", 8), now_min=8)

    # Then the same incident is reopened (no new page-worthy incident)
    (incident,) = incidents
    assert incident.status is IncidentStatus.OPEN
    assert [e.kind for e in incident.timeline][-2:] == ["alert_refired", "reopened"]


def test_an_incident_resolved_by_hand_keeps_its_still_firing_alert_however_long_ago(correlator: Correlator) -> None:
    # Given an incident resolved by hand at minute 2 while its alert fires on
    (incident,) = run(correlator, [], alert("Errors", "payment", 0), now_min=1)
    incident.resolve("key-ops", T0 + 2 * MIN)

    # When the alert is still firing two hours later (far past the 30-minute reopen window)
    result = correlator.apply([incident], [alert("Errors", "payment", 0)], T0 + 120 * MIN)

    # Then nothing changes: no incident opened again, and the resolved one stays resolved
    assert not result.changed
    assert not result.opened
    assert incident.status is IncidentStatus.RESOLVED


def test_a_resolved_alert_nobody_holds_changes_nothing(correlator: Correlator) -> None:
    # Given no incidents
    # When only the end of an unknown alert arrives
    result = correlator.apply([], [alert("Errors", "payment", 0, firing=False)], T0)

    # Then nothing is opened
    assert not result.changed
    assert not result.opened


def test_the_same_round_retried_opens_the_same_incident_id(correlator: Correlator) -> None:
    # Given the same alert correlated twice from scratch (a retried invocation)
    signal = alert("Errors", "payment", 0)

    # When
    first, again = run(correlator, [], signal), run(correlator, [], signal)

    # Then the ids agree, so storing it again is idempotent
    assert first[0].id == again[0].id


def test_priority_grows_with_severity_blast_radius_and_tier(correlator: Correlator) -> None:
    # Given a warning on a leaf service and a critical on the database most services depend on
    leaf = run(correlator, [], alert("Errors", "recommendation", 0))[0]
    database = run(correlator, [], alert("Down", "postgres", 0, severity="critical"))[0]

    # Then the database incident ranks higher (checkout, tier 1, depends on it)
    assert database.priority > leaf.priority
    assert database.priority_label < leaf.priority_label  # "P1" sorts before "P5"


def test_a_rule_with_a_history_of_false_positives_lowers_priority() -> None:
    # Given the same alert under a correlator that knows the rule is mostly noise
    signal = alert("Flappy", "payment", 0)
    trusted = Correlator("acme", SHOP).apply([], [signal], T0)
    noisy = Correlator("acme", SHOP, false_positive_rates={"Flappy": 0.9}).apply([], [signal], T0)

    # Then the noisy rule's incident has a lower priority
    (a,), (b,) = trusted.changed.values(), noisy.changed.values()
    assert b.priority < a.priority


def test_lifecycle_operations_are_checked_and_recorded(correlator: Correlator) -> None:
    # Given an open incident
    (incident,) = run(correlator, [], alert("Errors", "payment", 0))

    # When acknowledged, commented and resolved by hand
    incident.acknowledge("key-ops", T0 + MIN)
    incident.comment("key-ops", T0 + 2 * MIN, "rolling back payment v2.3")
    incident.resolve("key-ops", T0 + 3 * MIN, "rolled back")

    # Then each step is on the timeline with who did it, and illegal steps are refused
    assert [(e.kind, e.by) for e in incident.timeline[1:]] == [
        ("acknowledged", "key-ops"),
        ("comment", "key-ops"),
        ("resolved", "key-ops"),
    ]
    with pytest.raises(ValueError, match="already resolved"):
        incident.resolve("key-ops", T0 + 4 * MIN)
    with pytest.raises(ValueError, match="only an open incident"):
        incident.acknowledge("key-ops", T0 + 4 * MIN)
    with pytest.raises(ValueError, match="needs some text"):
        incident.comment("key-ops", T0 + 4 * MIN, "  ")
    incident.reopen("key-ops", T0 + 5 * MIN, "it is back")
    assert incident.status is IncidentStatus.OPEN


def test_an_incident_round_trips_through_json(correlator: Correlator) -> None:
    # Given an incident with alerts from a rule and the detector
    anomaly = AlertSignal(
        "anomaly-1", "Anomaly", (("service", "payment"),), "critical", True, T0 + MIN, source=Source.ANOMALY
    )
    (incident,) = run(correlator, [], alert("Errors", "payment", 0), anomaly)

    # When written as JSON and read back
    data = incident.to_json()
    back = Incident.from_json(data)

    # Then nothing is lost, and the JSON carries services and window for readers
    assert back == incident
    assert data["services"] == ["payment"]
    assert data["window"] == {"start_ms": T0, "end_ms": T0 + MIN}


@pytest.mark.parametrize(("score", "label"), [(75.0, "P1"), (40.0, "P2"), (30.0, "P3"), (10.0, "P4"), (2.0, "P5")])
def test_priority_labels(score: float, label: str) -> None:
    assert priority_label(score) == label
