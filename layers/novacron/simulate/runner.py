"""Runs the simulated estate against a remote-write endpoint: the clock, batching, progress and stopping.

The simulated clock. The server accepts samples from 2 hours in the past to 10 minutes in the future,
so the clock can never run ahead of the present. It starts ``backfill`` seconds in the past, catches
up with the present (as fast as possible, or ``speed`` times faster than real time when ``speed > 1``)
and then runs in real time. ``speed > 1`` without a backfill starts the clock 1h50m in the past, the
most the server's window allows with a margin. Scrapes fall on multiples of ``interval_s``.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TextIO

from novacron.series import Labels
from novacron.simulate.estate import Estate, EstateSimulator, Scrape
from novacron.simulate.faults import Chaos, FaultSchedule, FaultSpec, format_duration
from novacron.simulate.remote_write import RemoteWriteClient, SeriesData

MAX_SAMPLE_AGE_S = 2 * 3600
# Keep clear of the 2-hour limit: a request may wait in retries before the server sees it.
MAX_BACKFILL_S = MAX_SAMPLE_AGE_S - 10 * 60


@dataclass(frozen=True)
class SimulationConfig:
    """Everything a run needs; durations in seconds."""

    target: str
    api_key: str
    interval_s: float = 15.0
    speed: float = 1.0
    duration_s: float | None = None  # wall-clock run time; None runs until stopped
    backfill_s: float | None = None
    faults: tuple[FaultSpec, ...] = ()
    chaos_interval_s: float | None = None  # mean time between chaos faults; None disables chaos
    seed: int = 1
    scale: int = 1
    timeout_s: float = 10.0
    progress_every_s: float = 10.0
    max_steps_per_request: int = 20  # while catching up, scrapes sent together (one sample each per series)

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError("interval must be positive")
        if self.speed < 1:
            raise ValueError("speed must be at least 1 (the clock cannot fall behind the server's window)")
        if self.backfill_s is not None and not 0 <= self.backfill_s <= MAX_BACKFILL_S:
            raise ValueError(
                f"backfill must be between 0 and {format_duration(MAX_BACKFILL_S)}: "
                "the server refuses samples older than 2 hours"
            )
        if self.scale < 1:
            raise ValueError("services scale must be at least 1")

    @property
    def effective_backfill_s(self) -> float:
        """How far in the past the clock starts."""
        if self.backfill_s is not None:
            return self.backfill_s
        return MAX_BACKFILL_S if self.speed > 1 else 0.0


@dataclass
class SimulationStats:
    """Progress of a run."""

    samples_sent: int = 0
    samples_dropped: int = 0
    series: int = 0  # series in the latest scrape
    scrapes: int = 0
    requests: int = 0
    retries: int = 0
    failures: int = 0
    restarts: int = 0
    sim_time: float = 0.0  # epoch seconds of the latest scrape
    phase: str = "starting"  # starting, catching up, live, stopped
    active_faults: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    last_error: str = ""

    @property
    def samples_per_s(self) -> float:
        """Average send rate since the start."""
        return self.samples_sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclass
class _Progress:
    last_at: float
    last_samples: int = 0


class Simulation:
    """One simulated estate sending to one target. ``run()`` blocks; ``start()``/``stop()`` use a thread."""

    def __init__(
        self,
        config: SimulationConfig,
        *,
        client: RemoteWriteClient | None = None,
        clock: Callable[[], float] = time.time,
        out: TextIO | None = None,
        quiet: bool = False,
    ) -> None:
        """``out`` receives progress lines (standard output when None); ``quiet`` prints none."""
        self.config = config
        self.estate = Estate(seed=config.seed, scale=config.scale)
        self._clock = clock
        self._out = out
        self._quiet = quiet
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.client = client or RemoteWriteClient(
            config.target, config.api_key, config.timeout_s, sleep=self._stop.wait, abort=self._stop
        )
        chaos = (
            Chaos(config.seed, list(self.estate.order), config.chaos_interval_s)
            if config.chaos_interval_s is not None
            else None
        )
        self.schedule = FaultSchedule((), chaos)
        self._anchor(clock())
        self.simulator = EstateSimulator(self.estate, self.schedule)
        self._stats = SimulationStats()
        self._lock = threading.Lock()

    # control

    def start(self) -> None:
        """Run in a daemon thread (for running next to the local stack in one process)."""
        if self._thread is not None:
            raise RuntimeError("simulation already started")
        self._thread = threading.Thread(target=self.run, name="novacron-simulate", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the run to end and wait for it (an in-flight request finishes or times out)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; True if it did."""
        return self._done.wait(timeout)

    @property
    def running(self) -> bool:
        """Whether the run has started and not finished."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def stats(self) -> SimulationStats:
        """A snapshot of the progress, including the client's counters."""
        client = self.client.stats
        with self._lock:
            return replace(
                self._stats,
                samples_sent=client.samples_sent,
                samples_dropped=client.samples_dropped,
                requests=client.requests,
                retries=client.retries,
                failures=client.failures,
                last_error=client.last_error,
                elapsed_s=self._clock() - self._real_start,
            )

    # the clock

    def _anchor(self, now: float) -> None:
        """Pin the simulated timeline to real time ``now``; fault offsets count from its start."""
        self._real_start = now
        self.sim_start = now - self.config.effective_backfill_s
        self.schedule.faults = [spec.at(self.sim_start) for spec in self.config.faults]

    def sim_horizon(self, now: float) -> float:
        """The simulated time reached at real time ``now``: never past the present."""
        cfg = self.config
        if cfg.speed == 1 and cfg.effective_backfill_s > 0:
            return now  # backfill with no speed given: catch up as fast as possible
        return min(now, self.sim_start + cfg.speed * (now - self._real_start))

    def _real_time_for(self, sim_t: float) -> float:
        """The real time at which the simulated clock reaches ``sim_t``."""
        cfg = self.config
        if cfg.speed == 1 and cfg.effective_backfill_s > 0:
            return sim_t
        return max(sim_t, self._real_start + (sim_t - self.sim_start) / cfg.speed)

    # the loop

    def run(self) -> None:
        """Scrape and send until the duration has passed or ``stop()`` is called."""
        cfg = self.config
        if self.simulator.scrapes == 0:
            self._anchor(self._clock())  # the run starts now, not when the object was built
        next_t = math.ceil(self.sim_start / cfg.interval_s) * cfg.interval_s
        progress = _Progress(last_at=self._clock())
        deadline = self._real_start + cfg.duration_s if cfg.duration_s is not None else math.inf
        try:
            while not self._stop.is_set():
                now = self._clock()
                if now >= deadline:
                    break
                horizon = self.sim_horizon(now)
                if next_t <= horizon:
                    scrapes: list[Scrape] = []
                    while next_t <= horizon and len(scrapes) < cfg.max_steps_per_request:
                        scrapes.append(self.simulator.scrape(next_t))
                        next_t += cfg.interval_s
                    self._record(scrapes, now)
                    self.client.write(merge_scrapes(scrapes))
                else:
                    wake = min(self._real_time_for(next_t), deadline, progress.last_at + cfg.progress_every_s)
                    self._stop.wait(max(0.0, wake - now))
                if self._clock() - progress.last_at >= cfg.progress_every_s:
                    self._print_progress(progress)
        finally:
            with self._lock:
                self._stats.phase = "stopped"
            self._print_progress(progress, final=True)
            self._done.set()

    def _record(self, scrapes: list[Scrape], now: float) -> None:
        last = scrapes[-1]
        with self._lock:
            self._stats.scrapes += len(scrapes)
            self._stats.series = len(last.samples)
            self._stats.sim_time = last.timestamp_ms / 1000
            self._stats.restarts += sum(len(s.restarted) for s in scrapes)
            behind = now - last.timestamp_ms / 1000
            self._stats.phase = "catching up" if behind > 2 * self.config.interval_s else "live"
            self._stats.active_faults = tuple(
                f"{f.describe()} ({format_duration(f.end - last.load.t)} left)"
                if math.isfinite(f.end)
                else f.describe()
                for f in last.load.faults
            )

    def _print_progress(self, progress: _Progress, final: bool = False) -> None:
        now = self._clock()
        stats = self.stats
        if not self._quiet:
            span = max(now - progress.last_at, 1e-9)
            rate = (stats.samples_sent - progress.last_samples) / span
            print(format_progress(stats, rate, final), file=self._out or sys.stdout, flush=True)
        progress.last_at = now
        progress.last_samples = stats.samples_sent


