"""The detection service honours each tenant's detection policy: watched series, sensitivity, seasonality,
maintenance windows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from novacron.detect.events import DETECTED, RESOLVED
from novacron.detect.policy import DetectionPolicy
from novacron.detect.service import DetectionService, DetectorSettings
from tests.unit.detect.test_service import (
    LATENCY,
    SPIKE_AT,
    STEP_MS,
    T0,
    Harness,
    ListEvents,
    MemoryAnomalies,
    MemoryStates,
    record,
    spiky,
    steady,
)

WEB = {**LATENCY, "job": "web"}


def bump(n: int = 120) -> list[float]:
    """A steady series with one sample ~15 robust sigmas off: an anomaly at any sensitivity but 0
    (whose threshold, a score of 1, only evidence beyond ~30 sigmas reaches)."""
    values = steady(n)
    values[SPIKE_AT] = 130.0
    return values


@dataclass
class Policies:
    """DetectionPolicies in memory, by tenant (stored ones are version 1 and on)."""

    by_tenant: dict[str, DetectionPolicy] = field(default_factory=dict)

    def set(self, tenant: str, doc: dict[str, Any]) -> None:
        self.by_tenant[tenant] = DetectionPolicy.model_validate({**doc, "version": 1})

    def detection(self, tenant: str) -> DetectionPolicy:
        return self.by_tenant.get(tenant, DetectionPolicy())


@dataclass
class PolicyHarness(Harness):
    policies: Policies = field(default_factory=Policies)

    def service(self, **settings: Any) -> DetectionService:
        return DetectionService(
            self.states,
            self.anomalies,
            self.events,
            DetectorSettings(**settings),
            clock=lambda: self.now,
            policies=self.policies,
        )


@pytest.fixture
def harness() -> PolicyHarness:
    return PolicyHarness(MemoryStates(), MemoryAnomalies(), ListEvents())


def rfc3339(sample: int) -> str:
    return datetime.fromtimestamp((T0 + sample * STEP_MS) / 1000, UTC).isoformat()


def test_ignored_and_unwatched_series_are_not_scored(harness: PolicyHarness) -> None:
    # Given a tenant that watches job="web" only and ignores one of its series by selector
    harness.policies.set("acme", {"watch": ['{job="web"}'], "ignore": ['{job="web", env="dev"}']})
    dev = {**WEB, "env": "dev"}
    # When spiky api, web and web/dev series arrive
    report = harness.service().detect_batch([("1", record([(LATENCY, spiky()), (WEB, spiky()), (dev, spiky())]))])
    # Then only the web series is scored and alarms; the other two are counted as ignored
    assert (report.series_watched, report.series_ignored) == (1, 2)
    assert {dict(e.anomaly.labels)["job"] for e in report.events} == {"web"}
    assert len(harness.states.items) == 1
    # And another tenant, without a policy, has every series scored
    other = harness.service().detect_batch([("2", record([(LATENCY, spiky())], tenant="globex"))])
    assert (other.series_watched, other.series_ignored) == (1, 0)


def test_a_series_sensitivity_comes_from_its_override(harness: PolicyHarness) -> None:
    # Given a policy that makes the api series insensitive (nothing reaches a threshold of 1)
    harness.policies.set("acme", {"overrides": [{"match": '{job="api"}', "sensitivity": 0.0}]})
    # When both series jump
    report = harness.service().detect_batch([("1", record([(LATENCY, bump()), (WEB, bump())]))])
    # Then only the web series (at the default sensitivity) alarms
    assert {dict(e.anomaly.labels)["job"] for e in report.events} == {"web"}
    # When the tenant raises it back, the stored detector (scored at 0) takes the new sensitivity
    harness.policies.set("acme", {"overrides": [{"match": '{job="api"}', "sensitivity": 0.5}]})
    report = harness.service().detect_batch([("2", record([(LATENCY, bump(SPIKE_AT + 1))], first=120))])
    assert [e.detail_type for e in report.events] == [DETECTED]


def test_without_a_stored_policy_the_function_sensitivity_applies(harness: PolicyHarness) -> None:
    # Given no policy for the tenant and a function configured not to alarm
    report = harness.service(sensitivity=0.0).detect_batch([("1", record([(LATENCY, bump())]))])
    # Then the jump is scored but nothing alarms
    assert report.samples_scored == 120
    assert report.events == []
    # And at the default sensitivity it does
    assert harness.service().detect_batch([("2", record([(LATENCY, bump())], tenant="globex"))]).events


def test_a_forced_seasonal_model_is_used_by_the_series_detector(harness: PolicyHarness) -> None:
    # Given a policy forcing daily seasonality on the api series
    harness.policies.set("acme", {"overrides": [{"metric": "latency_seconds", "seasonality": "daily"}]})
    service = harness.service()
    # When a batch is scored
    service.detect_batch([("1", record([(LATENCY, spiky())]))])
    # Then the series' profile uses the forced model (two hours of data could not have chosen it)
    (state,) = service._cache.values()
    assert (state.detector.profile.model, state.detector.profile.forced_model) == ("daily", "daily")
    # When the policy is back to auto, the force is released
    harness.policies.set("acme", {})
    service.detect_batch([("2", record([(LATENCY, [100.0])], first=120))])
    assert state.detector.profile.forced_model is None


def test_an_anomaly_in_a_maintenance_window_is_stored_suppressed_without_events(harness: PolicyHarness) -> None:
    # Given a maintenance window over the spike, for the api series only
    window = {"start": rfc3339(SPIKE_AT - 5), "end": rfc3339(SPIKE_AT + 5), "matchers": ['{job="api"}']}
    harness.policies.set("acme", {"maintenance": [{**window, "comment": "deploy"}]})
    # When both series spike in it
    report = harness.service().detect_batch([("1", record([(LATENCY, spiky()), (WEB, spiky())]))])
    # Then the api episode is stored, marked suppressed, and only the web series sends events
    (api,) = [a for a in harness.anomalies.items.values() if dict(a.labels)["job"] == "api"]
    assert api.suppressed
    assert api.value == 200.0
    assert {dict(e.anomaly.labels)["job"] for e in report.events} == {"web"}
    assert not any(e.anomaly.suppressed for e in report.events)
    assert (report.anomalies_opened, report.anomalies_suppressed) == (2, 1)


def test_an_anomaly_that_outlasts_the_window_is_announced_when_it_ends(harness: PolicyHarness) -> None:
    # Given a window ending in the middle of a run of anomalous samples
    harness.policies.set("acme", {"maintenance": [{"start": rfc3339(0), "end": rfc3339(SPIKE_AT + 1)}]})
    values = spiky()
    values[SPIKE_AT : SPIKE_AT + 3] = [200.0, 200.0, 200.0]
    # When the series is scored
    report = harness.service().detect_batch([("1", record([(LATENCY, values)]))])
    # Then the episode opens suppressed, is announced at its first sample after the window, and resolves
    assert [e.detail_type for e in report.events] == [DETECTED, RESOLVED]
    opened = report.events[0].anomaly
    assert opened.start_ms == T0 + SPIKE_AT * STEP_MS
    assert not opened.suppressed
    assert opened.samples == 2
