"""``novacron forecast``: forecasts with intervals and time until a threshold, from a running NovaCron or a CSV."""

from __future__ import annotations

import argparse
import csv
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from novacron.cli import CliError, _api
from novacron.detect.cli import InputError, read_rows
from novacron.forecast.api import forecast_json
from novacron.forecast.model import Forecast, ForecastError, crossing, forecast
from novacron.promql import BadData
from novacron.query.prom_api import parse_duration

PATH = "/api/v1/forecast"


def register(commands: Any) -> None:
    """Add the ``forecast`` command."""
    parser = commands.add_parser(
        "forecast",
        help="forecast series with prediction intervals, and when they reach a threshold",
        description=(
            "Forecast each series of a PromQL query through a running NovaCron (--url, --api-key, --query), "
            "or one series from a CSV file with the columns timestamp,value (--input; ISO 8601 or epoch "
            "seconds, any interval). Prints, per series, the model, the last value, the forecast at the "
            "horizon with its 95% interval and, with --threshold, when it is reached."
        ),
    )
    parser.add_argument("--horizon", required=True, help="how far ahead, e.g. 6h or 7d")
    parser.add_argument("--threshold", type=float, help="a value: when does each series reach it")
    parser.add_argument(
        "--direction", choices=["above", "below"], help="crossing upwards or downwards (default: the trend's way)"
    )
    parser.add_argument("--step", help="the forecast grid's step, e.g. 5m (default: from the data)")
    parser.add_argument(
        "--json", action="store_true", help="print the forecasts as JSON (the API answer's result list)"
    )
    online = parser.add_argument_group("from a running NovaCron")
    online.add_argument("--url", default=os.environ.get("NOVACRON_URL"), help="API base URL (default: $NOVACRON_URL)")
    online.add_argument(
        "--api-key", default=os.environ.get("NOVACRON_API_KEY"), help="a read key (default: $NOVACRON_API_KEY)"
    )
    online.add_argument("--query", help="a PromQL expression; each of its series is forecast")
    online.add_argument("--history", help="how much history to read (default 14d on the server)")
    online.add_argument("--time", help="the forecast origin, RFC 3339 or Unix seconds (default now)")
    offline = parser.add_argument_group("from a file")
    offline.add_argument("--input", type=Path, help="CSV file with the columns timestamp,value")
    offline.add_argument("--output", type=Path, help="write the forecast as CSV (timestamp,forecast,lower80,…)")
    parser.set_defaults(run=run_forecast, tenant=None)


def run_forecast(args: argparse.Namespace) -> int:
    """The ``forecast`` command: offline from --input, else through the API."""
    if (args.input is None) == (args.query is None):
        raise CliError("give either --query (with --url and --api-key) or --input")
    rows = _offline(args) if args.input is not None else _online(args)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(summary(rows, args.horizon))
    return 0


def _online(args: argparse.Namespace) -> list[dict[str, Any]]:
    if not args.url or not args.api_key:
        raise CliError("give --url and --api-key (a read key), or set NOVACRON_URL and NOVACRON_API_KEY")
    params = {"query": args.query, "horizon": args.horizon}
    optional = {"history": args.history, "step": args.step, "time": args.time, "direction": args.direction}
    params.update({name: value for name, value in optional.items() if value is not None})
    if args.threshold is not None:
        params["threshold"] = repr(args.threshold)
    data = _api(args, "GET", PATH, params)
    result: list[dict[str, Any]] = data["result"]
    return result


def _duration_ms(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    try:
        value = parse_duration(text)
    except BadData as exc:
        raise CliError(f"{option}: {exc}") from None
    if value <= 0:
        raise CliError(f"{option} must be positive, got {text!r}")
    return value


def _offline(args: argparse.Namespace) -> list[dict[str, Any]]:
    horizon = _duration_ms(args.horizon, "--horizon")
    assert horizon is not None
    try:
        with args.input.open(newline="", encoding="utf-8") as source:
            samples, _ = read_rows(source)
    except OSError as exc:
        raise CliError(f"cannot read {args.input}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CliError(f"{args.input} is not UTF-8 text") from None
    except InputError as exc:
        raise CliError(f"{args.input}: {exc}") from None
    timestamps = np.array([row.timestamp_ms for row in samples], dtype=np.int64)
    values = np.array([row.value for row in samples], dtype=np.float64)
    try:
        result = forecast(timestamps, values, horizon, step_ms=_duration_ms(args.step, "--step"))
    except ForecastError as exc:
        raise CliError(f"{args.input}: {exc}") from None
    answer = None if args.threshold is None else crossing(result, args.threshold, args.direction)
    if args.output is not None:
        _write_csv(result, args.output)
    return [forecast_json({}, result, answer)]


def _write_csv(result: Forecast, path: Path) -> None:
    try:
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["timestamp", "forecast", "lower80", "upper80", "lower95", "upper95"])
            columns = (result.mean, result.lower80, result.upper80, result.lower95, result.upper95)
            for index, t in enumerate(result.timestamps.tolist()):
                writer.writerow([_iso(t / 1000), *(f"{float(c[index]):.6g}" for c in columns)])
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _after(seconds: float | None, origin: float) -> str:
    if seconds is None:
        return "not within the horizon"
    hours = (seconds - origin) / 3600
    span = f"{hours / 24:.1f} d" if hours >= 48 else f"{hours:.1f} h"
    return f"{_iso(seconds)} (in {span})"


def summary(rows: list[dict[str, Any]], horizon: str) -> str:
    """A readable table of forecasts (API answer rows): per series the model, now, the horizon, the threshold."""
    if not rows:
        return "no series to forecast"
    lines = []
    for row in rows:
        metric = row["metric"]
        labels = ", ".join(f'{k}="{v}"' for k, v in metric.items() if k != "__name__")
        lines.append(f"{metric.get('__name__', '')}{{{labels}}}" if metric else "series")
        now_t, now_v = row["current"]
        end_t, end_v = row["values"][-1]
        low, high = row["lower95"][-1][1], row["upper95"][-1][1]
        origin = row["values"][0][0] - row["step"]
        lines.append(f"  model      {row['model']} (step {row['step']:g} s)")
        lines.append(f"  now        {float(now_v):.6g} at {_iso(now_t)}")
        lines.append(
            f"  in {horizon:<7} {float(end_v):.6g}  95% interval [{float(low):.6g}, {float(high):.6g}] at {_iso(end_t)}"
        )
        threshold = row["threshold"]
        if threshold is not None:
            reached = _after(threshold["crosses_at"], origin)
            lines.append(f"  reaches {threshold['value']:g} ({threshold['direction']}): {reached}")
            lines.append(
                f"    earliest {_after(threshold['earliest'], origin)}; latest {_after(threshold['latest'], origin)}"
            )
    return "\n".join(lines)
