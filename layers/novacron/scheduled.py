"""What scheduled jobs (compaction, archiving, training, alerting) share: their time budget and tenant order."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol


class RemainingTime(Protocol):
    """A Lambda context's clock."""

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function times out."""
        ...


class TenantSource(Protocol):
    """Where the tenants come from (the keys table)."""

    def tenants(self) -> list[str]:
        """Every tenant with a key."""
        ...


def out_of_time(context: RemainingTime, reserve_ms: int) -> Callable[[], bool]:
    """True once less than ``reserve_ms`` is left: a job stops starting new work then, and its next run
    goes on from there."""
    return lambda: context.get_remaining_time_in_millis() < reserve_ms


def tenants_in_turn(source: TenantSource) -> list[str]:
    """Every tenant, shuffled: a run cut short by time does not always leave the same tenants for later."""
    tenants = source.tenants()
    random.shuffle(tenants)
    return tenants
