"""Query speed: NovaCron's PromQL engine against Prometheus 2.42 on the same data, in the same run.

Data: a generated estate of 10,000 series (HTTP request counters, latency histograms, node CPU and
network counters, memory gauges, ``up``) over 6 hours at 15 s. NovaCron evaluates over the in-memory
reader; Prometheus gets the same samples as blocks made by ``promtool tsdb create-blocks-from
openmetrics`` (cached in a temp dir between runs) and is queried over its HTTP API. Prometheus's time is
its own ``stats.timings.evalTotalTime`` (``?stats=all``: evaluation without HTTP and JSON), so both
sides exclude transport; Prometheus's wall time is printed beside it.

A corpus of dashboard-typical queries in classes runs as a range query over the 6 hours at a 60 s
step and as an instant query at the end. Per class: p50/p95 of per-query medians on both engines,
the ratio, and PASS/MISS against the target of at most 2x Prometheus.

Per query it also prints the DynamoDB requests and bytes that the hot-tier read path
(``HotTierReader``) issues, counted over in-memory stores filled through the real ingest packer and
``MetricsWriter`` and then compacted (10 minutes of scrapes per Kinesis batch; a Query page is 1 MB, a BatchGetItem 100
keys). A series-count difference from Prometheus is flagged with "!" (``topk`` over tied values may
pick other series: the order of ties is unspecified).

Last, the range corpus goes through the results cache (``novacron.query.results_cache``): time and
engine evaluations of a first load and of a refresh one step later, and for one query per class the
DynamoDB requests and bytes of both.

Run: ``.venv/bin/python -m bench.query`` (``--quick`` for a small, fast version).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from novacron.ingest.service import IngestService
from novacron.promql import Engine, QueryResult
from novacron.query.memory_reader import InMemorySeriesReader
from novacron.query.results_cache import LruResultsStore, ResultsCache
from novacron.series import Labels
from novacron.simulate.remote_write import RemoteWriteClient
from novacron.storage.compaction import GRACE_MS, WINDOW_MS, Compactor
from novacron.storage.reader import HotTierReader
from novacron.storage.writer import MetricsWriter, SeriesEntry, StoredItem
from tests.fakes import MemoryBlockStore, MemoryIndexStore

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
END_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: fixed, so the Prometheus blocks can be reused
SCRAPE_MS = 15_000
SCRAPE_PHASE_MS = 7_000  # samples off the step grid, so window edges never sit on a sample
STEP_MS = 60_000
DYNAMO_PAGE_BYTES = 1 << 20  # a DynamoDB Query returns at most 1 MB per request
BATCH_GET_KEYS = 100  # BatchGetItem reads at most 100 items per request
TARGET_RATIO = 2.0
Row = tuple[str, str, str, float, float, float, int, int]  # class, kind, query, ours, Prometheus eval, wall, req, bytes

JOBS = ("api", "web", "worker", "batch")
METHODS = ("GET", "POST")
STATUSES = ("200", "404", "500")
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf")
CPU_MODES = ("idle", "user", "system", "iowait")

CORPUS: dict[str, list[str]] = {
    "selector": [
        "up",
        'node_memory_MemAvailable_bytes{job="node"}',
        'http_requests_total{method="GET",status=~"5.."}',
        'node_cpu_seconds_total{mode="user",cpu="0"}',
    ],
    "rate/increase": [
        "rate(http_requests_total[5m])",
        "increase(node_network_receive_bytes_total[1h])",
        'irate(node_cpu_seconds_total{mode="idle"}[5m])',
        "rate(node_cpu_seconds_total[5m])",
    ],
    "aggregation by": [
        "sum by (job) (rate(http_requests_total[5m]))",
        'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))',
        "avg by (job, method) (rate(http_requests_total[5m]))",
        "count by (job) (up)",
        "max without (cpu) (rate(node_cpu_seconds_total[5m]))",
    ],
    "histogram_quantile": [
        "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
        "histogram_quantile(0.9, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))",
        'histogram_quantile(0.5, rate(http_request_duration_seconds_bucket{job="api"}[5m]))',
    ],
    "*_over_time": [
        "avg_over_time(node_memory_MemAvailable_bytes[1h])",
        "max_over_time(process_resident_memory_bytes[30m])",
        "quantile_over_time(0.95, process_resident_memory_bytes[1h])",
        "min_over_time(node_memory_MemAvailable_bytes[10m])",
    ],
    "binary op/join": [
        "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
        'sum by (job) (rate(http_requests_total{status=~"5.."}[5m])) / sum by (job) (rate(http_requests_total[5m]))',
        "rate(http_request_duration_seconds_sum[5m]) / rate(http_request_duration_seconds_count[5m])",
        "process_resident_memory_bytes * on (instance) group_left () up",
    ],
    "topk": [
        "topk(5, rate(http_requests_total[5m]))",
        'topk(10, sum by (instance) (rate(node_cpu_seconds_total{mode="user"}[5m])))',
        "bottomk(5, node_memory_MemAvailable_bytes)",
    ],
    "subquery": [
        "max_over_time(rate(http_requests_total[5m])[30m:1m])",
        "avg_over_time(sum by (job) (rate(http_requests_total[5m]))[1h:5m])",
        "max_over_time(deriv(node_memory_MemAvailable_bytes[10m])[30m:])",
    ],
}


# --- data ---------------------------------------------------------------------------------------


@dataclass
class Dataset:
    """Series sharing one timestamp grid: ``values[i]`` belongs to ``labels[i]``."""

    timestamps: npt.NDArray[np.int64]
    labels: list[dict[str, str]]
    values: npt.NDArray[np.float64]  # (series, samples)


def generate(instances: int, hours: float, seed: int = 0) -> Dataset:
    """A dashboard-like estate: 50 series per instance, one sample every 15 s until ``END_MS``."""
    rng = np.random.default_rng(seed)
    n = int(hours * 3_600_000 // SCRAPE_MS)
    ts = END_MS - hours_ms(hours) + SCRAPE_PHASE_MS + SCRAPE_MS * np.arange(n, dtype=np.int64)
    labels: list[dict[str, str]] = []
    rows: list[npt.NDArray[np.float64]] = []

    def add(lb: dict[str, str], values: npt.NDArray[np.float64]) -> None:
        labels.append(lb)
        rows.append(values)

    def counter(rate: float, count: int = 1) -> npt.NDArray[np.float64]:
        return np.cumsum(rng.poisson(rate * SCRAPE_MS / 1000, (count, n)), axis=1).astype(np.float64)

    for i in range(instances):
        inst, job = f"i{i:04d}", JOBS[i % len(JOBS)]
        add({"__name__": "up", "job": job, "instance": inst}, np.ones(n))
        for m in METHODS:
            for s in STATUSES:
                rate = 20.0 if s == "200" else 0.5
                add(
                    {"__name__": "http_requests_total", "job": job, "instance": inst, "method": m, "status": s},
                    counter(rate)[0],
                )
        # Latency histogram: requests fall in buckets, counts cumulative over le and over time.
        per_bucket = counter(2.0, len(BUCKETS))
        cumulative = np.cumsum(per_bucket, axis=0)
        for b, le in enumerate(BUCKETS):
            add(
                {"__name__": "http_request_duration_seconds_bucket", "job": job, "instance": inst, "le": le},
                cumulative[b],
            )
        add({"__name__": "http_request_duration_seconds_count", "job": job, "instance": inst}, cumulative[-1])
        add(
            {"__name__": "http_request_duration_seconds_sum", "job": job, "instance": inst},
            np.round(cumulative[-1] * 0.21, 3),
        )
        for cpu in range(4):
            for mode in CPU_MODES:
                add(
                    {
                        "__name__": "node_cpu_seconds_total",
                        "job": "node",
                        "instance": inst,
                        "cpu": str(cpu),
                        "mode": mode,
                    },
                    np.round(np.cumsum(rng.uniform(0, 15, n)) / 4, 3),
                )
        for dev in ("eth0", "eth1", "lo"):
            add(
                {"__name__": "node_network_receive_bytes_total", "job": "node", "instance": inst, "device": dev},
                counter(50_000.0)[0],
            )
        total = float(rng.integers(8, 64)) * 2**30
        add({"__name__": "node_memory_MemTotal_bytes", "job": "node", "instance": inst}, np.full(n, total))
        walk = np.cumsum(rng.normal(0, 2**22, n))
        add(
            {"__name__": "node_memory_MemAvailable_bytes", "job": "node", "instance": inst},
            np.round(np.clip(total * 0.5 + walk, 0, total)).astype(np.float64),
        )
        add(
            {"__name__": "process_resident_memory_bytes", "job": job, "instance": inst},
            np.round(2**28 + np.abs(np.cumsum(rng.normal(0, 2**20, n)))),
        )
    return Dataset(ts, labels, np.array(rows))


def hours_ms(hours: float) -> int:
    return int(hours * 3_600_000)


def memory_reader(data: Dataset) -> InMemorySeriesReader:
    """The dataset in NovaCron's in-memory reader."""
    reader = InMemorySeriesReader()
    for lb, values in zip(data.labels, data.values, strict=True):
        reader.add(lb, data.timestamps, values)
    return reader


