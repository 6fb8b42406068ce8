"""``novacron simulate``: an online-shop estate sending realistic metrics over Prometheus remote write."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from novacron.simulate.estate import default_services
from novacron.simulate.faults import GRAMMAR, FaultSpec, FaultSpecError, parse_duration, parse_fault
from novacron.simulate.runner import MAX_BACKFILL_S, Simulation, SimulationConfig

SERVICE_NAMES = tuple(s.name for s in default_services())

_EPILOG = (
    "fault specs (--fault SPEC):\n" + GRAMMAR + f"\nservices: {', '.join(SERVICE_NAMES)}\n" + "\nexamples:\n"
    "  novacron simulate --target http://localhost:8080 --api-key KEY\n"
    "  novacron simulate --target http://localhost:8080 --api-key KEY --backfill 1h \\\n"
    "      --fault latency:payment:+300ms@+50m/10m --fault errors:product-catalog:20%@+65m/5m\n"
    "  novacron simulate --target http://localhost:8080 --api-key KEY --speed 60 --chaos --duration 2m\n"
)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_duration(text: str) -> float:
    seconds = _duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive duration")
    return seconds


def _fault(text: str) -> FaultSpec:
    try:
        return parse_fault(text, SERVICE_NAMES)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"speed {text!r} is not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("speed must be at least 1: the server refuses samples from the future")
    return value


def _scale(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--services takes a whole number of at least 1, not {text!r}")
    return int(text)


def _backfill(text: str) -> float:
    seconds = _duration(text)
    if seconds > MAX_BACKFILL_S:
        raise argparse.ArgumentTypeError(
            f"backfill {text!r} is too long: the server refuses samples older than 2 hours, so at most 1h50m"
        )
    return seconds


def register(subparsers: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    """Add the ``simulate`` subcommand; its ``run`` default is the function that runs it."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="simulate an online-shop microservice estate sending metrics over remote write",
        description=(
            "Simulate an online shop of 14 services (frontend, checkout, payment, cart, redis, postgres, ...) "
            "with daily and weekly traffic seasonality, and send its metrics to a NovaCron (or any "
            "Prometheus remote write 1.0) endpoint. Faults propagate from a service to its callers."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``simulate`` (shared by ``register`` and the standalone ``main``)."""
    parser.add_argument(
        "--target",
        required=True,
        metavar="URL",
        help="base URL of the endpoint; /api/v1/write is appended unless present",
    )
    parser.add_argument("--api-key", required=True, metavar="KEY", help="API key, sent as a Bearer token")
    parser.add_argument(
        "--interval",
        type=_positive_duration,
        default=15.0,
        metavar="DURATION",
        help="scrape interval, e.g. 15 or 15s (default: 15s)",
    )
    parser.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        metavar="FACTOR",
        help="run the simulated clock FACTOR times faster until it reaches the present; without "
        "--backfill it then starts 1h50m in the past (default: 1, real time)",
    )
    parser.add_argument(
        "--backfill",
        type=_backfill,
        default=None,
        metavar="DURATION",
        help="first send the history of the last DURATION (at most 1h50m) as fast as possible "
        "(or at --speed), then continue in real time",
    )
    parser.add_argument(
        "--duration",
        type=_positive_duration,
        default=None,
        metavar="DURATION",
        help="stop after this much wall-clock time (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault, repeatable; e.g. latency:payment:+300ms@+5m/10m (grammar below); "
        "offsets count from the first simulated timestamp",
    )
    parser.add_argument(
        "--chaos",
        type=_positive_duration,
        nargs="?",
        const=1800.0,
        default=None,
        metavar="INTERVAL",
        help="inject random faults, one per INTERVAL on average (default: 30m)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice (default: 1)")
    parser.add_argument(
        "--services",
        type=_scale,
        default=1,
        metavar="N",
        help="scale the estate N times: N times the instances of every service and N times the "
        "traffic (default: 1, about 1,300 series)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_duration,
        default=10.0,
        metavar="DURATION",
        help="HTTP timeout per request (default: 10s)",
    )
    parser.add_argument(
        "--progress-every",
        type=_positive_duration,
        default=10.0,
        metavar="DURATION",
        help="how often to print a progress line (default: 10s)",
    )


def config_from_args(args: argparse.Namespace) -> SimulationConfig:
    """The run's configuration from parsed arguments."""
    return SimulationConfig(
        target=args.target,
        api_key=args.api_key,
        interval_s=args.interval,
        speed=args.speed,
        duration_s=args.duration,
        backfill_s=args.backfill,
        faults=tuple(args.fault),
        chaos_interval_s=args.chaos,
        seed=args.seed,
        scale=args.services,
        timeout_s=args.timeout,
        progress_every_s=args.progress_every,
    )


def run(args: argparse.Namespace) -> int:
    """Run the simulation in the foreground; Ctrl-C stops it cleanly (exit 0)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"novacron simulate: error: {exc}", file=sys.stderr)
        return 2
    simulation = Simulation(config)
    sim_series = simulation.simulator.series_count
    print(
        f"novacron simulate: {len(simulation.estate.services)} services, "
        f"{len(simulation.estate.all_instances())} instances, ~{sim_series:,} series every "
        f"{config.interval_s:g}s → {simulation.client.url}",
        flush=True,
    )
    try:
        simulation.run()
    except KeyboardInterrupt:
        # The loop's finally has printed the summary; a second Ctrl-C during it is not worth a traceback.
        simulation.stop(timeout=0)
    finally:
        simulation.client.close()
    stats = simulation.stats
    if stats.samples_sent == 0 and stats.failures > 0:
        print(f"novacron simulate: nothing was accepted: {stats.last_error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m novacron.simulate ...``."""
    parser = argparse.ArgumentParser(
        prog="novacron simulate", epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
