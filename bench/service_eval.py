"""Per-service multivariate models (Isolation Forest) on the simulated shop: quality and speed.

For each of ``--seeds`` (default 0 1 2: three estates, about a minute each), the simulator
(novacron.simulate) scrapes the whole estate every 60 s for ``--train-days`` days (3: Monday-Wednesday)
without injected faults (its random restarts happen as usual), then one test day (Thursday: a later
day would run into the weekend, which the training days do not show) with one fault every ``--every``
minutes, cycling through FAULTS over the services named there. Samples go into an
in-memory reader; each service's features (novacron.detect.features.service_features, from the metric
and label names its series carry) are evaluated as PromQL range queries at a 60 s step through
novacron.promql.Engine -- the same expressions the scorer runs. One model per service is trained on
the training days and scores every test minute. The figures are summed over the seeds (and printed
per seed overall), at the default sensitivity (anomaly: score >= 0.5) and, re-thresholding the same
scores, over the sensitivities 0.1-0.9 (the precision/recall curve). A minute is *flagged* when the
scorer would hold an episode open there, by the scorer's own rule
(novacron.detect.service_scorer.episode_minutes: an episode opens on the second anomalous minute in a
row, or on a critical one, so that a single non-critical minute raises nothing).

Definitions, per service model:
- a fault *affects* its own service and every service that calls it directly or through others (they
  feel it through the dependency graph); a minute is *normal* for a service when no fault affecting it
  is active in it or in the TAIL_MINUTES before it (5-minute rates still hold the fault then);
- an alarm is a run of flagged minutes (merged across up to ALARM_GAP unflagged ones); it is *true*
  when it overlaps a fault affecting that service (window plus tail), *false* otherwise;
- a fault is *detected* when its own service's model flags a minute in [start, end + tail]; its
  *delay* is the first such minute's distance from the start, in minutes;
- per fault kind, over the services that kind was injected on: *recall* (faults detected / faults),
  *precision* (true alarms / alarms on those services' models, over the test days), the false-alarm
  rate (flagged normal minutes / normal minutes) and the median delay.
The *all* line covers every service model.

Labelling choice (issue 6): a restart's aftermath -- a process's memory a quarter lower for 15-30
minutes while caches refill, after a random restart, an instance coming back from ``down`` or a
``leak``'s OOM kill -- is real and visible, but not an anomaly an SRE wants paged for, so it is not
given a recovery tail here: the models count memory below usual as usual (novacron.detect.features.
high_only), and a flag in a restart's aftermath counts as false. With the time-of-day profile (the
peak is usual at peak time), the two-minute opening rule and a minute alarming only when rarer than
one training minute in 10,000 (novacron.detect.service_model), the false alarms left are events of the
simulation rather than noise: a cache's memory well below usual for a quarter of an hour, an error
burst on a service whose error ratio was always 0.

Two checks of the calibration: how many training minutes (in sample) reach tail levels 2, 3 and the
default's (documented: 10^-L), and how the critical score splits faults from normal minutes (a
critical minute opens an episode on its own). Training time, model size and scoring time are measured
on the first seed's models; scoring one row is timed as the scorer runs it (one call per row).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from novacron.detect.events import CRITICAL_SCORE
from novacron.detect.features import ServiceFeature, feature_matrix, service_features
from novacron.detect.service_model import MIDPOINT_LEVEL, ServiceModel, train_model
from novacron.detect.service_scorer import ScorerSettings, episode_minutes
from novacron.promql import Engine
from novacron.query.memory_reader import InMemorySeriesReader
from novacron.series import METRIC_NAME, Labels
from novacron.simulate import Estate, EstateSimulator, Fault, FaultSchedule, parse_fault

START_S = 1_767_571_200  # a Monday, 00:00 UTC
STEP_S = 60
WARM_S = 15 * 60  # the first minutes: counters have no rate yet
TAIL_MINUTES = 6
ALARM_GAP = 2
# One test day per seed: the simulator's weekend starts after Friday, and the models learn Monday-Wednesday.
TEST_DAYS = 1
SENSITIVITY = 0.5
CURVE = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
# Kind, spec (without the timing): cycled over the test days.
FAULTS: tuple[tuple[str, str], ...] = (
    ("latency on a database", "latency:postgres:+40ms"),
    ("errors on payment", "errors:payment:20%"),
    ("memory leak", "leak:recommendation:1GiB"),
    ("latency on payment", "latency:payment:+300ms"),
    ("cpu saturation", "cpu:currency:3x"),
    ("instance down", "down:cart:1"),
    ("errors on catalog", "errors:product-catalog:5%"),
)

Floats = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]


@dataclass
class Injected:
    """One injected fault and the bench's name for its kind."""

    kind: str
    fault: Fault


