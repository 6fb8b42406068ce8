"""PII scrubbing on the ingest path: metric label values are stored as tokens, per the tenant's rules."""

from __future__ import annotations

import pytest

from novacron.ingest.pii import PiiRules
from novacron.ingest.policy import IngestPolicy
from novacron.ingest.service import IngestService
from tests.builders import NOW, RW_HEADERS, timeseries, write_request
from tests.fakes import ListSink, MemoryPolicyStore

SECRET = b"s" * 48
KEY_LABELS = {"source": "prometheus", "environment": "prod", "owner": "team-payments"}


@pytest.fixture
def service(sink: ListSink, policies: MemoryPolicyStore) -> IngestService:
    return IngestService(sink, clock_ms=lambda: NOW, policies=policies, pii_secret=SECRET)


def _write(service: IngestService, tenant: str, **labels: str) -> None:
    series = timeseries({"__name__": "logins_total", **labels}, [(NOW, 1.0)])
    result = service.remote_write(write_request([series]), RW_HEADERS, tenant, KEY_LABELS)
    assert result.rejected == []


def _stored(sink: ListSink) -> list[dict[str, str]]:
    return [dict(labels) for labels in sink.stored_samples()]


def test_an_email_in_a_label_is_stored_as_a_token_and_the_samples_are_kept(
    service: IngestService, sink: ListSink
) -> None:
    # Given a series whose label carries an e-mail address
    # When it is written with the default policy (scrubbing on)
    _write(service, "acme", user="jane.doe@example.com", instance="10.0.0.7:9100")
    # Then the address never reaches the stream; the target address (exempt by default) does
    (stored,) = _stored(sink)
    assert "jane.doe@example.com" not in stored.values()
    assert stored["user"].startswith("<email:")
    assert stored["instance"] == "10.0.0.7:9100"
    assert list(sink.stored_samples().values()) == [[(NOW, 1.0)]]


def test_equal_values_get_equal_tokens_and_tenants_get_different_ones(service: IngestService, sink: ListSink) -> None:
    # Given the same address in two series of one tenant
    _write(service, "acme", user="jane.doe@example.com")
    _write(service, "acme", user="jane.doe@example.com", path="/a")
    acme = {labels["user"] for labels in _stored(sink)}
    # When another tenant sends it too
    sink.records.clear()
    _write(service, "globex", user="jane.doe@example.com")
    globex = {labels["user"] for labels in _stored(sink)}
    # Then one tenant's series still correlate on one token, and the other tenant's token differs
    assert len(acme) == 1
    assert len(globex) == 1
    assert acme != globex


def test_a_tenant_that_turns_scrubbing_off_keeps_its_values(
    service: IngestService, sink: ListSink, policies: MemoryPolicyStore
) -> None:
    # Given a tenant whose policy disables scrubbing
    policies.policies["acme"] = IngestPolicy(version=1, pii=PiiRules(enabled=False))
    # When a series with an address is written
    _write(service, "acme", user="jane.doe@example.com")
    # Then it is stored as sent
    (stored,) = _stored(sink)
    assert stored["user"] == "jane.doe@example.com"


def test_without_a_secret_nothing_is_scrubbed(sink: ListSink, policies: MemoryPolicyStore) -> None:
    # Given a service built without the deployment secret (as in tests of other rules)
    service = IngestService(sink, clock_ms=lambda: NOW, policies=policies)
    # When a series with an address is written
    _write(service, "acme", user="jane.doe@example.com")
    # Then the value is stored as sent, and the tenant has no scrubber
    (stored,) = _stored(sink)
    assert stored["user"] == "jane.doe@example.com"
    assert service.scrubber("acme") is None


def test_the_span_scrubber_follows_the_tenant_policy(service: IngestService, policies: MemoryPolicyStore) -> None:
    # Given one tenant with IP scrubbing off
    policies.policies["acme"] = IngestPolicy(version=1, pii=PiiRules(ip_addresses=False))
    # When each tenant's scrubber cleans the same attribute
    acme = service.scrubber("acme")
    globex = service.scrubber("globex")
    assert acme is not None
    assert globex is not None
    # Then the rules of each tenant decide
    assert acme.scrub_attribute("client.address", "192.168.1.20") == "192.168.1.20"
    assert globex.scrub_attribute("client.address", "192.168.1.20").startswith("<ip:")
