"""The alerting table's correlation document against moto: versions, provenance, tenants apart."""

from __future__ import annotations

import pytest

from novacron.adapters.alerting_table import DynamoAlertingStore
from novacron.local.resources import physical_name
from novacron.wiring import ALERTING_TABLE

T0 = 1_800_000_000


@pytest.fixture
def store(moto_wiring: None) -> DynamoAlertingStore:
    return DynamoAlertingStore(physical_name(ALERTING_TABLE))


def test_the_correlation_document_is_written_only_over_the_version_read(store: DynamoAlertingStore) -> None:
    # Given no document: none is read
    assert store.correlation_config("acme") is None

    # When one is stored, then replaced naming version 1, and a stale write names version 1 again
    assert store.put_correlation_config("acme", "window: 5m\n", "key-1", T0, 0)
    assert not store.put_correlation_config("acme", "window: 6m\n", "key-2", T0, 0)
    assert store.put_correlation_config("acme", "window: 7m\n", "key-2", T0 + 5, 1)
    assert not store.put_correlation_config("acme", "window: 8m\n", "key-3", T0 + 6, 1)

    # Then the second write is stored with its provenance, and other tenants have none
    stored = store.correlation_config("acme")
    assert stored is not None
    assert (stored.text, stored.version, stored.updated_at, stored.updated_by) == ("window: 7m\n", 2, T0 + 5, "key-2")
    assert store.correlation_config("globex") is None
    # And the document is not mistaken for the Alertmanager configuration
    assert store.alertmanager_config("acme") is None