# --- Prometheus -----------------------------------------------------------------------------------


def _openmetrics_labels(lb: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in lb.items() if k != "__name__")
    return f"{lb['__name__']}{{{inner}}}"


def write_openmetrics(data: Dataset, path: Path) -> None:
    """The dataset as OpenMetrics text, metric families contiguous, timestamps in seconds."""
    seconds = [f"{t / 1000:.3f}" for t in data.timestamps.tolist()]
    order = sorted(range(len(data.labels)), key=lambda i: data.labels[i]["__name__"])
    with path.open("w") as out:
        family = None
        for i in order:
            name = data.labels[i]["__name__"]
            if name != family:
                kind = "counter" if name.endswith("_total") else "unknown"
                declared = name.removesuffix("_total") if kind == "counter" else name
                out.write(f"# TYPE {declared} {kind}\n")
                family = name
            prefix = _openmetrics_labels(data.labels[i])
            out.write("".join(f"{prefix} {v!r} {t}\n" for v, t in zip(data.values[i].tolist(), seconds, strict=True)))
        out.write("# EOF\n")


def prometheus_blocks(data: Dataset, key: str) -> Path:
    """A Prometheus data dir holding the dataset, made once per dataset and reused."""
    root = Path(tempfile.gettempdir()) / "novacron-bench-query" / key
    done = root / "complete"
    if done.exists():
        return root / "data"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    source = root / "data.om"
    write_openmetrics(data, source)
    subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(source), str(root / "data")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    source.unlink()
    done.touch()
    return root / "data"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Prometheus:
    """A Prometheus server over a data dir, scraping nothing, queried over HTTP."""

    def __init__(self, data_dir: Path) -> None:
        self.port = _free_port()
        config = data_dir.parent / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
        self.process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={data_dir}",
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--query.max-samples=500000000",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("Prometheus did not become ready")
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def run(self, path: str, params: dict[str, str]) -> tuple[float, float, int]:
        """(evaluation seconds from Prometheus's stats, wall seconds, result series)."""
        query = urllib.parse.urlencode({**params, "stats": "all"})
        started = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}?{query}", timeout=300) as r:
            body = json.load(r)
        wall = time.perf_counter() - started
        if body["status"] != "success":
            raise RuntimeError(f"Prometheus refused {params['query']}: {body}")
        timings = body["data"].get("stats", {}).get("timings", {})
        return float(timings.get("evalTotalTime", wall)), wall, len(body["data"]["result"])


