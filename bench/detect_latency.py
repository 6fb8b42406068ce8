"""Anomaly latency on the local stack (sample ingest → anomaly episode in the API) and scoring throughput.

Latency: ``--probes`` gauges ``latency_probe{probe="i"}`` get a steady noisy value every second (at real
time, from a background writer) until the detector is past its warm-up; then, probe by probe, one
series gets a spike sample at time T (when its remote-write request is sent), and
``GET /api/v1/anomalies?metric=latency_probe`` is polled every 50 ms until an episode of that series
with ``peak_ms`` equal to the spike's timestamp appears. The path is the full one: gateway → ingest
handler → Kinesis (moto) → event-source-mapping poller → detect handler → DynamoDB (moto) → query
handler. The reference in the same loop is the plain freshness of the same spike (visible to
``/api/v1/query``), which goes through the writer instead of the detector. Target (issue 6): p95 <= 5 s.
Each probe spikes its own series, so every spike is a new episode. The local poller polls every 0.2 s
(Lambda: about once a second), which the figures include.

Throughput: ``DetectionService.detect_batch`` in process with in-memory stores, on ``--series`` series
of the simulated estate times ``--scrapes`` scrapes (15 s apart), one Kinesis batch per scrape as the
ingest path packs it, the service's clock following the scrapes (so checkpoints happen as often as
they would). CPU time (process_time) gives samples per core; the reference is the bare
``SeriesDetector.observe`` on the same series' samples.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.freshness import percentile, query
from bench.workload import SCRAPE_INTERVAL_MS, estate_series, remote_write_body, scrapes
from novacron.auth import generate_key, register_key
from novacron.detect.events import Anomaly, AnomalyEvent
from novacron.detect.service import SKIPPED_SUFFIXES, DetectionService, SeriesKey, StoredState
from novacron.detect.stream import MIN_SCORED, SeriesDetector
from novacron.ingest.service import IngestService
from novacron.local.resources import physical_name
from novacron.local.runtime import LocalRuntime, configure_logging
from novacron.series import Labels, metric_name
from novacron.simulate.remote_write import RemoteWriteClient
from novacron.wiring import KEYS_TABLE

PROBE_METRIC = "latency_probe"
LEVEL, NOISE = 100.0, 2.0
SPIKE = 1_000.0  # ~450 robust sigmas above the level: a certain spike at any sensitivity
WARMUP_SAMPLES = 3 * MIN_SCORED  # past the spike warm-up, with a few residuals for the scale
TICK_S = 1.0
POLL_S = 0.05
TIMEOUT_S = 30.0
TARGET_P95_S = 5.0


def probe_labels(probe: int) -> dict[str, str]:
    return {"__name__": PROBE_METRIC, "job": "bench", "probe": str(probe)}


def anomalies(url: str, key: str, metric: str) -> list[dict]:  # type: ignore[type-arg]
    """``GET /api/v1/anomalies?metric=...`` (open and resolved episodes)."""
    request = urllib.request.Request(
        f"{url}/api/v1/anomalies?{urllib.parse.urlencode({'metric': metric, 'limit': 1000})}",
        headers={"Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]  # type: ignore[no-any-return]


class SteadyWriter(threading.Thread):
    """Writes one steady noisy sample of every probe series each second, except the paused ones."""

    def __init__(self, client: RemoteWriteClient, probes: int) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.probes = probes
        self.ticks = 0
        self._rng = random.Random(1)
        self._lock = threading.Lock()
        self._paused: set[int] = set()
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            with self._lock:
                now_ms = int(time.time() * 1000)
                self.client.write(
                    [
                        (probe_labels(p), [(now_ms, LEVEL + self._rng.gauss(0.0, NOISE))])
                        for p in range(self.probes)
                        if p not in self._paused
                    ]
                )
                self.ticks += 1
            self._stopping.wait(max(0.0, TICK_S - (time.monotonic() - started)))

    def pause(self, probe: int) -> None:
        """Stop writing ``probe``; returns once no write of it is in flight (so a spike is its newest sample)."""
        with self._lock:
            self._paused.add(probe)

    def resume(self, probe: int) -> None:
        with self._lock:
            self._paused.discard(probe)

    def stop(self) -> None:
        self._stopping.set()
        self.join()


@dataclass
class Probe:
    """One spike's timings (None: not seen within the timeout)."""

    event_s: float | None = None
    fresh_s: float | None = None


