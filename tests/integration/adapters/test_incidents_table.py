"""The incidents table against moto: round trips, newest-first listing, active incidents, optimistic locking."""

from __future__ import annotations

import pytest

from novacron.adapters.incidents import DynamoIncidentStore
from novacron.alert.incidents import AlertSignal, Correlator, Incident, IncidentConflict
from novacron.alert.topology import Topology
from novacron.local.resources import physical_name
from novacron.wiring import INCIDENTS_TABLE

MIN = 60_000
T0 = 1_800_000_000_000


def opened(tenant: str, service: str, at_ms: int) -> Incident:
    signal = AlertSignal(f"Errors/{service}", "Errors", (("service", service),), "critical", True, at_ms)
    (incident,) = Correlator(tenant, Topology()).apply([], [signal], at_ms).changed.values()
    return incident


@pytest.fixture
def store(moto_wiring: None) -> DynamoIncidentStore:
    return DynamoIncidentStore(physical_name(INCIDENTS_TABLE))


def test_an_incident_round_trips_and_each_save_moves_its_revision(store: DynamoIncidentStore) -> None:
    # Given a new incident
    incident = opened("acme", "payment", T0)

    # When saved, read back, changed and saved again
    first = store.save(incident, expires_at=0)
    read = store.incident("acme", incident.id)
    assert read is not None
    read.acknowledge("key-ops", T0 + MIN)
    second = store.save(read, expires_at=0)

    # Then the stored copy is the latest, at revision 2, and other tenants do not see it
    assert (first.revision, second.revision) == (1, 2)
    assert store.incident("acme", incident.id) == second
    assert store.incident("other", incident.id) is None


def test_a_stale_copy_is_refused(store: DynamoIncidentStore) -> None:
    # Given two readers of one stored incident
    store.save(opened("acme", "payment", T0), expires_at=0)
    (incident_id,) = [i.id for i in store.list_incidents("acme", 0, T0 + MIN)]
    a, b = store.incident("acme", incident_id), store.incident("acme", incident_id)
    assert a is not None
    assert b is not None

    # When both write
    a.comment("key-a", T0 + MIN, "first")
    store.save(a, expires_at=0)
    b.comment("key-b", T0 + MIN, "second")

    # Then the second, based on a stale revision, is refused (and a new incident's id cannot be saved twice)
    with pytest.raises(IncidentConflict):
        store.save(b, expires_at=0)
    with pytest.raises(IncidentConflict):
        store.save(opened("acme", "payment", T0), expires_at=0)


def test_listing_by_opening_time_and_active_incidents(store: DynamoIncidentStore) -> None:
    # Given three incidents, the oldest resolved long ago, the middle one resolved a minute ago
    old, middle, new = (opened("acme", s, T0 + i * 60 * MIN) for i, s in enumerate(("a", "b", "c")))
    old.resolve("key-ops", T0 + MIN)
    middle.resolve("key-ops", T0 + 119 * MIN)
    for incident in (old, middle, new):
        store.save(incident, expires_at=0)

    # When listed and asked for the active ones (resolved within the last 30 minutes still count)
    newest_first = [i.id for i in store.list_incidents("acme", T0, T0 + 3 * 60 * MIN)]
    window = [i.id for i in store.list_incidents("acme", T0 + 30 * MIN, T0 + 90 * MIN)]
    active = [i.id for i in store.active_incidents("acme", T0 - 60 * MIN, T0 + 90 * MIN)]

    # Then
    assert newest_first == [new.id, middle.id, old.id]
    assert window == [middle.id]
    assert active == [middle.id, new.id]
