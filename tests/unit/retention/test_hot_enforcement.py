"""Hot-tier enforcement: block TTLs from the policy, and reads cut at each series' raw retention."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from novacron.records import encode_record
from novacron.retention.policy import DAY_MS, RetentionPolicy
from novacron.series import Matcher
from novacron.storage.reader import HotTierReader
from novacron.storage.writer import MetricsWriter, SeriesEntry, WriterSettings
from tests.builders import timeseries
from tests.fakes import MemoryBlockStore, MemoryIndexStore
from tests.unit.retention.conftest import MemoryRetentionStore

NOW = 1_790_000_000_000
DAY_S = 86_400
DEBUG_2_DAYS = {"match": '{__name__=~"debug_.*"}', "raw_days": 2, "rollup_1m_days": 2}
AUDIT_60_DAYS = {"metric": "audit_events", "raw_days": 60, "rollup_1m_days": 60, "rollup_5m_days": 90}


class ExpiringIndex(MemoryIndexStore):
    """The in-memory index, remembering the TTL of each put."""

    def __init__(self) -> None:
        super().__init__()
        self.expiries: list[int] = []

    def put_series(self, entries: Sequence[SeriesEntry], expires_at: int) -> None:
        super().put_series(entries, expires_at)
        self.expiries.append(expires_at)


@pytest.fixture
def policies() -> MemoryRetentionStore:
    return MemoryRetentionStore()


def set_policy(policies: MemoryRetentionStore, tenant: str, *overrides: dict[str, object], **defaults: int) -> None:
    policies.policies[tenant] = RetentionPolicy.model_validate({"defaults": defaults, "overrides": list(overrides)})


def record(tenant: str, *metrics: str, at: int = NOW) -> bytes:
    series = [timeseries({"__name__": m, "job": "j"}, [(at, 1.0)]) for m in metrics]
    return encode_record(tenant, at, [s.SerializeToString() for s in series])


def writer(blocks: MemoryBlockStore, policies: MemoryRetentionStore | None = None, **settings: int) -> MetricsWriter:
    """A writer writing at NOW; its blocks keep their series' retention unless ``writer_block_days`` is given."""
    settings.setdefault("writer_block_days", 365)
    return MetricsWriter(blocks, MemoryIndexStore(), WriterSettings(**settings), retention=policies, now_ms=lambda: NOW)


