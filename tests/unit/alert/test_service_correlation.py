"""The alerting run with a tenant's correlation document: declared topology, tiers, settings, fallback."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from novacron.alert.incidents import Incident
from novacron.alert.service import CALL_METRIC
from novacron.alert.state import StoredText
from tests.unit.alert.test_service import MIN, T0, Harness, episode
from tests.unit.alert.test_service import harness as harness  # the fixture, shared


def store_document(harness: Harness, text: str, tenant: str = "acme") -> None:
    assert harness.store.put_correlation_config(tenant, text, "key-admin", T0 // 1000, 0)


def incidents_of(harness: Harness, tenant: str = "acme") -> list[Incident]:
    return sorted((i for i in harness.stored() if i.tenant == tenant), key=lambda i: i.opened_at_ms)


def test_without_a_document_unconnected_services_open_two_incidents(harness: Harness) -> None:
    # Given anomalies on checkout and payment a minute apart, and no call between them in the metrics
    harness.anomalies.episodes += [episode("checkout", T0 - 2 * MIN), episode("payment", T0 - MIN)]

    # When the function runs
    harness.run(T0)

    # Then they are two incidents
    assert [i.services for i in incidents_of(harness)] == [["checkout"], ["payment"]]


def test_a_declared_call_joins_two_alerts_the_metrics_alone_keep_apart(harness: Harness) -> None:
    # Given the tenant declares that checkout calls payment
    store_document(harness, "topology:\n  checkout: [payment]\n")
    harness.anomalies.episodes += [episode("checkout", T0 - 2 * MIN), episode("payment", T0 - MIN)]

    # When the function runs
    harness.run(T0)

    # Then both alerts are one incident, whose suspected origin is the service checkout depends on
    (incident,) = incidents_of(harness)
    assert incident.services == ["checkout", "payment"]
    assert incident.origin == "payment"


def test_declared_and_discovered_calls_make_one_graph(harness: Harness) -> None:
    # Given checkout → payment declared, and payment → db seen in the RPC client metrics
    store_document(harness, "topology:\n  checkout: [payment]\n")
    times = [T0 - 10 * MIN + i * 15_000 for i in range(40)]
    harness.reader.add({"__name__": CALL_METRIC, "service": "payment", "target": "db"}, times, [1.0] * 40)
    harness.anomalies.episodes += [episode("checkout", T0 - 2 * MIN), episode("db", T0 - MIN)]

    # When the function runs
    harness.run(T0)

    # Then checkout and db (two hops apart through both graphs) are one incident, db its origin
    (incident,) = incidents_of(harness)
    assert (incident.services, incident.origin) == (["checkout", "db"], "db")


def test_a_tier_one_service_raises_the_priority(harness: Harness) -> None:
    # Given the same anomaly on payment for two tenants, one of which ranks payment tier 1
    store_document(harness, "tiers:\n  payment: 1\n", tenant="acme")
    store_document(harness, "tiers:\n  payment: 3\n", tenant="globex")
    payment = episode("payment", T0 - MIN)
    harness.anomalies.episodes += [payment, replace(payment, tenant="globex"), replace(payment, tenant="initech")]

    # When the function runs for the three tenants (initech has no document)
    harness.now[0] = T0
    assert not harness.service.run(("acme", "globex", "initech"), T0).failed

    # Then tier 1 ranks above no tier, which ranks above tier 3
    (tier_one,), (tier_three,), (untiered,) = (incidents_of(harness, t) for t in ("acme", "globex", "initech"))
    assert tier_one.priority > untiered.priority > tier_three.priority


def test_the_document_window_decides_what_is_close_in_time(harness: Harness) -> None:
    # Given checkout → payment declared with a one-minute window, and alerts five minutes apart
    store_document(harness, "window: 1m\ntopology:\n  checkout: [payment]\n")
    harness.anomalies.episodes += [episode("checkout", T0 - 6 * MIN), episode("payment", T0 - MIN)]

    # When the function runs
    harness.run(T0)

    # Then they stay two incidents (the default ten minutes would have joined them)
    assert [i.services for i in incidents_of(harness)] == [["checkout"], ["payment"]]


def test_a_stored_document_that_no_longer_parses_falls_back_to_the_defaults(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a stored document (written before a stricter parser) declaring checkout → payment, with a bad tier
    text = "topology:\n  checkout: [payment]\ntiers: {payment: 9}\n"
    harness.store.correlations["acme"] = StoredText(text, 1, T0 // 1000, "key-admin")
    harness.anomalies.episodes += [episode("checkout", T0 - 2 * MIN), episode("payment", T0 - MIN)]

    # When the function runs
    with caplog.at_level(logging.WARNING, logger="novacron.alert.service"):
        harness.run(T0)

    # Then the run goes on with the defaults (no declared call: two incidents), and says why
    assert [i.services for i in incidents_of(harness)] == [["checkout"], ["payment"]]
    (warning,) = [r.getMessage() for r in caplog.records if "correlation settings" in r.getMessage()]
    assert "correlation settings of acme (version 1) do not parse" in warning
    assert "tiers.payment" in warning
