"""Fixtures for the notifier tests: a fake clock, the delivery machinery, notifications, local receivers."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from novacron.notify.delivery import RetryPolicy, Sender
from novacron.notify.dispatch import Dispatcher
from novacron.notify.http_client import UrllibClient
from novacron.notify.model import Action, AlertSummary, IncidentNotification, Severity, Status
from novacron.notify.ratelimit import MemoryRateLimits
from tests.unit.notify.memory import FakeClock, ListDeadLetters, MemoryDeliveryLog
from tests.unit.notify.receivers import OpsgenieApi, PagerDutyEvents, SlackApi, WebhookEndpoint

ROUTING_KEY = "R0UT1NGKEY0123456789ABCDEFGHIJKL"
GENIE_KEY = "eb243592-faa2-4ba2-a551q-1afdf565c889"
BOT_TOKEN = "xoxb-test-token"
WEBHOOK_SECRET = "whsec-0123456789abcdef"

_STATUS_AFTER = {
    Action.ACKNOWLEDGED: Status.ACKNOWLEDGED,
    Action.RESOLVED: Status.RESOLVED,
}


def incident(action: Action = Action.OPENED, sequence: int = 1, **changes: object) -> IncidentNotification:
    """A database-slowdown incident of tenant ``acme`` with three alerts."""
    started = datetime(2026, 9, 21, 10, 0, tzinfo=UTC)
    alerts = tuple(
        AlertSummary(
            name="HighLatency",
            fingerprint=f"fp{i}",
            starts_at=started,
            labels={"alertname": "HighLatency", "service": service},
            annotations={"summary": f"p99 latency of {service} above 2s"},
            value=2.5 + i,
        )
        for i, service in enumerate(("checkout", "payments", "orders"))
    )
    base = IncidentNotification(
        action=action,
        tenant="acme",
        incident_id="inc-2026-0001",
        sequence=sequence,
        title="Checkout latency high: database slowdown suspected",
        summary="3 services slow since 10:00; suspected origin: orders-db",
        severity=Severity.CRITICAL,
        priority=1,
        status=_STATUS_AFTER.get(action, Status.OPEN),
        started_at=started,
        url="https://novacron.example.com/incidents/inc-2026-0001",
        services=("checkout", "payments", "orders"),
        alerts=alerts,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sender(clock: FakeClock) -> Sender:
    """A real HTTP client, a fake clock (no real waiting) and seeded jitter."""
    policy = RetryPolicy(max_attempts=4, base_delay_s=1.0, max_delay_s=8.0, deadline_s=60.0)
    return Sender(UrllibClient(timeout_s=5.0), clock, policy, MemoryRateLimits(), random.Random(7))


@pytest.fixture
def log() -> MemoryDeliveryLog:
    return MemoryDeliveryLog()


@pytest.fixture
def dead_letters() -> ListDeadLetters:
    return ListDeadLetters()


@pytest.fixture
def dispatcher(sender: Sender, log: MemoryDeliveryLog, dead_letters: ListDeadLetters) -> Dispatcher:
    return Dispatcher(sender, log, dead_letters)


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyEvents]:
    with PagerDutyEvents(ROUTING_KEY) as receiver:
        yield receiver


@pytest.fixture
def opsgenie() -> Iterator[OpsgenieApi]:
    with OpsgenieApi(GENIE_KEY) as receiver:
        yield receiver


@pytest.fixture
def slack() -> Iterator[SlackApi]:
    with SlackApi(BOT_TOKEN) as receiver:
        yield receiver


@pytest.fixture
def webhook_endpoint(clock: FakeClock) -> Iterator[WebhookEndpoint]:
    with WebhookEndpoint(WEBHOOK_SECRET, clock.now) as receiver:
        yield receiver


@pytest.fixture
def make_incident() -> Callable[..., IncidentNotification]:
    return incident