def block_ttls(blocks: MemoryBlockStore) -> dict[str, list[int]]:
    """Days from each block's last sample to its TTL, by tenant (series tables left out)."""
    out: dict[str, list[int]] = {}
    for item in blocks.items.values():
        if not item.is_series_table:
            out.setdefault(item.pk.split("#")[0], []).append((item.expires_at - item.max_ts // 1000) // DAY_S)
    return out


def test_block_ttl_is_the_longest_raw_retention_of_its_series(policies: MemoryRetentionStore) -> None:
    # Given acme keeps debug_* 2 days and everything else 15
    set_policy(policies, "acme", DEBUG_2_DAYS)
    blocks = MemoryBlockStore()
    acme_writer = writer(blocks, policies)
    # When a record holds only debug series, and another mixes debug with a default series
    acme_writer.write_record(record("acme", "debug_a", "debug_b"), "1")
    only_debug = sorted(block_ttls(blocks)["acme"])
    blocks.items.clear()
    acme_writer.write_record(record("acme", *[f"debug_{i}" for i in range(40)], "up"), "2")
    # Then blocks of debug series alone expire after 2 days
    assert set(only_debug) == {2}
    # And a block holding a default series too keeps the 15 days its longest-kept series needs
    mixed = block_ttls(blocks)["acme"]
    assert max(mixed) == 15
    assert min(mixed) == 2  # buckets where only debug series landed


def test_tenants_have_their_own_ttls(policies: MemoryRetentionStore) -> None:
    set_policy(policies, "acme", raw_days=7, rollup_1m_days=30)
    blocks = MemoryBlockStore()
    writer(blocks, policies).write_batch([("1", record("acme", "up")), ("2", record("globex", "up"))])
    assert {tenant: set(days) for tenant, days in block_ttls(blocks).items()} == {"acme": {7}, "globex": {15}}


def test_a_shortened_retention_applies_to_the_next_writes(policies: MemoryRetentionStore) -> None:
    blocks = MemoryBlockStore()
    acme_writer = writer(blocks, policies)
    acme_writer.write_record(record("acme", "up", at=NOW - 60_000), "1")
    # When the policy is shortened (the provider answers the new version)
    set_policy(policies, "acme", raw_days=3, rollup_1m_days=30)
    acme_writer.write_record(record("acme", "up"), "2")
    # Then the next block's TTL follows it, while the block already written keeps its own
    assert sorted(block_ttls(blocks)["acme"]) == [3, 15]


def test_index_entries_live_as_long_as_the_longest_kept_series(policies: MemoryRetentionStore) -> None:
    # Given a tenant keeping audit_events 60 days raw and every series' hourly rollups 500 days
    set_policy(policies, "acme", AUDIT_60_DAYS, rollup_1h_days=500)
    index = ExpiringIndex()
    MetricsWriter(MemoryBlockStore(), index, retention=policies).write_record(record("acme", "up"), "1")
    # Then the day's index entries outlive the day by 500 days: queries over the oldest rollups find them
    day_end_s = (NOW // DAY_MS + 1) * DAY_MS // 1000
    assert index.expiries == [day_end_s - 1 + 500 * DAY_S]


def test_without_a_policy_provider_the_writer_keeps_hot_retention_days() -> None:
    blocks = MemoryBlockStore()
    writer(blocks).write_record(record("acme", "up", "debug_x"), "1")
    assert set(block_ttls(blocks)["acme"]) == {15}


def test_the_writers_blocks_expire_days_after_they_were_written(policies: MemoryRetentionStore) -> None:
    # Given acme keeps debug_* 2 days and everything else 15, and the writer's blocks are kept 3 days
    set_policy(policies, "acme", DEBUG_2_DAYS)
    blocks = MemoryBlockStore()
    acme_writer = writer(blocks, policies, writer_block_days=3)
    # When it writes current samples of both, and samples of a default series backfilled 10 days late
    acme_writer.write_record(record("acme", "debug_a"), "1")
    acme_writer.write_record(record("acme", "up"), "2")
    acme_writer.write_record(record("acme", "node_load1", at=NOW - 10 * DAY_MS), "3")
    # Then a block expires with its retention when that comes first, else 3 days after it was written
    # (by then the compactor has long copied its samples into blocks that keep the full retention)
    assert sorted(block_ttls(blocks)["acme"]) == [2, 3, 13]


def read(blocks: MemoryBlockStore, index: MemoryIndexStore, policy: RetentionPolicy | None, metric: str) -> list[int]:
    reader = HotTierReader("acme", blocks, index, clock_ms=lambda: NOW, retention=policy)
    found = reader.select([Matcher("__name__", "=", metric)], NOW - 30 * DAY_MS, NOW)
    return [int(t) for s in found for t in s.timestamps]


def test_reads_drop_samples_older_than_the_series_raw_retention(policies: MemoryRetentionStore) -> None:
    # Given samples of a debug and a default metric 1, 5 and 20 days old (TTL has not removed them yet)
    blocks, index = MemoryBlockStore(), MemoryIndexStore()
    writer = MetricsWriter(blocks, index)
    for i, age in enumerate((20, 5, 1)):
        writer.write_record(record("acme", "debug_x", "up", at=NOW - age * DAY_MS), str(i))
    # Without a policy every stored sample is read
    assert len(read(blocks, index, None, "up")) == 3
    # When a policy keeps debug_* 2 days and the rest 15
    policy = RetentionPolicy.model_validate({"overrides": [DEBUG_2_DAYS]})
    # Then each series is cut at its own horizon, at once
    assert read(blocks, index, policy, "debug_x") == [NOW - DAY_MS]
    assert read(blocks, index, policy, "up") == [NOW - 5 * DAY_MS, NOW - DAY_MS]
    # And a shortened default takes effect on the next read
    shorter = RetentionPolicy.model_validate({"defaults": {"raw_days": 3}, "overrides": [DEBUG_2_DAYS]})
    assert read(blocks, index, shorter, "up") == [NOW - DAY_MS]
    # And a series whose samples are all past its horizon is not returned at all
    writer.write_record(record("acme", "debug_old", at=NOW - 10 * DAY_MS), "9")
    assert len(read(blocks, index, None, "debug_old")) == 1
    assert read(blocks, index, policy, "debug_old") == []
