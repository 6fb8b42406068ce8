"""Series for the forecasting tests: a daily pattern, a ramp, noise, all on a 5-minute grid unless said."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.forecast.model import DAY_MS, HOUR_MS, Floats, Ints

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
STEP_MS = 300_000


def grid(days: float, step_ms: int = STEP_MS) -> Ints:
    """Timestamps from START_MS every ``step_ms`` for ``days``."""
    return START_MS + step_ms * np.arange(int(days * DAY_MS / step_ms), dtype=np.int64)


def daily_pattern(t: Ints) -> Floats:
    """A request rate with a morning peak: 100 at night, 160 at 10:00 UTC."""
    hours = (t % DAY_MS) / HOUR_MS
    return np.asarray(100 + 60 * np.exp(-(((hours - 10) / 2.5) ** 2)), dtype=np.float64)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: the tests are deterministic."""
    return np.random.default_rng(7)
