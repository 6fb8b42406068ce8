"""``novacron policy`` and ``novacron cardinality``: a tenant's ingest policy through the admin API."""

from __future__ import annotations

import argparse
import json
import urllib.parse
from typing import Any

from novacron.cli import CliError, _api


def register(commands: Any) -> None:
    """Add the ``policy`` and ``cardinality`` commands."""
    policy = commands.add_parser(
        "policy",
        help="show or change the ingest policy (required labels, defaults, cardinality limits)",
        description="Read or change a tenant's ingest policy through a running NovaCron (see docs/ingest-policy.md).",
    )
    policy_actions = policy.add_subparsers(title="actions", metavar="ACTION", required=True)
    get = policy_actions.add_parser("get", help="print the policy as JSON")
    _target(get)
    get.set_defaults(run=_policy_get)
    change = policy_actions.add_parser("set", help="change some fields of the policy (the rest stay)")
    _target(change)
    change.add_argument("--require", metavar="LABELS", help="comma-separated labels every series must carry")
    change.add_argument("--mode", choices=["default", "reject"], help="what a missing required label does")
    change.add_argument(
        "--label-mode", action="append", default=[], metavar="LABEL=MODE", help="mode of one label (repeatable)"
    )
    change.add_argument(
        "--default", action="append", default=[], metavar="NAME=VALUE", help="a default label (repeatable)"
    )
    change.add_argument("--remove-default", action="append", default=[], metavar="NAME", help="drop a default")
    change.add_argument("--max-series-per-tenant", type=int)
    change.add_argument("--max-series-per-metric", type=int)
    change.add_argument(
        "--pii",
        action="append",
        default=[],
        metavar="SWITCH=on|off",
        help="PII scrubbing: enabled, email, card_numbers, ip_addresses, bearer_tokens, db_statement_literals "
        "(repeatable; custom rules through the API, docs/pii.md)",
    )
    change.add_argument(
        "--pii-exempt", metavar="NAMES", help="comma-separated attribute/label names never scrubbed (replaces the list)"
    )
    change.set_defaults(run=_policy_set)

    card = commands.add_parser(
        "cardinality",
        help="series per metric today, and approvals of high-cardinality metrics",
        description="Cardinality of a tenant and its approved high-cardinality metrics, through a running NovaCron.",
    )
    card_actions = card.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = card_actions.add_parser("list", help="series per metric today, with limits and approvals")
    _target(listing)
    listing.add_argument("--date", help="another UTC day (YYYY-MM-DD)")
    listing.set_defaults(run=_cardinality_list)
    approve = card_actions.add_parser("approve", help="allow a metric more series than max_series_per_metric")
    _target(approve)
    approve.add_argument("metric")
    approve.add_argument("--limit", type=int, required=True, help="series the metric may have per day")
    approve.add_argument("--reason", required=True, help="why (kept with the approval)")
    approve.set_defaults(run=_cardinality_approve)
    revoke = card_actions.add_parser("revoke", help="remove a metric's approval")
    _target(revoke)
    revoke.add_argument("metric")
    revoke.set_defaults(run=_cardinality_revoke)


PII_SWITCHES = ("enabled", "email", "card_numbers", "ip_addresses", "bearer_tokens", "db_statement_literals")


def _target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="NovaCron API base URL, e.g. http://127.0.0.1:9090")
    p.add_argument("--api-key", help="an admin key")
    p.add_argument("--tenant", help="tenant (default: the admin key's own; another only with the operator's key)")


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise CliError(f"{what} must be NAME=VALUE, got {value!r}")
        out[name] = rest
    return out


def _policy_get(args: argparse.Namespace) -> int:
    print(json.dumps(_api(args, "GET", "/api/v1/admin/ingest-policy", {}), indent=2))
    return 0


def changed_policy(current: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The PUT body for ``policy set``: the policy as read, with the options applied (same version)."""
    body = dict(current)
    body.pop("tenant", None)
    if args.require is not None:
        body["required_labels"] = [name.strip() for name in args.require.split(",") if name.strip()]
    if args.mode is not None:
        body["mode"] = args.mode
    body["label_modes"] = {**body.get("label_modes", {}), **_pairs(args.label_mode, "--label-mode")}
    defaults = {**body.get("defaults", {}), **_pairs(args.default, "--default")}
    for name in args.remove_default:
        defaults.pop(name, None)
    body["defaults"] = defaults
    if args.max_series_per_tenant is not None:
        body["max_series_per_tenant"] = args.max_series_per_tenant
    if args.max_series_per_metric is not None:
        body["max_series_per_metric"] = args.max_series_per_metric
    pii = dict(body.get("pii", {}))
    for switch, value in _pairs(args.pii, "--pii").items():
        if switch not in PII_SWITCHES:
            raise CliError(f"--pii {switch}: unknown switch; one of {', '.join(PII_SWITCHES)}")
        if value not in ("on", "off"):
            raise CliError(f"--pii {switch}={value}: the value must be on or off")
        pii[switch] = value == "on"
    if args.pii_exempt is not None:
        pii["exempt_attributes"] = [name.strip() for name in args.pii_exempt.split(",") if name.strip()]
    if pii:
        body["pii"] = pii
    return body


def _policy_set(args: argparse.Namespace) -> int:
    current = _api(args, "GET", "/api/v1/admin/ingest-policy", {})
    updated = _api(args, "PUT", "/api/v1/admin/ingest-policy", {}, changed_policy(current, args))
    print(json.dumps(updated, indent=2))
    return 0


def _cardinality_list(args: argparse.Namespace) -> int:
    data = _api(args, "GET", "/api/v1/admin/cardinality", {"date": args.date} if args.date else {})
    print(f"tenant {data['tenant']} on {data['date']}: {data['series']} series (limit {data['limit']})")
    for row in data["metrics"]:
        approved = "approved" if row["approved"] else ""
        print(f"{row['metric']:<48} {row['series']:>10} / {row['limit']:<10} {approved}")
    return 0


def _cardinality_approve(args: argparse.Namespace) -> int:
    path = f"/api/v1/admin/cardinality/approvals/{urllib.parse.quote(args.metric, safe=':')}"
    data = _api(args, "PUT", path, {}, {"limit": args.limit, "reason": args.reason})
    print(f"approved {data['metric']}: up to {data['limit']} series a day (policy version {data['version']})")
    return 0


def _cardinality_revoke(args: argparse.Namespace) -> int:
    path = f"/api/v1/admin/cardinality/approvals/{urllib.parse.quote(args.metric, safe=':')}"
    data = _api(args, "DELETE", path, {})
    print(f"revoked the approval of {data['metric']} (policy version {data['version']})")
    return 0
