"""``novacron incidents list|show|ack|resolve|reopen|comment``, through a running NovaCron.

``list`` and ``show`` read ``/api/v1/incidents`` (any key of the tenant); the actions are admin calls
(``POST /api/v1/incidents/{id}/{action}``), recorded on the incident's timeline with the key's id.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from novacron.cli import _api
from novacron.forecast.cli import _duration_ms
from novacron.policy_cli import _target

INCIDENTS_PATH = "/api/v1/incidents"
# CLI verb → API action
ACTIONS = {"ack": "acknowledge", "resolve": "resolve", "reopen": "reopen", "comment": "comment"}


def register(commands: Any) -> None:
    """Add the ``incidents`` command."""
    incidents = commands.add_parser(
        "incidents",
        help="list, show, acknowledge, resolve, reopen and comment on incidents",
        description="A tenant's incidents (correlated alerts) through a running NovaCron.",
    )
    actions = incidents.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the tenant's incidents, newest first")
    _target(listing)
    listing.add_argument(
        "--status", choices=("open", "acknowledged", "resolved", "active"), help="only incidents in this state"
    )
    listing.add_argument("--service", help="only incidents touching this service")
    listing.add_argument("--since", default="7d", help="incidents opened within this long (default 7d)")
    listing.add_argument("--limit", type=int, help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true", help="print the incidents as JSON")
    listing.set_defaults(run=_list)

    show = actions.add_parser("show", help="one incident: its alerts, origin, priority and timeline")
    _target(show)
    show.add_argument("id", help="the incident's id (from `incidents list`)")
    show.add_argument("--json", action="store_true", help="print the incident as JSON")
    show.set_defaults(run=_show)

    for verb, action in ACTIONS.items():
        parser = actions.add_parser(verb, help=f"{action} an incident (an admin key)")
        _target(parser)
        parser.add_argument("id", help="the incident's id")
        parser.add_argument("--comment", "-m", required=verb == "comment", default="", help="a note for the timeline")
        parser.set_defaults(run=_act, action=action)


def _when(ms: float | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_incident(incident: dict[str, Any]) -> list[str]:
    """An incident as the lines ``show`` prints."""
    lines = [
        f"{incident['id']}  {incident['priority_label']} ({incident['priority']})  {incident['status']}",
        f"  {incident['title']}",
        f"  opened {_when(incident['opened_at_ms'])}   resolved {_when(incident['resolved_at_ms'])}",
        f"  services: {', '.join(incident['services']) or '-'}",
        f"  suspected origin: {incident['origin'] or '-'} ({incident['origin_reason']})",
        "  alerts:",
    ]
    for alert in incident["alerts"]:
        state = "firing" if alert["firing"] else "resolved"
        lines.append(
            f"    {_when(alert['starts_at_ms'])}  {state:8}  {alert['severity']:8}  {alert['name']}"
            f"  [{alert['source']}] {alert['service'] or '-'}  {alert['summary']}".rstrip()
        )
    lines.append("  timeline:")
    lines.extend(f"    {_when(e['at_ms'])}  {e['kind']:15} {e['text']}  ({e['by']})" for e in incident["timeline"])
    return lines


def _list(args: argparse.Namespace) -> int:
    since = _duration_ms(args.since, "--since")
    assert since is not None
    now = time.time()
    params = {"start": str(now - since / 1000), "end": str(now)}
    params.update({name: str(v) for name in ("status", "service", "limit") if (v := getattr(args, name))})
    data = _api(args, "GET", INCIDENTS_PATH, params)
    if args.json:
        print(json.dumps(data["incidents"], indent=2))
        return 0
    for i in data["incidents"]:
        print(
            f"{i['id']}  {_when(i['opened_at_ms'])}  {i['priority_label']}  {i['status']:12}  "
            f"{i['alerts_firing']}/{i['alerts_total']} firing  {i['title']}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    incident = _api(args, "GET", f"{INCIDENTS_PATH}/{urllib.parse.quote(args.id, safe='')}", {})
    print(json.dumps(incident, indent=2) if args.json else "\n".join(format_incident(incident)))
    return 0


def _act(args: argparse.Namespace) -> int:
    path = f"{INCIDENTS_PATH}/{urllib.parse.quote(args.id, safe='')}/{args.action}"
    incident = _api(args, "POST", path, {}, {"comment": args.comment} if args.comment else None)
    print("\n".join(format_incident(incident)))
    return 0
