"""Writer throughput on one core (Kinesis batch → hot-tier blocks) and bytes written per sample.

Records are what the ingest path produces for the simulated estate (10,000 series scraped every 15 s),
grouped into Kinesis batches as the event source mapping would deliver them (one scrape's records per
batch here); the writer runs with
counting in-memory stores, so the figures are the writer's own CPU cost. The reference in the same run
is the raw sample size (8-byte timestamp + 8-byte value = 16 bytes) and the remote-write protobuf.
DynamoDB bills a write request unit per started KB of item, so WRU per sample is printed too.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Sequence

import cramjam

from bench.workload import estate_series, remote_write_body, scrapes
from novacron.ingest.service import IngestService
from novacron.storage.writer import BlockItem, MetricsWriter, SeriesEntry
from tests.fakes import MemoryBlockStore, MemoryIndexStore

SERIES = 10_000


class CountingBlocks(MemoryBlockStore):
    """Keeps only sizes, so memory does not grow with the run."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0
        self.wru = 0
        self.count = 0

    def put_blocks(self, items: Sequence[BlockItem]) -> None:
        for item in items:
            self.count += 1
            size = len(item.data) + len(item.pk) + len(item.sk) + 40  # attribute names and numbers
            self.bytes += len(item.data)
            self.wru += math.ceil(size / 1024)


class CountingIndex(MemoryIndexStore):
    def __init__(self) -> None:
        super().__init__()
        self.entries = 0

    def put_series(self, entries: Sequence[SeriesEntry], expires_at: int) -> None:
        self.entries += len(entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scrapes", type=int, default=20, help="scrapes of the estate to write")
    args = parser.parse_args()
    now = int(time.time() * 1000)
    simulator = estate_series(SERIES)
    history = scrapes(simulator, args.scrapes, now)
    service = IngestService(sink=None, clock_ms=lambda: now)  # type: ignore[arg-type]
    batches = []
    raw_protobuf = 0
    samples_in = 0
    for i in range(args.scrapes):
        body, _, samples = remote_write_body(history[i : i + 1], now - (args.scrapes - 1 - i) * 15_000, SERIES)
        raw_protobuf += len(cramjam.snappy.decompress_raw(body))
        samples_in += samples
        records, _ = service.pack_remote_write(body, "bench")
        batches.append([r.data for r in records])

    blocks, index = CountingBlocks(), CountingIndex()
    writer = MetricsWriter(blocks, index)
    per_batch = []
    sequence = 0
    start = time.perf_counter()
    for batch in batches:
        t0 = time.perf_counter()
        numbered = []
        for data in batch:
            sequence += 1
            numbered.append((f"{sequence:056d}", data))
        writer.write_batch(numbered)
        per_batch.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    first_batch, steady = per_batch[0], per_batch[1:]
    steady_rate = SERIES / statistics.median(steady) / 1e6 if steady else float("nan")

    print(f"writer benchmark: {args.scrapes} scrapes of {SERIES:,} series ({samples_in:,} samples), one core")
    print(
        f"  throughput          {samples_in / elapsed / 1e6:.2f} Msamples/s overall, "
        f"{steady_rate:.2f} Msamples/s steady (first batch {first_batch * 1000:.0f} ms incl. index writes)"
    )
    print(f"  blocks              {blocks.count:,} items, {blocks.bytes / blocks.count:,.0f} bytes each on average")
    print(
        f"  hot tier            {blocks.bytes / samples_in:.2f} bytes/sample "
        f"(raw 16.00, remote-write protobuf {raw_protobuf / samples_in:.2f}; ratio to raw "
        f"{blocks.bytes / samples_in / 16:.2f})"
    )
    print(
        f"  DynamoDB writes     {blocks.wru / samples_in:.4f} WRU/sample "
        f"({samples_in / blocks.wru:.0f} samples per write request unit); "
        f"index entries {index.entries:,} (once per series and day)"
    )


if __name__ == "__main__":
    main()
