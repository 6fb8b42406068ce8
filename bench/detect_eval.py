"""Anomaly detection quality and speed: the streaming detector on a labelled corpus.

The corpus (novacron.detect.corpus) holds, per anomaly kind, a few two-week series of a seasonal request
rate (5-minute samples with jitter, dropped samples and gaps) with 3-5 injected anomalies of that kind
after the first week, plus series with no anomaly; every series also has its normal events (daily
peaks, weekends, deploy restarts), which must not alarm. Each series is replayed through one
SeriesDetector, sample by sample, as the stream would.

A second section replays the *simulator corpus* (novacron.detect.sim_corpus): ten days of a simulated
shop's per-service request rate, 5xx rate, mean latency, cpu and memory, scraped every 5 minutes, with
ten injected faults (latency, errors, down, cpu, leak) labelled on the series they visibly change. Its
rows are per metric (false alarms belong to series) and, for recall and delay, per fault kind.

Definitions:
- an event is *detected* when a sample in [start, max(end, start + 2)] is flagged; its *delay* is the
  first flagged sample's distance from the start, in samples and in seconds; *delay from onset* is
  measured from the event's onset instead (novacron.detect.corpus: the first sample at which the change
  reaches the band, 5.5 noise deviations; it differs from the start only for trend changes, whose ramp
  starts below the noise), and is negative when the detector called the ramp before that;
- *recall* is detected events / events (event level);
- a *normal* sample has no anomaly label and lies outside every anomaly's recovery tail: the
  RECOVERY_TAIL samples after its end, where the detector still adapts back (a return to the old
  level is itself a change) and which are neither normal nor anomalous;
- *precision* is flagged anomalous samples / flagged samples outside the tails (sample level), on the
  series of that kind; *alarm precision* is the same for alarms, what an on-call engineer sees: runs of
  flagged samples (merged across up to ALARM_GAP unflagged ones), true when one of their samples is
  anomalous or in a recovery tail; *FPR* is flagged normal samples / normal samples; F1 combines
  (sample) precision and recall.
- samples the detector marks ``warming_up`` (its first two days) are left out of FPR and precision and
  reported on their own line;
- so are the simulator's ``restart`` events (an instance refilling its caches after a restart: memory
  visibly lower for a while, not a fault; novacron.detect.sim_corpus): neither normal nor anomalous,
  they are left out of FPR, precision and alarms, and the flagged share is reported on its own line.

Scores do not depend on the sensitivity (it only moves the threshold), so the precision/recall curve
re-thresholds the recorded scores. Throughput is measured by replaying a 20,000-sample series.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from novacron.detect.corpus import ANOMALY_KINDS, BENIGN_KINDS, DAY_S, LabelledSeries, corpus, labelled_series
from novacron.detect.sim_corpus import FAULT_KINDS, METRICS, RESTART_KIND, simulator_corpus
from novacron.detect.stream import SeriesDetector

RECOVERY_TAIL = 24
ALARM_GAP = 3
CURVE = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class Replay:
    """One series and its detector's scores."""

    series: LabelledSeries
    scores: np.ndarray[Any, np.dtype[np.float64]]
    warming: np.ndarray[Any, np.dtype[np.bool_]]
    seconds: float


def replay(series: LabelledSeries, noise_floor: float = 0.0) -> Replay:
    """Run the series through a fresh detector, sample by sample (``noise_floor`` as the service gives it)."""
    detector = SeriesDetector()
    scores = np.empty(series.values.size)
    warming = np.empty(series.values.size, dtype=bool)
    started = time.process_time()
    for i, (t, v) in enumerate(zip(series.timestamps_ms.tolist(), series.values.tolist(), strict=True)):
        verdict = detector.observe(t, v, noise_floor)
        scores[i], warming[i] = verdict.score, verdict.warming_up
    return Replay(series, scores, warming, time.process_time() - started)


@dataclass
class Tally:
    """Counts behind one row of the table."""

    events: int = 0
    detected: int = 0
    flagged_anomalous: int = 0
    flagged_outside_tails: int = 0
    normal: int = 0
    flagged_normal: int = 0
    alarms: int = 0
    true_alarms: int = 0
    delays: list[int] = field(default_factory=list)
    delays_s: list[float] = field(default_factory=list)
    onset_delays: list[int] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.events += other.events
        self.detected += other.detected
        self.flagged_anomalous += other.flagged_anomalous
        self.flagged_outside_tails += other.flagged_outside_tails
        self.normal += other.normal
        self.flagged_normal += other.flagged_normal
        self.alarms += other.alarms
        self.true_alarms += other.true_alarms
        self.delays.extend(other.delays)
        self.delays_s.extend(other.delays_s)
        self.onset_delays.extend(other.onset_delays)

    @property
    def recall(self) -> float:
        return self.detected / self.events if self.events else float("nan")

    @property
    def precision(self) -> float:
        return self.flagged_anomalous / self.flagged_outside_tails if self.flagged_outside_tails else 1.0

    @property
    def alarm_precision(self) -> float:
        return self.true_alarms / self.alarms if self.alarms else 1.0

    @property
    def fpr(self) -> float:
        return self.flagged_normal / self.normal if self.normal else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