# --- hot tier -------------------------------------------------------------------------------------


class CountingBlocks(MemoryBlockStore):
    """The hot tier in memory, counting DynamoDB requests and bytes of the read path."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0
        self.bytes = 0

    def _count(self, sizes: Iterable[int]) -> None:
        size = sum(sizes)
        self.requests += max(1, math.ceil(size / DYNAMO_PAGE_BYTES))
        self.bytes += size

    def query_blocks(self, pk: str, sk_low: str, sk_high: str) -> Iterable[bytes]:
        found = list(super().query_blocks(pk, sk_low, sk_high))
        self._count(len(d) for d in found)
        return found

    def query_items(
        self, pk: str, sk_low: str, sk_high: str, limit: int | None = None, consistent: bool = False
    ) -> Iterable[StoredItem]:
        found = list(super().query_items(pk, sk_low, sk_high, limit, consistent))
        self._count(len(i.data) for i in found)
        return found

    def get_items(self, pk: str, sks: Sequence[str]) -> dict[str, bytes]:
        found = super().get_items(pk, sks)
        self.requests += math.ceil(len(sks) / BATCH_GET_KEYS)
        self.bytes += sum(len(d) for d in found.values())
        return found


class CountingIndex(MemoryIndexStore):
    """An index counting its requests (one Query each; index items are small)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0
        self._by_metric: dict[tuple[str, str, str], list[SeriesEntry]] = {}

    def series_of_metric(self, tenant: str, day: str, metric: str) -> list[SeriesEntry]:
        self.requests += 1
        key = (tenant, day, metric)
        if key not in self._by_metric:
            self._by_metric[key] = super().series_of_metric(tenant, day, metric)
        return list(self._by_metric[key])

    def label_pairs(self, tenant: str, day: str, name: str | None = None) -> list[tuple[str, str]]:
        self.requests += 1
        return super().label_pairs(tenant, day, name)