@dataclass
class ServiceRun:
    """A service's model and its scores of the test minutes."""

    model: ServiceModel
    scores: Floats
    train_seconds: float
    model_bytes: int
    train_levels: Floats  # the training rows' tail levels (in sample), to check the calibration

    def flags(self, sensitivity: float) -> Flags:
        """The test minutes the scorer would hold an episode open at, at ``sensitivity``."""
        return episode_minutes(self.scores, 1 - sensitivity, ScorerSettings().episode_gap)


@dataclass
class SeedRun:
    """One simulated estate (one seed): its faults, test minutes and service models."""

    seed: int
    estate: Estate
    injected: list[Injected]
    test_times: npt.NDArray[np.int64]
    test_rows: dict[str, Floats]
    runs: dict[str, ServiceRun]
    simulate_seconds: float
    query_seconds: float


@dataclass
class KindReport:
    """The figures of one fault kind (or of all services)."""

    faults: int = 0
    detected: int = 0
    delays: list[float] = field(default_factory=list)
    alarms: int = 0
    true_alarms: int = 0
    normal_minutes: int = 0
    flagged_normal: int = 0


def schedule(test_start_s: int, test_days: float, every_min: int, duration_min: int) -> list[Injected]:
    """One fault every ``every_min`` minutes of the test days, cycling through FAULTS."""
    injected = []
    slot = 0
    offset = 60 * 60  # an hour in, so that the first fault is not at midnight
    while offset + duration_min * 60 <= test_days * 86400:
        kind, spec = FAULTS[slot % len(FAULTS)]
        fault = parse_fault(f"{spec}@{offset}s/{duration_min}m").at(test_start_s)
        injected.append(Injected(kind, fault))
        slot += 1
        offset += every_min * 60
    return injected


