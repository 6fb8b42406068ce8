"""A service's multivariate model: an Isolation Forest over its feature matrix, calibrated to [0, 1].

Training (:func:`train_model`), from one row per step of the service's features:

1. Rows labelled 1 (a user confirmed an anomaly there) are left out; rows with more than half of their
   features missing (NaN) are dropped; the rest must number at least ``min_points``.
2. Each feature is standardised by a robust center (the median) and scale (1.4826 x MAD, else IQR / 1.349),
   floored at 1 % of the center and at an absolute floor per kind (:data:`ABSOLUTE_FLOOR`), so that a
   constant or near-constant feature (an error ratio that was always 0) still has a unit. Center and
   scale follow the time of day (:func:`learn_profile`): one per 30-minute slot of the (UTC) day where
   the slot has :data:`MIN_SLOT_ROWS` values from :data:`MIN_SLOT_DAYS` days, the global ones elsewhere,
   interpolated between slot centres, so that the daily peak (high request rate, higher latency) is
   usual at peak time and unusual at night, and noise that grows with the level (a busier rate, a
   quieter error ratio) has its own scale. Scoring therefore needs each row's time. The slots pool
   every training day: over a week, weekdays and weekends share a slot's median, a compromise (the
   quieter weekend sits below its profile, in the tail the forest learns from its training rows); a
   weekday/weekend split would need two weeks of history to learn each slot twice. A version-1 model
   (no profile) standardises with the global center and scale at any time. Remaining
   NaNs are imputed with the center. Features where only growth is a fault sign
   (:func:`novacron.detect.features.high_only`: memory, which drops after every restart) have their
   standard values below 0 raised to 0, in training and scoring alike, so that a restart's
   aftermath is usual.
3. Features whose spread is below their floor get standard-normal jitter (seeded) in standard units
   before the fit, so that the trees learn "about the center, give or take a floor" for them; a later
   value far beyond is then cut off by the forest's out-of-range rule (see ``forest.py``) instead of
   being invisible to trees that never split on a constant. Rows labelled 0 (a user said an alarm
   there was a false positive) are repeated :data:`NORMAL_WEIGHT` times, so that their region counts
   as normal.
4. Three calibrations, each 512 quantiles of training values (256 evenly spaced in probability below
   the 99th percentile, 256 above it): of the forest's raw scores, of the guard's raw values and of
   the rows' combined levels (below), all on the training rows.

The forest finds unusual *combinations*, but isolation trees dilute a single feature far outside its
range across the other features (a tree rarely splits on it along a row's path), so a row is judged
by two raw scores: the forest's, and a per-feature guard's, the row's largest absolute standard value.

Scoring maps a raw score ``s`` to a tail level ``L = -log10(P[training value >= s])``: the
empirical distribution up to the 99th percentile (``L <= 2``), beyond it an exponential tail fit to the
top 1 % (``L = 2 + (s - q99) / (beta ln 10)``, ``beta`` their mean excess), which extrapolates past the
largest training value. The row's level is the larger of the forest's and the guard's, *calibrated
again* the same way against the training rows' own distribution of that larger level (its tail's scale
at least :data:`MIN_LEVEL_TAIL_SCALE`): either of two scores reaching a level is more common than one
of them reaching it (up to twice), and the combined calibration makes ``10 ** -L`` the share of
training rows at level ``L`` or above for the row, not for each score. (A model stored before format
version 3 has no combined calibration and scores at the larger level itself.)

The calibrated score is ``1 / (1 + exp(-(L - 4) / 0.455))``: 0.5 at ``L = 4`` (one training minute in
10,000), 0.1 at ``L = 3`` and 0.9 at ``L = 5`` (so the sensitivities 0.1-0.9 span one minute in 100,000
to one in 1,000), and the critical 0.95 at ``L = 5.34``, one in 220,000: about five months of a
service's minutes, beyond any training set, reached only by a row well past the training rows in the
extrapolated tail -- a fault plain enough to open an episode on its own first minute. As with the
per-series detector a row is an anomaly when its score is at least ``1 - sensitivity``.

Why ``L = 4`` at the default sensitivity (:data:`MIDPOINT_LEVEL`): a minute must be rarer than one
training minute in 10,000 to alarm.

- The house standard of "rare": the per-series detector alarms at 5.5 robust sigmas, which flags 0.01 %
  of the normal samples of the simulator corpus (docs/detection.md): one in 10,000. A service model
  alarms at the same rarity. A Gaussian 5.5 sigma (one in 50 million) is not the standard: real
  residuals are heavier-tailed, and no training set measures such a share.
- The budget: the simulated estate's 14 services score about 20,000 service minutes a day; at one in
  10,000, two normal minutes a day reach the threshold, and fewer open an episode (the scorer's
  two-minute rule, ``service_scorer.opens_episode``): measured, 2 false alarms in three days. At
  ``L = 2.7``, the level before, twenty times as many minutes reach it (measured: 14 false alarms).
- Measured (``bench/service_eval.py``, three simulated estates, a test day each with 12 faults):
  precision 0.89 at ``L = 2.7`` (0.84 before the combined calibration), 0.97 from 3.25 on, 0.98 from
  3.5 to 5; recall 36/36 and median delay 0 minutes throughout. The two false alarms left are events in
  the simulation, not noise a threshold can remove: redis-cart's memory 11 % below usual for a quarter
  of an hour, and a 1.6 % error ratio on payment, whose ratio was always 0 in training. ``L = 4`` sits
  in the middle of that plateau, so that the sensitivities (``L = 3`` to ``5``) move both ways within
  it (precision 0.94 at sensitivity 0.9, ``L = 3``; 0.97-0.98 from 0.1 to 0.8). The critical score
  was reached in all 36 faults and on 4 of 57,168 normal minutes. (These figures were measured when
  the level was chosen. Since the simulator's counters no longer step in unison, which made payment's
  errors come in bursts, precision is 110/111 at ``L = 4`` and 0.97-0.99 over the sensitivities:
  docs/detection.md.)

For tails lighter than exponential the exponential tail understates how rare the rarest rows are, so
fewer training rows reach level 4 than one in 10,000: 1-3 of 57,600 Gaussian rows where 5.8 would be
exact, 8 of 180,810 minutes of the simulated estate (half the documented share; level 3: 1.2 in 1,000).

Missing values at scoring time are imputed with the center (which pulls the score towards normal) and
lower :meth:`ServiceModel.confidence` (the share of features present); a row with none scores 0.

Promotion (:func:`compare_models`): with at least :data:`MIN_LABELLED` labelled rows, one of them an
anomaly, the candidate is promoted when its F1 is at least the current model's and it raises no more
alarms on confirmed-normal rows; with labelled rows that are all normal, when it raises no more alarms
on them and no more alarms on the unlabelled rows than the current model plus an allowance (a share
:data:`EXTRA_ALARM_SHARE` of those rows, five times the default calibrated rate, and at least
:data:`EXTRA_ALARMS_MIN`: one or two alarms more on a six-hour trial of 360 minutes say nothing); without
labels, on that alarm rule alone (unlabelled rows are presumed mostly normal).
The two models may have different features: each picks its own columns by feature name
(:meth:`ServiceModel.columns_from`), a feature it has and the matrix lacks is missing (NaN).
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from novacron.detect.events import Anomaly, Driver, Feedback, FeedbackVerdict
from novacron.detect.features import ServiceFeature, high_only
from novacron.detect.forest import IsolationForest, pack_arrays, unpack_arrays

Floats = npt.NDArray[np.float64]

MAGIC = b"NCSM"
# 2: the time-of-day profile; 3: the combined calibration. Versions 1 (no profile) and 2 are still read.
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
MAX_MISSING_SHARE = 0.5  # training rows missing more than this share of features are dropped
RELATIVE_FLOOR = 0.01
ABSOLUTE_FLOOR = {"requests": 0.01, "errors": 0.002, "latency": 1e-4, "resource": 1e-6}
NORMAL_WEIGHT = 3
N_TREES = 100
SAMPLE_SIZE = 256
TAIL_PROBABILITY = 0.99
CALIBRATION_PROBS: Floats = np.concatenate(
    (np.linspace(0.0, TAIL_PROBABILITY, 256, endpoint=False), np.linspace(TAIL_PROBABILITY, 1.0, 256))
)
MIN_TAIL_SCALE = 0.005  # raw-score units: the tail never falls steeper than this
MIN_LEVEL_TAIL_SCALE = 0.1  # the same for the combined calibration, in tail levels (decades)
MIDPOINT_LEVEL = 4.0  # tail level (-log10 of the share of training rows) scored 0.5: one in 10,000
LEVEL_STEEPNESS = 1.0 / math.log(9.0)  # 0.9 one level above the midpoint
MIN_LABELLED = 10
DAY_MS = 86_400_000
PROFILE_SLOT_MS = 30 * 60 * 1000
PROFILE_SLOTS = DAY_MS // PROFILE_SLOT_MS
MIN_SLOT_ROWS = 20  # a slot's own center and scale need this many values of the feature ...
MIN_SLOT_DAYS = 2  # ... from this many days: one day's values are that day, not a habit
# How many more alarms than the current model's a candidate may raise on unlabelled rows (module docstring).
EXTRA_ALARM_SHARE = 0.0005
EXTRA_ALARMS_MIN = 2


class TrainingError(ValueError):
    """The data cannot give a model (too few usable rows, only constant features, bad shapes)."""


def tail_level(raw: Floats, calibration: Floats, min_tail_scale: float = MIN_TAIL_SCALE) -> Floats:
    """The tail level ``-log10(P[training value >= raw])`` of each of ``raw`` against the training values'
    quantiles ``calibration`` (on :data:`CALIBRATION_PROBS`): empirical up to the 99th percentile, an
    exponential tail fit to the top 1 % beyond it (module docstring), its scale at least ``min_tail_scale``."""
    raw = np.asarray(raw, dtype=np.float64)
    body = CALIBRATION_PROBS <= TAIL_PROBABILITY
    body_scores, body_probs = calibration[body], CALIBRATION_PROBS[body]
    q99 = float(body_scores[-1])
    tail_scale = max(float(np.mean(calibration[~body] - q99)), min_tail_scale)
    below = np.interp(raw, body_scores, body_probs)
    level: Floats = np.where(
        raw <= q99,
        -np.log10(np.clip(1.0 - below, 1.0 - TAIL_PROBABILITY, 1.0)),
        -math.log10(1.0 - TAIL_PROBABILITY) + (raw - q99) / (tail_scale * math.log(10.0)),
    )
    return level


def score_of_level(level: Floats) -> Floats:
    """The calibrated score in [0, 1] of a tail level: 0.5 at :data:`MIDPOINT_LEVEL` (module docstring)."""
    scores: Floats = 1.0 / (1.0 + np.exp(-(np.asarray(level, dtype=np.float64) - MIDPOINT_LEVEL) / LEVEL_STEEPNESS))
    return scores


def larger_level(forest_raw: Floats, guard_raw: Floats, calibration: Floats, guard_calibration: Floats) -> Floats:
    """Per row, the larger of the forest's and the guard's tail levels (the forest's alone without a guard)."""
    level = tail_level(forest_raw, calibration)
    if guard_calibration.size:
        level = np.maximum(level, tail_level(guard_raw, guard_calibration))
    return level


def quantiles(values: Floats) -> Floats:
    """The calibration grid of training values: their quantiles at :data:`CALIBRATION_PROBS`."""
    grid: Floats = np.quantile(values, CALIBRATION_PROBS).astype(np.float64)
    return grid


@dataclass(frozen=True)
class ServiceModel:
    """A trained model of one service of one tenant (see the module docstring)."""

    tenant: str
    service: str
    version: int
    features: tuple[ServiceFeature, ...]
    center: Floats
    scale: Floats
    forest: IsolationForest
    calibration: Floats
    trained_at_ms: int
    start_ms: int
    end_ms: int
    points: int
    step_s: int
    # Sorted training values of the per-feature guard (the largest |standard value| of a row), same grid.
    guard_calibration: Floats = field(default_factory=lambda: np.zeros(0))
    # The time-of-day profile: center and scale per slot of the day (PROFILE_SLOTS x features); empty in a
    # version-1 model, which standardises with the global center and scale at any time.
    profile_center: Floats = field(default_factory=lambda: np.zeros((0, 0)))
    profile_scale: Floats = field(default_factory=lambda: np.zeros((0, 0)))
    # Sorted training values of the row's level, the larger of the forest's and the guard's tail levels, same
    # grid; empty before format version 3, whose rows are scored at that larger level itself.
    combined_calibration: Floats = field(default_factory=lambda: np.zeros(0))

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The names of the model's features, in column order."""
        return tuple(f.name for f in self.features)

    def columns_from(self, X: Floats, names: Sequence[str]) -> Floats:  # noqa: N803
        """This model's columns of ``X``, whose columns are the features ``names``; absent ones are NaN."""
        matrix = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if matrix.shape[1] != len(names):
            raise ValueError(f"X has {matrix.shape[1]} columns but {len(names)} names")
        index = {name: i for i, name in enumerate(names)}
        out = np.full((matrix.shape[0], len(self.features)), np.nan)
        for j, name in enumerate(self.feature_names):
            if name in index:
                out[:, j] = matrix[:, index[name]]
        return out

    def _rows(self, rows: Floats) -> Floats:
        matrix = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        if matrix.ndim != 2 or matrix.shape[1] != len(self.features):
            raise ValueError(f"expected rows of {len(self.features)} features, got shape {np.shape(rows)}")
        return matrix

    def baseline(self, times_ms: npt.ArrayLike) -> tuple[Floats, Floats]:
        """The usual value (center) and scale of each feature at each of ``times_ms``: the time-of-day
        profile, interpolated between slot centres; the global ones for a model without a profile."""
        times = np.atleast_1d(np.asarray(times_ms, dtype=np.int64))
        if times.ndim != 1:
            raise ValueError(f"times_ms must be one time per row, got shape {np.shape(times_ms)}")
        if self.profile_center.size == 0:
            shape = (times.size, len(self.features))
            return np.broadcast_to(self.center, shape), np.broadcast_to(self.scale, shape)
        return profile_at(self.profile_center, times), profile_at(self.profile_scale, times)

    def standardise(self, X: Floats, times_ms: npt.ArrayLike) -> Floats:  # noqa: N803
        """Rows (at ``times_ms``, one per row) in standard units against the usual value at that time of day,
        missing values imputed with it (0), high-only features' values below it raised to it."""
        rows = self._rows(X)
        center, scale = self.baseline(times_ms)
        if center.shape[0] != rows.shape[0]:
            raise ValueError(f"{rows.shape[0]} rows but {center.shape[0]} times")
        return standard_units((rows - center) / scale, self.features)

    def confidence(self, X: Floats) -> Floats:  # noqa: N803
        """The share of each row's features that are present (finite)."""
        present: Floats = np.isfinite(self._rows(X)).mean(axis=1)
        return present

    def raw_scores(self, X: Floats, times_ms: npt.ArrayLike) -> Floats:  # noqa: N803
        """The forest's uncalibrated scores of the rows (at ``times_ms``)."""
        return self.forest.score(self.standardise(X, times_ms))

    def levels(self, X: Floats, times_ms: npt.ArrayLike) -> Floats:  # noqa: N803
        """The tail level of each row at ``times_ms``: ``-log10`` of the share of training rows at least as
        unusual, by the larger of the forest's and the guard's levels (module docstring)."""
        z = self.standardise(X, times_ms)
        level = larger_level(self.forest.score(z), np.abs(z).max(axis=1), self.calibration, self.guard_calibration)
        if self.combined_calibration.size:
            level = tail_level(level, self.combined_calibration, MIN_LEVEL_TAIL_SCALE)
        return level

    def score(self, X: Floats, times_ms: npt.ArrayLike) -> Floats:  # noqa: N803
        """Calibrated scores in [0, 1] of the rows at ``times_ms`` (one per row; 0.5 alarms at the default
        sensitivity); rows with no value score 0."""
        rows = self._rows(X)
        scores = score_of_level(self.levels(rows, times_ms))
        empty = ~np.isfinite(rows).any(axis=1)
        result: Floats = np.where(empty, 0.0, scores)
        return result

    def explain(self, x: Floats, time_ms: int, top: int = 5) -> tuple[Driver, ...]:
        """The features that drove the score of row ``x`` at ``time_ms``, strongest first, each with the usual
        value at that time of day (missing features are left out)."""
        row = self._rows(x)[0]
        center, _ = self.baseline([time_ms])
        shares = self.forest.contributions(self.standardise(row, [time_ms])[0])
        order = np.argsort(-shares, kind="stable")
        drivers = [
            Driver(self.features[j].name, float(row[j]), float(center[0, j]), round(float(shares[j]), 4))
            for j in order
            if shares[j] > 0 and math.isfinite(row[j])
        ]
        return tuple(drivers[:top])

    def to_bytes(self) -> bytes:
        """The model as bytes: a magic, a format version, zlib-compressed JSON and ``.npy`` arrays (no pickle)."""
        meta: dict[str, object] = {
            "tenant": self.tenant,
            "service": self.service,
            "version": self.version,
            "features": [f.to_json() for f in self.features],
            "trained_at_ms": self.trained_at_ms,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "points": self.points,
            "step_s": self.step_s,
        }
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "center": self.center,
            "scale": self.scale,
            "calibration": self.calibration,
            "guard_calibration": self.guard_calibration,
            "combined_calibration": self.combined_calibration,
            "profile_center": self.profile_center,
            "profile_scale": self.profile_scale,
            "forest": np.frombuffer(self.forest.to_bytes(), dtype=np.uint8),
        }
        meta["arrays"] = list(arrays)
        return MAGIC + struct.pack("<B", FORMAT_VERSION) + zlib.compress(pack_arrays(meta, arrays), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> ServiceModel:
        """The inverse of :meth:`to_bytes`; ``ValueError`` on anything else or a newer format."""
        if len(data) < 5 or data[:4] != MAGIC:
            raise ValueError("not a serialised ServiceModel")
        if data[4] not in READABLE_VERSIONS:
            raise ValueError(f"unsupported ServiceModel format version {data[4]} (this code reads {READABLE_VERSIONS})")
        meta, arrays = unpack_arrays(zlib.decompress(data[5:]))
        features = meta["features"]
        assert isinstance(features, list)
        no_profile = np.zeros((0, len(features)))  # a version-1 model: global center and scale
        return cls(
            tenant=str(meta["tenant"]),
            service=str(meta["service"]),
            version=_int(meta["version"]),
            features=tuple(ServiceFeature.from_json(f) for f in features),
            center=arrays["center"].astype(np.float64),
            scale=arrays["scale"].astype(np.float64),
            forest=IsolationForest.from_bytes(arrays["forest"].tobytes()),
            calibration=arrays["calibration"].astype(np.float64),
            trained_at_ms=_int(meta["trained_at_ms"]),
            start_ms=_int(meta["start_ms"]),
            end_ms=_int(meta["end_ms"]),
            points=_int(meta["points"]),
            step_s=_int(meta["step_s"]),
            guard_calibration=arrays["guard_calibration"].astype(np.float64),
            combined_calibration=arrays.get("combined_calibration", np.zeros(0)).astype(np.float64),
            profile_center=arrays.get("profile_center", no_profile).astype(np.float64),
            profile_scale=arrays.get("profile_scale", no_profile).astype(np.float64),
        )


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise ValueError(f"expected an integer in the model header, got {value!r}")
    return value


def standard_units(z: Floats, features: Sequence[ServiceFeature]) -> Floats:
    """``z`` (rows minus center, over scale) with non-finite values set to 0 and high-only features' negative
    values too."""
    lower = np.where([high_only(f) for f in features], 0.0, -np.inf)
    standard: Floats = np.maximum(np.where(np.isfinite(z), z, 0.0), lower)
    return standard


def robust_spread(rows: Floats, center: Floats) -> Floats:
    """Per column: 1.4826 x the median absolute deviation from ``center``, else IQR / 1.349 (NaNs ignored)."""
    mad = 1.4826 * np.nanmedian(np.abs(rows - center), axis=0)
    q25, q75 = np.nanpercentile(rows, [25, 75], axis=0)
    spread: Floats = np.where(mad > 0, mad, (q75 - q25) / 1.349)
    return spread


def floored_scale(spread: Floats, center: Floats, kinds: Sequence[str]) -> tuple[Floats, npt.NDArray[np.bool_]]:
    """``spread`` floored at 1 % of ``center`` and at the kind's absolute floor, and whether the floor was used."""
    floor = np.maximum(RELATIVE_FLOOR * np.abs(center), [ABSOLUTE_FLOOR.get(k, 1e-6) for k in kinds])
    floored = ~(spread >= floor)
    return np.where(floored, floor, spread), floored


def robust_center_scale(rows: Floats, kinds: Sequence[str]) -> tuple[Floats, Floats, npt.NDArray[np.bool_]]:
    """Per column: the median, the floored robust scale, and whether the floor was used (NaNs ignored)."""
    center = np.nanmedian(rows, axis=0)
    scale, floored = floored_scale(robust_spread(rows, center), center, kinds)
    return center, scale, floored


def profile_slots(times_ms: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """The slot of the day (UTC) of each time."""
    slots: npt.NDArray[np.int64] = (np.asarray(times_ms, dtype=np.int64) % DAY_MS) // PROFILE_SLOT_MS
    return slots


def profile_at(profile: Floats, times_ms: npt.ArrayLike) -> Floats:
    """A profile's values (one row per slot of the day) at ``times_ms``, linear between the slots' centres
    and across midnight, so that a ramp (traffic rising to its peak) has no steps at slot boundaries."""
    position = (np.asarray(times_ms, dtype=np.int64) % DAY_MS) / PROFILE_SLOT_MS - 0.5
    lower = np.floor(position)
    weight = (position - lower)[:, None]
    first = lower.astype(np.int64) % profile.shape[0]
    values: Floats = profile[first] * (1.0 - weight) + profile[(first + 1) % profile.shape[0]] * weight
    return values


def learn_profile(
    rows: Floats, times_ms: npt.NDArray[np.int64], kinds: Sequence[str]
) -> tuple[Floats, Floats, npt.NDArray[np.bool_]]:
    """The time-of-day profile of the training rows: per slot of the day and feature, the center, the
    floored scale, and whether the floor was used.

    A slot's center is the median of its values where it has :data:`MIN_SLOT_ROWS` of them from
    :data:`MIN_SLOT_DAYS` days, the global median otherwise. Its scale is the robust spread of the
    rows' residuals from the *interpolated* center (see :func:`profile_at`), so that a ramp within a
    slot is not counted as noise, floored as the global scale is (1 % of the slot's center, the
    kind's absolute floor); unlearnt slots keep the global scale.
    """
    center, scale, floored = robust_center_scale(rows, kinds)
    n_features = rows.shape[1]
    slot_center = np.tile(center, (PROFILE_SLOTS, 1))
    slot_scale = np.tile(scale, (PROFILE_SLOTS, 1))
    slot_floored = np.tile(floored, (PROFILE_SLOTS, 1))
    slots, days = profile_slots(times_ms), np.asarray(times_ms, dtype=np.int64) // DAY_MS
    members = [np.flatnonzero(slots == slot) for slot in range(PROFILE_SLOTS)]
    learnt = np.zeros((PROFILE_SLOTS, n_features), dtype=bool)
    for slot, index in enumerate(members):
        present = np.isfinite(rows[index])
        day_counts = [np.unique(days[index][present[:, j]]).size for j in range(n_features)]
        learnt[slot] = (present.sum(axis=0) >= MIN_SLOT_ROWS) & (np.asarray(day_counts) >= MIN_SLOT_DAYS)
        if learnt[slot].any():
            slot_center[slot, learnt[slot]] = np.nanmedian(rows[index][:, learnt[slot]], axis=0)
    residuals = rows - profile_at(slot_center, times_ms)
    kind_array = np.asarray(kinds)
    for slot, index in enumerate(members):
        columns = learnt[slot]
        if columns.any():
            residual = residuals[index][:, columns]
            spread = robust_spread(residual, np.nanmedian(residual, axis=0))
            slot_scale[slot, columns], slot_floored[slot, columns] = floored_scale(
                spread, slot_center[slot, columns], list(kind_array[columns])
            )
    return slot_center, slot_scale, slot_floored


def train_model(
    tenant: str,
    service: str,
    features: Sequence[ServiceFeature],
    times_ms: npt.NDArray[np.int64],
    X: Floats,  # noqa: N803 - the usual name of a data matrix
    *,
    version: int,
    now_ms: int,
    step_s: int,
    labels: npt.NDArray[np.int8] | None = None,
    seed: int = 0,
    min_points: int = 120,
) -> ServiceModel:
    """Train a service model on the rows of ``X`` (one per time in ``times_ms``, one column per feature).

    ``labels`` per row: 1 = confirmed anomaly (left out), 0 = confirmed normal (weighted up), -1 =
    unlabelled. Raises :class:`TrainingError` saying what is wrong when no model can be trained.
    """
    matrix = np.asarray(X, dtype=np.float64)
    times = np.asarray(times_ms, dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[1] != len(features):
        raise TrainingError(f"X must have one column per feature ({len(features)}), got shape {matrix.shape}")
    if len(features) == 0:
        raise TrainingError(f"service {service!r} has no features to train on")
    if times.shape != (matrix.shape[0],):
        raise TrainingError(f"times_ms must have one entry per row ({matrix.shape[0]}), got shape {times.shape}")
    row_labels = np.full(matrix.shape[0], -1, dtype=np.int8) if labels is None else np.asarray(labels, np.int8)
    if row_labels.shape != (matrix.shape[0],):
        raise TrainingError(f"labels must have one entry per row ({matrix.shape[0]}), got shape {row_labels.shape}")
    matrix = np.where(np.isfinite(matrix), matrix, np.nan)
    usable = (np.isnan(matrix).mean(axis=1) <= MAX_MISSING_SHARE) & (row_labels != 1)
    if int(usable.sum()) < min_points:
        raise TrainingError(
            f"service {service!r} has {int(usable.sum())} usable rows of {matrix.shape[0]} "
            f"(rows missing over half their features or confirmed anomalous are left out); "
            f"at least {min_points} are needed"
        )
    train, train_labels = matrix[usable], row_labels[usable]
    kinds = [f.kind for f in features]
    center, scale, _ = robust_center_scale(train, kinds)
    if np.isnan(center).any():
        missing = [f.name for f, c in zip(features, center, strict=True) if math.isnan(c)]
        raise TrainingError(f"service {service!r}: features with no value in the training rows: {', '.join(missing)}")
    if np.all(np.nanmax(train, axis=0) == np.nanmin(train, axis=0)):
        raise TrainingError(f"service {service!r}: every feature is constant over the training rows; nothing to learn")
    kept_times = times[usable]
    profile_center, profile_scale, profile_floored = learn_profile(train, kept_times, kinds)
    usual, spread = profile_at(profile_center, kept_times), profile_at(profile_scale, kept_times)
    z = standard_units((train - usual) / spread, features)
    rng = np.random.default_rng(seed)
    # Jitter only where the row's slot floored the feature's scale.
    fit_rows = z + rng.standard_normal(z.shape) * profile_floored[profile_slots(kept_times)]
    fit_rows = np.concatenate([fit_rows] + [fit_rows[train_labels == 0]] * (NORMAL_WEIGHT - 1))
    forest = IsolationForest.fit(fit_rows, n_trees=N_TREES, sample_size=SAMPLE_SIZE, seed=seed)
    forest_raw, guard_raw = forest.score(z), np.abs(z).max(axis=1)
    calibration, guard_calibration = quantiles(forest_raw), quantiles(guard_raw)
    # The row's level is the larger of two, each calibrated alone: calibrating that larger level against its
    # own training distribution makes the documented share of training rows per level the row's.
    combined = larger_level(forest_raw, guard_raw, calibration, guard_calibration)
    return ServiceModel(
        tenant=tenant,
        service=service,
        version=version,
        features=tuple(features),
        center=center,
        scale=scale,
        forest=forest,
        calibration=calibration,
        trained_at_ms=now_ms,
        start_ms=int(kept_times.min()),
        end_ms=int(kept_times.max()),
        points=int(usable.sum()),
        step_s=step_s,
        guard_calibration=guard_calibration,
        profile_center=profile_center,
        profile_scale=profile_scale,
        combined_calibration=quantiles(combined),
    )


def _episode_matches(anomaly: Anomaly, service: str, label: str) -> bool:
    return dict(anomaly.labels).get(label) == service


def labels_from_feedback(
    times_ms: npt.NDArray[np.int64],
    step_s: int,
    service: str,
    episodes: Sequence[tuple[Anomaly, Feedback]],
    label: str = "service",
) -> npt.NDArray[np.int8]:
    """Row labels from feedback on episodes of ``service`` (``labels[label] == service``).

    A row at ``t`` stands for the step ``(t - step, t]``; it is covered by an episode from ``start_ms``
    to ``end_ms`` (the peak while still open) when ``start_ms <= t < end_ms + step``. Covered rows get
    1 for a true positive and 0 for a false positive (a true positive wins where both cover a row);
    the rest -1.
    """
    times = np.asarray(times_ms, dtype=np.int64)
    labels = np.full(times.shape, -1, dtype=np.int8)
    step_ms = step_s * 1000
    positives = np.zeros(times.shape, dtype=bool)
    for anomaly, feedback in episodes:
        if not _episode_matches(anomaly, service, label):
            continue
        end_ms = anomaly.end_ms if anomaly.end_ms is not None else max(anomaly.peak_ms, anomaly.start_ms)
        covered = (times >= anomaly.start_ms) & (times < end_ms + step_ms)
        if feedback.verdict is FeedbackVerdict.TRUE_POSITIVE:
            positives |= covered
        else:
            labels[covered] = 0
    labels[positives] = 1
    return labels


@dataclass(frozen=True)
class Comparison:
    """The shadow comparison of a candidate against the current model, and the decision."""

    promote: bool
    reason: str
    current: dict[str, float]
    candidate: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (for the promotion log)."""
        return {"promote": self.promote, "reason": self.reason, "current": self.current, "candidate": self.candidate}


def evaluate(flags: npt.NDArray[np.bool_], labels: npt.NDArray[np.int8]) -> dict[str, float]:
    """Precision, recall, F1 over the labelled rows; labelled count; false alarms on confirmed-normal rows;
    alarm rate on the unlabelled rows."""
    positive, negative, unlabelled = labels == 1, labels == 0, labels < 0
    hits = int((flags & positive).sum())
    flagged = int((flags & (positive | negative)).sum())
    precision = hits / flagged if flagged else 0.0
    recall = hits / int(positive.sum()) if positive.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "labelled": float(int((positive | negative).sum())),
        "anomalous": float(int(positive.sum())),
        "false_alarms": float(int((flags & negative).sum())),
        "alarm_rate": round(float(flags[unlabelled].mean()) if unlabelled.any() else 0.0, 6),
        "unlabelled": float(int(unlabelled.sum())),
        "unlabelled_alarms": float(int((flags & unlabelled).sum())),
    }


def compare_models(
    current: ServiceModel,
    candidate: ServiceModel,
    X: Floats,  # noqa: N803
    times_ms: npt.NDArray[np.int64],
    labels: npt.NDArray[np.int8],
    sensitivity: float = 0.5,
) -> Comparison:
    """Whether ``candidate`` should replace ``current`` (rule in the module docstring).

    ``X`` has the columns of ``candidate.features``, one row per time in ``times_ms``; ``labels`` one
    entry per row (1, 0, -1).
    """
    if not 0.0 <= sensitivity <= 1.0:
        raise ValueError(f"sensitivity must be within [0, 1], got {sensitivity}")
    matrix = np.atleast_2d(np.asarray(X, dtype=np.float64))
    row_labels = np.asarray(labels, dtype=np.int8)
    if row_labels.shape != (matrix.shape[0],):
        raise ValueError(f"labels must have one entry per row ({matrix.shape[0]}), got shape {row_labels.shape}")
    threshold = 1.0 - sensitivity
    names = candidate.feature_names
    now = evaluate(current.score(current.columns_from(matrix, names), times_ms) >= threshold, row_labels)
    new = evaluate(candidate.score(matrix, times_ms) >= threshold, row_labels)
    labelled = int(new["labelled"])
    fewer_false = new["false_alarms"] <= now["false_alarms"]
    allowance = max(EXTRA_ALARMS_MIN, math.ceil(EXTRA_ALARM_SHARE * new["unlabelled"]))
    rate_ok = new["unlabelled_alarms"] <= now["unlabelled_alarms"] + allowance
    rates = (
        f"alarm rate on unlabelled rows {new['alarm_rate']:.4f} vs {now['alarm_rate']:.4f} "
        f"({new['unlabelled_alarms']:.0f} vs {now['unlabelled_alarms']:.0f} of {new['unlabelled']:.0f} rows, "
        f"at most {allowance} more allowed)"
    )
    if labelled >= MIN_LABELLED and new["anomalous"] > 0:
        promote = new["f1"] >= now["f1"] and fewer_false
        reason = (
            f"{labelled} labelled rows: F1 {new['f1']:.3f} vs {now['f1']:.3f}, "
            f"false alarms on confirmed-normal rows {new['false_alarms']:.0f} vs {now['false_alarms']:.0f}"
        )
    elif labelled >= MIN_LABELLED:
        promote = fewer_false and rate_ok
        reason = (
            f"{labelled} labelled rows, all confirmed normal: false alarms {new['false_alarms']:.0f} vs "
            f"{now['false_alarms']:.0f}; {rates}"
        )
    else:
        promote = rate_ok
        reason = f"{labelled} labelled rows (fewer than {MIN_LABELLED}): {rates}"
    verdict = "promoted" if promote else "kept the current model"
    return Comparison(promote, f"{verdict}: {reason}", now, new)
