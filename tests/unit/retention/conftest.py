"""Fixtures of the retention tests: an in-memory retention store."""

from __future__ import annotations

import pytest

from novacron.retention.changes import RetentionChange
from novacron.retention.policy import RetentionPolicy


class MemoryRetentionStore:
    """A RetentionStore over dicts, with the settings table's conditional-write semantics."""

    def __init__(self) -> None:
        self.policies: dict[str, RetentionPolicy] = {}
        self.records: dict[str, list[RetentionChange]] = {}

    def retention(self, tenant: str) -> RetentionPolicy:
        return self.policies.get(tenant, RetentionPolicy())

    def put_retention(self, tenant: str, policy: RetentionPolicy, change: RetentionChange) -> bool:
        if self.retention(tenant).version != change.previous_version:
            return False
        self.policies[tenant] = policy
        self.records.setdefault(tenant, []).append(change)
        return True

    def retention_history(self, tenant: str, limit: int) -> list[RetentionChange]:
        return list(reversed(self.records.get(tenant, [])))[:limit]


@pytest.fixture
def store() -> MemoryRetentionStore:
    return MemoryRetentionStore()
