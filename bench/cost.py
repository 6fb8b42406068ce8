"""Cost model: dollars per 10 million samples ingested and kept 30 days, beside Amazon Managed Prometheus.

A workload (the simulated estate, scraped every 15 s) runs through the real code paths in process:
ingest (remote write → Kinesis records), the metrics writer, the compactor and the Parquet archiver,
against counting in-memory stores. What they do is counted (Kinesis records and payload units,
DynamoDB request units by item size, S3 requests, stored bytes) and their CPU time measured; prices
come from one table (AWS list prices, us-east-1). The measured workload is short (two hours, one
compaction window) and its per-sample figures are extrapolated to 100,000 and 1,000,000 series for a
day, except Kinesis shard-hours, which are worked out from each scale's throughput, and the series
index, which the writer fills once per series and day: a run shorter than a day is charged the share of
a day's index it covers. Stored bytes are charged for 30 days, except the writer's own blocks, which
expire after ``WriterSettings.writer_block_days`` (the compactor's blocks hold their samples after that).

Also printed: hot-tier bytes per sample (target ≤ 2), and the DynamoDB read cost of a dashboard
(10 panels, 24 h, 5-minute step) answered from raw samples and from rollups.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bench.workload import SCRAPE_INTERVAL_MS, estate_series, remote_write_body, scrapes
from novacron.archive.archiver import Archiver, ArchiverSettings
from novacron.ingest.service import IngestService
from novacron.promql import Engine
from novacron.storage.compaction import GRACE_MS, WINDOW_MS, Compactor
from novacron.storage.reader import HotTierReader
from novacron.storage.writer import (
    BlockItem,
    MetricsWriter,
    SeriesEntry,
    StoredItem,
    WriterSettings,
    archive_stored_records,
)
from novacron.wiring import ARCHIVER, COMPACTOR, INGEST, WIRING, WRITER
from tests.archive_support import MemoryObjects
from tests.fakes import MemoryBlockStore, MemoryIndexStore

# AWS list prices, us-east-1, on-demand (checked 2026-11). One table: change a price here only.
PRICES = {
    "kinesis_shard_hour": 0.015,  # provisioned shard
    "kinesis_put_payload_units_per_million": 0.014,  # 25 KB units
    "lambda_gb_second": 0.0000166667,  # x86
    "lambda_requests_per_million": 0.20,
    "http_api_requests_per_million": 1.00,  # API Gateway HTTP API, first 300 million
    "dynamodb_write_units_per_million": 0.625,  # on-demand
    "dynamodb_read_units_per_million": 0.125,  # on-demand
    "dynamodb_gb_month": 0.25,
    "s3_puts_per_thousand": 0.005,
    "s3_gets_per_thousand": 0.0004,
    "s3_gb_month": 0.023,
    "athena_tb_scanned": 5.00,
    "amp_ingest_per_10m_samples": 0.90,  # Amazon Managed Service for Prometheus, first 2 billion a month
}
TEN_MILLION = 10_000_000
SAMPLES_PER_REQUEST = 2_000  # Prometheus's remote-write max_samples_per_send
DYNAMO_ITEM_OVERHEAD = 100  # bytes DynamoDB adds to every stored item
KINESIS_SHARD_BYTES_S, KINESIS_SHARD_RECORDS_S, STACK_SHARDS = 1_000_000, 1_000, 2
GB = 1024**3
T = TypeVar("T")
DASHBOARD = [
    "sum by (service) (rate(http_requests_total[5m]))",
    'sum by (service) (rate(http_requests_total{code=~"5.."}[5m])) / sum by (service) (rate(http_requests_total[5m]))',
    "histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket[5m])))",
    "sum by (service) (rate(process_cpu_seconds_total[5m]))",
    "max by (service) (max_over_time(process_resident_memory_bytes[5m]))",
    "sum by (service, target) (rate(rpc_client_errors_total[5m]))",
    "avg by (service) (avg_over_time(redis_connected_clients[5m]))",
    "sum(rate(pg_stat_database_xact_commit[5m]))",
    "max by (service) (max_over_time(pg_stat_activity_count[5m]))",
    "sum by (service) (rate(http_request_duration_seconds_sum[5m])) / sum by (service) "
    "(rate(http_request_duration_seconds_count[5m]))",
]


def _item_size(pk: str, sk: str, data: bytes) -> int:
    return len(pk) + len(sk) + len(data) + 40  # attribute names and the number attributes


class CountingBlocks(MemoryBlockStore):
    """The hot tier, counting DynamoDB request units as on-demand bills them."""

    def __init__(self) -> None:
        super().__init__()
        self.wru = 0
        self.rru = 0.0

    def put_blocks(self, items: Sequence[BlockItem]) -> None:
        self.wru += sum(math.ceil(_item_size(i.pk, i.sk, i.data) / 1024) for i in items)
        super().put_blocks(items)

    def delete_items(self, pk: str, sks: Sequence[str]) -> None:
        self.wru += sum(
            math.ceil(_item_size(pk, sk, self.items[(pk, sk)].data) / 1024) for sk in sks if (pk, sk) in self.items
        )
        super().delete_items(pk, sks)

    def _query(self, sizes: list[int], consistent: bool = False) -> None:
        # A Query reads 4 KB units over the items of each 1 MB page; eventually consistent: half a unit each.
        self.rru += (1.0 if consistent else 0.5) * max(1, math.ceil(sum(sizes) / 4096))

    def query_blocks(self, pk: str, sk_low: str, sk_high: str) -> Iterable[bytes]:
        found = list(super().query_blocks(pk, sk_low, sk_high))
        self._query([len(d) + len(pk) + 60 for d in found])
        return found

    def query_items(
        self, pk: str, sk_low: str, sk_high: str, limit: int | None = None, consistent: bool = False
    ) -> Iterable[StoredItem]:
        found = list(super().query_items(pk, sk_low, sk_high, limit, consistent))
        self._query([_item_size(pk, i.sk, i.data) for i in found], consistent)
        return found

    def get_items(self, pk: str, sks: Sequence[str]) -> dict[str, bytes]:
        found = super().get_items(pk, sks)
        self.rru += sum(0.5 * math.ceil(_item_size(pk, sk, d) / 4096) for sk, d in found.items())
        return found

    def stored_bytes(self, partitions: str = "") -> int:
        """Bytes DynamoDB stores for the items whose partition key ends with ``partitions``."""
        return sum(
            _item_size(pk, sk, item.data) + DYNAMO_ITEM_OVERHEAD
            for (pk, sk), item in self.items.items()
            if pk.endswith(partitions)
        )


class CountingIndex(MemoryIndexStore):
    """The series index, counting its writes and the bytes it keeps."""

    def __init__(self) -> None:
        super().__init__()
        self.wru = 0
        self.bytes = 0

    def put_series(self, entries: Sequence[SeriesEntry], expires_at: int) -> None:
        pairs = {(e.day, name, value) for e in entries for name, value in e.labels}
        self.wru += len(entries) + len(pairs)
        self.bytes += sum(len(str(e.labels)) + 80 + DYNAMO_ITEM_OVERHEAD for e in entries)
        self.bytes += sum(len(n) + len(v) + 60 + DYNAMO_ITEM_OVERHEAD for _, n, v in pairs)
        super().put_series(entries, expires_at)


@dataclass
class Measured:
    """What one workload cost, in counts and CPU seconds."""

    samples: int = 0
    kinesis_records: int = 0
    kinesis_bytes: int = 0
    kinesis_units: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)
    invocations: dict[str, float] = field(default_factory=dict)
    hours: float = 0.0
    dynamodb_wru: int = 0
    index_wru: int = 0
    dynamodb_rru: float = 0.0
    dynamodb_bytes_kept: int = 0
    index_bytes_kept: int = 0
    writer_block_bytes: int = 0
    compacted_bytes: int = 0
    rollup_bytes: int = 0
    s3_puts: int = 0
    s3_gets: int = 0
    s3_bytes_kept: int = 0
    parquet_bytes: int = 0


def _timed(measured: Measured, name: str, fn: Callable[..., T], *args: Any) -> T:
    start = time.process_time()
    result = fn(*args)
    measured.cpu_s[name] = measured.cpu_s.get(name, 0.0) + time.process_time() - start
    return result


def run_workload(series: int, hours: float, end_ms: int, scale: int) -> tuple[Measured, CountingBlocks, CountingIndex]:
    """Ingest, write, compact and archive ``hours`` of ``series`` series; count everything.

    Requests carry ``SAMPLES_PER_REQUEST`` samples, as Prometheus sends them; the writer gets what the
    stream holds after one second at ``scale`` series (its event source mapping polls each shard about
    once a second), so blocks hold as many samples per bucket as they would at that scale.
    """
    m = Measured(hours=hours)
    count = int(hours * 3_600_000 / SCRAPE_INTERVAL_MS)
    start_ms = end_ms - count * SCRAPE_INTERVAL_MS
    simulator = estate_series(series)
    now, sequence = [start_ms], 0
    service = IngestService(sink=None, clock_ms=lambda: now[0])  # type: ignore[arg-type]
    blocks, index, raw = CountingBlocks(), CountingIndex(), MemoryObjects()
    writer = MetricsWriter(blocks, index, now_ms=lambda: now[0])
    batch_samples = scale * 1000 // SCRAPE_INTERVAL_MS
    pending: list[tuple[str, bytes]] = []
    pending_samples, batches = 0, 0

    def flush() -> None:
        nonlocal pending, pending_samples, batches
        outcomes = _timed(m, WRITER, writer.write_batch, pending)
        stored = [(seq, data, stats) for (seq, data), stats in zip(pending, outcomes, strict=True)]
        _timed(m, WRITER, archive_stored_records, raw, "shardId-000000000000", stored)
        pending, pending_samples, batches = [], 0, batches + 1

    for i in range(count):
        t = start_ms + i * SCRAPE_INTERVAL_MS
        now[0] = t + 1_000
        (scrape,) = scrapes(simulator, 1, t)
        for first in range(0, len(scrape), SAMPLES_PER_REQUEST):
            body, _, samples = remote_write_body([scrape[first : first + SAMPLES_PER_REQUEST]], t)
            records, _ = _timed(m, INGEST, service.pack_remote_write, body, "bench")
            m.samples += samples
            m.kinesis_records += len(records)
            m.kinesis_bytes += sum(len(r.data) for r in records)
            m.kinesis_units += sum(math.ceil(len(r.data) / 25_600) for r in records)
            m.invocations[INGEST] = m.invocations.get(INGEST, 0) + 1
            for r in records:
                sequence += 1
                pending.append((f"{sequence:056d}", r.data))
            pending_samples += samples
            if pending_samples >= batch_samples:
                flush()
    if pending:
        flush()
    m.writer_block_bytes = blocks.stored_bytes()  # before compaction: the writer's blocks and series tables
    compactor = Compactor(blocks, clock_ms=lambda: end_ms + WINDOW_MS + GRACE_MS)
    stats = _timed(m, COMPACTOR, compactor.compact_tenant, "bench")
    m.compacted_bytes, m.rollup_bytes = stats.compacted_bytes, stats.rollup_bytes
    _timed(m, ARCHIVER, Archiver(raw, ArchiverSettings(lookback_hours=int(hours) + 4)).run, end_ms + 2 * 3_600_000)
    m.parquet_bytes = sum(len(v) for k, v in raw.objects.items() if k.startswith("parquet/"))
    m.s3_puts, m.s3_gets = raw.puts, raw.gets + raw.range_gets
    m.s3_bytes_kept = sum(len(v) for v in raw.objects.values())
    m.dynamodb_wru, m.index_wru, m.dynamodb_rru = blocks.wru, index.wru, blocks.rru
    m.dynamodb_bytes_kept, m.index_bytes_kept = blocks.stored_bytes(), index.bytes
    seconds = count * SCRAPE_INTERVAL_MS / 1000
    m.invocations.update({WRITER: batches, COMPACTOR: seconds / 900, ARCHIVER: seconds / 900})
    return m, blocks, index


def dollars_per_10m(m: Measured, series: int) -> dict[str, float]:
    """The cost of 10 million samples ingested and kept 30 days, by component, at ``series`` series."""
    per = TEN_MILLION / m.samples
    samples_per_s = series / (SCRAPE_INTERVAL_MS / 1000)
    hours_for_10m = TEN_MILLION / samples_per_s / 3600
    bytes_per_s = m.kinesis_bytes / m.samples * samples_per_s
    records_per_s = m.kinesis_records / m.samples * samples_per_s
    shards = max(
        STACK_SHARDS,
        math.ceil(bytes_per_s / KINESIS_SHARD_BYTES_S),
        math.ceil(records_per_s / KINESIS_SHARD_RECORDS_S),
    )
    # The index holds each series once per day: the run covers this share of the days it indexed.
    index_share = m.hours / (24 * math.ceil(m.hours / 24))
    # The writer's blocks are kept days, not the month; everything else is charged the whole month.
    writer_share = WriterSettings().writer_block_days / 30
    kept_bytes = m.dynamodb_bytes_kept - m.writer_block_bytes * (1 - writer_share) + m.index_bytes_kept * index_share
    lambda_gb_s = sum(cpu * WIRING.function(fn).memory_mb / 1024 for fn, cpu in m.cpu_s.items()) * per
    # Every batch the writer got is one invocation per shard (each shard's share of the second).
    invocations = (m.invocations[INGEST] + m.invocations[WRITER] * shards) * per
    invocations += (m.invocations[COMPACTOR] + m.invocations[ARCHIVER]) * per
    # Likewise each batch archives one raw object per shard.
    s3_puts = m.s3_puts + m.invocations[WRITER] * (shards - 1)
    return {
        "Kinesis shard-hours": shards * hours_for_10m * PRICES["kinesis_shard_hour"],
        "Kinesis PUT payload units": m.kinesis_units * per / 1e6 * PRICES["kinesis_put_payload_units_per_million"],
        "API Gateway requests": m.invocations[INGEST] * per / 1e6 * PRICES["http_api_requests_per_million"],
        "Lambda GB-seconds (CPU time)": lambda_gb_s * PRICES["lambda_gb_second"],
        "Lambda requests": invocations / 1e6 * PRICES["lambda_requests_per_million"],
        "DynamoDB writes": (m.dynamodb_wru + m.index_wru * index_share)
        * per
        / 1e6
        * PRICES["dynamodb_write_units_per_million"],
        "DynamoDB reads (compaction)": m.dynamodb_rru * per / 1e6 * PRICES["dynamodb_read_units_per_million"],
        "DynamoDB storage, 30 days": kept_bytes * per / GB * PRICES["dynamodb_gb_month"],
        "S3 requests": (s3_puts * PRICES["s3_puts_per_thousand"] + m.s3_gets * PRICES["s3_gets_per_thousand"])
        * per
        / 1000,
        "S3 storage, 30 days": m.s3_bytes_kept * per / GB * PRICES["s3_gb_month"],
        # An analyst scanning the month's Parquet once.
        "Athena scan (one full scan)": m.parquet_bytes * per / 1024**4 * PRICES["athena_tb_scanned"],
    }


def dashboard_reads(series: int, end_ms: int) -> list[tuple[str, float, float, float, float]]:
    """Per panel: read units and seconds of a 24 h, 5-minute-step query, from raw samples and from rollups."""
    _, blocks, index = run_workload(series, 24, end_ms, 100_000)
    out = []
    start = end_ms - 24 * 3_600_000
    for query in DASHBOARD:
        figures: list[float] = []
        for use_rollups in (False, True):
            reader = HotTierReader("bench", blocks, index, clock_ms=lambda: end_ms)
            blocks.rru = 0.0
            t0 = time.perf_counter()
            Engine(reader, rollups=use_rollups).range(query, start, end_ms, 300_000)
            figures += [blocks.rru, time.perf_counter() - t0]
        out.append((query, figures[0], figures[1], figures[2], figures[3]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=10_000, help="series of the measured workload")
    parser.add_argument("--hours", type=float, default=2.0, help="hours of the measured workload (>= 2: one window)")
    parser.add_argument("--dashboard-series", type=int, default=1_000, help="series behind the 24 h dashboard")
    args = parser.parse_args()
    end_ms = int(time.time() * 1000) // WINDOW_MS * WINDOW_MS
    scales = (100_000, 1_000_000)
    measured = {scale: run_workload(args.series, args.hours, end_ms, scale)[0] for scale in scales}
    m = measured[scales[0]]
    print(
        f"cost model: {m.samples:,} samples measured ({args.series:,} series, {args.hours:g} h at 15 s), "
        f"written in the batches {', '.join(f'{s:,}' for s in scales)} series would make"
    )
    for scale, run in measured.items():
        cpu = ", ".join(f"{fn} {seconds:.1f}" for fn, seconds in run.cpu_s.items())
        print(f"  at {scale:>9,} series: CPU seconds {cpu}; writer {run.writer_block_bytes / run.samples:.2f} B/sample")
    print(
        f"  hot tier: {m.compacted_bytes / m.samples:.2f} B/sample compacted + rollups "
        f"{m.rollup_bytes / m.samples:.2f} B/sample (5m and 1h stored) = "
        f"{(m.compacted_bytes + m.rollup_bytes) / m.samples:.2f} B/sample kept past the first hours (target <= 2)"
    )
    print(
        f"  archive: Parquet {m.parquet_bytes / m.samples:.2f} B/sample; DynamoDB keeps "
        f"{m.dynamodb_bytes_kept / m.samples:.2f} B/sample with keys and item overheads (the writer's blocks "
        f"for {WriterSettings().writer_block_days} days), and the index {m.index_bytes_kept / m.samples:.2f} "
        f"B/sample for the {m.hours:g} h run"
    )
    amp = PRICES["amp_ingest_per_10m_samples"]
    costs = {scale: dollars_per_10m(measured[scale], scale) for scale in scales}
    print(f"\n  $ per 10 million samples ingested and kept 30 days   {'100k series':>12} {'1M series':>12}")
    for component in costs[scales[0]]:
        print(f"    {component:<48} {costs[scales[0]][component]:>12.5f} {costs[scales[1]][component]:>12.5f}")
    totals = {scale: sum(c.values()) for scale, c in costs.items()}
    print(f"    {'total':<48} {totals[scales[0]]:>12.4f} {totals[scales[1]]:>12.4f}")
    print(f"    {'Amazon Managed Prometheus, ingestion alone':<48} {amp:>12.4f} {amp:>12.4f}")
    print(
        f"    {'ratio to AMP (target <= 0.10)':<48} {totals[scales[0]] / amp:>12.3f} {totals[scales[1]] / amp:>12.3f}"
    )
    rows = dashboard_reads(args.dashboard_series, end_ms)
    raw_rru, roll_rru = sum(r[1] for r in rows), sum(r[3] for r in rows)
    print(f"\n  dashboard: 10 panels, 24 h at a 5-minute step, {args.dashboard_series:,} series (read units, seconds)")
    for query, rru_raw, s_raw, rru_roll, s_roll in rows:
        print(f"    {rru_raw:>9.1f} RRU {s_raw:6.2f} s -> {rru_roll:>8.1f} RRU {s_roll:6.2f} s   {query[:70]}")
    price = PRICES["dynamodb_read_units_per_million"] / 1e6
    print(
        f"    total {raw_rru:,.0f} -> {roll_rru:,.0f} read units per refresh ({raw_rru / max(roll_rru, 1):.1f}x fewer; "
        f"${raw_rru * price:.6f} -> ${roll_rru * price:.6f})"
    )


if __name__ == "__main__":
    main()
