"""Runs of the simulation against the local test server, and the ``simulate`` command line."""

from __future__ import annotations

import argparse
import io
import itertools
import os
import signal
import threading
import time

import pytest

from novacron.ingest.service import IngestService
from novacron.simulate import cli
from novacron.simulate.faults import parse_fault
from novacron.simulate.runner import (
    MAX_BACKFILL_S,
    Simulation,
    SimulationConfig,
    SimulationStats,
    format_progress,
)
from tests.fakes import ListSink

MAX_AGE_MS = 2 * 3600 * 1000
MAX_FUTURE_MS = 10 * 60 * 1000


@pytest.fixture
def config(write_server) -> SimulationConfig:
    return SimulationConfig(target=write_server.url, api_key="k", backfill_s=600, duration_s=1.0, seed=5)


def received_samples(write_server):
    """Every (labels, samples) the server got, in arrival order."""
    return [series for request in write_server.received for series in request.decode()]


def test_backfill_sends_history_inside_the_servers_window_in_order(config, write_server):
    # Given a run that backfills 10 minutes, then runs for a second
    out = io.StringIO()
    simulation = Simulation(config, out=out)

    # When it runs to the end
    before_ms = time.time() * 1000
    simulation.run()
    after_ms = time.time() * 1000

    # Then 10 minutes of 15 s scrapes arrived, every timestamp inside the accepted window
    series = received_samples(write_server)
    timestamps = sorted({ts for _, samples in series for ts, _ in samples})
    assert len(timestamps) >= 40
    assert timestamps[-1] - timestamps[0] >= 9.5 * 60 * 1000
    assert all(b - a == 15_000 for a, b in itertools.pairwise(timestamps))
    assert timestamps[0] >= before_ms - MAX_AGE_MS
    assert timestamps[-1] <= after_ms + MAX_FUTURE_MS
    # and each series' samples arrived strictly in time order across requests
    last_seen: dict[tuple, int] = {}
    for labels, samples in series:
        for ts, _ in samples:
            assert ts > last_seen.get(labels, -1)
            last_seen[labels] = ts
    # and the stats agree with what the server got
    stats = simulation.stats
    assert stats.samples_sent == sum(len(s) for _, s in series)
    assert stats.failures == 0
    assert stats.series == simulation.simulator.series_count
    assert stats.phase == "stopped"
    assert "done" in out.getvalue()


def test_speed_starts_the_clock_in_the_past_and_never_passes_the_present(write_server):
    # Given a 600x accelerated run of one second with no backfill
    config = SimulationConfig(target=write_server.url, api_key="k", speed=600, duration_s=1.0, interval_s=60)
    simulation = Simulation(config, quiet=True)
    start = time.time()

    # When it runs
    simulation.run()

    # Then it started 1h50m ago, covered about ten simulated minutes, and stayed in the window
    assert simulation.sim_start == pytest.approx(start - MAX_BACKFILL_S, abs=1)
    timestamps = sorted({ts for _, samples in received_samples(write_server) for ts, _ in samples})
    assert 5 <= len(timestamps) <= 12
    assert timestamps[0] >= (start - 2 * 3600) * 1000
    assert timestamps[-1] <= time.time() * 1000


def test_start_and_stop_in_a_thread(write_server):
    # Given a simulation running in the background with no end
    config = SimulationConfig(target=write_server.url, api_key="k", backfill_s=60)
    simulation = Simulation(config, quiet=True)
    simulation.start()

    # When it has sent something and is stopped
    deadline = time.time() + 10
    while simulation.stats.samples_sent == 0 and time.time() < deadline:
        time.sleep(0.05)
    simulation.stop()

    # Then it finished promptly and reports its progress
    assert not simulation.running
    assert simulation.wait(0)
    stats = simulation.stats
    assert stats.samples_sent > 0
    assert stats.phase == "stopped"


def test_fault_offsets_count_from_the_first_simulated_timestamp(config):
    # Given a fault 5 minutes into a run that backfills 10 minutes
    fault = parse_fault("latency:payment:+300ms@+5m/2m")
    simulation = Simulation(
        SimulationConfig(config.target, config.api_key, backfill_s=600, faults=(fault,)), quiet=True
    )
    # When the schedule is read / Then the fault is active 6 minutes after the start only
    assert simulation.schedule.active(simulation.sim_start + 360)
    assert not simulation.schedule.active(simulation.sim_start + 480)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backfill_s": 3 * 3600}, "backfill must be between"),
        ({"speed": 0.5}, "speed must be at least 1"),
        ({"interval_s": 0}, "interval must be positive"),
        ({"scale": 0}, "scale"),
    ],
)
def test_config_refuses_settings_the_server_cannot_take(changes, message):
    with pytest.raises(ValueError, match=message):
        SimulationConfig(target="http://x", api_key="k", **changes)


