"""Hot-tier enforcement: the raw retention the writer sets DynamoDB TTLs from, and the reader cuts at.

A block mixes series of several metrics, so it lives as long as its longest-kept series; DynamoDB TTL
cannot shorten what is already written, so the reader also drops samples older than their series'
raw retention (storage/reader.py): a shortened retention takes effect on reads at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from novacron.retention.policy import RetentionPolicy
from novacron.series import Labels


class RetentionPolicies(Protocol):
    """Where the writer and reader get a tenant's policy (the settings table, cached)."""

    def retention(self, tenant: str) -> RetentionPolicy:
        """The tenant's retention policy (the defaults when none is stored)."""
        ...


class BatchRetention:
    """Raw-tier days of the series of one writer batch, by tenant.

    A tenant without overrides has one number for every series; for the others each series is
    resolved once (``retention_for`` caches per label set) and kept in sorted arrays for lookups.
    """

    def __init__(
        self,
        policies: RetentionPolicies | None,
        default_days: int,
        tenants: Sequence[str],
        series_ids: npt.NDArray[np.uint64],
        labels_of: Callable[[int], Labels],
    ) -> None:
        """``tenants[i]``, ``series_ids[i]`` and ``labels_of(i)`` describe the batch's i-th valid series."""
        self._default_days = default_days
        self._flat: dict[str, int] = {}
        self._longest: dict[str, int] = {}
        self._by_series: dict[str, tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]] = {}
        if policies is None:
            return
        for tenant in sorted(set(tenants)):
            policy = policies.retention(tenant)
            self._longest[tenant] = policy.longest_hot_days()
            if not policy.overrides:
                self._flat[tenant] = policy.defaults.raw_days
                continue
            rows = [i for i, t in enumerate(tenants) if t == tenant]
            ids = series_ids[rows]
            days = np.fromiter((policy.retention_for(labels_of(i)).raw_days for i in rows), np.int64, len(rows))
            order = np.argsort(ids, kind="stable")
            self._by_series[tenant] = (ids[order], days[order])

    def block_days(self, tenant: str, series: npt.NDArray[np.uint64]) -> int:
        """Days a block of ``series`` (all from this batch) keeps its samples: the longest of theirs."""
        if tenant in self._flat:
            return self._flat[tenant]
        known = self._by_series.get(tenant)
        if known is None:
            return self._default_days
        ids, days = known
        return int(days[np.minimum(np.searchsorted(ids, series), len(ids) - 1)].max())

    def longest_days(self, tenant: str) -> int:
        """The longest hot-tier retention (raw or rollup) of any series of ``tenant``: what index entries
        live for, since queries over rollups find their series through the index."""
        return self._longest.get(tenant, self._default_days)
