"""Range-vector function speed: 1000 series x 1 day at 15 s, range query at a 60 s step.

Prints seconds per query and the speed-up over the figures measured before the window functions
were vectorised (``BEFORE``, same machine and data). Run: ``.venv/bin/python bench/promql_windows.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from novacron.promql import Engine
from novacron.query.memory_reader import InMemorySeriesReader

DAY_MS = 86_400_000
SCRAPE_MS = 15_000
STEP_MS = 60_000

QUERIES = [
    "avg_over_time(c[1h])",
    "sum_over_time(c[1h])",
    "max_over_time(c[1h])",
    "quantile_over_time(0.9, c[1h])",
    "rate(c[5m])",
    "stddev_over_time(c[1h])",
]

# Seconds per query with the per-window-position loops (1000 series), recorded before the change.
BEFORE: dict[str, float] = {
    "avg_over_time(c[1h])": 7.201,
    "sum_over_time(c[1h])": 7.363,
    "max_over_time(c[1h])": 3.195,
    "quantile_over_time(0.9, c[1h])": 10.290,
    "rate(c[5m])": 0.193,
    "stddev_over_time(c[1h])": 11.890,
}


def build_reader(series: int, seed: int = 0) -> InMemorySeriesReader:
    """Counters with random increments and an occasional reset, one sample every 15 s for a day."""
    rng = np.random.default_rng(seed)
    ts = np.arange(SCRAPE_MS, DAY_MS + 1, SCRAPE_MS, dtype=np.int64)
    reader = InMemorySeriesReader()
    for i in range(series):
        values = np.cumsum(rng.exponential(10.0, len(ts)))
        reset = int(rng.integers(len(ts)))
        values[reset:] -= values[reset - 1] if reset else 0.0  # one counter reset per series
        reader.add({"__name__": "c", "instance": f"i{i}"}, ts, values)
    return reader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1, help="runs per query; the best is kept")
    parser.add_argument("--query", action="append", help="only these queries (default: all)")
    args = parser.parse_args()
    engine = Engine(build_reader(args.series), max_samples=10**9, timeout_ms=10**9)
    print(f"{'query':36} {'seconds':>9} {'before':>9} {'speed-up':>9}")
    for query in args.query or QUERIES:
        best = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = engine.range(query, 0, DAY_MS, STEP_MS)
            best = min(best, time.perf_counter() - started)
        assert len(result.series) == args.series, query
        before = BEFORE.get(query) if args.series == 1000 else None
        ratio = f"{before / best:8.1f}x" if before else "-"
        shown = f"{before:9.2f}" if before else "-"
        print(f"{query:36} {best:9.3f} {shown:>9} {ratio:>9}", flush=True)


if __name__ == "__main__":
    main()