def run_probe(url: str, spiker: RemoteWriteClient, read_key: str, probe: int) -> Probe:
    """Spike one series and poll until the spike is visible to a query and as an anomaly episode."""
    labels, value = probe_labels(probe), SPIKE + probe
    selector = f'{PROBE_METRIC}{{probe="{probe}"}}'
    result = Probe()
    spike_ms = int(time.time() * 1000)
    sent = time.perf_counter()
    if not spiker.write([(labels, [(spike_ms, value)])]):
        raise SystemExit(f"probe {probe}: the spike was not accepted")
    while result.event_s is None or result.fresh_s is None:
        if result.fresh_s is None:
            found = query(url, read_key, selector)
            if found and float(found[0]["value"][1]) == value:
                result.fresh_s = time.perf_counter() - sent
        if result.event_s is None:
            episodes = anomalies(url, read_key, PROBE_METRIC)
            if any(a["labels"].get("probe") == str(probe) and a["peak_ms"] == spike_ms for a in episodes):
                result.event_s = time.perf_counter() - sent
        if time.perf_counter() - sent > TIMEOUT_S:
            break
        time.sleep(POLL_S)
    return result


def measure_latency(probes: int) -> list[Probe]:
    """Start the local stack, warm the probe series up, and spike each once."""
    results = []
    with LocalRuntime() as runtime:
        ingest_key, read_key = generate_key(), generate_key()
        register_key(ingest_key, "bench", "ingest", physical_name(KEYS_TABLE))
        register_key(read_key, "bench", "read", physical_name(KEYS_TABLE))
        steady = SteadyWriter(RemoteWriteClient(runtime.url, ingest_key), probes)
        spiker = RemoteWriteClient(runtime.url, ingest_key)
        steady.start()
        try:
            while steady.ticks < WARMUP_SAMPLES:
                time.sleep(0.2)
            jitter = random.Random(2)
            for probe in range(probes):
                steady.pause(probe)
                results.append(run_probe(runtime.url, spiker, read_key, probe))
                steady.resume(probe)
                # Off the poller's and the writer's beat, so the spikes sample every phase of them.
                time.sleep(jitter.uniform(0.1, 0.6))
        finally:
            steady.stop()
    return results


def summary(values: list[float]) -> str:
    def ms(v: float) -> str:
        return f"{v * 1000:.0f} ms" if math.isfinite(v) else f"> {TIMEOUT_S:.0f} s"

    return f"p50 {ms(statistics.median(values))}   p95 {ms(percentile(values, 0.95))}   max {ms(max(values))}"


def report_latency(results: list[Probe]) -> None:
    events = [r.event_s if r.event_s is not None else math.inf for r in results]
    fresh = [r.fresh_s if r.fresh_s is not None else math.inf for r in results]
    missed_events = sum(r.event_s is None for r in results)
    missed_fresh = sum(r.fresh_s is None for r in results)
    print(f"anomaly latency on the local stack ({len(results)} probes, one spike each, polled every 50 ms)")
    print(f"  sample ingest -> anomaly episode in /api/v1/anomalies   {summary(events)}")
    print(f"  reference: same spike visible to /api/v1/query          {summary(fresh)}")
    if missed_events or missed_fresh:
        print(f"  not seen within {TIMEOUT_S:.0f} s: {missed_events} episodes, {missed_fresh} query results")
    p50_fresh, p50_event = statistics.median(fresh), statistics.median(events)
    if math.isfinite(p50_fresh) and math.isfinite(p50_event):
        ratio = p50_event / p50_fresh
        print(f"  ratio (p50): the anomaly takes {ratio:.2f}x the query freshness")
    p95 = percentile(events, 0.95)
    print(f"  target: p95 <= {TARGET_P95_S:.0f} s -> {'PASS' if p95 <= TARGET_P95_S else 'MISS'}")


