"""Labelled series from the estate simulator: per-service metrics of a simulated shop, with injected faults.

The estate (:mod:`novacron.simulate.estate`) is scraped every ``step_s`` of simulated time for ``days``
days, as Prometheus would, and each service's series are derived from the scrapes the way a dashboard
would show them:

- ``request_rate``: requests/s over all its instances, routes and codes (``http_requests_total``);
- ``error_rate``: 5xx answers/s (codes 500 and 503);
- ``latency``: mean request duration in seconds (``_sum`` increase / ``_count`` increase);
- ``cpu``: cores used (``process_cpu_seconds_total`` rate);
- ``memory``: resident bytes summed over the instances.

Counter resets (restarts, which the simulator makes at random and after ``down`` and ``leak`` faults)
count the new value as the increase, as ``rate()`` does. Datastores expose only ``cpu`` and ``memory``.

Faults: after ``WARM_UP_DAYS`` (the detector has seen a week), ``faults`` faults of the simulator's five
kinds (latency, errors, down, cpu, leak) on random services, 20-60 minutes each and at least
``FAULT_SPACING_S`` apart, with chaos-like magnitudes. A fault is felt by its service and, through the
dependency graph, by its callers; which series show it is decided by what the fault *visibly changes*:
the same estate is scraped a second time without the faults (same seed, so the same noise and the same
random restarts), and a sample is labelled anomalous when, inside the fault's window (plus one step, as
a rate straddles the end), its value differs from the fault-free one by at least ``VISIBLE_SHARE`` of
that value and by at least ``VISIBLE_NOISE`` times the series' noise (the robust spread of its step to
step changes). A latency fault on ``payment`` thus labels payment's and checkout's latency, and
frontend's when the added time is large enough to show there; a ``down`` fault labels cpu and memory
(fewer instances report). Each run of labelled samples of a series is one anomaly event, named after
the fault's kind. Restarts that happen without a fault (about one per instance per five days) are
normal events and stay unlabelled.

Restarts, faulted or not, need two more decisions:

- The rate of a counter over an interval in which an instance restarted is not a measurement: what the
  instance counted between the last scrape and its restart is lost with the counter, so the sum over
  the instances dips by up to that instance's share. The stack does not score such a rate
  (``novacron.detect.service``), and the corpus leaves those samples of ``request_rate``,
  ``error_rate`` and ``cpu`` out (a missed scrape, as far as the detector can tell).
- A restarted instance refills its caches: its memory is a quarter lower and recovers over about half
  an hour. That change is real and visible, but it is a restart, not a fault: those samples of
  ``memory`` (``RESTART_WINDOW_S`` from the restart) are marked as benign ``restart`` events. The
  evaluation counts them neither as normal nor as anomalous, and reports how many were flagged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from novacron.detect.corpus import Event, LabelledSeries
from novacron.series import Labels
from novacron.simulate.estate import Estate, EstateSimulator, Kind
from novacron.simulate.faults import Fault, FaultKind, FaultSchedule

METRICS = ("request_rate", "error_rate", "latency", "cpu", "memory")
FAULT_KINDS = tuple(kind.value for kind in FaultKind)
START_S = 1_767_571_200  # 2026-01-05 00:00 UTC, a Monday
WARM_UP_DAYS = 8
FAULT_SPACING_S = 4 * 3600
# 5 %: the smallest change the detector is built to flag on a smooth series (5.5 x its 1 % floor). With
# 10 %, a fault's effects of 5-10 % (a cpu 13 % lower while one of three instances is down, a memory 7 %
# up under a cpu fault) counted as normal samples, and flagging them as false alarms.
VISIBLE_SHARE = 0.05
VISIBLE_NOISE = 3.0
RESTART_KIND = "restart"
RESTART_WINDOW_S = 45 * 60  # a restarted instance's caches (memory) are refilled by then
COUNTED_METRICS = ("request_rate", "error_rate", "cpu")  # rates of counters: unknown across a restart
_COUNTERS = frozenset(
    {
        "http_requests_total",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
        "process_cpu_seconds_total",
    }
)

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SimCorpus:
    """The series of one simulated run and the faults injected into it."""

    series: list[LabelledSeries]
    faults: tuple[Fault, ...]
    step_s: float


def draw_faults(
    estate: Estate, rng: np.random.Generator, count: int, days: float, warm_up_days: float = WARM_UP_DAYS
) -> tuple[Fault, ...]:
    """``count`` faults after the warm-up, on random services, spaced apart, deterministic for ``rng``."""
    if count <= 0:
        return ()
    apps = [name for name, spec in estate.services.items() if spec.kind is Kind.APP]
    first, last = START_S + warm_up_days * 86_400, START_S + days * 86_400 - 2 * 3600
    starts = np.sort(rng.uniform(first, last, count * 20))
    chosen: list[float] = []
    for start in starts.tolist():
        if not chosen or start - chosen[-1] >= FAULT_SPACING_S:
            chosen.append(start)
    picks = rng.choice(len(chosen), size=min(count, len(chosen)), replace=False)
    faults = []
    for i, index in enumerate(sorted(picks.tolist())):
        kind = FaultKind(FAULT_KINDS[i % len(FAULT_KINDS)])
        service = apps[int(rng.integers(len(apps)))]
        duration = float(rng.uniform(20, 60)) * 60
        magnitude = {
            FaultKind.LATENCY: float(rng.uniform(0.1, 0.8)),
            FaultKind.ERRORS: float(rng.uniform(0.05, 0.4)),
            FaultKind.DOWN: 1.0,
            FaultKind.CPU: float(rng.uniform(2.0, 4.0)),
            FaultKind.LEAK: float(rng.uniform(128, 1024)) * 1024**2,
        }[kind]
        faults.append(Fault(kind, service, magnitude, chosen[index], duration, source="corpus"))
    return tuple(faults)


def _service_metrics(
    estate: Estate, schedule: FaultSchedule, times: npt.NDArray[np.float64]
) -> tuple[dict[str, Floats], dict[str, npt.NDArray[np.bool_]]]:
    """``{"service/metric": values}`` at ``times`` (the first step has no rate: it is dropped), and per
    service, the samples at whose scrape one of its instances had restarted."""
    simulator = EstateSimulator(estate, schedule)
    previous: dict[Labels, float] = {}
    columns: dict[str, list[float]] = defaultdict(list)
    restarted: dict[str, list[bool]] = defaultdict(list)
    last_t = None
    for t in times.tolist():
        scrape = simulator.scrape(t)
        restarted_pods = set(scrape.restarted)
        services_restarted: set[str] = set()
        totals: dict[str, float] = defaultdict(float)
        for labels, value in scrape.samples:
            pairs = dict(labels)
            name, service = pairs["__name__"], pairs["service"]
            if pairs["pod"] in restarted_pods:
                services_restarted.add(service)
            if name == "process_resident_memory_bytes":
                totals[f"{service}/memory"] += value
                continue
            counter = name in _COUNTERS
            if not counter:
                continue
            before = previous.get(labels)
            previous[labels] = value
            if before is None:
                continue
            increase = value - before if value >= before else value  # a reset: the counter restarted at 0
            if name == "http_requests_total":
                totals[f"{service}/requests"] += increase
                if pairs["code"].startswith("5"):
                    totals[f"{service}/errors"] += increase
            elif name == "http_request_duration_seconds_sum":
                totals[f"{service}/duration"] += increase
            elif name == "http_request_duration_seconds_count":
                totals[f"{service}/count"] += increase
            else:
                totals[f"{service}/cpu_s"] += increase
        if last_t is not None:
            dt = t - last_t
            for name, spec in estate.services.items():
                restarted[name].append(name in services_restarted)
                columns[f"{name}/cpu"].append(totals[f"{name}/cpu_s"] / dt)
                columns[f"{name}/memory"].append(totals[f"{name}/memory"])
                if spec.kind is Kind.APP:
                    columns[f"{name}/request_rate"].append(totals[f"{name}/requests"] / dt)
                    columns[f"{name}/error_rate"].append(totals[f"{name}/errors"] / dt)
                    count = totals[f"{name}/count"]
                    # no request in the interval: the mean latency is unknown, carry the last one
                    latest = columns[f"{name}/latency"][-1] if columns[f"{name}/latency"] else 0.0
                    columns[f"{name}/latency"].append(totals[f"{name}/duration"] / count if count > 0 else latest)
        last_t = t
    metrics = {key: np.asarray(values, dtype=np.float64) for key, values in columns.items()}
    return metrics, {name: np.asarray(flags, dtype=bool) for name, flags in restarted.items()}


def visible_effect(faulted: Floats, clean: Floats, window: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Samples inside ``window`` where the faulted series departs visibly from the fault-free one."""
    steps = np.diff(clean)
    noise = 1.4826 * float(np.median(np.abs(steps - np.median(steps)))) / np.sqrt(2) if steps.size else 0.0
    departure = np.abs(faulted - clean)
    return window & (departure >= VISIBLE_SHARE * np.abs(clean)) & (departure >= VISIBLE_NOISE * noise)


