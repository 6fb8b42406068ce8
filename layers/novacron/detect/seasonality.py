"""The seasonal profile of one series: coarse slot medians over eight days, and which seasonality fits.

History is kept as one robust value per 15-minute slot (the median of the samples that fell in it), in a
ring of eight days, indexed by the slot's absolute number (time, not sample index, so irregular sampling
and gaps need nothing special). Three out-of-sample predictions of the last 24 hours are compared every
hour by the median absolute deviation of their residuals: no seasonality (the day's median), daily (the
median of the same slot over the previous six days) and weekly (the daily one plus how the same stretch
a week earlier departed from it). Daily seasonality is chosen when, in some comparison of the last week,
it cut the residual MAD by 40 %; weekly when it cut the better of the two others by 40 % (weekends are
what make it win, so wins are remembered for a week). A weekly pattern therefore needs a week of
history and one more weekend to be learnt.

Until then the daily baseline is a median over days that include the weekend's two quieter ones, so it
is only as good as the other days are complete: a slot missing from one weekday (a gap of an hour in
the samples) would let the quiet days outvote the busy ones and sink that stretch of the baseline. The
baselines therefore read the history with gaps of up to four hours bridged linearly between the slots
either side; the model comparison and the normal range read what was actually seen.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
import numpy.typing as npt

SLOT_MS = 15 * 60 * 1000
SLOTS_PER_DAY = 96
SLOTS_PER_WEEK = 7 * SLOTS_PER_DAY
RING_SLOTS = 8 * SLOTS_PER_DAY
MAX_SLOT_SAMPLES = 64  # enough for a robust slot median; later samples of a dense slot are not kept
MIN_DAYS_FOR_SEASONALITY = 2
IMPROVEMENT = 0.6  # a seasonal model must bring the residual MAD below this share of the simpler one's
MIN_COMPARED_SLOTS = 24
WEEKLY_SMOOTHING = 5  # slots
MAX_SPREAD = 4  # slots either side
BASELINE_DAYS = 3  # the baseline is kept for this far back: the window of 64 samples, at up to ~hourly sampling
EVALUATION_SLOTS = 4  # the models are compared every hour, on the last day
REMEMBERED = 7 * 24  # a model's wins are remembered for a week of hourly comparisons
MAX_FILLED_SLOTS = 16  # a gap of up to four hours inside the history is bridged for the baselines

Floats = npt.NDArray[np.float64]


def _row_medians(values: Floats) -> Floats:
    """The median of each row's finite values (NaN for a row without any); ``np.nanmedian`` is slower."""
    ordered = np.sort(values, axis=1)  # NaN sorts last
    counts = np.isfinite(values).sum(axis=1)
    rows = np.arange(values.shape[0])
    low, high = np.maximum((counts - 1) // 2, 0), np.maximum(counts // 2, 0)
    high = np.minimum(high, values.shape[1] - 1)
    medians = 0.5 * (ordered[rows, low] + ordered[rows, high])
    return np.where(counts > 0, medians, np.nan)


def _mad(residuals: Floats) -> float:
    """Median absolute deviation of the finite residuals around their median (NaN when too few)."""
    finite = residuals[np.isfinite(residuals)]
    if finite.size < MIN_COMPARED_SLOTS:
        return float("nan")
    return float(np.median(np.abs(finite - np.median(finite))))


class SeasonalProfile:
    """Slot history of one series and the seasonal baseline derived from it."""

    def __init__(self) -> None:
        self.ring: Floats = np.full(RING_SLOTS, np.nan)
        self.bridged: Floats = self.ring  # the ring with short gaps bridged (derived, not stored)
        self.slot: int | None = None  # absolute number of the slot being filled
        self.first_slot: int | None = None
        self.pending: list[float] = []
        self.model = "none"  # "none", "daily" or "weekly"
        # Set by a tenant's detection policy (not stored: the service sets it before every batch).
        self.forced_model: str | None = None
        self.daily_ratios: deque[float] = deque(maxlen=REMEMBERED)
        self.weekly_ratios: deque[float] = deque(maxlen=REMEMBERED)
        self.version = 0  # changes whenever the baseline does
        self.normal_range = (float("-inf"), float("inf"))
        self.swing = 0.0  # the baseline's range over the last day
        self._centers: Floats = np.zeros(1)
        self._values: Floats = np.zeros(1)

    # --- feeding ---------------------------------------------------------------------------------

    def add(self, timestamp_ms: int, value: float) -> None:
        """Account one sample. Completed slots (all in the past of this sample) update the baseline."""
        slot = timestamp_ms // SLOT_MS
        if self.slot is None:
            self.slot = self.first_slot = slot
            self._rebuild()
        if slot > self.slot:
            self._close_slot(slot)
        if slot == self.slot and len(self.pending) < MAX_SLOT_SAMPLES:
            self.pending.append(value)
        # a sample older than the open slot (out of order) is scored but does not rewrite history

    def _close_slot(self, new_slot: int) -> None:
        assert self.slot is not None
        old = self.slot
        if self.pending:
            self.ring[old % RING_SLOTS] = float(np.median(self.pending))
        # slots skipped by a gap, and the new slot's position, still hold data of eight days ago
        for skipped in range(old + 1, min(new_slot, old + RING_SLOTS) + 1):
            self.ring[skipped % RING_SLOTS] = np.nan
        self.slot = new_slot
        self.pending = []
        self._bridge()
        if new_slot // EVALUATION_SLOTS != old // EVALUATION_SLOTS:
            self._choose_model(old)
        self._rebuild()

    # --- model choice ----------------------------------------------------------------------------

    def history_days(self) -> float:
        """Days of history behind the open slot."""
        if self.slot is None or self.first_slot is None:
            return 0.0
        return (self.slot - self.first_slot) / SLOTS_PER_DAY

    def _bridge(self) -> None:
        """Derive ``bridged``: the ring with each run of at most MAX_FILLED_SLOTS missing slots between two
        seen ones interpolated linearly (longer gaps, and the edges of the history, stay missing)."""
        assert self.slot is not None
        numbers = np.arange(self.slot - RING_SLOTS + 1, self.slot, dtype=np.int64)
        values = self.ring[numbers % RING_SLOTS]
        known = np.isfinite(values)
        self.bridged = self.ring
        if known.all() or int(known.sum()) < 2:
            return
        positions = np.arange(numbers.size)
        before = np.maximum.accumulate(np.where(known, positions, -1))
        after = np.minimum.accumulate(np.where(known, positions, numbers.size)[::-1])[::-1]
        short = ~known & (before >= 0) & (after < numbers.size) & (after - before - 1 <= MAX_FILLED_SLOTS)
        if not short.any():
            return
        self.bridged = self.ring.copy()
        self.bridged[numbers[short] % RING_SLOTS] = np.interp(positions[short], positions[known], values[known])

    def _slots(self, numbers: npt.NDArray[np.int64], seen: bool = False) -> Floats:
        """Values of absolute slots, short gaps bridged (``seen``: only what was seen); NaN outside the
        ring's eight days or never seen."""
        assert self.slot is not None
        values = (self.ring if seen else self.bridged)[numbers % RING_SLOTS]
        return np.where((numbers < self.slot) & (numbers > self.slot - RING_SLOTS), values, np.nan)

    def _spread(self) -> int:
        """Neighbouring slots a slot's baseline also draws on: none when most slots hold a sample, more for
        sparse series (an hourly one fills one slot in four), so that every baseline rests on several days."""
        if self.slot is None or self.first_slot is None:
            return 0
        span = min(self.slot - self.first_slot, RING_SLOTS)
        filled = int(np.isfinite(self.ring).sum()) / span if span > 0 else 1.0
        return 0 if filled >= 0.6 else min(MAX_SPREAD, math.ceil(0.5 / max(filled, 1e-3)))

    def _daily(self, numbers: npt.NDArray[np.int64], days: int = 7) -> Floats:
        """Median of each slot's value (and its neighbours', for sparse series) on the previous ``days`` days."""
        spread = self._spread()
        offsets = (SLOTS_PER_DAY * np.arange(1, days + 1)[:, None] + np.arange(-spread, spread + 1)[None, :]).ravel()
        return _row_medians(self._slots(numbers[:, None] - offsets[None, :]))

    def _weekly(self, numbers: npt.NDArray[np.int64]) -> Floats:
        """The daily baseline plus how the same stretch a week earlier departed from it.

        The departure is a median over five slots (75 minutes): smooth where the week repeats the day
        (weekdays), the shape of the difference where it does not (weekends).
        """
        reach = WEEKLY_SMOOTHING // 2 + 2 * self._spread()
        wider = np.arange(numbers[0] - reach, numbers[-1] + reach + 1, dtype=np.int64)
        daily = self._daily(wider)
        departure = self._slots(wider - SLOTS_PER_WEEK) - daily
        windows = np.lib.stride_tricks.sliding_window_view(departure, 2 * reach + 1)
        smoothed = _row_medians(windows)
        seen = np.isfinite(smoothed)
        if seen.any() and not seen.all():  # across last week's gaps: the departure is smooth, the day is not
            smoothed = np.interp(numbers, numbers[seen], smoothed[seen])
        return np.asarray(daily[reach:-reach] + smoothed, dtype=np.float64)

    def _choose_model(self, last_slot: int) -> None:
        """Compare the seasonal models on the day that ended with ``last_slot``."""
        if self.history_days() < MIN_DAYS_FOR_SEASONALITY:
            return
        day = np.arange(last_slot - SLOTS_PER_DAY + 1, last_slot + 1, dtype=np.int64)
        observed = self._slots(day, seen=True)
        mad_none = _mad(observed)
        mad_daily = _mad(observed - self._daily(day, days=6))
        mad_weekly = _mad(observed - self._weekly(day))
        if np.isfinite(mad_none) and np.isfinite(mad_daily) and mad_none > 0:
            self.daily_ratios.append(mad_daily / mad_none)
        daily = bool(self.daily_ratios) and min(self.daily_ratios) < IMPROVEMENT
        simpler = min(mad_daily, mad_none) if daily else mad_none
        if np.isfinite(mad_weekly) and np.isfinite(simpler) and simpler > 0:
            self.weekly_ratios.append(mad_weekly / simpler)
        weekly = bool(self.weekly_ratios) and min(self.weekly_ratios) < IMPROVEMENT
        self.model = "weekly" if weekly else "daily" if daily else "none"
        if self.forced_model is not None:  # the comparison above still runs: "auto" resumes with its history
            self.model = self.forced_model

    def force(self, model: str | None) -> None:
        """Use ``model`` (``none``, ``daily`` or ``weekly``) whatever the comparison says; None: choose again.

        Forcing takes effect at once; after ``force(None)`` the model is chosen again at the next
        comparison (within the hour).
        """
        if model not in (None, "none", "daily", "weekly"):
            raise ValueError(f"unknown seasonal model {model!r}")
        if model == self.forced_model:
            return
        self.forced_model = model
        if model is not None and model != self.model:
            self.model = model
            if self.slot is not None:
                self._rebuild()

    # --- baseline --------------------------------------------------------------------------------

    def _rebuild(self) -> None:
        """Precompute the baseline over the last days and the next slots, for interpolation."""
        assert self.slot is not None
        numbers = np.arange(self.slot - BASELINE_DAYS * SLOTS_PER_DAY, self.slot + 3, dtype=np.int64)
        values: Floats = np.zeros(numbers.size)
        if self.model != "none":
            values = self._daily(numbers)
            if self.model == "weekly":
                weekly = self._weekly(numbers)
                values = np.where(np.isfinite(weekly), weekly, values).astype(np.float64)
            known = np.isfinite(values)
            if known.any():  # slots never seen (gaps on every day) take their neighbours' values
                values = np.interp(numbers, numbers[known], values[known]).astype(np.float64)
            else:
                values = np.zeros(numbers.size)
        self._centers = (numbers * SLOT_MS + SLOT_MS // 2).astype(np.float64)
        self._values = values
        self.swing = float(values.max() - values.min())
        recent = self._slots(np.arange(self.slot - SLOTS_PER_DAY, self.slot, dtype=np.int64), seen=True)
        finite = recent[np.isfinite(recent)]
        if finite.size >= MIN_COMPARED_SLOTS:
            finite.sort()
            last = finite.size - 1
            self.normal_range = (float(finite[round(0.02 * last)]), float(finite[round(0.98 * last)]))
        self.version += 1

    def at(self, timestamps_ms: Floats) -> Floats:
        """The seasonal baseline at these times (zeros when the series shows no seasonality)."""
        if self.model == "none":
            return np.zeros(timestamps_ms.shape)
        return np.interp(timestamps_ms, self._centers, self._values)

    def at_one(self, timestamp_ms: float) -> float:
        """The seasonal baseline at one time."""
        if self.model == "none":
            return 0.0
        return float(np.interp(timestamp_ms, self._centers, self._values))

    # --- state -----------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state (the derived baseline is rebuilt on load)."""
        return {
            "ring": [None if np.isnan(v) else float(v) for v in self.ring],
            "slot": self.slot,
            "first_slot": self.first_slot,
            "pending": self.pending,
            "model": self.model,
            "daily_ratios": list(self.daily_ratios),
            "weekly_ratios": list(self.weekly_ratios),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SeasonalProfile:
        """The inverse of :meth:`to_state`."""
        profile = cls()
        profile.ring = np.array([np.nan if v is None else v for v in state["ring"]], dtype=np.float64)
        profile.slot = state["slot"]
        profile.first_slot = state["first_slot"]
        profile.pending = [float(v) for v in state["pending"]]
        profile.model = state["model"]
        profile.daily_ratios = deque((float(v) for v in state["daily_ratios"]), maxlen=REMEMBERED)
        profile.weekly_ratios = deque((float(v) for v in state["weekly_ratios"]), maxlen=REMEMBERED)
        if profile.slot is not None:
            profile._bridge()
            profile._rebuild()
        return profile