class MemoryStates:
    """StateStore in memory (states are read back on a cold series, so they are kept)."""

    def __init__(self) -> None:
        self.items: dict[SeriesKey, StoredState] = {}
        self.puts = 0

    def get_states(self, keys: Sequence[SeriesKey]) -> dict[SeriesKey, StoredState]:
        return {key: self.items[key] for key in keys if key in self.items}

    def put_states(self, states: dict[SeriesKey, StoredState], expires_at: int) -> None:
        self.items.update(states)
        self.puts += len(states)


@dataclass
class CountingSinks:
    """AnomalyStore and EventSink that count."""

    anomalies: int = 0
    events: list[str] = field(default_factory=list)

    def put_anomalies(self, anomalies: Sequence[Anomaly], expires_at: int) -> None:
        self.anomalies += len(anomalies)

    def put_events(self, events: Sequence[AnomalyEvent]) -> None:
        self.events.extend(e.detail_type for e in events)


def measure_throughput(series: int, scrape_count: int) -> None:
    """detect_batch on the estate, one batch per scrape, against the bare detector on the same samples."""
    end_ms = int(time.time() * 1000)
    history = scrapes(estate_series(series), scrape_count, end_ms)
    first_ms = end_ms - (scrape_count - 1) * SCRAPE_INTERVAL_MS
    ingest = IngestService(sink=None, clock_ms=lambda: end_ms)  # type: ignore[arg-type]
    batches, samples_in, sequence = [], 0, 0
    for i in range(scrape_count):
        body, _, samples = remote_write_body(history[i : i + 1], first_ms + i * SCRAPE_INTERVAL_MS, series)
        records, _ = ingest.pack_remote_write(body, "bench")
        numbered = []
        for record in records:
            sequence += 1
            numbered.append((f"{sequence:056d}", record.data))
        batches.append(numbered)
        samples_in += samples

    clock = [first_ms / 1000]
    states, sinks = MemoryStates(), CountingSinks()
    service = DetectionService(states, sinks, sinks, clock=lambda: clock[0])
    scored = 0
    started = time.process_time()
    for i, batch in enumerate(batches):
        clock[0] = (first_ms + i * SCRAPE_INTERVAL_MS) / 1000
        scored += service.detect_batch(batch).samples_scored
    service_cpu = time.process_time() - started

    # The reference: the same series' samples straight into detectors (gauge values, no decoding, no rates).
    by_series: dict[Labels, list[float]] = {}
    for scrape in history:
        for labels, value in scrape[:series]:
            if not metric_name(labels).endswith(SKIPPED_SUFFIXES):
                by_series.setdefault(labels, []).append(value)
    observed = 0
    started = time.process_time()
    for values in by_series.values():
        detector = SeriesDetector()
        for i, value in enumerate(values):
            detector.observe(first_ms + i * SCRAPE_INTERVAL_MS, value)
        observed += len(values)
    observe_cpu = time.process_time() - started

    service_rate, observe_rate = scored / service_cpu, observed / observe_cpu
    print(
        f"scoring throughput, one core: {series:,} series of the simulated estate x {scrape_count} scrapes "
        f"({samples_in:,} samples in {len(batches)} batches of {len(batches[0])} records)"
    )
    print(
        f"  DetectionService.detect_batch   {service_rate:,.0f} samples/s per core "
        f"({scored:,} scored in {service_cpu:.2f} s CPU; {samples_in / service_cpu:,.0f} samples in/s, "
        "counting the histogram buckets and counters' first samples, which are not scored)"
    )
    print(f"  reference: SeriesDetector.observe   {observe_rate:,.0f} samples/s per core ({observed:,} samples)")
    print(
        f"  ratio: the service scores at {service_rate / observe_rate:.2f}x the bare detector's rate "
        f"(states written {states.puts:,}, episodes stored {sinks.anomalies:,}, events {len(sinks.events):,})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", type=int, default=30, help="spikes to time (one probe series each)")
    parser.add_argument("--series", type=int, default=2_000, help="estate series for the throughput run")
    parser.add_argument("--scrapes", type=int, default=60, help="scrapes of them for the throughput run")
    args = parser.parse_args()
    configure_logging(40)
    # The handlers log every anomaly event at INFO (Powertools reads its level when they are loaded).
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    began = time.perf_counter()
    report_latency(measure_latency(args.probes))
    print()
    # After the stack has stopped, so that process_time counts the scoring alone.
    measure_throughput(args.series, args.scrapes)
    print(f"\n(total run {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