def restart_samples(series: LabelledSeries) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """The samples inside the series' ``restart`` events (neither normal nor anomalous)."""
    inside = np.zeros(series.values.size, dtype=bool)
    for event in series.events:
        if event.kind == RESTART_KIND:
            inside[event.start : event.end + 1] = True
    return inside


def counted_samples(run: Replay) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """The samples precision and FPR count: not warming up, outside every anomaly's recovery tail and
    outside restarts."""
    counted = ~run.warming & ~restart_samples(run.series)
    for event in run.series.events:
        if not event.benign:
            counted[event.end + 1 : event.end + 1 + RECOVERY_TAIL] = False
    return counted | (run.series.labels > 0)


def tally(run: Replay, threshold: float, event_kind: str | None = None) -> Tally:
    """Event recall, delays, sample precision and FPR of one replayed series at a score threshold
    (``event_kind``: count only the events of that kind, and nothing else)."""
    series = run.series
    flagged = run.scores >= threshold
    seconds = (series.timestamps_ms - series.timestamps_ms[0]) / 1000.0
    anomalous = series.labels > 0
    result = Tally()
    for event in series.events:
        if event.benign or (event_kind is not None and event.kind != event_kind):
            continue
        result.events += 1
        window = np.flatnonzero(flagged[event.start : max(event.end, event.start + 2) + 1])
        if window.size:
            result.detected += 1
            first = event.start + int(window[0])
            result.delays.append(first - event.start)
            result.delays_s.append(float(seconds[first] - seconds[event.start]))
            result.onset_delays.append(first - (event.start if event.onset is None else event.onset))
    if event_kind is not None:
        return result
    counted = counted_samples(run)
    normal = counted & ~anomalous
    result.flagged_anomalous = int((flagged & anomalous & counted).sum())
    result.flagged_outside_tails = int((flagged & counted).sum())
    result.normal = int(normal.sum())
    result.flagged_normal = int((flagged & normal).sum())
    alarming = flagged & ~run.warming & ~restart_samples(series)
    result.alarms, result.true_alarms = alarm_counts(alarming, ~counted | anomalous)
    return result


def alarm_counts(
    flagged: np.ndarray[Any, np.dtype[np.bool_]], anomalous: np.ndarray[Any, np.dtype[np.bool_]]
) -> tuple[int, int]:
    """(alarms, true alarms): an alarm is a run of flagged samples, merged across up to ALARM_GAP
    unflagged ones; it is true when one of its samples is anomalous or in an anomaly's recovery tail."""
    alarms = true = 0
    last = -ALARM_GAP - 2
    current_true = False
    for index in np.flatnonzero(flagged).tolist():
        if index - last > ALARM_GAP + 1:
            if alarms:
                true += current_true
            alarms += 1
            current_true = False
        current_true = current_true or bool(anomalous[index])
        last = index
    if alarms:
        true += current_true
    return alarms, true


def warm_up_fpr(runs: Iterable[Replay], threshold: float) -> tuple[int, int]:
    """(flagged, normal samples) while the detector was warming up."""
    flagged = total = 0
    for run in runs:
        normal = run.warming & (run.series.labels == 0)
        flagged += int((run.scores[normal] >= threshold).sum())
        total += int(normal.sum())
    return flagged, total


def restart_flags(runs: Iterable[Replay], threshold: float) -> tuple[int, int]:
    """(flagged, samples) inside ``restart`` events, after warm-up."""
    flagged = total = 0
    for run in runs:
        inside = restart_samples(run.series) & ~run.warming & (run.series.labels == 0)
        flagged += int((run.scores[inside] >= threshold).sum())
        total += int(inside.sum())
    return flagged, total


