"""The model registry over an in-memory ModelStore: versions, compare-and-swap writes, the bounded log."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from novacron.detect.features import ServiceFeature
from novacron.detect.models_cli import render
from novacron.detect.registry import (
    MAX_LOG,
    LogEntry,
    ModelRegistry,
    ModelSummary,
    RegistryConflict,
    model_key,
    models_report,
    service_prefix,
)
from novacron.detect.service_model import ServiceModel, train_model
from tests.fakes import MemoryModelStore

FEATURES = (
    ServiceFeature("request rate", "requests", 'sum(rate(http_requests_total{service="api"}[5m]))'),
    ServiceFeature("memory", "resource", 'avg(process_resident_memory_bytes{service="api"})'),
)


def trained(version: int, service: str = "api") -> ServiceModel:
    """A small model of ``service`` trained on noise."""
    rng = np.random.default_rng(version)
    times = np.arange(200, dtype=np.int64) * 60_000
    X = np.column_stack([rng.normal(50, 2, 200), rng.normal(2e8, 1e6, 200)])  # noqa: N806
    return train_model("acme", service, FEATURES, times, X, version=version, now_ms=12_000_000, step_s=60)


@pytest.fixture
def store() -> MemoryModelStore:
    return MemoryModelStore()


@pytest.fixture
def registry(store: MemoryModelStore) -> ModelRegistry:
    return ModelRegistry(store)


def test_an_unknown_service_has_an_empty_registry(registry):
    # Given nothing stored
    # When the registry of a service is read
    state = registry.state("acme", "api")
    # Then it has no models, starts at version 1 and was never written
    assert (state.current, state.shadow, state.next_version, state.etag) == (None, None, 1, None)


def test_a_saved_state_round_trips_with_its_log(registry, store):
    # Given a state with a current model and a log entry
    model = trained(1)
    registry.put_model(model)
    state = replace(registry.state("acme", "api"), current=1, next_version=2)
    state = state.logged(LogEntry(5, "promoted", 1, "initial", {"f1": 1.0}))
    # When it is saved and read back by another registry (a cold start)
    registry.save(state)
    again = ModelRegistry(store).state("acme", "api")
    # Then everything is as saved, under the documented keys
    assert (again.current, again.next_version) == (1, 2)
    assert again.log == (LogEntry(5, "promoted", 1, "initial", {"f1": 1.0}),)
    assert set(store.objects) == {"models/acme/api/registry.json", "models/acme/api/v000001.model"}
    # ... and the model loads back scoring as it did
    loaded = ModelRegistry(store).model("acme", "api", 1)
    rows = np.array([[50.0, 2e8], [90.0, 3e8]])
    assert np.allclose(loaded.score(rows, [0, 60_000]), model.score(rows, [0, 60_000]))


def test_a_stale_write_is_a_conflict_and_changes_nothing(registry):
    # Given two trainers that read the same registry
    first = registry.state("acme", "api")
    second = registry.state("acme", "api")
    registry.save(replace(first, next_version=2))
    # When the second writes what it computed from its stale copy
    with pytest.raises(RegistryConflict):
        registry.save(replace(second, next_version=2, current=7))
    # Then the first one's write stands
    assert registry.state("acme", "api").current is None
    assert registry.state("acme", "api").next_version == 2


def test_reserving_versions_never_hands_out_one_twice(registry):
    # Given a registry
    # When versions are reserved one after another
    taken = [registry.reserve_version("acme", "api")[0] for _ in range(3)]
    # Then each is new
    assert taken == [1, 2, 3]
    assert registry.state("acme", "api").next_version == 4


def test_the_log_keeps_only_the_newest_entries(registry):
    # Given a log longer than the bound
    state = registry.state("acme", "api")
    for i in range(MAX_LOG + 5):
        state = state.logged(LogEntry(i, "trained", i, ""))
    # Then the oldest entries are dropped
    assert len(state.log) == MAX_LOG
    assert state.log[0].at_ms == 5


def test_tenants_and_services_are_listed_from_the_store(registry):
    # Given models of two services of acme and one of globex
    for tenant, service in (("acme", "api"), ("acme", "db"), ("globex", "web")):
        registry.save(replace(registry.state(tenant, service), next_version=2))
    # Then they are listed per tenant
    assert registry.tenants() == ["acme", "globex"]
    assert registry.services("acme") == ["api", "db"]
    assert registry.services("globex") == ["web"]


@pytest.mark.parametrize("service", ["a/b", "..", "", "x" * 201])
def test_a_service_name_that_could_escape_its_prefix_is_refused(service):
    # When a key is built for a service name that is not one path segment
    # Then it is a ValueError naming the service
    with pytest.raises(ValueError, match="service"):
        service_prefix("acme", service)


def test_model_keys_are_zero_padded_versions():
    assert model_key("acme", "api", 12) == "models/acme/api/v000012.model"


def test_the_report_shows_current_shadow_and_the_newest_log_first(registry):
    # Given a current v1 and a shadow v2 with stats and a log
    for version in (1, 2):
        registry.put_model(trained(version))
    state = replace(
        registry.state("acme", "api"),
        current=1,
        shadow=2,
        next_version=3,
        shadow_since_ms=99,
        shadow_stats={"minutes": 10},
        models={1: ModelSummary.of(trained(1)), 2: ModelSummary.of(trained(2))},
    ).logged(LogEntry(1, "promoted", 1, "initial"), LogEntry(2, "shadowed", 2, "on trial"))
    registry.save(state)
    # When the report is built
    [row] = models_report(registry, "acme")
    # Then it names both models with their features and points, the stats, and the log newest first
    assert row["service"] == "api"
    assert row["current"]["version"] == 1
    assert row["shadow"]["features"] == ["request rate", "memory"]
    assert row["shadow"]["points"] == 200
    assert row["shadow_stats"] == {"minutes": 10}
    assert [e["action"] for e in row["log"]] == ["shadowed", "promoted"]
    # And a service without a registry is not reported
    assert models_report(registry, "acme", "nope") == []


def test_the_cli_prints_one_row_per_service_and_its_newest_log(registry):
    # Given a service with a current model and a log
    registry.put_model(trained(1))
    state = replace(registry.state("acme", "api"), current=1, next_version=2, models={1: ModelSummary.of(trained(1))})
    registry.save(state.logged(LogEntry(0, "trained", 1, "200 points"), LogEntry(0, "promoted", 1, "initial")))
    # When the report is rendered as the CLI prints it
    text = render(models_report(registry, "acme"))
    # Then the service's row names v1 and its points, and the log follows newest first
    lines = text.splitlines()
    assert lines[1].startswith("api")
    assert "v1 (trained" in lines[1]
    assert "200 points" in lines[1]
    assert "features request rate, memory" in text
    assert text.index("promoted") < text.index("trained  ")
    # And no models at all says so
    assert "no models yet" in render([])
