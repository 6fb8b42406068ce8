"""Episode bookkeeping shared by the series detector and the service scorer, and the tenant policy lookup."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest

from novacron.detect.episodes import Episode, EpisodeTracker, tenant_policy, with_sample
from novacron.detect.events import DETECTED, RESOLVED, Anomaly, Severity, Status
from novacron.detect.policy import DetectionPolicy, Settings
from tests.unit.detect.conftest import episode

T0 = 1_767_571_200_000
STEP_MS = 60_000
GAP = 3


@dataclass
class Counts:
    """The report figures the tracker keeps."""

    anomalies_opened: int = 0
    anomalies_resolved: int = 0
    anomalies_suppressed: int = 0


@dataclass
class Policies:
    """DetectionPolicies answering one stored policy for every tenant, recording who asked."""

    policy: DetectionPolicy
    asked: list[str]

    def detection(self, tenant: str) -> DetectionPolicy:
        self.asked.append(tenant)
        return self.policy


def opened(start_ms: int = T0, score: float = 0.9, suppressed: bool = False) -> Anomaly:
    """A just-opened episode's anomaly: one sample, at ``start_ms``."""
    return episode(start_ms, status=Status.OPEN, end_ms=None, score=score, suppressed=suppressed)


def explanation(ts: int, score: float) -> dict[str, Any]:
    """What a sample at ``ts`` scoring ``score`` explains of an anomaly."""
    return {"peak_ms": ts, "value": 500.0, "score": score, "severity": Severity.CRITICAL}


@pytest.fixture
def counts() -> Counts:
    return Counts()


@pytest.fixture
def tracker(counts: Counts) -> EpisodeTracker:
    return EpisodeTracker(GAP, counts)


# --- the policy a tenant is scored with ----------------------------------------------------------------


def test_without_a_policy_source_the_defaults_at_the_configured_sensitivity_apply():
    # When a tenant's policy is looked up with no source of policies
    policy = tenant_policy(None, "acme", 0.8)
    # Then it is the defaults, at the function's sensitivity
    assert policy.version == 0
    assert policy.defaults == Settings(sensitivity=0.8)


def test_until_a_tenant_stores_a_policy_the_configured_sensitivity_applies():
    # Given a source answering the unstored defaults (version 0, sensitivity 0.5)
    policies = Policies(DetectionPolicy(), [])
    # When acme's policy is looked up with the function configured at 0.2
    policy = tenant_policy(policies, "acme", 0.2)
    # Then acme was asked for, and the function's sensitivity wins over the unstored default
    assert policies.asked == ["acme"]
    assert policy.defaults.sensitivity == 0.2


def test_a_stored_policy_is_used_as_it_is():
    # Given a stored policy (version 1) with its own sensitivity
    stored = DetectionPolicy(version=1, defaults=Settings(sensitivity=0.9), ignore=("noisy_metric",))
    # When it is looked up with another configured sensitivity
    policy = tenant_policy(Policies(stored, []), "acme", 0.2)
    # Then the stored policy decides
    assert policy is stored


# --- an episode's stored form and its peak ------------------------------------------------------------


def test_an_episode_round_trips_through_json():
    # Given an open episode two quiet samples after its last anomalous one
    original = Episode(opened(), T0 + STEP_MS, quiet=2)
    # When it is written and read back
    again = Episode.from_json(original.to_json())
    # Then nothing is lost
    assert again == original


def test_an_unreadable_episode_is_refused():
    with pytest.raises(KeyError):
        Episode.from_json({"last_anomalous_ms": T0, "quiet": 0})


def test_a_higher_scoring_sample_becomes_the_peak():
    # Given an episode peaking at 0.9
    anomaly = opened(score=0.9)
    # When a sample scoring 0.97 joins it
    again = with_sample(anomaly, 0.97, lambda: explanation(T0 + STEP_MS, 0.97))
    # Then it explains the episode, which counts two samples and keeps its id and start
    assert (again.peak_ms, again.score, again.value, again.severity) == (T0 + STEP_MS, 0.97, 500.0, Severity.CRITICAL)
    assert (again.samples, again.id, again.start_ms) == (2, anomaly.id, anomaly.start_ms)


def test_a_lower_scoring_sample_is_counted_without_being_explained():
    # Given an episode peaking at 0.9
    anomaly = opened(score=0.9)

    def explain() -> dict[str, Any]:
        raise AssertionError("a sample that is not the peak is not explained")

    # When a sample scoring 0.9 (not higher) joins it
    again = with_sample(anomaly, 0.9, explain)
    # Then only the sample count changes
    assert again == replace(anomaly, samples=2)


# --- opening -----------------------------------------------------------------------------------------------


def test_opening_an_episode_announces_and_stores_it(tracker, counts):
    # When an episode opens
    anomaly = opened()
    open_episode = tracker.open(anomaly, T0)
    # Then it is announced, stored, counted, and not quiet
    assert [(e.detail_type, e.anomaly) for e in tracker.events] == [(DETECTED, anomaly)]
    assert tracker.touched == {anomaly.id: anomaly}
    assert (counts.anomalies_opened, counts.anomalies_suppressed) == (1, 0)
    assert open_episode == Episode(anomaly, T0, quiet=0)


