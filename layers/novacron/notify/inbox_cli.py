"""``novacron notifications list [--incident ID]``: the tenant's local inbox, through a running NovaCron.

Reads ``GET /api/v1/notifications`` (any key of the tenant); newest first, one line per notification
(``--full`` adds each one's text, ``--json`` prints the entries). ``novacron notifications redrive``
(novacron.notify.redrive_cli) redrives the notifier's dead letters.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from novacron.cli import _api
from novacron.notify import redrive_cli
from novacron.notify.inbox_api import inbox_lines
from novacron.policy_cli import _target

NOTIFICATIONS_PATH = "/api/v1/notifications"


def register(commands: Any) -> None:
    """Add the ``notifications`` command."""
    notifications = commands.add_parser(
        "notifications",
        help="read the local inbox; redrive the notifier's dead letters",
        description="A tenant's local notification inbox through a running NovaCron; redriving dead letters.",
    )
    actions = notifications.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the tenant's inbox, newest first")
    _target(listing)
    listing.add_argument("--incident", help="only this incident's notifications")
    listing.add_argument("--limit", type=int, help="at most this many (default 50, at most 500)")
    listing.add_argument("--full", action="store_true", help="print each notification's whole text")
    listing.add_argument("--json", action="store_true", help="print the entries as JSON")
    listing.set_defaults(run=_list)
    redrive_cli.register(actions)


def _list(args: argparse.Namespace) -> int:
    params = {name: str(value) for name in ("incident", "limit") if (value := getattr(args, name))}
    entries = _api(args, "GET", NOTIFICATIONS_PATH, params)["notifications"]
    if args.json:
        print(json.dumps(entries, indent=2))
    elif not entries:
        print("the inbox is empty")
    else:
        print("\n".join(inbox_lines(entries, full=args.full)))
    return 0
