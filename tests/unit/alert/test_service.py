"""The alerting run with in-memory adapters: rules → alerts → incidents → notification requests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from novacron.alert.amconfig import DEFAULT_CONFIG_TEXT
from novacron.alert.incidents import INCIDENT_OPENED, INCIDENT_RESOLVED, Incident, IncidentEvent, IncidentStatus
from novacron.alert.matchers import new_matcher
from novacron.alert.rule_runs import RuleSampleWriter
from novacron.alert.rule_state import GroupState
from novacron.alert.service import AlertingService, AlertSettings
from novacron.alert.silences import Silence
from novacron.alert.state import NotificationRequest
from novacron.detect.events import Anomaly, Severity, Status
from novacron.ingest.service import IngestService
from novacron.notify.model import Action
from novacron.query.memory_reader import InMemorySeriesReader
from novacron.storage.reader import QueryTooLarge
from tests.fakes import ListSink, MemoryAlertingStore, MemoryIncidentStore

S = 1000
MIN = 60 * S
T0 = 1_800_000_000_000  # a multiple of a minute

RULES = """\
groups:
  - name: availability
    interval: 1m
    rules:
      - record: job:up:sum
        expr: sum by (service) (up)
      - alert: TargetDown
        expr: up == 0
        for: 1m
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.service }} {{ $labels.instance }} is down"
"""


@dataclass
class FakeAnomalies:
    episodes: list[Anomaly] = field(default_factory=list)

    def list_anomalies(
        self, tenant: str, start_ms: int, end_ms: int, limit: int = 100, newest_first: bool = False
    ) -> list[Anomaly]:
        return [a for a in self.episodes if a.tenant == tenant and start_ms <= a.start_ms <= end_ms][:limit]


@dataclass
class ListEvents:
    events: list[IncidentEvent] = field(default_factory=list)

    def put_events(self, events: Sequence[IncidentEvent]) -> None:
        self.events.extend(events)


@dataclass
class ListPublisher:
    requests: list[NotificationRequest] = field(default_factory=list)

    def publish(self, requests: Sequence[NotificationRequest]) -> None:
        self.requests.extend(requests)


@dataclass
class Harness:
    """The service with in-memory adapters, and a clock the tests move."""

    store: MemoryAlertingStore
    incidents: MemoryIncidentStore
    anomalies: FakeAnomalies
    events: ListEvents
    publisher: ListPublisher
    sink: ListSink
    reader: InMemorySeriesReader
    service: AlertingService
    now: list[int]

    def run(self, at_ms: int, tenants: Sequence[str] = ("acme",)) -> None:
        self.now[0] = at_ms
        report = self.service.run(tenants, at_ms)
        assert not report.failed

    def run_every_minute(self, start_ms: int, end_ms: int) -> None:
        for at in range(start_ms, end_ms + 1, MIN):
            self.run(at)

    def stored(self) -> list[Incident]:
        return list(self.incidents.items.values())


@pytest.fixture
def harness() -> Harness:
    now = [T0]
    reader = InMemorySeriesReader()
    sink = ListSink()
    store, incidents, anomalies = MemoryAlertingStore(), MemoryIncidentStore(), FakeAnomalies()
    events, publisher = ListEvents(), ListPublisher()
    service = AlertingService(
        store,
        incidents,
        anomalies,
        events,
        publisher,
        RuleSampleWriter(IngestService(sink, clock_ms=lambda: now[0])),
        lambda tenant: reader,
        AlertSettings(external_url="https://novacron.example"),
    )
    return Harness(store, incidents, anomalies, events, publisher, sink, reader, service, now)


def target(reader: InMemorySeriesReader, service: str, values_by_minute: dict[int, float], until_min: int) -> None:
    """An ``up`` series scraped every 15 s, holding each value from its minute on."""
    times, values = [], []
    current = 1.0
    for q in range(-40, until_min * 4 + 1):
        minute = q // 4
        current = values_by_minute.get(minute, current) if q % 4 == 0 else current
        times.append(T0 + q * 15 * S)
        values.append(current)
    reader.add({"__name__": "up", "service": service, "instance": f"{service}:9000"}, times, values)


def push_rules(store: MemoryAlertingStore, text: str = RULES, tenant: str = "acme") -> None:
    assert store.put_rule_file(tenant, "availability.yml", text, "key-1", T0 // 1000, 0)


def episode(service: str, start_ms: int, *, resolved_ms: int | None = None, suppressed: bool = False) -> Anomaly:
    return Anomaly(
        id=f"{start_ms:x}{service}",
        tenant="acme",
        series_id="00ff",
        labels=(("__name__", "http_latency_seconds"), ("service", service)),
        metric="http_latency_seconds",
        status=Status.RESOLVED if resolved_ms else Status.OPEN,
        start_ms=start_ms,
        end_ms=resolved_ms,
        peak_ms=start_ms,
        value=2.5,
        expected=0.2,
        lower=0.1,
        upper=0.4,
        score=0.97,
        methods=("spike", "level_shift"),
        confidence=1.0,
        warming_up=False,
        severity=Severity.CRITICAL,
        scored_as="value",
        detector_version="stream-v1",
        suppressed=suppressed,
    )


def test_a_rule_that_fires_after_for_opens_an_incident_and_requests_a_notification(harness: Harness) -> None:
    # Given a rule file and a target down from minute 0
    push_rules(harness.store)
    target(harness.reader, "payment", {0: 0.0}, until_min=10)

    # When the function runs every minute for three minutes
    harness.run(T0)
    assert harness.stored() == []  # pending: its `for` has not passed
    harness.run_every_minute(T0 + MIN, T0 + 2 * MIN)

    # Then one incident was opened by the alert that fired at minute 1, and the bus was told
    (incident,) = harness.stored()
    assert incident.status is IncidentStatus.OPEN
    assert incident.opened_at_ms == T0 + MIN
    assert [a.name for a in incident.alerts.values()] == ["TargetDown"]
    assert [e.detail_type for e in harness.events.events] == [INCIDENT_OPENED]
    # And after the group wait, one request tells the inbox it opened
    (request,) = harness.publisher.requests
    assert (request.receiver, request.integrations) == ("inbox", ("inbox[0]",))
    n = request.notification
    assert (n.action, n.incident_id, n.sequence, n.tenant) == (Action.OPENED, incident.id, incident.revision, "acme")
    assert n.severity == "critical"
    assert n.services == ("payment",)
    assert n.alerts[0].annotations["summary"] == "payment payment:9000 is down"
    assert n.url == f"https://novacron.example/incidents/{incident.id}"
    # And the rule output went to the metrics stream
    stored = {dict(labels)["__name__"] for labels in harness.sink.stored_samples()}
    assert {"job:up:sum", "ALERTS", "ALERTS_FOR_STATE"} <= stored


def test_when_the_alert_resolves_the_incident_resolves_and_a_resolved_request_follows(harness: Harness) -> None:
    # Given a target down from minute 0 and back up at minute 3
    push_rules(harness.store)
    target(harness.reader, "payment", {0: 0.0, 3: 1.0}, until_min=12)

    # When the function runs every minute for ten minutes
    harness.run_every_minute(T0, T0 + 10 * MIN)

    # Then the incident resolved on its own, and the inbox was told it opened, then resolved
    (incident,) = harness.stored()
    assert incident.status is IncidentStatus.RESOLVED
    assert incident.resolved_at_ms == T0 + 3 * MIN
    assert [e.detail_type for e in harness.events.events] == [INCIDENT_OPENED, INCIDENT_RESOLVED]
    actions = [(r.notification.action, r.notification.status) for r in harness.publisher.requests]
    assert actions == [(Action.OPENED, "open"), (Action.RESOLVED, "resolved")]


def test_a_run_that_sees_nothing_new_changes_nothing(harness: Harness) -> None:
    # Given an incident opened and notified
    push_rules(harness.store)
    target(harness.reader, "payment", {0: 0.0}, until_min=10)
    harness.run_every_minute(T0, T0 + 2 * MIN)
    (before,) = harness.stored()

    # When the function runs again at the same time
    harness.run(T0 + 2 * MIN)

    # Then no incident was written, no event and no request sent again
    assert harness.stored()[0].revision == before.revision
    assert len(harness.events.events) == 1
    assert len(harness.publisher.requests) == 1


def test_an_anomaly_episode_becomes_an_alert_of_an_incident_with_its_explanation(harness: Harness) -> None:
    # Given a tenant without rules and an open anomaly episode on checkout
    harness.anomalies.episodes.append(episode("checkout", T0 - 2 * MIN))

    # When the function runs
    harness.run(T0)

    # Then an incident holds the episode as an "Anomaly" alert on checkout, explained
    (incident,) = harness.stored()
    (alert,) = incident.alerts.values()
    assert (alert.name, alert.service, alert.source, alert.severity) == ("Anomaly", "checkout", "anomaly", "critical")
    assert alert.labels["source"] == "detector"
    assert alert.labels["metric"] == "http_latency_seconds"
    assert "expected 0.2" in alert.summary
    assert "spike, level_shift" in alert.summary
    # And the episode started more than the group wait ago: the inbox is told at once
    assert [r.notification.action for r in harness.publisher.requests] == [Action.OPENED]


def test_a_suppressed_episode_is_not_an_alert(harness: Harness) -> None:
    # Given an episode opened in a maintenance window
    harness.anomalies.episodes.append(episode("checkout", T0 - 2 * MIN, suppressed=True))

    # When the function runs
    harness.run(T0)

    # Then nothing happens
    assert harness.stored() == []
    assert harness.publisher.requests == []


def test_a_silenced_alert_joins_no_incident(harness: Harness) -> None:
    # Given a firing rule alert and an active silence matching it
    push_rules(harness.store)
    target(harness.reader, "payment", {0: 0.0}, until_min=10)
    silence = Silence(
        "s-1", (new_matcher("alertname", "=", "TargetDown"),), T0 / 1000 - 60, T0 / 1000 + 3600, "ops", "maintenance"
    )
    harness.store.put_silence("acme", silence)

    # When the function runs for a few minutes
    harness.run_every_minute(T0, T0 + 4 * MIN)

    # Then no incident was opened and nobody was told
    assert harness.stored() == []
    assert harness.publisher.requests == []


def test_a_group_catches_up_on_at_most_three_missed_evaluations(harness: Harness) -> None:
    # Given a group last evaluated five minutes ago
    push_rules(harness.store)
    target(harness.reader, "payment", {}, until_min=10)
    harness.run(T0)
    assert harness.store.group_states("acme")["availability.yml/availability"].last_evaluation_ms == T0

    # When the function runs again five minutes later
    harness.run(T0 + 5 * MIN + 20 * S)

    # Then the group was evaluated at the last three minutes, the latest due one last
    state = harness.store.group_states("acme")["availability.yml/availability"]
    assert state.last_evaluation_ms == T0 + 5 * MIN
    recorded = harness.sink.stored_samples()[(("__name__", "job:up:sum"), ("service", "payment"))]
    assert [t for t, _ in recorded] == [T0, T0 + 3 * MIN, T0 + 4 * MIN, T0 + 5 * MIN]


def test_a_rule_file_that_no_longer_parses_is_skipped(harness: Harness) -> None:
    # Given a stored file that does not parse (validated on upload by an older version, say)
    harness.store.files["acme"] = {}
    assert harness.store.put_rule_file("acme", "broken.yml", "groups: [", "key-1", 0, 0)
    push_rules(harness.store)
    target(harness.reader, "payment", {}, until_min=3)

    # When the function runs
    report = harness.service.run(["acme"], T0)

    # Then the other file was evaluated and the broken one counted as skipped
    (tenant,) = report.tenants
    assert (tenant.rule_files, tenant.rule_files_skipped, tenant.groups_evaluated) == (2, 1, 1)


def test_one_tenant_failing_does_not_stop_the_others(harness: Harness) -> None:
    # Given two tenants with rules, and the first one's data cannot be read
    for tenant in ("broken", "acme"):
        push_rules(harness.store, tenant=tenant)
    target(harness.reader, "payment", {0: 0.0}, until_min=3)
    reader = harness.reader

    def reader_for(tenant: str) -> InMemorySeriesReader:
        if tenant == "broken":
            raise ConnectionError("the hot tier is unreachable")
        return reader

    harness.service.reader_for = reader_for

    # When the function runs
    report = harness.service.run(["broken", "acme"], T0)

    # Then the failure is reported and the other tenant was evaluated
    assert report.failed == ["broken"]
    assert [r.tenant for r in report.tenants] == ["acme"]
    assert isinstance(harness.store.group_states("acme")["availability.yml/availability"], GroupState)
    assert report.counts()["TenantsFailed"] == 1


def test_a_failed_publish_leaves_the_notification_for_the_next_run(harness: Harness) -> None:
    # Given an alert about to be notified, and a topic that fails once
    harness.anomalies.episodes.append(episode("checkout", T0 - 2 * MIN))
    publish = harness.publisher.publish
    calls = []

    def failing_once(requests: Sequence[NotificationRequest]) -> None:
        calls.append(len(requests))
        if len(calls) == 1:
            raise RuntimeError("SNS is throttling")
        publish(requests)

    harness.publisher.publish = failing_once  # type: ignore[method-assign]

    # When the function runs twice
    first = harness.service.run(["acme"], T0)
    harness.run(T0 + MIN)

    # Then the first run failed and the second sent the same opened notification
    assert first.failed == ["acme"]
    assert [r.notification.action for r in harness.publisher.requests] == [Action.OPENED]


BY_ALERTNAME = """\
route:
  receiver: team
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 1h
receivers:
  - name: team
    webhook_configs:
      - url: https://hooks.example/alerts
