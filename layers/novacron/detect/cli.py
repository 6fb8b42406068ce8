"""``novacron detect score``: replay a series from a CSV file through the streaming detector.

``novacron detect settings`` (a tenant's detection policy) lives in novacron.detect.anomalies_cli.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from novacron.detect.stream import SeriesDetector

PROGRESS_EVERY = 5_000
BAD_INPUT = 2


class InputError(Exception):
    """The input cannot be scored; the message says where and why."""


@dataclass(frozen=True)
class Row:
    """One sample of the input: the timestamp as written and in milliseconds, the value as written and parsed."""

    text: str
    timestamp_ms: int
    value_text: str
    value: float


def register(commands: Any) -> None:
    """Add the ``detect`` command."""
    detect = commands.add_parser(
        "detect",
        help="score a series for anomalies offline, with the same detector as the stream",
        description="Anomaly detection tools.",
    )
    actions = detect.add_subparsers(title="actions", metavar="ACTION", required=True)
    score = actions.add_parser(
        "score",
        help="score every sample of one series (CSV timestamp,value) in time order",
        description=(
            "Replay a series through the streaming anomaly detector, sample by sample in timestamp order, "
            "and write timestamp,value,score,anomaly. The input has a header with the columns timestamp and "
            "value; timestamps are ISO 8601 (UTC when no offset) or epoch seconds, at any interval."
        ),
    )
    score.add_argument("--input", required=True, type=Path, help="CSV file with the columns timestamp,value")
    score.add_argument("--output", type=Path, help="CSV file to write (default: standard output)")
    score.add_argument(
        "--sensitivity",
        type=_sensitivity,
        default=0.5,
        help="0-1: a sample is an anomaly when its score reaches 1 - sensitivity (default 0.5)",
    )
    score.set_defaults(run=run_score)
    from novacron.detect.anomalies_cli import register_settings  # the admin API's client: loaded with its command
    from novacron.detect.models_cli import register_models

    register_settings(actions)
    register_models(actions)


def _sensitivity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"sensitivity {text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"sensitivity must be within [0, 1], got {text}")
    return value


def parse_timestamp(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 time (UTC when naive) or of epoch seconds."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"timestamp {text!r} is not a finite number")
        return round(seconds * 1000)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is neither ISO 8601 nor epoch seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def read_rows(source: TextIO) -> tuple[list[Row], int]:
    """The samples of a ``timestamp,value`` CSV, and how many rows had no value (empty or NaN)."""
    reader = csv.reader(source)
    header = next(reader, None)
    if header is None:
        raise InputError("the input is empty; expected a header with the columns timestamp,value")
    names = [name.strip().lower() for name in header]
    missing = [name for name in ("timestamp", "value") if name not in names]
    if missing:
        raise InputError(f"the header lacks the column(s) {', '.join(missing)}; found {', '.join(header)}")
    t_col, v_col = names.index("timestamp"), names.index("value")
    rows: list[Row] = []
    skipped = 0
    for cells in reader:
        line = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) <= max(t_col, v_col):
            raise InputError(f"line {line}: expected at least {max(t_col, v_col) + 1} columns, got {len(cells)}")
        stamp, text = cells[t_col].strip(), cells[v_col].strip()
        try:
            timestamp_ms = parse_timestamp(stamp)
        except ValueError as exc:
            raise InputError(f"line {line}: {exc}") from None
        if not text or text.lower() == "nan":
            skipped += 1
            continue
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"line {line}: value {text!r} is not a number") from None
        if not math.isfinite(value):
            raise InputError(f"line {line}: value {text!r} is not finite")
        rows.append(Row(stamp, timestamp_ms, text, value))
    return rows, skipped


def run_score(args: argparse.Namespace) -> int:
    """The ``detect score`` command: 0 when scored, 2 on bad input."""
    started = time.perf_counter()
    try:
        with args.input.open(newline="", encoding="utf-8") as source:
            rows, skipped = read_rows(source)
    except OSError as exc:
        return _fail(f"cannot read {args.input}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        return _fail(f"{args.input} is not UTF-8 text")
    except InputError as exc:
        return _fail(f"{args.input}: {exc}")
    if any(b.timestamp_ms < a.timestamp_ms for a, b in itertools.pairwise(rows)):
        rows.sort(key=lambda r: r.timestamp_ms)
        print("novacron detect: the input is not in timestamp order; scoring it sorted", file=sys.stderr)
    try:
        with _open_output(args.output) as out:
            anomalies = _score(rows, args.sensitivity, out)
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror or exc}")
    seconds = time.perf_counter() - started
    print(
        f"novacron detect: {len(rows):,} points, {anomalies:,} anomalies, {skipped:,} rows without a value "
        f"skipped, {seconds:.2f} s",
        file=sys.stderr,
    )
    return 0


def _score(rows: list[Row], sensitivity: float, out: TextIO) -> int:
    detector = SeriesDetector(sensitivity)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "value", "score", "anomaly"])
    anomalies = 0
    for row in _with_progress(rows):
        verdict = detector.observe(row.timestamp_ms, row.value)
        anomalies += verdict.anomaly
        writer.writerow([row.text, row.value_text, f"{verdict.score:.4f}", int(verdict.anomaly)])
    return anomalies


def _with_progress(rows: list[Row]) -> Iterator[Row]:
    """The rows, reporting progress on standard error every PROGRESS_EVERY of them."""
    total = len(rows)
    for index, row in enumerate(rows, start=1):
        yield row
        if index % PROGRESS_EVERY == 0 and index < total:
            print(f"novacron detect: scored {index:,} of {total:,} points", file=sys.stderr)


def _open_output(path: Path | None) -> contextlib.AbstractContextManager[TextIO]:
    """The output file, or standard output (left open) without one."""
    if path is None:
        return contextlib.nullcontext(sys.stdout)
    return path.open("w", newline="", encoding="utf-8")


def _fail(message: str) -> int:
    print(f"novacron detect: error: {message}", file=sys.stderr)
    return BAD_INPUT