def test_an_episode_opened_in_a_maintenance_window_is_stored_not_announced(tracker, counts):
    # When a suppressed episode opens
    anomaly = opened(suppressed=True)
    tracker.open(anomaly, T0)
    # Then it is stored and counted as suppressed, with no event
    assert tracker.events == []
    assert tracker.touched == {anomaly.id: anomaly}
    assert (counts.anomalies_opened, counts.anomalies_suppressed) == (1, 1)


def test_an_episode_opened_from_an_earlier_sample_remembers_its_latest_one(tracker):
    # When an episode that started one step ago (a service's pending minute) opens now
    open_episode = tracker.open(opened(T0), T0 + STEP_MS)
    # Then its start is the first sample, and the gap counts from the latest
    assert (open_episode.anomaly.start_ms, open_episode.last_anomalous_ms) == (T0, T0 + STEP_MS)


# --- extending ---------------------------------------------------------------------------------------------


def test_an_anomalous_sample_extends_the_episode_and_resets_its_quiet_count(tracker):
    # Given an open episode two normal samples after its first
    open_episode = tracker.open(opened(), T0)
    tracker.normal(open_episode)
    tracker.normal(open_episode)
    # When an anomalous sample comes
    ts = T0 + 3 * STEP_MS
    announced = tracker.extend(open_episode, ts, 0.97, False, lambda: explanation(ts, 0.97))
    # Then the episode goes on from it, stored with its new peak, and nothing new is announced
    assert not announced
    assert (open_episode.last_anomalous_ms, open_episode.quiet) == (ts, 0)
    assert (open_episode.anomaly.samples, open_episode.anomaly.peak_ms) == (2, ts)
    assert tracker.touched == {open_episode.anomaly.id: open_episode.anomaly}
    assert [e.detail_type for e in tracker.events] == [DETECTED]


def test_a_suppressed_episode_still_anomalous_after_its_window_is_announced_then(tracker):
    # Given an episode opened in a maintenance window, extended inside it
    open_episode = tracker.open(opened(suppressed=True), T0)
    inside = tracker.extend(open_episode, T0 + STEP_MS, 0.5, True, lambda: explanation(T0 + STEP_MS, 0.5))
    assert not inside
    assert tracker.events == []
    # When an anomalous sample comes after the window
    after = tracker.extend(open_episode, T0 + 2 * STEP_MS, 0.5, False, lambda: explanation(T0 + 2 * STEP_MS, 0.5))
    # Then the episode is announced at that sample, no longer suppressed, and stored so
    assert after
    [event] = tracker.events
    assert (event.detail_type, event.anomaly.suppressed, event.anomaly.samples) == (DETECTED, False, 3)
    assert tracker.touched[open_episode.anomaly.id] == event.anomaly == open_episode.anomaly


# --- closing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("normal_samples", "closed"), [(GAP, False), (GAP + 1, True)])
def test_an_episode_closes_after_more_normal_samples_than_the_gap(tracker, counts, normal_samples, closed):
    # Given an episode extended once
    open_episode = tracker.open(opened(), T0)
    tracker.extend(open_episode, T0 + STEP_MS, 0.5, False, lambda: explanation(T0 + STEP_MS, 0.5))
    # When normal samples follow
    results = [tracker.normal(open_episode) for _ in range(normal_samples)]
    # Then only the one beyond the gap closes it
    assert results == [False] * GAP + [True] * closed
    assert counts.anomalies_resolved == int(closed)
    assert [e.detail_type for e in tracker.events] == [DETECTED, RESOLVED][: 1 + closed]


def test_a_closed_episode_is_resolved_at_its_last_anomalous_sample(tracker):
    # Given an episode whose last anomalous sample is one step after its start
    open_episode = tracker.open(opened(), T0)
    tracker.extend(open_episode, T0 + STEP_MS, 0.5, False, lambda: explanation(T0 + STEP_MS, 0.5))
    # When it closes
    for _ in range(GAP + 1):
        tracker.normal(open_episode)
    # Then the resolved episode, ending there, replaces the open one in what is stored and is sent
    resolved = tracker.events[-1].anomaly
    assert (resolved.status, resolved.end_ms, resolved.samples) == (Status.RESOLVED, T0 + STEP_MS, 2)
    assert tracker.touched == {resolved.id: resolved}


def test_a_suppressed_episode_closes_without_an_event(tracker, counts):
    # Given an episode opened and ended inside a maintenance window
    open_episode = tracker.open(opened(suppressed=True), T0)
    # When it closes
    for _ in range(GAP + 1):
        tracker.normal(open_episode)
    # Then it is stored resolved and counted, but its end is not sent (its start never was)
    [stored] = tracker.touched.values()
    assert (stored.status, stored.suppressed) == (Status.RESOLVED, True)
    assert tracker.events == []
    assert counts.anomalies_resolved == 1
