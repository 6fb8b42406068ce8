"""``/api/v1/incidents``: listing, reading and acting on incidents, over an in-memory store."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from novacron.alert.incidents import AlertSignal, Correlator, Incident, IncidentEvent
from novacron.alert.incidents_api import Announcer, act, get_incident, list_incidents
from novacron.alert.state import NotificationRequest
from novacron.alert.topology import Topology
from tests.fakes import MemoryIncidentStore

MIN = 60_000
NOW = 1_800_000_000_000


class Heard:
    """The bus and the notifications topic, as lists."""

    def __init__(self) -> None:
        self.events: list[IncidentEvent] = []
        self.requests: list[NotificationRequest] = []

    def put_events(self, events: Sequence[IncidentEvent]) -> None:
        self.events.extend(events)

    def publish(self, requests: Sequence[NotificationRequest]) -> None:
        self.requests.extend(requests)


def signal(service: str, at_ms: int, name: str = "Errors") -> AlertSignal:
    return AlertSignal(f"{name}/{service}", name, (("alertname", name), ("service", service)), "critical", True, at_ms)


@pytest.fixture
def store() -> MemoryIncidentStore:
    """Two incidents of tenant acme an hour apart (unrelated services), one of tenant other."""
    store = MemoryIncidentStore()
    topology = Topology.declared({"checkout": ["payment"]})
    for tenant, service, at in (("acme", "payment", NOW - 2 * 60 * MIN), ("acme", "search", NOW - MIN)):
        result = Correlator(tenant, topology).apply([], [signal(service, at)], at)
        for incident in result.changed.values():
            store.save(incident, 0)
    other = Correlator("other", topology).apply([], [signal("payment", NOW - MIN)], NOW)
    for incident in other.changed.values():
        store.save(incident, 0)
    return store


def ids(store: MemoryIncidentStore, tenant: str = "acme") -> list[str]:
    return [i.id for i in store.list_incidents(tenant, 0, NOW)]


def test_listing_is_newest_first_and_scoped_to_the_tenant(store: MemoryIncidentStore) -> None:
    # When acme lists its incidents
    status, body = list_incidents(store, "acme", {}, NOW)

    # Then it sees its two, newest first, without timelines but with alert counts
    assert status == 200
    listed = body["data"]["incidents"]
    assert [i["services"] for i in listed] == [["search"], ["payment"]]
    assert "timeline" not in listed[0]
    assert (listed[0]["alerts_firing"], listed[0]["alerts_total"]) == (1, 1)


def test_listing_filters_by_status_and_service(store: MemoryIncidentStore) -> None:
    # Given one incident acknowledged
    newest = ids(store)[0]
    act(store, None, "acme", newest, "acknowledge", "key-ops", b"", NOW)

    # When filtered
    _, acknowledged = list_incidents(store, "acme", {"status": ["acknowledged"]}, NOW)
    _, active = list_incidents(store, "acme", {"status": ["active"]}, NOW)
    _, payment = list_incidents(store, "acme", {"service": ["payment"]}, NOW)

    # Then each filter keeps what it names
    assert [i["id"] for i in acknowledged["data"]["incidents"]] == [newest]
    assert len(active["data"]["incidents"]) == 2
    assert [i["services"] for i in payment["data"]["incidents"]] == [["payment"]]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": ["sleeping"]}, 'invalid parameter "status"'),
        ({"limit": ["100000"]}, "at most 500"),
        ({"start": ["2000"], "end": ["1000"]}, "must not be before"),
    ],
)
def test_bad_list_parameters_are_400_naming_the_parameter(
    store: MemoryIncidentStore, params: dict[str, list[str]], message: str
) -> None:
    status, body = list_incidents(store, "acme", params, NOW)
    assert status == 400
    assert message in body["error"]


def test_one_incident_is_read_whole_and_other_tenants_incidents_are_not_found(store: MemoryIncidentStore) -> None:
    # Given acme's incident id and other's
    mine, theirs = ids(store)[0], ids(store, "other")[0]

    # When read
    ok, body = get_incident(store, "acme", mine)
    missing, _ = get_incident(store, "acme", theirs)
    garbage, error = get_incident(store, "acme", "../../etc")

    # Then acme gets its own with the timeline, and 404 for anything else
    assert ok == 200
    assert body["data"]["timeline"][0]["kind"] == "opened"
    assert (missing, garbage) == (404, 404)
    assert "no incident" in error["error"]


def test_actions_go_on_the_timeline_with_who_and_put_events(store: MemoryIncidentStore) -> None:
    # Given an open incident, the bus and the notifications topic
    incident_id, heard = ids(store)[0], Heard()

    # When it is acknowledged with a comment, commented on, and resolved
    for action, body in (
        ("acknowledge", b'{"comment": "looking"}'),
        ("comment", b'{"comment": "search index rebuilt"}'),
        ("resolve", b""),
    ):
        status, answer = act(store, Announcer(heard, heard), "acme", incident_id, action, "key-ops", body, NOW)
        assert status == 200, answer

    # Then the timeline records each, by the key id, and acknowledge/resolve announced themselves on the bus
    # and to the receivers already told (no receiver named), each newer than the last
    incident = store.incident("acme", incident_id)
    assert incident is not None
    assert [(e.kind, e.text, e.by) for e in incident.timeline[1:]] == [
        ("acknowledged", "acknowledged by key-ops", "key-ops"),
        ("comment", "looking", "key-ops"),
        ("comment", "search index rebuilt", "key-ops"),
        ("resolved", "resolved by key-ops", "key-ops"),
    ]
    assert [e.detail_type for e in heard.events] == ["IncidentAcknowledged", "IncidentResolved"]
    assert heard.events[-1].detail()["status"] == "resolved"
    told = [(r.receiver, r.notification.action.value, r.notification.status.value) for r in heard.requests]
    assert told == [(None, "acknowledged", "acknowledged"), (None, "resolved", "resolved")]
    assert heard.requests[0].notification.sequence < heard.requests[1].notification.sequence


@pytest.mark.parametrize(
    ("action", "body", "status", "message"),
    [
        ("reopen", b"", 409, "only a resolved incident"),
        ("comment", b"", 400, "non-empty comment"),
        ("comment", b'{"comment": "  "}', 400, "required"),
        ("comment", b'{"text": "x"}', 400, "only comment"),
        ("comment", b'{"false_positive": true}', 400, "only comment"),
        ("resolve", b'{"false_positive": "yes"}', 400, "false_positive: must be true or false"),
        ("comment", b"not json", 400, "must be JSON"),
        ("snooze", b"", 404, "no action 'snooze'"),
    ],
)
def test_refused_actions_say_why(
    store: MemoryIncidentStore, action: str, body: bytes, status: int, message: str
) -> None:
    # Given an open incident
    incident_id = ids(store)[0]

    # When an action that does not apply is asked for
    answer_status, answer = act(store, None, "acme", incident_id, action, "key-ops", body, NOW)

    # Then the answer names the problem, and nothing changed
    assert answer_status == status
    assert message in answer["error"]
    stored = store.incident("acme", incident_id)
    assert stored is not None
    assert len(stored.timeline) == 1


def test_a_concurrent_write_is_retried_on_the_fresh_copy(store: MemoryIncidentStore) -> None:
    # Given a store where someone else writes the incident right after our first read
    incident_id = ids(store)[0]
    reads = 0
    original = store.incident

    def racing_read(tenant: str, wanted: str) -> Incident | None:
        nonlocal reads
        reads += 1
        found = original(tenant, wanted)
        if reads == 1 and found is not None:
            other = original(tenant, wanted)
            assert other is not None
            other.comment("key-bot", NOW, "auto-remediation started")
            store.save(other, 0)
        return found

    store.incident = racing_read  # type: ignore[method-assign]

    # When the incident is acknowledged
    status, answer = act(store, None, "acme", incident_id, "acknowledge", "key-ops", b"", NOW)

    # Then the action was applied on the fresh copy: both writes survive
    assert status == 200
    assert [e["kind"] for e in answer["data"]["timeline"]] == ["opened", "comment", "acknowledged"]
    assert json.dumps(answer)  # JSON-ready


def test_resolving_as_a_false_positive_is_recorded(store: MemoryIncidentStore) -> None:
    # Given an open incident
    incident_id = ids(store)[0]

    # When it is resolved as a false positive
    status, answer = act(
        store, None, "acme", incident_id, "resolve", "key-ops", b'{"comment": "load test", "false_positive": true}', NOW
    )

    # Then the timeline says so, after the resolution
    assert status == 200
    kinds = [(e["kind"], e["text"]) for e in answer["data"]["timeline"]]
    assert kinds[-2:] == [("resolved", "resolved by key-ops: load test"), ("false_positive", "marked a false positive")]
