"""Anomaly detection quality and speed: the streaming detector on a labelled corpus.

The corpus (novacron.detect.corpus) holds, per anomaly kind, a few two-week series of a seasonal request
rate (5-minute samples with jitter, dropped samples and gaps) with 3-5 injected anomalies of that kind
after the first week, plus series with no anomaly; every series also has its normal events (daily
peaks, weekends, deploy restarts), which must not alarm. Each series is replayed through one
SeriesDetector, sample by sample, as the stream would.

Definitions:
- an event is *detected* when a sample in [start, max(end, start + 2)] is flagged; its *delay* is the
  first flagged sample's distance from the start, in samples and in seconds;
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
  reported on their own line.

Scores do not depend on the sensitivity (it only moves the threshold), so the precision/recall curve
re-thresholds the recorded scores. Throughput is measured by replaying a 20,000-sample series.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from novacron.detect.corpus import ANOMALY_KINDS, BENIGN_KINDS, DAY_S, LabelledSeries, corpus, labelled_series
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


def replay(series: LabelledSeries) -> Replay:
    """Run the series through a fresh detector, sample by sample."""
    detector = SeriesDetector()
    scores = np.empty(series.values.size)
    warming = np.empty(series.values.size, dtype=bool)
    started = time.process_time()
    for i, (t, v) in enumerate(zip(series.timestamps_ms.tolist(), series.values.tolist(), strict=True)):
        verdict = detector.observe(t, v)
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


def counted_samples(run: Replay) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """The samples precision and FPR count: not warming up, and outside every anomaly's recovery tail."""
    counted = ~run.warming
    for event in run.series.events:
        if not event.benign:
            counted[event.end + 1 : event.end + 1 + RECOVERY_TAIL] = False
    return counted | (run.series.labels > 0)


def tally(run: Replay, threshold: float) -> Tally:
    """Event recall, delays, sample precision and FPR of one replayed series at a score threshold."""
    series = run.series
    flagged = run.scores >= threshold
    seconds = (series.timestamps_ms - series.timestamps_ms[0]) / 1000.0
    anomalous = series.labels > 0
    result = Tally()
    for event in series.events:
        if event.benign:
            continue
        result.events += 1
        window = np.flatnonzero(flagged[event.start : max(event.end, event.start + 2) + 1])
        if window.size:
            result.detected += 1
            first = event.start + int(window[0])
            result.delays.append(first - event.start)
            result.delays_s.append(float(seconds[first] - seconds[event.start]))
    counted = counted_samples(run)
    normal = counted & ~anomalous
    result.flagged_anomalous = int((flagged & anomalous & counted).sum())
    result.flagged_outside_tails = int((flagged & counted).sum())
    result.normal = int(normal.sum())
    result.flagged_normal = int((flagged & normal).sum())
    result.alarms, result.true_alarms = alarm_counts(flagged & ~run.warming, ~counted | anomalous)
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


def by_kind(runs: list[Replay], threshold: float) -> dict[str, Tally]:
    """Tallies per anomaly kind (the series of that kind), for the normal series, and overall."""
    rows: dict[str, Tally] = {}
    for run in runs:
        kind = run.series.name.rsplit("-", 1)[0]
        rows.setdefault(kind, Tally()).add(tally(run, threshold))
    overall = Tally()
    for row in rows.values():
        overall.add(row)
    rows["all"] = overall
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=7, help="corpus seed (default 7)")
    parser.add_argument("--per-kind", type=int, default=3, help="series per anomaly kind (default 3)")
    parser.add_argument("--normal-series", type=int, default=3, help="series without anomalies (default 3)")
    parser.add_argument("--days", type=int, default=14, help="days per series (default 14)")
    parser.add_argument("--sensitivity", type=float, default=0.5, help="the default sensitivity (0.5)")
    parser.add_argument("--throughput-points", type=int, default=20_000)
    args = parser.parse_args()

    series = corpus(args.seed, args.per_kind, args.normal_series, args.days)
    runs = [replay(s) for s in series]
    points = sum(r.series.values.size for r in runs)
    cpu = sum(r.seconds for r in runs)
    threshold = 1.0 - args.sensitivity
    print(
        f"corpus: {len(runs)} series, {points:,} samples, "
        f"{sum(1 for r in runs for e in r.series.events if not e.benign)} anomalies "
        f"(seed {args.seed}); sensitivity {args.sensitivity} (score >= {threshold:.2f})"
    )
    print(
        f"\n  {'kind':<18} {'events':>6} {'recall':>7} {'precision':>9} {'alarms':>6} {'alarm prec':>10}"
        f" {'FPR':>7} {'F1':>6}"
        f" {'delay pts':>9} {'delay s':>8}"
    )
    rows = by_kind(runs, threshold)
    for kind in (*ANOMALY_KINDS, "normal", "all"):
        if kind not in rows:
            continue
        row = rows[kind]
        recall = f"{row.recall:.3f}" if row.events else "-"
        f1 = f"{row.f1:.3f}" if row.events else "-"
        precision = f"{row.precision:.3f}" if row.events else "-"
        print(
            f"  {kind:<18} {row.events:>6} {recall:>7} {precision:>9} {row.alarms:>6} {row.alarm_precision:>10.3f}"
            f" {row.fpr:>7.2%} {f1:>6}"
            f" {_median(row.delays):>9.1f} {_median(row.delays_s):>8.0f}"
        )
    print("  targets: precision >= 0.95, FPR <= 1%, recall >= 0.90, median delay <= 2 samples")

    flagged, total = warm_up_fpr(runs, threshold)
    print(f"  warm-up (the first two days, left out above): {flagged} of {total:,} normal samples flagged")
    print("\n  normal events (flagged samples / samples inside them, after warm-up and outside recovery tails)")
    for kind, (flagged, total) in benign_fpr(runs, threshold).items():
        print(f"    {kind:<16} {flagged:>6} / {total:<7} {flagged / total if total else 0:>7.2%}")

    print(
        f"\n  precision/recall curve (all kinds)\n    {'sensitivity':>11} {'precision':>9} {'alarm prec':>10}"
        f" {'recall':>7} {'FPR':>7} {'delay pts':>9}"
    )
    for sensitivity in CURVE:
        row = by_kind(runs, 1.0 - sensitivity)["all"]
        print(
            f"    {sensitivity:>11.1f} {row.precision:>9.3f} {row.alarm_precision:>10.3f} {row.recall:>7.3f}"
            f" {row.fpr:>7.2%} {_median(row.delays):>9.1f}"
        )

    seconds, rate = throughput(args.throughput_points, args.seed)
    print(
        f"\n  throughput: corpus {points / cpu:,.0f} samples/s per core; one {args.throughput_points:,}-sample "
        f"series in {seconds:.2f} s ({rate:,.0f} samples/s)"
    )


if __name__ == "__main__":
    main()
