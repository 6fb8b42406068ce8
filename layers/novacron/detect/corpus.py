"""Labelled series for evaluating the detector: realistic seasonal metrics with known anomalies.

A series is a service's request rate: a daily curve (quiet night, a morning ramp, a midday peak and an
evening shoulder), weekends at a lower share of weekday traffic, Gaussian noise, sampled every 5 minutes
with jitter, dropped samples and a few gaps of an hour or more. Deterministic for a seed.

Injected anomalies (labelled, one kind per series so each kind is measured on its own):
``spike`` (1 sample up 8-15 sigma), ``dip`` (1-3 samples down 8-15 sigma), ``level_shift`` (3-12 h at
+-5-8 sigma), ``trend_change`` (a ramp of 0.4-0.8 sigma per sample for 4-8 h, then back), ``seasonality_break``
(a day's peak that does not come: 5 h at the night-time level; 2-3 of them, 1.5 days
apart at least) and ``variance_change`` (noise x4-6 for
2-6 h).

Each anomaly also records its *onset*: the first sample at which the injected change is as large as the
detector's band at the default sensitivity, ``BAND_SIGMAS`` noise standard deviations. It is the start
for every kind but two. A ``trend_change``'s ramp starts below the noise and reaches the band only after
7-14 samples. A ``variance_change`` adds noise 4-6 times as wide: each sample reaches the band with a
chance of about one in four, so its first such sample is a few samples in (before it, only a test over
several samples can tell, which the detector's variance method is). Detection delays of these two kinds
are also measured from the onset.

Normal events, which must not alarm, are listed as benign events: each day's ``daily_peak`` (10:00-16:00),
``weekend_dip`` (Saturdays and Sundays) and ``deploy_restart``: a rolling restart briefly costs 2-3.5 sigma
of throughput for one or two samples — within what the noise does every day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

ANOMALY_KINDS = ("spike", "dip", "level_shift", "trend_change", "seasonality_break", "variance_change")
BENIGN_KINDS = ("daily_peak", "weekend_dip", "deploy_restart")
NORMAL = 0
DAY_S = 86_400
WARM_UP_DAYS = 8  # anomalies are injected after this many days: the detector has seen a whole week
START_MS = 1_767_571_200_000  # 2026-01-05 00:00 UTC, a Monday
SPACING = 150  # samples (12.5 hours) at least between two anomalies
BAND_SIGMAS = 5.5  # the detector's band at the default sensitivity, in noise standard deviations


@dataclass(frozen=True)
class Event:
    """A labelled stretch of a series: ``start`` and ``end`` are sample indices, both included; ``onset``
    (None: ``start``) is the first sample at which the change reaches ``BAND_SIGMAS`` noise deviations."""

    kind: str
    start: int
    end: int
    benign: bool
    onset: int | None = None


@dataclass(frozen=True)
class LabelledSeries:
    """One series with, per sample, 0 (normal) or 1 + the index of its anomaly kind in ANOMALY_KINDS."""

    name: str
    timestamps_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int8]
    events: tuple[Event, ...]
    interval_s: float


def label_code(kind: str) -> int:
    """The per-sample label of an anomaly kind."""
    return ANOMALY_KINDS.index(kind) + 1


def _daily_shape(hours: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Traffic through the day in [0, 1]: peak around 13:00, a shoulder at 20:00, quiet at night."""
    peak = np.exp(-0.5 * ((hours - 13.0) / 3.0) ** 2)
    evening = 0.45 * np.exp(-0.5 * ((hours - 20.0) / 1.8) ** 2)
    return np.clip(peak + evening, 0.0, 1.0)


def _timestamps(rng: np.random.Generator, days: int, interval_s: float) -> npt.NDArray[np.float64]:
    """Sample times in seconds from the start: jittered, with dropped samples and a few gaps."""
    count = int(days * DAY_S / interval_s)
    seconds = np.arange(count) * interval_s + rng.uniform(-0.2, 0.2, count) * interval_s
    keep = rng.random(count) > 0.02
    for _ in range(2):  # gaps of one to three hours
        start = rng.uniform(1, days - 0.5) * DAY_S
        keep &= ~((seconds >= start) & (seconds < start + rng.uniform(3600, 3 * 3600)))
    return np.sort(np.clip(seconds[keep], 0, None))