def hot_tier(data: Dataset, batch_scrapes: int = 40) -> tuple[CountingBlocks, CountingIndex]:
    """The dataset written through the ingest packer and ``MetricsWriter``, ``batch_scrapes`` per batch."""
    blocks, index = CountingBlocks(), CountingIndex()
    received = [END_MS]
    writer = MetricsWriter(blocks, index, now_ms=lambda: received[0])
    # The packer refuses samples too old for "now": receive each batch when it was scraped.
    service = IngestService(sink=None, clock_ms=lambda: received[0])  # type: ignore[arg-type]
    keys: list[Labels] = [tuple(sorted(lb.items())) for lb in data.labels]
    sequence = 0
    for first in range(0, len(data.timestamps), batch_scrapes):
        ts = data.timestamps[first : first + batch_scrapes].tolist()
        received[0] = ts[-1] + 1000
        series = [
            (key, list(zip(ts, row[first : first + batch_scrapes].tolist(), strict=True)))
            for key, row in zip(keys, data.values, strict=True)
        ]
        records, _ = service.pack_remote_write(RemoteWriteClient.encode(series), "bench")
        numbered = []
        for record in records:
            sequence += 1
            numbered.append((f"{sequence:056d}", record.data))
        writer.write_batch(numbered)
    # As it stands hours later: every window compacted into blocks and rollups.
    Compactor(blocks, clock_ms=lambda: END_MS + WINDOW_MS + GRACE_MS).compact_tenant("bench")
    blocks.requests = blocks.bytes = 0
    return blocks, index


# --- running --------------------------------------------------------------------------------------


