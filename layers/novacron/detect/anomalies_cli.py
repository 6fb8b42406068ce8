"""``novacron anomalies list|feedback`` and ``novacron detect settings get|set|history``, through a running NovaCron.

``anomalies list`` reads ``GET /api/v1/anomalies`` (any key of the tenant); ``anomalies feedback`` and
the ``detect settings`` actions are admin calls (novacron.detect.policy, docs/openapi.yaml).
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from novacron.cli import CliError, _api
from novacron.detect.policy import Seasonality
from novacron.forecast.cli import _duration_ms
from novacron.policy_cli import _target
from novacron.retention_cli import policy_source, print_history

SETTINGS_PATH = "/api/v1/admin/detection"
ANOMALIES_PATH = "/api/v1/anomalies"
OVERRIDE_FIELDS = ("sensitivity", "seasonality")


def register(commands: Any) -> None:
    """Add the ``anomalies`` command."""
    anomalies = commands.add_parser(
        "anomalies",
        help="list the anomalies the detector found, and mark them as true or false positives",
        description="A tenant's anomaly episodes through a running NovaCron.",
    )
    actions = anomalies.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the tenant's anomaly episodes, newest first")
    _target(listing)
    listing.add_argument("--status", choices=("open", "resolved"), help="only open or resolved episodes")
    listing.add_argument("--severity", choices=("warning", "critical"), help="only episodes of this severity")
    listing.add_argument("--metric", help="only episodes of this metric name")
    listing.add_argument("--since", default="24h", help="episodes that started within this long (default 24h)")
    listing.add_argument("--limit", type=int, help="at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="print the episodes as JSON")
    listing.set_defaults(run=_list)

    feedback = actions.add_parser("feedback", help="mark an episode as a true or false positive (an admin key)")
    _target(feedback)
    feedback.add_argument("id", help="the episode's id (from `anomalies list`)")
    feedback.add_argument("--verdict", required=True, choices=("true_positive", "false_positive"))
    feedback.add_argument("--comment", default="", help="why (shown with the episode)")
    feedback.set_defaults(run=_feedback)


def register_settings(actions: Any) -> None:
    """Add ``settings get|set|history`` to the ``detect`` command's actions."""
    settings = actions.add_parser(
        "settings",
        help="show or change what the detector watches, how sensitively, and maintenance windows",
        description="Read or change a tenant's detection policy through a running NovaCron.",
    )
    verbs = settings.add_subparsers(title="settings actions", metavar="ACTION", required=True)
    get = verbs.add_parser("get", help="print the policy as JSON")
    _target(get)
    get.set_defaults(run=_get)

    change = verbs.add_parser(
        "set",
        help="change the policy: from a file and/or options (the rest stays)",
        description=(
            "Start from the stored policy, or from --file (YAML or JSON with defaults, overrides, watch, ignore "
            "and maintenance), apply the options, and store it as the next version."
        ),
    )
    _target(change)
    change.add_argument("--file", type=Path, help="a YAML/JSON policy document replacing the stored one")
    change.add_argument("--sensitivity", type=float, help="default sensitivity, 0-1 (higher: alarms sooner)")
    change.add_argument("--seasonality", choices=[str(s) for s in Seasonality], help="default seasonal model")
    change.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="SELECTOR:FIELD=VALUE[,FIELD=VALUE]",
        help="append an override: a metric name or a {…} series selector, then sensitivity and/or seasonality, "
        "e.g. 'http_errors_total:sensitivity=0.8' or '{env=\"dev\"}:seasonality=none' (repeatable)",
    )
    change.add_argument("--watch", action="append", default=[], metavar="SELECTOR", help="also watch these series")
    change.add_argument("--ignore", action="append", default=[], metavar="SELECTOR", help="never score these series")
    change.add_argument(
        "--maintenance",
        action="append",
        default=[],
        metavar="START/END",
        help="add a maintenance window over every series, RFC 3339 times, e.g. "
        "2026-11-28T02:00:00Z/2026-11-28T03:00:00Z (repeatable; matchers per window: --file)",
    )
    change.add_argument("--comment", default="", help="the comment of the windows added with --maintenance")
    for name in ("overrides", "watch", "ignore", "maintenance"):
        change.add_argument(f"--clear-{name}", action="store_true", help=f"drop the existing {name} first")
    change.set_defaults(run=_set)

    history = verbs.add_parser("history", help="the versions of the policy: who changed what, when")
    _target(history)
    history.add_argument("--limit", type=int, default=20, help="at most this many versions, newest first")
    history.add_argument("--json", action="store_true", help="print the audit records as JSON")
    history.set_defaults(run=_history)


