"""``novacron retention``: a tenant's retention policy through the admin API (docs/retention.md)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from novacron.cli import CliError, _api
from novacron.policy_cli import _target
from novacron.retention.policy import FIELDS

PATH = "/api/v1/admin/retention"


def register(commands: Any) -> None:
    """Add the ``retention`` command."""
    retention = commands.add_parser(
        "retention",
        help="show or change how long each tier keeps data (per tenant, per metric), and its history",
        description="Read or change a tenant's retention policy through a running NovaCron (see docs/retention.md).",
    )
    actions = retention.add_subparsers(title="actions", metavar="ACTION", required=True)
    get = actions.add_parser("get", help="print the policy as JSON")
    _target(get)
    get.set_defaults(run=_get)

    change = actions.add_parser(
        "set",
        help="change the policy: from a file and/or options (the rest stays)",
        description=(
            "Start from the stored policy, or from --file (YAML or JSON with `defaults` and `overrides`), "
            "apply the options, and store it as the next version."
        ),
    )
    _target(change)
    change.add_argument("--file", type=Path, help="a YAML/JSON policy document replacing defaults and overrides")
    for name in FIELDS:
        tier = name.removesuffix("_days").replace("_", " ")
        hint = " (0: forever; rounds up to an archive class)" if name == "archive_days" else ""
        change.add_argument(f"--{name.replace('_', '-')}", type=int, dest=name, help=f"default days of {tier}{hint}")
    change.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="SELECTOR:FIELD=DAYS[,FIELD=DAYS]",
        help="append an override: a metric name or a {…} series selector, then days per tier, e.g. "
        "'debug_requests:raw_days=2,rollup_1m_days=2' or '{env=\"dev\"}:raw_days=3,rollup_1m_days=3' (repeatable)",
    )
    change.add_argument("--clear-overrides", action="store_true", help="drop the existing overrides first")
    change.set_defaults(run=_set)

    history = actions.add_parser("history", help="the versions of the policy: who changed what, when")
    _target(history)
    history.add_argument("--limit", type=int, default=20, help="at most this many versions, newest first")
    history.add_argument("--json", action="store_true", help="print the audit records as JSON")
    history.set_defaults(run=_history)


def parse_override(text: str) -> dict[str, Any]:
    """``SELECTOR:FIELD=DAYS,...`` as an override document (a selector is a metric name or ``{...}``)."""
    selector, sep, days = text.rpartition(":")
    if not sep or not selector or not days:
        raise CliError(f"--override must be SELECTOR:FIELD=DAYS[,FIELD=DAYS], got {text!r}")
    override: dict[str, Any] = {"match" if "{" in selector else "metric": selector}
    for pair in days.split(","):
        name, eq, value = pair.strip().partition("=")
        if not eq or name not in FIELDS or not value.strip().isdigit():
            raise CliError(
                f"--override {text!r}: {pair.strip()!r} must be FIELD=DAYS with FIELD one of {', '.join(FIELDS)}"
            )
        override[name] = int(value)
    return override


def changed_retention(current: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The PUT body for ``retention set``: the current policy (or the file's), with the options applied."""
    body: dict[str, Any] = {"version": current["version"]}
    source = policy_source(current, args.file, "with `defaults` and/or `overrides`")
    defaults = dict(source.get("defaults") or {})
    defaults.update({name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None})
    overrides = [] if args.clear_overrides else list(source.get("overrides") or [])
    overrides += [parse_override(text) for text in args.override]
    return {**body, "defaults": defaults, "overrides": overrides}


def policy_source(current: dict[str, Any], file: Path | None, expected: str) -> dict[str, Any]:
    """What a ``set`` starts from: the stored policy, or the YAML/JSON document in ``file`` (a mapping
    ``expected`` says what of)."""
    if file is None:
        return current
    try:
        source = yaml.safe_load(file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(f"cannot read {file}: {exc}") from None
    if not isinstance(source, dict):
        raise CliError(f"{file} must hold a mapping {expected}")
    return source


def print_history(args: argparse.Namespace, path: str) -> int:
    """``history`` of a versioned policy at ``path``: who changed what, when (or the records as JSON)."""
    data = _api(args, "GET", f"{path}/history", {"limit": str(args.limit)})
    if args.json:
        print(json.dumps(data["versions"], indent=2))
        return 0
    for record in data["versions"]:
        when = datetime.fromtimestamp(record["changed_at"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        who = f"{record['changed_by']} ({record['changed_by_tenant']} {record['changed_by_role']})"
        print(f"v{record['previous_version']} → v{record['version']}  {when}  by {who}")
        for line in record["changes"] or ["(no change)"]:
            print(f"    {line}")
    return 0


def _get(args: argparse.Namespace) -> int:
    print(json.dumps(_api(args, "GET", PATH, {}), indent=2))
    return 0


def _set(args: argparse.Namespace) -> int:
    current = _api(args, "GET", PATH, {})
    print(json.dumps(_api(args, "PUT", PATH, {}, changed_retention(current, args)), indent=2))
    return 0


def _history(args: argparse.Namespace) -> int:
    return print_history(args, PATH)
