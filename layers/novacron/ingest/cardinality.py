"""Cardinality limits at ingest: whether a possibly-new series of a tenant may be admitted.

The writer keeps, per tenant and UTC day, the exact number of distinct series of each metric in the
series index (a summary it recounts whenever it adds series of a metric). An ingest function reads
that summary (again after ``ttl_s``) and adds the series it admitted itself since. Only series the
function has not seen today reach the gate; while a metric (or the tenant) is under its limit they
are admitted and counted. At or over the limit, a series may still be one that exists (a function
after a cold start sees every series for the first time), so the index is asked which of them exist
before any is rejected: an existing series is never rejected.

The approximation: concurrent functions each admit up to the limit between summary refreshes, so a
metric can overshoot its limit by the new series admitted in one refresh interval. The count is per
UTC day (the index's unit): a metric at its limit today starts from zero tomorrow.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from novacron.ingest.policy import IngestPolicy
from novacron.ingest.validate import RejectReason


class CardinalityReader(Protocol):
    """What the gate reads from the series index."""

    def cardinality(self, tenant: str, day: str) -> Mapping[str, int]:
        """Distinct series per metric of a tenant on a day (the writer's summary)."""
        ...

    def existing_series(self, tenant: str, day: str, metric: str, series_ids: Sequence[str]) -> set[str]:
        """Which of ``series_ids`` (of ``metric``) are in the index on ``day``."""
        ...


class Decision(Enum):
    """The gate's answer for one series."""

    ADMITTED = 1
    CHECK = 2  # at or over a limit: admitted only if the index already has it
    REFUSED = 3  # found new at or over a limit since the last refresh


@dataclass(frozen=True)
class Refusal:
    """Why a series is over a limit."""

    reason: RejectReason
    message: str


@dataclass(frozen=True)
class Candidate:
    """A series waiting for the existence check."""

    metric: str
    series_id: str
    series_u64: int


class CardinalityGate:
    """Admits the possibly-new series of one tenant under its limits (see the module docstring)."""

    def __init__(
        self, tenant: str, reader: CardinalityReader, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.tenant = tenant
        self._reader = reader
        self._ttl_s = ttl_s
        self._clock = clock
        self._day = ""
        self._loaded_at = float("-inf")
        self._counts: dict[str, int] = {}
        self._total = 0
        self._admitted: Counter[str] = Counter()  # new series admitted here since the last refresh
        self._admitted_total = 0
        self._seen: set[int] = set()  # admitted here, or known to exist, today
        self._refused: set[int] = set()  # found new over a limit since the last refresh
        self._policy_version = -1

    def begin(self, day: str, policy_version: int) -> None:
        """Bring the counts up to date for a request received on ``day`` under a policy version."""
        now = self._clock()
        if day != self._day:
            self._day = day
            self._seen.clear()
            self._loaded_at = float("-inf")
        if now - self._loaded_at >= self._ttl_s:
            self._counts = dict(self._reader.cardinality(self.tenant, day))
            self._total = sum(self._counts.values())
            self._admitted.clear()
            self._admitted_total = 0
            self._refused.clear()
            self._loaded_at = now
        if policy_version != self._policy_version:
            # New limits or approvals: a refused series deserves a new look.
            self._policy_version = policy_version
            self._refused.clear()

    def admit(self, policy: IngestPolicy, metric: str, series_u64: int) -> Decision:
        """The decision for a series this function has not admitted under its current validator."""
        if series_u64 in self._seen:
            return Decision.ADMITTED
        if series_u64 in self._refused:
            return Decision.REFUSED
        if self.refusal(policy, metric) is not None:
            return Decision.CHECK
        self._seen.add(series_u64)
        self._admitted[metric] += 1
        self._admitted_total += 1
        return Decision.ADMITTED

    def settle(self, candidates: Sequence[Candidate]) -> set[int]:
        """Ask the index which candidates exist; they are admitted, the others refused. Returns the admitted."""
        by_metric: dict[str, list[Candidate]] = {}
        for candidate in candidates:
            by_metric.setdefault(candidate.metric, []).append(candidate)
        admitted: set[int] = set()
        for metric, group in by_metric.items():
            ids = sorted({c.series_id for c in group})
            existing = self._reader.existing_series(self.tenant, self._day, metric, ids)
            for c in group:
                if c.series_id in existing:
                    admitted.add(c.series_u64)
                else:
                    self._refused.add(c.series_u64)
        self._seen.update(admitted)
        return admitted

    def count(self, metric: str) -> int:
        """Series of ``metric`` today as far as this function knows."""
        return self._counts.get(metric, 0) + self._admitted[metric]

    def refusal(self, policy: IngestPolicy, metric: str) -> Refusal | None:
        """Why a new series of ``metric`` is over a limit now, or None."""
        count, limit = self.count(metric), policy.metric_limit(metric)
        if count >= limit:
            approval = policy.approvals.get(metric)
            which = (
                f"the limit approved for it ({limit}, by {approval.approved_by or 'an admin'})"
                if approval is not None
                else f"the limit per metric (max_series_per_metric: {limit})"
            )
            return Refusal(
                RejectReason.CARDINALITY_METRIC,
                f"metric {metric!r} has {count} series today, {which}; request approval for a higher limit: "
                f"novacron cardinality approve {metric} --limit N --reason TEXT "
                f"(or PUT /api/v1/admin/cardinality/approvals/{metric})",
            )
        total = self._total + self._admitted_total
        if total >= policy.max_series_per_tenant:
            return Refusal(
                RejectReason.CARDINALITY_TENANT,
                f"tenant {self.tenant!r} has {total} series today, the limit per tenant "
                f"(max_series_per_tenant: {policy.max_series_per_tenant}); an admin can raise it: "
                "novacron policy set --max-series-per-tenant N (or PUT /api/v1/admin/ingest-policy)",
            )
        return None
