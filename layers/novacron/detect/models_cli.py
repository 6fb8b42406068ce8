"""``novacron detect models [--service S]``: a tenant's per-service models through a running NovaCron.

Reads ``GET /api/v1/admin/models`` (an admin key) and prints, per service, the current and shadow
models, how the shadow is doing beside the current one, and the newest entries of the promotion log.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from novacron.cli import _api
from novacron.policy_cli import _target

MODELS_PATH = "/api/v1/admin/models"


def register_models(actions: Any) -> None:
    """Add ``models`` to the ``detect`` command's actions."""
    models = actions.add_parser(
        "models",
        help="the per-service Isolation Forest models: current, shadow, and the promotion log",
        description="A tenant's per-service models through a running NovaCron (an admin key).",
    )
    _target(models)
    models.add_argument("--service", help="only this service")
    models.add_argument("--log", type=int, default=5, help="log entries shown per service, newest first (default 5)")
    models.add_argument("--json", action="store_true", help="print the answer as JSON")
    models.set_defaults(run=_models)


def _when(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _model(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "none"
    if "trained_at_ms" not in summary:
        return f"v{summary['version']}"
    return f"v{summary['version']} (trained {_when(summary['trained_at_ms'])}, {summary['points']} points)"


def render(services: list[dict[str, Any]], log_entries: int = 5) -> str:
    """The answer's services as a table, one block per service."""
    if not services:
        return "no models yet (the trainer needs a few hours of a service's history)"
    rows = [f"{'SERVICE':20} {'CURRENT':48} {'SHADOW':48} SHADOW STATS"]
    details = []
    for s in services:
        stats = s.get("shadow_stats") or {}
        shown = (
            f"{stats['minutes']} min, alarms {stats['current_alarms']} vs {stats['shadow_alarms']}, "
            f"agree {stats['agreement']}"
            if stats
            else "-"
        )
        rows.append(f"{s['service']:20} {_model(s['current']):48} {_model(s['shadow']):48} {shown}")
        features = (s["current"] or {}).get("features", [])
        details.append(f"{s['service']}: features {', '.join(features) or '-'}")
        for entry in s["log"][:log_entries]:
            details.append(f"  {_when(entry['at_ms'])}  {entry['action']:9} v{entry['version']}  {entry['reason']}")
    return "\n".join([*rows, "", *details])


def _models(args: argparse.Namespace) -> int:
    params = {"service": args.service} if args.service else {}
    data = _api(args, "GET", MODELS_PATH, params)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(render(data["services"], args.log))
    return 0
