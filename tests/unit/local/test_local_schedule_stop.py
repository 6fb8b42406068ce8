"""Stopping a schedule: a run in flight finds its time run out, as at a Lambda timeout, and winds down."""

from __future__ import annotations

import threading
import time
from typing import Any

from novacron.local.handlers import LocalFunction
from novacron.local.scheduler import ScheduleTimer
from novacron.wiring import Function, Schedule


class WatchfulJob:
    """A scheduled job that works in small steps while it has more than a second left (as the stack's
    jobs do through novacron.scheduled.out_of_time), and notes how it ended."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.ended_with_ms: list[int] = []

    def __call__(self, event: Any, context: Any) -> None:
        self.started.set()
        while context.get_remaining_time_in_millis() >= 1000:
            time.sleep(0.01)
        self.ended_with_ms.append(context.get_remaining_time_in_millis())


def test_a_run_in_flight_winds_down_at_once_when_its_schedule_stops() -> None:
    # Given a job with 60 s to run, started by its schedule and still working
    job = WatchfulJob()
    function = LocalFunction(Function("job", code="functions/job", handler="handler.lambda_handler", timeout_s=60), job)
    timer = ScheduleTimer(Schedule("tick", "job", every_s=60, local_first_run_s=0), function)
    timer.start()
    assert job.started.wait(5)

    # When the schedule is stopped
    begun = time.monotonic()
    timer.stop(timeout=10)

    # Then the run saw its time run out and ended by itself, well before the join's 10 s or its 60 s
    assert job.ended_with_ms == [0]
    assert time.monotonic() - begun < 2


def test_expiring_between_runs_does_not_shorten_the_next_run() -> None:
    # Given a function that is not running, whose current run is expired (a stop between two runs)
    seen: list[int] = []
    function = LocalFunction(
        Function("job", code="functions/job", handler="handler.lambda_handler", timeout_s=60),
        lambda event, context: seen.append(context.get_remaining_time_in_millis()),
    )
    function.expire_current()

    # When it is invoked afterwards
    function.invoke({})

    # Then that run has its whole time
    assert seen[0] > 59_000