def parse_override(text: str) -> dict[str, Any]:
    """``SELECTOR:FIELD=VALUE,...`` as an override document (a selector is a metric name or ``{...}``)."""
    selector, sep, settings = text.rpartition(":")
    if not sep or not selector or not settings:
        raise CliError(f"--override must be SELECTOR:FIELD=VALUE[,FIELD=VALUE], got {text!r}")
    override: dict[str, Any] = {"match" if "{" in selector else "metric": selector}
    for pair in settings.split(","):
        name, eq, value = (part.strip() for part in pair.partition("="))
        if not eq or name not in OVERRIDE_FIELDS or not value:
            raise CliError(
                f"--override {text!r}: {pair.strip()!r} must be FIELD=VALUE, FIELD one of sensitivity, seasonality"
            )
        override[name] = value
    if "sensitivity" in override:
        try:
            override["sensitivity"] = float(override["sensitivity"])
        except ValueError:
            raise CliError(f"--override {text!r}: sensitivity must be a number") from None
    return override


def parse_window(text: str, comment: str) -> dict[str, Any]:
    """``START/END`` as a maintenance window over every series (the server checks the times)."""
    start, sep, end = text.partition("/")
    if not sep or not start or not end:
        raise CliError(f"--maintenance must be START/END (RFC 3339 times), got {text!r}")
    return {"start": start, "end": end, "comment": comment}


def changed_detection(current: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The PUT body for ``detect settings set``: the current policy (or the file's), with the options applied."""
    source = policy_source(current, args.file, "(defaults, overrides, watch, ignore, maintenance)")
    defaults = dict(source.get("defaults") or {})
    if args.sensitivity is not None:
        defaults["sensitivity"] = args.sensitivity
    if args.seasonality is not None:
        defaults["seasonality"] = args.seasonality

    def kept(name: str) -> list[Any]:
        return [] if getattr(args, f"clear_{name}") else list(source.get(name) or [])

    return {
        "version": current["version"],
        "defaults": defaults,
        "overrides": kept("overrides") + [parse_override(text) for text in args.override],
        "watch": kept("watch") + args.watch,
        "ignore": kept("ignore") + args.ignore,
        "maintenance": kept("maintenance") + [parse_window(text, args.comment) for text in args.maintenance],
    }


def _get(args: argparse.Namespace) -> int:
    print(json.dumps(_api(args, "GET", SETTINGS_PATH, {}), indent=2))
    return 0


def _set(args: argparse.Namespace) -> int:
    current = _api(args, "GET", SETTINGS_PATH, {})
    print(json.dumps(_api(args, "PUT", SETTINGS_PATH, {}, changed_detection(current, args)), indent=2))
    return 0


def _history(args: argparse.Namespace) -> int:
    return print_history(args, SETTINGS_PATH)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _list(args: argparse.Namespace) -> int:
    since = _duration_ms(args.since, "--since")
    assert since is not None
    now = time.time()
    params = {"start": str(now - since / 1000), "end": str(now)}
    params.update({name: str(v) for name in ("status", "severity", "metric", "limit") if (v := getattr(args, name))})
    episodes = _api(args, "GET", ANOMALIES_PATH, params)
    if args.json:
        print(json.dumps(episodes, indent=2))
        return 0
    for a in episodes:
        labels = ",".join(f'{k}="{v}"' for k, v in a["labels"].items() if k != "__name__")
        expected = "?" if a["expected"] is None else f"{a['expected']:.4g}"
        verdict = f"  [{a['feedback']['verdict']}]" if a.get("feedback") else ""
        quiet = "  (maintenance)" if a.get("suppressed") else ""
        print(
            f"{a['id']}  {_when(a['start_ms'] / 1000)}  {a['status']:8}  {a['severity']:8}  "
            f"{a['metric']}{{{labels}}}  value {a['value']:.4g} expected {expected}  "
            f"{'+'.join(a['methods'])}{verdict}{quiet}"
        )
    return 0


def _feedback(args: argparse.Namespace) -> int:
    body = {"verdict": args.verdict, "comment": args.comment}
    data = _api(args, "POST", f"{ANOMALIES_PATH}/{urllib.parse.quote(args.id, safe='')}/feedback", {}, body)
    print(json.dumps(data, indent=2))
    return 0
