"""Series for the detector tests: a seeded daily-seasonal request rate, sampled every 5 minutes."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from novacron.detect.events import Anomaly, Severity, Status
from novacron.detect.stream import SeriesDetector, Verdict

STEP_MS = 300_000
DAY_MS = 86_400_000
START_MS = 1_767_571_200_000  # a Monday, 00:00 UTC
NOISE = 5.0


def daily_rate(timestamp_ms: int, weekend_share: float = 1.0) -> float:
    """The noiseless rate: 100 at night, a peak of 400 at 13:00 (its swing times ``weekend_share`` on
    Saturdays and Sundays)."""
    hours = (timestamp_ms % DAY_MS) / 3_600_000
    weekend = (timestamp_ms - START_MS) // DAY_MS % 7 >= 5
    return 100.0 + 300.0 * (weekend_share if weekend else 1.0) * math.exp(-0.5 * ((hours - 13.0) / 3.0) ** 2)


def seasonal_series(days: float, seed: int = 1, weekend_share: float = 1.0) -> tuple[list[int], list[float]]:
    """Timestamps and values of ``days`` days of the daily rate with Gaussian noise, from a Monday."""
    rng = np.random.default_rng(seed)
    times = [START_MS + i * STEP_MS for i in range(int(days * DAY_MS / STEP_MS))]
    values = [daily_rate(t, weekend_share) + float(rng.normal(0.0, NOISE)) for t in times]
    return times, values


def replay(detector: SeriesDetector, times: list[int], values: list[float]) -> list[Verdict]:
    """Every verdict of the detector on the samples, in order."""
    return [detector.observe(t, v) for t, v in zip(times, values, strict=True)]


@pytest.fixture
def warm_detector() -> tuple[SeriesDetector, list[int], list[float]]:
    """A detector that has seen three days of the seasonal series, and those samples."""
    times, values = seasonal_series(3)
    detector = SeriesDetector()
    replay(detector, times, values)
    return detector, times, values


def episode(start_ms: int, metric: str = "latency_seconds", **changes: object) -> Anomaly:
    """A resolved spike episode of acme's ``metric`` starting at ``start_ms`` (any field replaced by ``changes``)."""
    anomaly = Anomaly(
        id=f"e{start_ms}",
        tenant="acme",
        series_id="00ff",
        labels=(("__name__", metric), ("job", "api")),
        metric=metric,
        status=Status.RESOLVED,
        start_ms=start_ms,
        end_ms=start_ms + 60_000,
        peak_ms=start_ms,
        value=250.0,
        expected=100.0,
        lower=80.0,
        upper=120.0,
        score=0.9,
        methods=("spike",),
        confidence=1.0,
        warming_up=False,
        severity=Severity.WARNING,
        scored_as="value",
        detector_version="stream-v1",
    )
    return replace(anomaly, **changes)  # type: ignore[arg-type]