def merge_scrapes(scrapes: list[Scrape]) -> list[SeriesData]:
    """One entry per series with all its samples from several scrapes (fewer, denser requests)."""
    merged: dict[Labels, list[tuple[int, float]]] = {}
    for scrape in scrapes:
        ts = scrape.timestamp_ms
        for labels, value in scrape.samples:
            found = merged.get(labels)
            if found is None:
                merged[labels] = [(ts, value)]
            else:
                found.append((ts, value))
    return list(merged.items())


def format_progress(stats: SimulationStats, rate: float, final: bool = False) -> str:
    """One progress line: simulated time, phase, send rate, series, errors, active faults."""
    when = datetime.fromtimestamp(stats.sim_time, UTC).strftime("%Y-%m-%d %H:%M:%SZ") if stats.sim_time else "-"
    head = "done" if final else stats.phase
    errors = f"{stats.failures} failed requests ({stats.samples_dropped:,} samples dropped), {stats.retries} retries"
    faults = ", ".join(stats.active_faults) if stats.active_faults else "none"
    line = (
        f"[simulate {when}] {head} · {stats.samples_sent:,} samples sent ({rate:,.0f}/s) · "
        f"{stats.series:,} series · {errors} · faults: {faults}"
    )
    if stats.last_error and stats.failures:
        line += f" · last error: {stats.last_error[:120]}"
    return line