def timed(fn: Callable[[], QueryResult], repeat: int) -> tuple[float, QueryResult]:
    """Median seconds of ``repeat`` runs, and the result."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def dashboard_refresh(engine: Engine, start_ms: int, end_ms: int) -> None:
    """Every range query of the corpus through the results cache: cold, then refreshed one step later."""
    now = [end_ms]
    store = LruResultsStore(max_bytes=2**31)  # room for the whole corpus: this measures hits, not eviction
    cache = ResultsCache(store, "bench", clock_ms=lambda: now[0])
    queries = [text for texts in CORPUS.values() for text in texts]
    started = time.perf_counter()
    for text in queries:
        cache.range(engine, text, start_ms, end_ms, STEP_MS)
    cold, cold_evaluations = time.perf_counter() - started, cache.evaluations
    now[0] += STEP_MS
    started = time.perf_counter()
    for text in queries:
        cache.range(engine, text, start_ms + STEP_MS, end_ms + STEP_MS, STEP_MS)
    refresh = time.perf_counter() - started
    print(
        f"\ndashboard refresh through the results cache ({len(queries)} range queries, 1 h chunks, now on an hour "
        "boundary: the worst case, the whole last hour is evaluated again): "
        f"first load {cold:.2f} s ({cold_evaluations} evaluations), refresh one step later {refresh:.2f} s "
        f"({cache.evaluations - cold_evaluations} evaluations, of the unfinished chunks only); "
        f"{store.bytes / 1e6:.0f} MB cached"
    )


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=233, help="43 series each (default: 10,019 series)")
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per query and engine; the median is kept")
    parser.add_argument("--hot-instances", type=int, default=None, help="instances in the hot-tier store")
    parser.add_argument("--quick", action="store_true", help="860 series over 2 hours, one run each")
    args = parser.parse_args()
    for binary in (PROMETHEUS, PROMTOOL):
        if not os.access(binary, os.X_OK):
            raise SystemExit(f"{binary} is needed (Debian package prometheus)")
    if args.quick:
        args.instances, args.hours, args.repeat = 20, 2.0, 1
    hot_instances = args.hot_instances or args.instances
    start_ms, end_ms = END_MS - hours_ms(args.hours), END_MS

    t0 = time.perf_counter()
    data = generate(args.instances, args.hours)
    key = hashlib.sha256(f"v1/{args.instances}/{args.hours}".encode()).hexdigest()[:12]
    print(
        f"query benchmark: {len(data.labels):,} series x {len(data.timestamps):,} samples "
        f"({data.values.size / 1e6:.1f}M samples), range queries over {args.hours:g} h at a "
        f"{STEP_MS // 1000} s step and instant queries at the end; median of {args.repeat} run(s)"
    )
    engine = Engine(memory_reader(data), max_samples=10**9, timeout_ms=10**9)
    prom_dir = prometheus_blocks(data, key)
    print(f"  setup {time.perf_counter() - t0:.0f} s (Prometheus blocks in {prom_dir.parent})", flush=True)
    hot_data = data if hot_instances == args.instances else generate(hot_instances, args.hours)
    blocks, index = hot_tier(hot_data)
    hot_note = "" if hot_data is data else f" (a store of {len(hot_data.labels):,} series: scaled down)"
    print(f"  hot tier loaded through MetricsWriter and compacted{hot_note}: {len(blocks.items):,} items", flush=True)

    prometheus = Prometheus(prom_dir)
    rows: list[Row] = []
    try:
        print(
            f"\n{'class':19} {'kind':7} {'novacron s':>10} {'prom eval s':>11} {'prom wall s':>11} {'ratio':>6} "
            f"{'series':>6} {'ddb req':>7} {'ddb MB':>7}  query"
        )
        for cls, queries in CORPUS.items():
            for text in queries:
                for kind in ("range", "instant"):
                    params = (
                        {"query": text, "start": str(start_ms / 1000), "end": str(end_ms / 1000), "step": "60"}
                        if kind == "range"
                        else {"query": text, "time": str(end_ms / 1000)}
                    )
                    path = "/api/v1/query_range" if kind == "range" else "/api/v1/query"
                    prometheus.run(path, params)  # warm the page cache and Prometheus's postings
                    prom = [prometheus.run(path, params) for _ in range(args.repeat)]
                    prom_eval = statistics.median(p[0] for p in prom)
                    prom_wall = statistics.median(p[1] for p in prom)

                    def ours(kind: str = kind, text: str = text) -> QueryResult:
                        if kind == "range":
                            return engine.range(text, start_ms, end_ms, STEP_MS)
                        return engine.instant(text, end_ms)

                    nova, result = timed(ours, args.repeat)
                    got = len(result.series)
                    if got != prom[0][2]:
                        print(f"  ! {kind} {text}: {got} series here, {prom[0][2]} in Prometheus")
                    requests, size = hot_tier_cost(blocks, index, text, kind, start_ms, end_ms)
                    rows.append((cls, kind, text, nova, prom_eval, prom_wall, requests, size))
                    print(
                        f"{cls:19} {kind:7} {nova:10.4f} {prom_eval:11.4f} {prom_wall:11.4f} "
                        f"{nova / prom_eval:6.2f} {got:6d} {requests:7d} {size / 1e6:7.2f}  {text}",
                        flush=True,
                    )
    finally:
        prometheus.stop()

    print_summary(rows)
    dashboard_refresh(engine, start_ms, end_ms)
    hot_tier_refresh(blocks, index, start_ms, end_ms)
    print(f"\n  total {time.perf_counter() - t0:.0f} s")


def print_summary(rows: Sequence[Row]) -> None:
    """Per class and kind: p50/p95 of both engines, their ratios and the verdict against the target."""
    print(
        f"\n{'class':19} {'kind':7} {'p50 nova':>9} {'p50 prom':>9} {'p95 nova':>9} {'p95 prom':>9} "
        f"{'ratio p50':>9} {'ratio p95':>9}  target <= {TARGET_RATIO:g}x"
    )
    for cls in CORPUS:
        for kind in ("range", "instant"):
            mine = [r for r in rows if r[0] == cls and r[1] == kind]
            ours = [percentile([r[3] for r in mine], q) for q in (50, 95)]
            theirs = [percentile([r[4] for r in mine], q) for q in (50, 95)]
            ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
            verdict = "PASS" if max(ratios) <= TARGET_RATIO else "MISS"
            print(
                f"{cls:19} {kind:7} {ours[0]:9.4f} {theirs[0]:9.4f} {ours[1]:9.4f} {theirs[1]:9.4f} "
                f"{ratios[0]:9.2f} {ratios[1]:9.2f}  {verdict}"
            )


def hot_tier_cost(
    blocks: CountingBlocks, index: CountingIndex, text: str, kind: str, start_ms: int, end_ms: int
) -> tuple[int, int]:
    """DynamoDB requests and bytes of one query over the hot-tier reader (the series-table cache cold)."""
    engine = Engine(HotTierReader("bench", blocks, index, clock_ms=lambda: END_MS), max_samples=10**9)
    if kind == "range":
        return counted(blocks, index, lambda: engine.range(text, start_ms, end_ms, STEP_MS))
    return counted(blocks, index, lambda: engine.instant(text, end_ms))


def counted(blocks: CountingBlocks, index: CountingIndex, run: Callable[[], object]) -> tuple[int, int]:
    """DynamoDB requests and bytes that ``run`` issues, starting with a cold series-table cache."""
    from novacron.storage import reader as reader_module

    reader_module._TABLES.clear()
    before = (blocks.requests + index.requests, blocks.bytes)
    run()
    return blocks.requests + index.requests - before[0], blocks.bytes - before[1]


def panel_cost(
    engine: Engine, blocks: CountingBlocks, index: CountingIndex, text: str, start_ms: int, end_ms: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Requests and bytes of a range query through a fresh results cache, then of its refresh a step later."""
    now = [end_ms]
    cache = ResultsCache(LruResultsStore(2**31), "bench", clock_ms=lambda: now[0])
    cold = counted(blocks, index, lambda: cache.range(engine, text, start_ms, end_ms, STEP_MS))
    now[0] += STEP_MS
    warm = counted(blocks, index, lambda: cache.range(engine, text, start_ms + STEP_MS, end_ms + STEP_MS, STEP_MS))
    return cold, warm


def hot_tier_refresh(blocks: CountingBlocks, index: CountingIndex, start_ms: int, end_ms: int) -> None:
    """DynamoDB requests and bytes of a panel's first load and of its refresh through the results cache."""
    print(f"\n{'hot tier via results cache':27} {'first load':>18} {'refresh':>18}  query (first of each class)")
    engine = Engine(HotTierReader("bench", blocks, index, clock_ms=lambda: END_MS), max_samples=10**9)
    for texts in CORPUS.values():
        text = texts[0]
        cold, warm = panel_cost(engine, blocks, index, text, start_ms, end_ms)
        print(
            f"{'':27} {cold[0]:6d} req {cold[1] / 1e6:6.2f} MB {warm[0]:6d} req {warm[1] / 1e6:6.2f} MB  {text}",
            flush=True,
        )


if __name__ == "__main__":
    main()
