"""``novacron silences add|list|expire``, through a running NovaCron's Alertmanager v2 silences API.

``list`` reads ``GET /api/v2/silences`` (any key of the tenant); ``add`` and ``expire`` are admin calls.
A silence's author is the API key's id unless ``--author`` names someone.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.parse
from typing import Any

from novacron.alert.matchers import AlertMatcher, MatcherError, matchers_string, parse_matcher
from novacron.alert.silences import Silence, SilenceError, format_time, parse_time
from novacron.cli import CliError, _call
from novacron.forecast.cli import _duration_ms
from novacron.policy_cli import _target

SILENCES_PATH = "/api/v2/silences"
SILENCE_PATH = "/api/v2/silence"


def register(commands: Any) -> None:
    """Add the ``silences`` command."""
    silences = commands.add_parser(
        "silences",
        help="mute matching alerts for a while (Alertmanager silences)",
        description="A tenant's silences: alerts they match are not notified while they are active.",
    )
    actions = silences.add_subparsers(title="actions", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create a silence (an admin key); prints its id")
    _target(add)
    add.add_argument(
        "--matcher",
        "-m",
        action="append",
        required=True,
        help="a matcher such as 'alertname=\"DbDown\"' or 'service=~\"db|cache\"' (repeatable: all must match)",
    )
    until = add.add_mutually_exclusive_group(required=True)
    until.add_argument("--duration", "-d", help="how long from the start, e.g. 2h or 30m")
    until.add_argument("--end", help="when it ends (RFC 3339, e.g. 2026-11-28T18:00:00Z)")
    add.add_argument("--start", help="when it starts (RFC 3339; default now)")
    add.add_argument("--comment", "-c", required=True, help="why (shown with the silence)")
    add.add_argument("--author", "-a", help="who (default: the API key's id)")
    add.set_defaults(run=_add)

    listing = actions.add_parser("list", help="active and pending silences (or, with --expired, expired ones)")
    _target(listing)
    listing.add_argument("--expired", action="store_true", help="list the expired silences instead")
    listing.add_argument("--filter", "-f", action="append", default=[], help="only silences with this matcher")
    listing.add_argument("--json", action="store_true", help="print them as JSON (the v2 API's shape)")
    listing.set_defaults(run=_list)

    expire = actions.add_parser("expire", help="end a silence now (an admin key)")
    _target(expire)
    expire.add_argument("id", nargs="+", help="silence ids (from `silences list`)")
    expire.set_defaults(run=_expire)


def _time(text: str, option: str) -> float:
    try:
        return parse_time(text, option)
    except SilenceError as exc:
        raise CliError(str(exc)) from None


def silence_body(args: argparse.Namespace, now: float) -> dict[str, Any]:
    """The PostableSilence ``add`` sends."""
    try:
        matchers = [parse_matcher(text) for text in args.matcher]
    except MatcherError as exc:
        raise CliError(f"--matcher: {exc}") from None
    start = _time(args.start, "--start") if args.start else now
    duration = _duration_ms(args.duration, "--duration")
    end = start + duration / 1000 if duration is not None else _time(args.end, "--end")
    body: dict[str, Any] = {
        "matchers": [m.to_api() for m in matchers],
        "startsAt": format_time(start),
        "endsAt": format_time(end),
        "comment": args.comment,
    }
    if args.author:
        body["createdBy"] = args.author
    return body


def _add(args: argparse.Namespace) -> int:
    answer = _call(args, "POST", SILENCES_PATH, {}, json.dumps(silence_body(args, time.time())).encode())
    print(answer["silenceID"])
    return 0


def _list(args: argparse.Namespace) -> int:
    params = {"filter": matchers_string([_filter(f) for f in args.filter])} if args.filter else {}
    listed = _call(args, "GET", SILENCES_PATH, params)
    kept = [s for s in listed if (s["status"]["state"] == "expired") == args.expired]
    if args.json:
        print(json.dumps(kept, indent=2))
        return 0
    for s in kept:
        matchers = matchers_string(Silence.from_api(s).matchers)
        print(
            f"{s['id']}  {s['status']['state']:8}  {s['startsAt']} → {s['endsAt']}  {matchers}  "
            f"by {s['createdBy']}: {s['comment']}"
        )
    return 0


def _filter(text: str) -> AlertMatcher:
    try:
        return parse_matcher(text)
    except MatcherError as exc:
        raise CliError(f"--filter: {exc}") from None


def _expire(args: argparse.Namespace) -> int:
    for silence_id in args.id:
        _call(args, "DELETE", f"{SILENCE_PATH}/{urllib.parse.quote(silence_id, safe='')}", {})
        print(f"expired {silence_id}")
    return 0