def test_progress_line_names_rate_series_errors_and_faults():
    # Given stats with an active fault / When formatted / Then the line carries each of them
    stats = SimulationStats(
        samples_sent=12_345,
        series=1342,
        failures=1,
        retries=2,
        sim_time=1_767_800_000,
        phase="live",
        active_faults=("latency:payment:+300ms (4m left)",),
        elapsed_s=10,
    )
    line = format_progress(stats, 823.0)
    assert "12,345 samples sent (823/s)" in line
    assert "1,342 series" in line
    assert "1 failed requests" in line
    assert "2 retries" in line
    assert "latency:payment:+300ms (4m left)" in line


# --- the command line --------------------------------------------------------------------------


@pytest.fixture
def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="novacron")
    cli.register(root.add_subparsers(dest="command"))
    return root


def test_register_adds_simulate_with_its_flags(parser):
    # Given the simulate subcommand / When every flag is given / Then they parse into a config
    args = parser.parse_args(
        [
            "simulate",
            "--target",
            "http://localhost:8080",
            "--api-key",
            "KEY",
            "--interval",
            "30s",
            "--speed",
            "60",
            "--duration",
            "2m",
            "--fault",
            "latency:payment:+300ms@+5m/10m",
            "--fault",
            "errors:cart:5%",
            "--chaos",
            "--seed",
            "9",
            "--services",
            "3",
            "--backfill",
            "1h",
        ]
    )
    assert args.run is cli.run
    config = cli.config_from_args(args)
    assert (config.interval_s, config.speed, config.duration_s, config.backfill_s) == (30.0, 60.0, 120.0, 3600.0)
    assert [f.service for f in config.faults] == ["payment", "cart"]
    assert (config.chaos_interval_s, config.seed, config.scale) == (1800.0, 9, 3)


def test_defaults(parser):
    args = parser.parse_args(["simulate", "--target", "http://t", "--api-key", "k"])
    config = cli.config_from_args(args)
    assert (config.interval_s, config.speed, config.duration_s, config.faults, config.chaos_interval_s) == (
        15.0,
        1.0,
        None,
        (),
        None,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--api-key", "k"], "--target"),
        (["--target", "http://t"], "--api-key"),
        (["--target", "http://t", "--api-key", "k", "--fault", "latency:paymnt:+1s"], "did you mean 'payment'"),
        (["--target", "http://t", "--api-key", "k", "--backfill", "3h"], "at most 1h50m"),
        (["--target", "http://t", "--api-key", "k", "--speed", "0.5"], "at least 1"),
        (["--target", "http://t", "--api-key", "k", "--services", "0"], "at least 1"),
    ],
)
def test_bad_arguments_exit_2_with_a_helpful_message(parser, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["simulate", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_run_prints_progress_and_exits_0(parser, write_server, capsys):
    # Given a short run with a backfill and a fault
    args = parser.parse_args(
        [
            "simulate",
            "--target",
            write_server.url,
            "--api-key",
            "k",
            "--backfill",
            "2m",
            "--duration",
            "1",
            "--fault",
            "errors:cart:10%",
        ]
    )
    # When run / Then it succeeded and printed its summary with the fault
    assert cli.run(args) == 0
    out = capsys.readouterr().out
    assert "14 services" in out
    assert "errors:cart:10%" in out
    assert write_server.received


def test_run_reports_failure_when_nothing_is_accepted(parser, write_server, capsys):
    # Given a server that refuses everything / When run / Then exit 1 with the server's message
    write_server.script += [(401, {}, "invalid API key")] * 50
    args = parser.parse_args(
        ["simulate", "--target", write_server.url, "--api-key", "bad", "--backfill", "1m", "--duration", "1"]
    )
    assert cli.run(args) == 1
    assert "invalid API key" in capsys.readouterr().err


def test_ctrl_c_stops_cleanly_with_exit_0(parser, write_server):
    # Given a run without an end, and a Ctrl-C half a second in
    args = parser.parse_args(
        ["simulate", "--target", write_server.url, "--api-key", "k", "--backfill", "1m", "--duration", "30"]
    )
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.time()
    try:
        # When it runs / Then the interrupt ends it at once with exit status 0
        assert cli.run(args) == 0
    finally:
        timer.cancel()
    assert time.time() - started < 5


def test_ingest_accepts_every_series_the_simulation_sends(write_server):
    # Given what a backfilling run sent, and NovaCron's own ingest path with the server's clock
    Simulation(SimulationConfig(target=write_server.url, api_key="k", backfill_s=300, duration_s=0.2), quiet=True).run()
    sink = ListSink()
    service = IngestService(sink)

    # When each request body goes through decode, validation and packing
    results = [service.remote_write(r.body, r.headers, tenant="t") for r in write_server.received]

    # Then nothing was rejected
    assert results
    assert [msg for r in results for msg in r.rejected] == []
    assert sum(r.samples_accepted for r in results) == sum(len(s) for _, s in received_samples(write_server))
