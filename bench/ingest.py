"""Ingest path throughput on one core: remote-write body → decode → validate → Kinesis-ready records.

The reference, measured in the same run on the same bodies, is the raw parse: snappy decompression
plus protobuf parsing of the whole WriteRequest, which is the least any Python receiver must do.
Targets (issue #2): at least 1,000,000 samples/s, and at least a quarter of the raw parse rate.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import cramjam

from bench.workload import estate_series, remote_write_body, scrapes
from novacron.ingest.policy import IngestPolicy
from novacron.ingest.service import IngestService
from novacron.ingest.validate import SeriesValidator
from novacron.protocols.remote_write_pb import WriteRequest

SERIES = 10_000


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall times of ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


class DefaultPolicy:
    """Every tenant under the default ingest policy (no stored policy, no cardinality reads)."""

    def policy(self, tenant: str) -> IngestPolicy:
        return IngestPolicy()


def raw_parse(body: bytes) -> None:
    WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    now = int(time.time() * 1000)
    simulator = estate_series(SERIES)
    history = scrapes(simulator, 10, now)
    print(f"ingest benchmark: {SERIES:,}-series remote-write bodies from the simulated estate, one core")
    print(
        f"{'body':<34} {'samples':>8} {'NovaCron Msamples/s':>20} {'raw parse Msamples/s':>21} {'ratio':>6}"
        f" {'p50 ms':>7} {'p95 ms':>7}"
    )
    for label, scrape_count in (("1 sample/series (live scrape)", 1), ("10 samples/series (backlog)", 10)):
        body, _series, samples = remote_write_body(history[-scrape_count:], now, limit=SERIES)
        service = IngestService(sink=None, clock_ms=lambda: now)  # type: ignore[arg-type]
        # Steady state: a warm function has validated these series before (validation is cached).
        service.pack_remote_write(body, "bench")
        ours = timed(functools.partial(service.pack_remote_write, body, "bench"), args.repeats)
        reference = timed(functools.partial(raw_parse, body), args.repeats)
        ours_rate = samples / statistics.median(ours) / 1e6
        ref_rate = samples / statistics.median(reference) / 1e6
        p50, p95 = statistics.median(ours) * 1000, statistics.quantiles(ours, n=20)[18] * 1000
        print(
            f"{label:<34} {samples:>8,} {ours_rate:>20.2f} {ref_rate:>21.2f} {ours_rate / ref_rate:>6.2f}"
            f" {p50:>7.2f} {p95:>7.2f}"
        )
        # The same body under the default ingest policy, from a sender lacking its required labels:
        # source, environment and owner are added (as "unknown") to every series.
        policed = IngestService(sink=None, clock_ms=lambda: now, policies=DefaultPolicy())  # type: ignore[arg-type]
        policed.pack_remote_write(body, "bench")
        with_policy = timed(functools.partial(policed.pack_remote_write, body, "bench"), args.repeats)
        policy_rate = samples / statistics.median(with_policy) / 1e6
        print(
            f"{'  same, default policy (+3 labels)':<34} {samples:>8,} {policy_rate:>20.2f} {ref_rate:>21.2f}"
            f" {policy_rate / ref_rate:>6.2f} {statistics.median(with_policy) * 1000:>7.2f}"
            f" {statistics.quantiles(with_policy, n=20)[18] * 1000:>7.2f}"
        )
        if scrape_count == 1:
            # Cold: a new function instance seeing every series for the first time.
            cold = []
            for _ in range(max(3, args.repeats // 5)):
                fresh = IngestService(sink=None, validator=SeriesValidator(), clock_ms=lambda: now)  # type: ignore[arg-type]
                start = time.perf_counter()
                fresh.pack_remote_write(body, "bench")
                cold.append(time.perf_counter() - start)
            cold_rate = samples / statistics.median(cold) / 1e6
            print(
                f"{'  same, cold (first sight)':<34} {samples:>8,} {cold_rate:>20.2f} {ref_rate:>21.2f}"
                f" {cold_rate / ref_rate:>6.2f} {statistics.median(cold) * 1000:>7.2f} {max(cold) * 1000:>7.2f}"
            )
    print("targets: >= 1.00 Msamples/s and ratio >= 0.25 (steady state)")


if __name__ == "__main__":
    main()
