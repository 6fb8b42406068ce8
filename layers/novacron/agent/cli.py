"""``novacron agent`` (run, export) and ``novacron import`` (replay exported queue files)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger("novacron.agent")

_EPILOG = """examples:
  novacron agent --config /etc/novacron/agent.yaml
  novacron agent export --config /etc/novacron/agent.yaml --output /media/usb/novacron
  novacron import /media/usb/novacron/*.seg --url https://nc.example.com --api-key KEY
"""


def register(commands: Any) -> None:
    """Add ``agent`` (with its ``export`` action) and ``import`` to the ``novacron`` parser."""
    agent = commands.add_parser(
        "agent",
        help="run the collection agent (StatsD, scrapes, local OTLP → disk queue → NovaCron)",
        description="Collect StatsD/DogStatsD, Prometheus scrapes and local OTLP, queue on disk, forward to NovaCron.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    agent.add_argument("--config", type=Path, help="the agent.yaml file")
    agent.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    agent.set_defaults(run=_run_agent)
    actions = agent.add_subparsers(title="actions", metavar="ACTION")
    export = actions.add_parser(
        "export",
        help="write the undelivered queue to files (for air-gapped transfer); the agent must be stopped",
    )
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, dest="export_config", help="the agent.yaml (its queue.dir is used)")
    source.add_argument("--queue-dir", type=Path, help="the queue directory itself")
    export.add_argument("--output", type=Path, required=True, help="directory to write the files into")
    export.add_argument(
        "--drain",
        action="store_true",
        help="mark the exported entries delivered, so the agent will not also send them",
    )
    export.set_defaults(run=_run_export)

    replay = commands.add_parser(
        "import",
        help="send exported agent queue files to NovaCron",
        description="Replay files written by 'novacron agent export' (or queue segment files) to NovaCron.",
    )
    replay.add_argument("files", nargs="+", type=Path, metavar="FILE")
    replay.add_argument("--url", required=True, help="NovaCron API base URL, e.g. https://nc.example.com")
    replay.add_argument("--api-key", help="an ingest key (default: $NOVACRON_API_KEY)")
    replay.add_argument("--max-retries", type=int, default=8, help="resends of one request before giving up")
    replay.set_defaults(run=_run_import)


def _fail(message: str) -> int:
    print(f"novacron: error: {message}", file=sys.stderr)
    return 1


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def _run_agent(args: argparse.Namespace) -> int:
    from novacron.agent.config import ConfigError, load_config
    from novacron.agent.queue import QueueLockedError
    from novacron.agent.runtime import Agent

    if args.config is None:
        return _fail("give --config FILE")
    _configure_logging(args.log_level)
    try:
        config = load_config(args.config)
        agent = Agent(config, config.resolve_api_key(os.environ))
    except (ConfigError, ValueError) as exc:
        return _fail(str(exc))
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    # Restored on the way out: a caller running the CLI in-process keeps its own Ctrl-C behaviour.
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            agent.start()
        except QueueLockedError as exc:
            return _fail(str(exc))
        except OSError as exc:
            agent.stop()
            return _fail(f"cannot listen: {exc}")
        try:
            while not stop.wait(1.0):
                pass
        finally:
            agent.stop()
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_export(args: argparse.Namespace) -> int:
    from novacron.agent.config import ConfigError, load_config
    from novacron.agent.queue import DiskQueue, QueueError, export_queue

    if args.queue_dir is not None:
        directory, max_bytes, segment_bytes = args.queue_dir, 1024**4, 16 * 1024**2
    else:
        try:
            config = load_config(args.export_config)
        except ConfigError as exc:
            return _fail(str(exc))
        directory, max_bytes, segment_bytes = config.queue.dir, config.queue.max_bytes, config.queue.segment_bytes
    if not directory.is_dir():
        return _fail(f"no queue at {directory}")
    try:
        with DiskQueue(directory, max_bytes=max_bytes, segment_bytes=segment_bytes) as queue:
            entries, samples = queue.stats.depth_entries, queue.stats.depth_samples
            files = export_queue(queue, args.output, drain=args.drain)
    except QueueError as exc:
        return _fail(str(exc))
    for path in files:
        print(path)
    print(f"exported {entries} entries ({samples} samples) to {len(files)} files", file=sys.stderr)
    return 0


def _run_import(args: argparse.Namespace) -> int:
    from novacron.agent.forward import Forwarder, HttpTransport, Stopped
    from novacron.agent.queue import read_entries_file

    key = args.api_key or os.environ.get("NOVACRON_API_KEY", "")
    if not key:
        return _fail("give --api-key or set NOVACRON_API_KEY")
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        return _fail(f"no such file: {', '.join(missing)}")
    _configure_logging("WARNING")
    try:
        transport = HttpTransport(args.url, key)
    except ValueError as exc:
        return _fail(str(exc))
    attempts: dict[str, int] = {"n": 0}
    give_up = threading.Event()

    def wait(seconds: float) -> bool:
        # An import is run by a person: retry a while, then say so rather than wait forever.
        attempts["n"] += 1
        if attempts["n"] > args.max_retries:
            give_up.set()
            return True
        return give_up.wait(seconds)

    forwarder = Forwarder(transport, wait=wait)
    delivered = rejected = 0
    for path in args.files:
        for entry in read_entries_file(path):
            attempts["n"] = 0
            try:
                if forwarder.deliver(entry):
                    delivered += 1
                else:
                    rejected += 1
            except Stopped:
                return _fail(
                    f"{path}: gave up after {args.max_retries} retries ({forwarder.stats.last_error}); "
                    f"{delivered} requests delivered so far. Re-running the import is safe: resent samples "
                    "are stored once."
                )
    print(
        f"imported {delivered} requests ({forwarder.stats.sent_samples} samples); {rejected} rejected"
        + (f" (last: {forwarder.stats.last_error})" if rejected else "")
    )
    return 0 if rejected == 0 else 1