def benign_fpr(runs: Iterable[Replay], threshold: float) -> dict[str, tuple[int, int]]:
    """Per benign event kind: (flagged samples, samples) inside those events, among the counted samples."""
    counts = {kind: [0, 0] for kind in BENIGN_KINDS}
    for run in runs:
        counted = counted_samples(run)
        for event in run.series.events:
            if not event.benign:
                continue
            span = slice(event.start, event.end + 1)
            keep = counted[span] & (run.series.labels[span] == 0)
            counts[event.kind][0] += int((run.scores[span] >= threshold)[keep].sum())
            counts[event.kind][1] += int(keep.sum())
    return {kind: (flagged, total) for kind, (flagged, total) in counts.items()}


def synthetic_kind(series: LabelledSeries) -> str:
    """The row of a synthetic series: its anomaly kind (or ``normal``)."""
    return series.name.rsplit("-", 1)[0]


def simulated_metric(series: LabelledSeries) -> str:
    """The row of a simulator series: its metric."""
    return series.name.rsplit("/", 1)[1]


def by_kind(
    runs: list[Replay], threshold: float, row_of: Callable[[LabelledSeries], str] = synthetic_kind
) -> dict[str, Tally]:
    """Tallies per row (by default the synthetic series' anomaly kind, with the normal series) and overall."""
    rows: dict[str, Tally] = {}
    for run in runs:
        rows.setdefault(row_of(run.series), Tally()).add(tally(run, threshold))
    overall = Tally()
    for row in rows.values():
        overall.add(row)
    rows["all"] = overall
    return rows


def by_event_kind(runs: list[Replay], threshold: float, kinds: Iterable[str]) -> dict[str, Tally]:
    """Recall and delays per event kind, over every series (precision has no kind: false alarms have none)."""
    rows = {kind: Tally() for kind in kinds}
    for run in runs:
        for kind, row in rows.items():
            row.add(tally(run, threshold, event_kind=kind))
    return rows


def _median(values: list[int] | list[float] | None) -> float:
    return float(np.median(values)) if values else float("nan")


def throughput(points: int, seed: int) -> tuple[float, float]:
    """(seconds, samples per second) to replay one series of ``points`` samples on one core."""
    days = int(np.ceil(points * 300 / DAY_S / 0.97)) + 1
    series = labelled_series("spike", seed, days=days)
    series = LabelledSeries(
        series.name,
        series.timestamps_ms[:points],
        series.values[:points],
        series.labels[:points],
        (),
        series.interval_s,
    )
    run = replay(series)
    return run.seconds, points / run.seconds


HEADER = (
    f"  {'row':<18} {'events':>6} {'recall':>7} {'precision':>9} {'alarms':>6} {'alarm prec':>10}"
    f" {'FPR':>7} {'F1':>6} {'delay pts':>9} {'delay s':>8} {'from onset':>10}"
)


def print_table(rows: dict[str, Tally], order: Iterable[str]) -> None:
    """One line per row present: the metrics at one threshold."""
    print(HEADER)
    for kind in order:
        if kind not in rows:
            continue
        row = rows[kind]
        recall = f"{row.recall:.3f}" if row.events else "-"
        f1 = f"{row.f1:.3f}" if row.events else "-"
        precision = f"{row.precision:.3f}" if row.events else "-"
        print(
            f"  {kind:<18} {row.events:>6} {recall:>7} {precision:>9} {row.alarms:>6} {row.alarm_precision:>10.3f}"
            f" {row.fpr:>7.2%} {f1:>6} {_median(row.delays):>9.1f} {_median(row.delays_s):>8.0f}"
            f" {_median(row.onset_delays):>10.1f}"
        )
    print("  targets: precision >= 0.95, FPR <= 1%, recall >= 0.90, median delay <= 2 samples")


def print_curve(runs: list[Replay], row_of: Callable[[LabelledSeries], str], rows: Iterable[str]) -> None:
    """Precision, recall, FPR and delay per sensitivity, overall and per row."""
    print(
        f"\n  precision/recall curve\n    {'row':<18} {'sensitivity':>11} {'precision':>9} {'alarm prec':>10}"
        f" {'recall':>7} {'FPR':>7} {'F1':>6} {'delay pts':>9}"
    )
    curves = {sensitivity: by_kind(runs, 1.0 - sensitivity, row_of) for sensitivity in CURVE}
    for name in ("all", *rows):
        for sensitivity in CURVE:
            row = curves[sensitivity].get(name)
            if row is None or not row.events:
                continue
            print(
                f"    {name:<18} {sensitivity:>11.1f} {row.precision:>9.3f} {row.alarm_precision:>10.3f}"
                f" {row.recall:>7.3f} {row.fpr:>7.2%} {row.f1:>6.3f} {_median(row.delays):>9.1f}"
            )


