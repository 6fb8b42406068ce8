"""Fixtures of the ingest tests: a list sink, a policy store, and a service without a policy."""

from __future__ import annotations

import pytest

from novacron.ingest.service import IngestService, IngestSettings
from tests.builders import NOW
from tests.fakes import ListSink, MemoryPolicyStore


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def policies() -> MemoryPolicyStore:
    return MemoryPolicyStore()


@pytest.fixture
def service(sink: ListSink) -> IngestService:
    """Validation only: no ingest policy, the clock fixed at ``NOW``."""
    return IngestService(sink, IngestSettings(), clock_ms=lambda: NOW)
