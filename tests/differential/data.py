"""The deterministic data set both engines are loaded with: counters, gauges, histograms, gaps, stale series.

Samples sit at ``T0 + 15 s·k + 137 ms`` and every evaluation time (instant times, range-query steps,
``@`` times in the corpus) at ``… + 500 ms``: whole-second ranges, offsets and subquery steps then
never put a sample or a subquery point exactly on a window edge, where Prometheus 2.42 (left edge
included) and NovaCron (left-open windows, as Prometheus 3) deliberately differ.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from novacron.series import STALE_NAN

SEED = 20260427
T0_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z, a whole minute
SCRAPE_MS = 15_000
JITTER_MS = 137
SCRAPES = 481  # two hours at 15 s, both ends included
END_MS = T0_MS + (SCRAPES - 1) * SCRAPE_MS + JITTER_MS

JOBS = ("api", "worker")
INSTANCES = ("10.0.0.1:9100", "10.0.0.2:9100", "10.0.0.3:9100", "10.0.0.4:9100")
CODES = ("200", "404", "500", "503")
METHODS = ("get", "post", "put")
BUCKETS = ("0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf")


@dataclass(frozen=True)
class Series:
    """One generated series: its labels (``__name__`` included) and (timestamp ms, value) samples."""

    labels: dict[str, str]
    samples: list[tuple[int, float]]


def sample_time(k: int) -> int:
    """The timestamp of scrape ``k``."""
    return T0_MS + k * SCRAPE_MS + JITTER_MS


def eval_time(offset_s: int) -> float:
    """An evaluation time ``offset_s`` seconds after ``T0`` (plus the half second), in unix seconds."""
    return (T0_MS + offset_s * 1000 + 500) / 1000


def _counter(rng: random.Random, scale: int, resets: bool) -> list[float]:
    value, out = float(rng.randint(0, 50)), []
    for _ in range(SCRAPES):
        if resets and rng.random() < 0.01:
            value = float(rng.randint(0, 3))  # a process restart: the counter starts again near zero
        else:
            value += rng.randint(0, scale)
        out.append(value)
    return out


def _gauge(rng: random.Random, base: float, spread: float) -> list[float]:
    value, out = base, []
    for _ in range(SCRAPES):
        value = round(value + rng.uniform(-spread, spread), 2)
        out.append(value)
    return out


def _every_scrape(values: list[float]) -> list[tuple[int, float]]:
    return [(sample_time(k), v) for k, v in enumerate(values)]


def _requests(rng: random.Random) -> list[Series]:
    out = []
    for job in JOBS:
        for instance in INSTANCES:
            for code in CODES:
                for method in METHODS:
                    scale = 40 if code == "200" else 5
                    labels = {
                        "__name__": "http_requests_total",
                        "job": job,
                        "instance": instance,
                        "code": code,
                        "method": method,
                    }
                    out.append(Series(labels, _every_scrape(_counter(rng, scale, resets=code == "500"))))
    return out


def _histograms(rng: random.Random) -> list[Series]:
    out = []
    for job in JOBS:
        for instance in INSTANCES:
            counts = [0.0] * len(BUCKETS)
            total = 0.0
            rows: list[list[float]] = [[] for _ in BUCKETS]
            sums, totals = [], []
            for _ in range(SCRAPES):
                for _obs in range(rng.randint(0, 12)):
                    seconds = rng.expovariate(3.0)
                    total += seconds
                    for i, le in enumerate(BUCKETS):
                        if le == "+Inf" or seconds <= float(le):
                            counts[i] += 1
                for i in range(len(BUCKETS)):
                    rows[i].append(counts[i])
                sums.append(round(total, 6))
                totals.append(counts[-1])
            base = {"job": job, "instance": instance}
            name = "http_request_duration_seconds"
            for le, row in zip(BUCKETS, rows, strict=True):
                out.append(Series({"__name__": f"{name}_bucket", **base, "le": le}, _every_scrape(row)))
            out.append(Series({"__name__": f"{name}_sum", **base}, _every_scrape(sums)))
            out.append(Series({"__name__": f"{name}_count", **base}, _every_scrape(totals)))
    return out


def _gauges(rng: random.Random) -> list[Series]:
    out = []
    for job in JOBS:
        for instance in INSTANCES:
            base = {"job": job, "instance": instance}
            memory = _gauge(rng, 2e9, 5e6)
            out.append(Series({"__name__": "node_memory_used_bytes", **base}, _every_scrape(memory)))
            temperature = _gauge(rng, 20.0, 1.5)  # drifts below zero on some instances
            out.append(Series({"__name__": "node_temperature_celsius", **base}, _every_scrape(temperature)))
            up = [1.0 if rng.random() > 0.05 else 0.0 for _ in range(SCRAPES)]
            out.append(Series({"__name__": "up", **base}, _every_scrape(up)))
    return out


def _gappy(rng: random.Random) -> list[Series]:
    """Gauges with silences longer than the 5-minute lookback (missed scrapes, no staleness marker)."""
    out = []
    for i, instance in enumerate(INSTANCES):
        values = _gauge(rng, 100.0, 10.0)
        gaps = [(60 + 20 * i, 60 + 20 * i + 30 + 4 * i), (300 + 10 * i, 330 + 10 * i)]
        samples = [(sample_time(k), v) for k, v in enumerate(values) if not any(lo <= k < hi for lo, hi in gaps)]
        out.append(Series({"__name__": "batch_queue_depth", "job": "batch", "instance": instance}, samples))
    return out


def _stale(rng: random.Random) -> list[Series]:
    """Counters and gauges that end with a staleness marker (a target that went away), one coming back."""
    out = []
    for i, instance in enumerate(INSTANCES):
        stop = 200 + 40 * i
        counter = _counter(rng, 10, resets=False)
        samples = [(sample_time(k), counter[k]) for k in range(stop)] + [(sample_time(stop), STALE_NAN)]
        if i == 0:  # comes back later as a fresh process
            samples += [(sample_time(k), float(k - 399)) for k in range(400, SCRAPES)]
        base = {"job": "ephemeral", "instance": instance}
        out.append(Series({"__name__": "ephemeral_jobs_total", **base}, samples))
        gauge = _gauge(rng, 5.0, 1.0)
        gauge_samples = [(sample_time(k), gauge[k]) for k in range(stop + 17)] + [(sample_time(stop + 17), STALE_NAN)]
        out.append(Series({"__name__": "ephemeral_load", **base}, gauge_samples))
    return out


def generate() -> list[Series]:
    """Every series of the data set, the same on every call."""
    rng = random.Random(SEED)
    return _requests(rng) + _histograms(rng) + _gauges(rng) + _gappy(rng) + _stale(rng)
