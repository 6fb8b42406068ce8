"""Scheduled jobs: a timer per declared :class:`Schedule`, standing in for EventBridge Scheduler."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from novacron.local.handlers import LocalFunction
from novacron.local.moto_server import ACCOUNT_ID, REGION
from novacron.local.resources import DEFAULT_PREFIX, physical_name
from novacron.wiring import Schedule

log = logging.getLogger(__name__)


def schedule_arn(schedule: Schedule, prefix: str = DEFAULT_PREFIX) -> str:
    """The ARN the schedule would have in the default schedule group."""
    return f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/default/{physical_name(schedule.name, prefix)}"


def scheduled_event(schedule: Schedule, prefix: str = DEFAULT_PREFIX, now: datetime | None = None) -> dict[str, Any]:
    """An EventBridge-style "Scheduled Event" naming the schedule that fired."""
    moment = now or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": ACCOUNT_ID,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [schedule_arn(schedule, prefix)],
        "detail": {},
    }


class ScheduleTimer:
    """Invokes ``function`` every ``schedule.every_s`` seconds (``local_every_s`` when set; times
    ``time_scale``) until stopped.

    The first run is one period after start, as with a rate schedule (``local_first_run_s`` when set).
    A run that overruns the period delays the next one instead of stacking invocations (one job in
    flight per schedule). Failures are logged and the schedule keeps going; EventBridge's retry
    policy is not emulated.
    """

    def __init__(
        self,
        schedule: Schedule,
        function: LocalFunction,
        prefix: str = DEFAULT_PREFIX,
        time_scale: float = 1.0,
    ) -> None:
        self.schedule = schedule
        self.function = function
        self.prefix = prefix
        self.period_s = (schedule.local_every_s or schedule.every_s) * time_scale
        first = schedule.local_first_run_s
        self.first_run_s = self.period_s if first is None else first * time_scale
        self.runs = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the timer thread."""
        self._thread = threading.Thread(target=self._run, name=f"schedule:{self.schedule.name}", daemon=True)
        self._thread.start()
        log.info("schedule %s: %s every %ss", self.schedule.name, self.schedule.function, self.schedule.every_s)

    def request_stop(self) -> None:
        """No further runs; the run in flight, if any, finds its time run out (as at a Lambda timeout), so
        that a job that watches its remaining time (novacron.scheduled) winds down at its next check."""
        self._stop.set()
        self.function.expire_current()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current run, if any, and join the thread."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("schedule %s: its run did not end within %.0f s of the stop", self.schedule.name, timeout)
            self._thread = None

    def _run(self) -> None:
        next_run = time.monotonic() + self.first_run_s
        while not self._stop.wait(max(0.0, next_run - time.monotonic())):
            started = time.perf_counter()
            try:
                self.function.invoke(scheduled_event(self.schedule, self.prefix))
            except Exception:
                self.failures += 1
                log.warning("schedule %s: %s failed", self.schedule.name, self.schedule.function, exc_info=True)
            else:
                log.debug("schedule %s: ran in %.1f ms", self.schedule.name, (time.perf_counter() - started) * 1000)
            self.runs += 1
            next_run = max(next_run + self.period_s, time.monotonic())