"""


def test_a_group_not_keyed_by_incident_still_notifies_about_each_incident_it_holds(harness: Harness) -> None:
    # Given a configuration grouping by alert name, and two unrelated services with anomalies
    assert harness.store.put_alertmanager_config("acme", BY_ALERTNAME, "key-1", 0, 0)
    harness.anomalies.episodes += [episode("payment", T0 - 2 * MIN), episode("search", T0 - 2 * MIN)]

    # When the function runs
    harness.run(T0)

    # Then the one "Anomaly" group told the webhook about both incidents, one request each
    incidents = {i.id for i in harness.stored()}
    assert len(incidents) == 2
    assert {r.notification.incident_id for r in harness.publisher.requests} == incidents
    assert {(r.receiver, r.integrations) for r in harness.publisher.requests} == {("team", ("webhook[0]",))}


def test_an_incident_resolved_by_hand_stops_paging_while_its_alert_still_fires(harness: Harness) -> None:
    # Given a notified incident whose anomaly still goes on, then resolved by a user
    assert harness.store.put_alertmanager_config("acme", BY_ALERTNAME, "key-1", 0, 0)
    harness.anomalies.episodes.append(episode("payment", T0 - 2 * MIN))
    harness.run(T0)
    (incident,) = harness.stored()
    incident.resolve("key-ops", T0 + 30 * S)
    harness.incidents.save(incident, 0)

    # When the function runs past the repeat interval
    harness.run_every_minute(T0 + MIN, T0 + 70 * MIN)

    # Then the incident stays resolved and the only later request says it resolved
    assert harness.stored()[0].status is IncidentStatus.RESOLVED
    assert [r.notification.action for r in harness.publisher.requests] == [Action.OPENED, Action.RESOLVED]


def test_an_incident_resolved_by_hand_long_ago_is_not_opened_again_while_its_alert_fires(harness: Harness) -> None:
    # Given an incident resolved by a user while its anomaly goes on
    harness.anomalies.episodes.append(episode("payment", T0 - 2 * MIN))
    harness.run(T0)
    (incident,) = harness.stored()
    incident.resolve("key-ops", T0 + 30 * S)
    harness.incidents.save(incident, 0)

    # When the function runs every minute for two hours: long past the reopen window (30 minutes), after
    # which the resolved incident is no longer among those a run loads
    conflicts = 0
    for at in range(T0 + MIN, T0 + 120 * MIN + 1, MIN):
        harness.now[0] = at
        conflicts += sum(r.incident_conflicts for r in harness.service.run(["acme"], at).tenants)

    # Then no run tried to open the same incident again (each such try was a conflict), and it stays resolved
    assert conflicts == 0
    assert [i.status for i in harness.stored()] == [IncidentStatus.RESOLVED]


def test_an_inhibited_alert_joins_no_incident(harness: Harness) -> None:
    # Given a warning rule beside the critical one, and an inhibit rule: a target down mutes its warnings
    degraded = RULES + (
        "      - alert: Degraded\n        expr: up < 1\n        for: 1m\n        labels:\n          severity: warning\n"
    )
    push_rules(harness.store, degraded)
    config = DEFAULT_CONFIG_TEXT + (
        "inhibit_rules:\n"
        "  - source_matchers: [alertname = TargetDown]\n"
        "    target_matchers: [severity = warning]\n"
        "    equal: [service]\n"
    )
    assert harness.store.put_alertmanager_config("acme", config, "key-1", 0, 0)
    target(harness.reader, "payment", {0: 0.0}, until_min=10)

    # When both rules fire
    harness.run_every_minute(T0, T0 + 3 * MIN)

    # Then the incident holds only the critical alert
    (incident,) = harness.stored()
    assert [a.name for a in incident.alerts.values()] == ["TargetDown"]


def test_a_query_too_large_for_the_store_fails_its_rule_not_the_run(harness: Harness) -> None:
    # Given rules over a store that refuses every read as too large
    push_rules(harness.store)

    class RefusingReader(InMemorySeriesReader):
        def select(self, matchers: Any, start_ms: int, end_ms: int) -> Any:
            raise QueryTooLarge("this read would touch 40 million samples")

    harness.service.reader_for = lambda tenant: RefusingReader()

    # When the function runs
    report = harness.service.run(["acme"], T0)

    # Then the tenant's run went on, and each rule records the error
    assert report.failed == []
    state = harness.store.group_states("acme")["availability.yml/availability"]
    assert {s.health for s in state.rules.values()} == {"err"}
    assert all("40 million" in s.last_error for s in state.rules.values())