def simulate(
    estate: Estate, faults: Sequence[Fault], end_s: int
) -> tuple[InMemorySeriesReader, dict[str, dict[str, frozenset[str]]]]:
    """Scrape the estate every STEP_S into a reader; also each service's metric names -> label names."""
    simulator = EstateSimulator(estate, FaultSchedule(list(faults)))
    columns: dict[Labels, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for t in range(START_S, end_s + 1, STEP_S):
        scrape = simulator.scrape(float(t))
        for labels, value in scrape.samples:
            times, values = columns[labels]
            times.append(scrape.timestamp_ms)
            values.append(value)
    reader = InMemorySeriesReader()
    metrics: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for labels, (times, values) in columns.items():
        as_dict = dict(labels)
        reader.add(as_dict, np.asarray(times, dtype=np.int64), np.asarray(values))
        names = metrics[as_dict["service"]][as_dict[METRIC_NAME]]
        names.update(name for name in as_dict if name != METRIC_NAME)
    return reader, {svc: {m: frozenset(ls) for m, ls in by.items()} for svc, by in metrics.items()}


def affected_by(estate: Estate, fault: Fault) -> set[str]:
    """The fault's own service and every service that feels it through calls."""
    return {fault.service} | estate.upstream(fault.service)


def alarms(flags: Flags) -> list[tuple[int, int]]:
    """Runs of flagged minutes as (first, last) indexes, merged across up to ALARM_GAP unflagged ones."""
    runs: list[tuple[int, int]] = []
    for i in np.flatnonzero(flags):
        if runs and i - runs[-1][1] <= ALARM_GAP + 1:
            runs[-1] = (runs[-1][0], int(i))
        else:
            runs.append((int(i), int(i)))
    return runs


def fault_mask(times_ms: npt.NDArray[np.int64], faults: Sequence[Fault]) -> Flags:
    """Minutes within a fault's window or its tail."""
    mask = np.zeros(times_ms.size, dtype=bool)
    for fault in faults:
        mask |= (times_ms >= fault.start * 1000) & (times_ms < (fault.end + TAIL_MINUTES * 60) * 1000)
    return mask


def tally(
    report: KindReport,
    flags: Flags,
    times_ms: npt.NDArray[np.int64],
    affecting: Sequence[Fault],
    own: Sequence[Injected],
) -> None:
    """Add one service model's alarms, normal minutes and detections (``flags``: its flagged minutes)."""
    disturbed = fault_mask(times_ms, affecting)
    for first, last in alarms(flags):
        report.alarms += 1
        report.true_alarms += bool(disturbed[first : last + 1].any())
    report.normal_minutes += int((~disturbed).sum())
    report.flagged_normal += int((flags & ~disturbed).sum())
    for item in own:
        window = fault_mask(times_ms, [item.fault])
        hits = np.flatnonzero(flags & window)
        report.faults += 1
        if hits.size:
            report.detected += 1
            report.delays.append((times_ms[hits[0]] / 1000 - item.fault.start) / 60)


def train_and_score(
    tenant: str,
    service: str,
    features: Sequence[ServiceFeature],
    times_ms: npt.NDArray[np.int64],
    matrix: Floats,
    split_ms: int,
) -> ServiceRun:
    """Train on the rows before ``split_ms``; score the rows from it on."""
    train = times_ms < split_ms
    started = time.perf_counter()
    model = train_model(
        tenant, service, features, times_ms[train], matrix[train], version=1, now_ms=split_ms, step_s=STEP_S
    )
    seconds = time.perf_counter() - started
    scores = model.score(matrix[~train], times_ms[~train])
    levels = model.levels(matrix[train], times_ms[train])
    return ServiceRun(model, scores, seconds, len(model.to_bytes()), levels)


def row_latency_ms(run: ServiceRun, times_ms: npt.NDArray[np.int64], rows: Floats, count: int = 200) -> float:
    """Median milliseconds to score one row, one call per row (as the per-minute scorer does)."""
    took = []
    for ts, row in zip(times_ms[:count], rows[:count], strict=True):
        started = time.perf_counter()
        run.model.score(row[None, :], [ts])
        took.append(time.perf_counter() - started)
    return float(np.median(took) * 1000)


def full_size_timing() -> str:
    """Training time and size at the design limit: a week of minutes (10,080 rows) x 12 features."""
    rows = np.random.default_rng(0).standard_normal((10_080, 12))
    features = [ServiceFeature(f"f{i}", "resource", f"f{i}") for i in range(12)]
    times_ms = np.arange(10_080, dtype=np.int64) * STEP_S * 1000
    started = time.perf_counter()
    model = train_model("bench", "week", features, times_ms, rows, version=1, now_ms=0, step_s=STEP_S)
    seconds = time.perf_counter() - started
    return f"at the limit (10,080 rows x 12 features): training {seconds:.2f}s, {len(model.to_bytes()) / 1024:.0f} KiB"


def run_seed(seed: int, train_days: float, every_min: int, duration_min: int) -> SeedRun:
    """Simulate one estate (``seed``) for the training days and one test day, train and score its models."""
    estate = Estate(seed=seed)
    split_s = START_S + int(train_days * 86400)
    end_s = split_s + TEST_DAYS * 86400
    injected = schedule(split_s, TEST_DAYS, every_min, duration_min)
    started = time.perf_counter()
    reader, metrics = simulate(estate, [i.fault for i in injected], end_s)
    simulated = time.perf_counter() - started
    engine = Engine(reader)
    runs: dict[str, ServiceRun] = {}
    query_seconds = 0.0
    test_times: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
    test_rows: dict[str, Floats] = {}
    for service in sorted(metrics):
        features = service_features(service, metrics[service])
        started = time.perf_counter()
        times_ms, matrix = feature_matrix(engine, features, (START_S + WARM_S) * 1000, end_s * 1000, STEP_S * 1000)
        query_seconds += time.perf_counter() - started
        runs[service] = train_and_score("bench", service, features, times_ms, matrix, split_s * 1000)
        test_times = times_ms[times_ms >= split_s * 1000]
        test_rows[service] = matrix[times_ms >= split_s * 1000]
    return SeedRun(seed, estate, injected, test_times, test_rows, runs, simulated, query_seconds)


def reports(seeds: Sequence[SeedRun], sensitivity: float) -> tuple[dict[str, KindReport], KindReport]:
    """Per fault kind and over all service models, the figures at ``sensitivity``, summed over the seeds."""
    by_kind: dict[str, KindReport] = defaultdict(KindReport)
    overall = KindReport()
    for seed in seeds:
        for service, run in seed.runs.items():
            flags = run.flags(sensitivity)
            affecting = [i.fault for i in seed.injected if service in affected_by(seed.estate, i.fault)]
            own = [i for i in seed.injected if i.fault.service == service]
            tally(overall, flags, seed.test_times, affecting, own)
            for kind in sorted({i.kind for i in own}):
                tally(by_kind[kind], flags, seed.test_times, affecting, [i for i in own if i.kind == kind])
    return by_kind, overall


def describe(name: str, r: KindReport) -> str:
    """One table line."""
    recall = f"{r.detected}/{r.faults} = {r.detected / r.faults:.2f}" if r.faults else "-"
    precision = f"{r.true_alarms}/{r.alarms} = {r.true_alarms / r.alarms:.2f}" if r.alarms else "- (no alarms)"
    fpr = r.flagged_normal / r.normal_minutes if r.normal_minutes else 0.0
    delay = f"{np.median(r.delays):.0f}" if r.delays else "-"
    return f"{name:<24} {recall:>14} {precision:>16} {fpr:>10.4f} {delay:>10}"


def print_table(seeds: Sequence[SeedRun]) -> None:
    """The figures at the default sensitivity: per fault kind and overall summed over the seeds, then per seed."""
    by_kind, overall = reports(seeds, SENSITIVITY)
    print(f"\n{'fault kind':<24} {'recall':>14} {'precision':>16} {'FPR':>10} {'delay min':>10}")
    for kind, _ in FAULTS:
        if kind in by_kind:
            print(describe(kind, by_kind[kind]))
    print(describe("all services", overall))
    if len(seeds) > 1:
        for seed in seeds:
            print(describe(f"  seed {seed.seed}", reports([seed], SENSITIVITY)[1]))
    print("targets: precision >= 0.95, FPR <= 1 %, recall >= 0.90, median delay <= 2 minutes")
    print_critical(seeds)
    print_calibration(seeds)


def print_critical(seeds: Sequence[SeedRun]) -> None:
    """How the critical score (one minute opens an episode) splits faults from normal minutes."""
    faults = critical_faults = normal = critical_normal = 0
    for seed in seeds:
        for service, run in seed.runs.items():
            critical = run.scores >= CRITICAL_SCORE
            affecting = [i.fault for i in seed.injected if service in affected_by(seed.estate, i.fault)]
            disturbed = fault_mask(seed.test_times, affecting)
            normal += int((~disturbed).sum())
            critical_normal += int((critical & ~disturbed).sum())
            for item in seed.injected:
                if item.fault.service == service:
                    faults += 1
                    critical_faults += bool((critical & fault_mask(seed.test_times, [item.fault])).any())
    print(
        f"critical (score >= {CRITICAL_SCORE}): reached in {critical_faults} of {faults} faults, "
        f"on {critical_normal} of {normal} normal minutes"
    )


def print_calibration(seeds: Sequence[SeedRun]) -> None:
    """The share of training minutes (in sample) at tail level L or above, against the documented 10^-L."""
    levels = np.concatenate([run.train_levels for seed in seeds for run in seed.runs.values()])
    shares = ", ".join(
        f"L >= {level:g}: {int((levels >= level).sum())} ({(levels >= level).mean():.2e}, documented {10**-level:.0e})"
        for level in (2.0, 3.0, MIDPOINT_LEVEL)
    )
    print(f"training minutes (in sample, {levels.size} in all) {shares}; L >= {MIDPOINT_LEVEL:g} scores 0.5")


def print_curve(seeds: Sequence[SeedRun]) -> None:
    """Precision, recall, false-alarm rate and median delay over all service models, per sensitivity."""
    print(f"\nprecision/recall curve (all services, summed over the seeds)\n{'sensitivity':<24} "
          f"{'recall':>14} {'precision':>16} {'FPR':>10} {'delay min':>10}")  # fmt: skip
    for sensitivity in CURVE:
        print(describe(f"{sensitivity:.1f}", reports(seeds, sensitivity)[1]))


def print_costs(seed: SeedRun) -> None:
    """Training time, model size and scoring time of one seed's models, and at the design limit."""
    runs = seed.runs
    sizes = [r.model_bytes for r in runs.values()]
    train_s = [r.train_seconds for r in runs.values()]
    widest = max(runs, key=lambda s: len(runs[s].model.features))
    biggest = runs[widest]
    print(
        f"\nseed {seed.seed}: features per service {min(len(r.model.features) for r in runs.values())}-"
        f"{len(biggest.model.features)}; training rows per model {biggest.model.points}; "
        f"feature queries {seed.query_seconds:.1f}s in all"
    )
    print(f"training: median {np.median(train_s):.2f}s, max {max(train_s):.2f}s per model")
    print(f"model size: median {np.median(sizes) / 1024:.0f} KiB, max {max(sizes) / 1024:.0f} KiB")
    latency = row_latency_ms(biggest, seed.test_times, seed.test_rows[widest])
    print(f"scoring one row ({widest}, {len(biggest.model.features)} features): {latency:.2f} ms")
    print(full_size_timing())


def print_explanations(seed: SeedRun) -> None:
    """The drivers of the strongest alarm of each faulted service of one seed."""
    print(f"\nexample explanations (seed {seed.seed}, the strongest alarm of each faulted service):")
    for service in sorted({i.fault.service for i in seed.injected}):
        run = seed.runs[service]
        peak = int(np.argmax(run.scores))
        drivers = ", ".join(
            f"{d.feature} {d.value:.4g} (usual {d.expected:.4g}, {d.contribution:.0%})"
            for d in run.model.explain(seed.test_rows[service][peak], int(seed.test_times[peak]), top=3)
        )
        print(f"  {service:<16} score {run.scores[peak]:.3f}: {drivers}")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the evaluation and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-days", type=float, default=3.0)
    parser.add_argument("--every", type=int, default=120, help="minutes between injected faults")
    parser.add_argument("--duration", type=int, default=20, help="minutes each fault lasts")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="simulator seeds: one estate and model set each"
    )
    args = parser.parse_args(argv)

    seeds = []
    for seed in args.seeds:
        run = run_seed(seed, args.train_days, args.every, args.duration)
        print(
            f"seed {seed}: simulated {len(run.runs)} services, {(args.train_days + TEST_DAYS) * 1440:.0f} scrapes "
            f"in {run.simulate_seconds:.1f}s; train {args.train_days:g} d, test {TEST_DAYS} d with "
            f"{len(run.injected)} faults of {args.duration} min"
        )
        seeds.append(run)
    print(f"\nsensitivity {SENSITIVITY} (the default), {len(seeds)} seed(s): {', '.join(str(s) for s in args.seeds)}")
    print_table(seeds)
    print_curve(seeds)
    print_costs(seeds[0])
    print_explanations(seeds[0])


if __name__ == "__main__":
    main()