def synthetic_section(args: argparse.Namespace, threshold: float) -> tuple[int, float]:
    """The generated corpus: table, warm-up, normal events, curve; (samples, CPU seconds)."""
    runs = [replay(s) for s in corpus(args.seed, args.per_kind, args.normal_series, args.days)]
    print(
        f"synthetic corpus: {len(runs)} series, {sum(r.series.values.size for r in runs):,} samples, "
        f"{sum(1 for r in runs for e in r.series.events if not e.benign)} anomalies "
        f"(seed {args.seed}); sensitivity {args.sensitivity} (score >= {threshold:.2f})\n"
    )
    print_table(by_kind(runs, threshold), (*ANOMALY_KINDS, "normal", "all"))
    flagged, total = warm_up_fpr(runs, threshold)
    print(f"  warm-up (the first two days, left out above): {flagged} of {total:,} normal samples flagged")
    print("\n  normal events (flagged samples / samples inside them, after warm-up and outside recovery tails)")
    for kind, (flagged, total) in benign_fpr(runs, threshold).items():
        print(f"    {kind:<16} {flagged:>6} / {total:<7} {flagged / total if total else 0:>7.2%}")
    print_curve(runs, synthetic_kind, ANOMALY_KINDS)
    return sum(r.series.values.size for r in runs), sum(r.seconds for r in runs)


def simulator_section(args: argparse.Namespace, threshold: float) -> tuple[int, float]:
    """The simulator corpus: per metric, per fault kind, curve; (samples, CPU seconds)."""
    sim = simulator_corpus(args.seed, days=args.sim_days, step_s=args.sim_step)
    # rates of counted events move by one event per interval as a matter of course, as in the service
    counted = ("request_rate", "error_rate")
    runs = [replay(s, 1.0 / sim.step_s if simulated_metric(s) in counted else 0.0) for s in sim.series]
    events = sum(1 for r in runs for e in r.series.events)
    print(
        f"\n\nsimulator corpus: {len(runs)} service metrics, "
        f"{sum(r.series.values.size for r in runs):,} samples every {sim.step_s:.0f} s over {args.sim_days:g} days, "
        f"{len(sim.faults)} faults, labelled on {events} series (seed {args.seed})"
    )
    first_s = sim.series[0].timestamps_ms[0] / 1000
    for fault in sim.faults:
        print(
            f"    {fault.kind.value:<8} {fault.service:<16} day {(fault.start - first_s) / DAY_S:5.2f}"
            f" for {fault.duration or 0:5.0f} s"
        )
    print("\n  per metric")
    print_table(by_kind(runs, threshold, simulated_metric), (*METRICS, "all"))
    print("\n  per fault kind (recall and delay: false alarms have no kind)")
    print_table(by_event_kind(runs, threshold, FAULT_KINDS), FAULT_KINDS)
    flagged, total = warm_up_fpr(runs, threshold)
    print(f"  warm-up (left out above): {flagged} of {total:,} normal samples flagged")
    flagged, total = restart_flags(runs, threshold)
    print(f"  restarts (memory while caches refill; left out above): {flagged} of {total:,} samples flagged")
    print_curve(runs, simulated_metric, METRICS)
    return sum(r.series.values.size for r in runs), sum(r.seconds for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7, help="corpus seed (default 7)")
    parser.add_argument("--per-kind", type=int, default=3, help="series per anomaly kind (default 3)")
    parser.add_argument("--normal-series", type=int, default=3, help="series without anomalies (default 3)")
    parser.add_argument("--days", type=int, default=14, help="days per series (default 14)")
    parser.add_argument("--sensitivity", type=float, default=0.5, help="the default sensitivity (0.5)")
    parser.add_argument("--throughput-points", type=int, default=20_000)
    parser.add_argument("--sim-days", type=float, default=10.0, help="simulated days (default 10; 0: skip)")
    parser.add_argument("--sim-step", type=float, default=300.0, help="simulator scrape step in s (default 300)")
    args = parser.parse_args()

    threshold = 1.0 - args.sensitivity
    points, cpu = synthetic_section(args, threshold)
    if args.sim_days > 0:
        more, seconds = simulator_section(args, threshold)
        points, cpu = points + more, cpu + seconds
    seconds, rate = throughput(args.throughput_points, args.seed)
    print(
        f"\n  throughput: both corpora {points / cpu:,.0f} samples/s per core; one {args.throughput_points:,}-sample "
        f"series in {seconds:.2f} s ({rate:,.0f} samples/s)"
    )


if __name__ == "__main__":
    main()