def labelled_series(kind: str | None, seed: int, days: int = 14, interval_s: float = 300.0) -> LabelledSeries:
    """A series with 3-5 anomalies of ``kind`` (none when None) and the normal events, deterministic."""
    if kind is not None and kind not in ANOMALY_KINDS:
        raise ValueError(f"unknown anomaly kind {kind!r}; one of {', '.join(ANOMALY_KINDS)}")
    rng = np.random.default_rng(seed)
    seconds = _timestamps(rng, days, interval_s)
    hours = (seconds % DAY_S) / 3600.0
    weekday = (seconds // DAY_S).astype(np.int64) % 7  # 0 = Monday
    weekend = weekday >= 5
    base = rng.uniform(200.0, 2000.0)
    amplitude = base * rng.uniform(1.0, 3.0)
    sigma = base * rng.uniform(0.03, 0.06)
    weekend_share = rng.uniform(0.4, 0.7)
    curve = base + amplitude * _daily_shape(hours) * np.where(weekend, weekend_share, 1.0)
    noise = rng.normal(0.0, sigma, seconds.size)
    values = curve + noise
    labels = np.zeros(seconds.size, dtype=np.int8)
    events: list[Event] = []

    def index_at(day: float) -> int:
        return int(np.searchsorted(seconds, day * DAY_S))

    for day in range(days):
        first, last = index_at(day + 10 / 24), index_at(day + 16 / 24) - 1
        if last > first:
            events.append(Event("daily_peak", first, last, benign=True))
    for day in range(days):
        if day % 7 == 5:
            first, last = index_at(day), index_at(min(day + 2, days)) - 1
            events.append(Event("weekend_dip", first, last, benign=True))
    for _ in range(int(rng.integers(4, 7))):
        start = int(rng.integers(50, seconds.size - 5))
        width = int(rng.integers(1, 3))
        values[start : start + width] -= rng.uniform(2.0, 3.5) * sigma
        events.append(Event("deploy_restart", start, start + width - 1, benign=True))

    if kind is not None:
        taken: list[tuple[int, int]] = []
        first_allowed = index_at(WARM_UP_DAYS)
        wanted = int(rng.integers(3, 6))
        # a peak missing on most days is the new normal: breaks come at least a day and a half apart
        spacing = 432 if kind == "seasonality_break" else SPACING
        for _ in range(100):
            if len(taken) == wanted:
                break
            free = _free_start(rng, first_allowed, seconds.size - 200, taken, spacing)
            if free is None:
                break
            trial = values.copy()
            first, end, onset = _inject(kind, rng, free, seconds, trial, curve, base, sigma)
            if (kind == "seasonality_break" and end - first < 12) or any(
                first <= e + spacing and end >= s - spacing for s, e in taken
            ):
                continue  # a seasonality break lands on a later day than drawn: maybe past the end, or on another
            values[:] = trial
            taken.append((first, end))
            labels[first : end + 1] = label_code(kind)
            events.append(Event(kind, first, end, benign=False, onset=onset))
    # a deploy restart inside an anomaly is part of the anomaly, not a separate benign event
    events = [e for e in events if not (e.kind == "deploy_restart" and labels[e.start : e.end + 1].any())]
    timestamps_ms = (START_MS + np.round(seconds * 1000)).astype(np.int64)
    name = f"{kind or 'normal'}-{seed}"
    return LabelledSeries(name, timestamps_ms, values, labels, tuple(sorted(events, key=lambda e: e.start)), interval_s)


def _free_start(
    rng: np.random.Generator, low: int, high: int, taken: list[tuple[int, int]], spacing: int
) -> int | None:
    """A start index at least ``spacing`` samples away from the anomalies already injected."""
    for _ in range(100):
        start = int(rng.integers(low, high))
        if all(abs(start - s) > spacing and abs(start - e) > spacing for s, e in taken):
            return start
    return None


def _inject(
    kind: str,
    rng: np.random.Generator,
    start: int,
    seconds: npt.NDArray[np.float64],
    values: npt.NDArray[np.float64],
    curve: npt.NDArray[np.float64],
    base: float,
    sigma: float,
) -> tuple[int, int, int | None]:
    """Change ``values`` from about ``start`` on; returns the anomaly's first and last index, and its onset
    when that is later than its first index."""
    size = seconds.size
    sign = 1.0 if rng.random() < 0.5 else -1.0
    if kind == "spike":
        values[start] += rng.uniform(8, 15) * sigma
        return start, start, None
    if kind == "dip":
        end = min(start + int(rng.integers(0, 3)), size - 1)
        values[start : end + 1] -= rng.uniform(8, 15) * sigma
        return start, end, None
    if kind == "level_shift":
        end = _end_after(seconds, start, rng.uniform(3, 12) * 3600)
        values[start : end + 1] += sign * rng.uniform(5, 8) * sigma
        return start, end, None
    if kind == "trend_change":
        end = _end_after(seconds, start, rng.uniform(4, 8) * 3600)
        steps = np.arange(end + 1 - start)
        rate = rng.uniform(0.4, 0.8)
        values[start : end + 1] += sign * rate * sigma * (steps + 1)
        return start, end, min(start + math.ceil(BAND_SIGMAS / rate) - 1, end)
    if kind == "seasonality_break":
        # the next peak does not come: from 10:30 for five hours traffic stays at the night-time level
        day = np.floor(seconds[start] / DAY_S)
        first = min(int(np.searchsorted(seconds, (day + 1 + 10.5 / 24) * DAY_S)), size - 1)
        end = _end_after(seconds, first, 5 * 3600)
        values[first : end + 1] += base - curve[first : end + 1]
        return first, end, None
    if kind == "variance_change":
        end = _end_after(seconds, start, rng.uniform(2, 6) * 3600)
        added = rng.normal(0.0, sigma * rng.uniform(4, 6), end + 1 - start)
        values[start : end + 1] += added
        # the wider noise is as large as the band only at some samples: the first of them is the onset
        visible = np.flatnonzero(np.abs(added) >= BAND_SIGMAS * sigma)
        return start, end, start + int(visible[0]) if visible.size and visible[0] > 0 else None
    raise ValueError(kind)


def _end_after(seconds: npt.NDArray[np.float64], start: int, duration_s: float) -> int:
    return int(min(np.searchsorted(seconds, seconds[start] + duration_s), seconds.size - 1))


def corpus(seed: int = 7, per_kind: int = 3, normal_series: int = 3, days: int = 14) -> list[LabelledSeries]:
    """``per_kind`` series of each anomaly kind plus ``normal_series`` without anomalies."""
    series = [
        labelled_series(kind, seed * 1000 + k * 100 + i, days)
        for k, kind in enumerate(ANOMALY_KINDS)
        for i in range(per_kind)
    ]
    series += [labelled_series(None, seed * 1000 + 900 + i, days) for i in range(normal_series)]
    return series