def simulator_corpus(
    seed: int = 7, days: float = 10.0, step_s: float = 300.0, faults: int = 10, warm_up_days: float = WARM_UP_DAYS
) -> SimCorpus:
    """Per-service series of a simulated estate with ``faults`` injected faults, labelled where visible."""
    rng = np.random.default_rng(seed)
    estate = Estate(seed=seed)
    injected = draw_faults(estate, rng, faults, days, warm_up_days)
    times = (START_S + np.arange(int(days * 86_400 / step_s) + 1) * step_s).astype(np.float64)
    faulted, restarts = _service_metrics(estate, FaultSchedule(injected), times)
    clean, _ = _service_metrics(Estate(seed=seed), FaultSchedule(), times)
    sample_times = times[1:]  # the first scrape only starts the rates
    series = []
    for key in sorted(faulted):
        service, metric = key.rsplit("/", 1)
        # a counter's rate across a restart is not a measurement: that sample is left out
        keep = ~restarts[service] if metric in COUNTED_METRICS else np.ones(sample_times.size, dtype=bool)
        labels = np.zeros(int(keep.sum()), dtype=np.int8)
        events: list[Event] = []
        for fault in injected:
            # a rate over a step that overlaps the fault shows it: the window runs one step past its end
            window = (sample_times > fault.start) & (sample_times <= fault.end + step_s)
            for event in _runs(visible_effect(faulted[key], clean[key], window)[keep], fault.kind.value):
                labels[event.start : event.end + 1] = 1  # any anomaly: the events say of which fault kind
                events.append(event)
        if metric == "memory":
            events.extend(_restart_events(sample_times[keep], restarts[service], sample_times, labels))
        timestamps_ms = (sample_times[keep] * 1000).astype(np.int64)
        events.sort(key=lambda e: e.start)
        series.append(LabelledSeries(key, timestamps_ms, faulted[key][keep], labels, tuple(events), step_s))
    return SimCorpus(series, injected, step_s)


def _restart_events(
    kept_times: Floats, restarted: npt.NDArray[np.bool_], sample_times: Floats, labels: npt.NDArray[np.int8]
) -> list[Event]:
    """Benign ``restart`` events: from each scrape that saw a restart, for ``RESTART_WINDOW_S`` (caches
    refill), on the samples no fault labels."""
    flags = np.zeros(kept_times.size, dtype=bool)
    for t in sample_times[restarted].tolist():
        flags |= (kept_times >= t) & (kept_times < t + RESTART_WINDOW_S)
    flags &= labels == 0
    return [replace(event, benign=True) for event in _runs(flags, RESTART_KIND)]


def _runs(flags: npt.NDArray[np.bool_], kind: str) -> list[Event]:
    """One event per run of consecutive flagged samples (runs one unflagged sample apart are one)."""
    indices = np.flatnonzero(flags)
    if not indices.size:
        return []
    breaks = np.flatnonzero(np.diff(indices) > 2)
    starts = np.concatenate(([indices[0]], indices[breaks + 1]))
    ends = np.concatenate((indices[breaks], [indices[-1]]))
    return [Event(kind, int(s), int(e), benign=False) for s, e in zip(starts, ends, strict=True)]
