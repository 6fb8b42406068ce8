"""``novacron alertmanager get|set|check``: a tenant's Alertmanager-style configuration (routes, receivers,
inhibit rules), through a running NovaCron (an admin key).

``get`` prints the stored YAML with its secrets shown as ``<secret>`` (or the default routing, until one
is stored); ``set`` uploads a file; ``check`` validates one offline, as ``amtool check-config`` does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from novacron.alert.amconfig import parse_config
from novacron.alert.rules_cli import REJECTED, check_files, upload
from novacron.cli import _api
from novacron.policy_cli import _target

CONFIG_PATH = "/api/v1/admin/alertmanager"


def register(commands: Any) -> None:
    """Add the ``alertmanager`` command."""
    alertmanager = commands.add_parser(
        "alertmanager",
        help="show, set or check the alert routing (an Alertmanager-style YAML)",
        description="A tenant's alert routing: route tree, receivers and inhibit rules, as Alertmanager reads them.",
    )
    actions = alertmanager.add_subparsers(title="actions", metavar="ACTION", required=True)
    get = actions.add_parser("get", help="print the configuration (secrets masked)")
    _target(get)
    get.set_defaults(run=_get)

    change = actions.add_parser("set", help="upload a configuration")
    _target(change)
    change.add_argument("file", type=Path, help="the configuration (YAML)")
    change.add_argument("--version", type=int, help="only if the stored configuration is at this version")
    change.set_defaults(run=_set)

    check = actions.add_parser("check", help="validate a configuration offline")
    check.add_argument("files", type=Path, nargs="+", help="configuration files")
    check.set_defaults(run=_check)


def _get(args: argparse.Namespace) -> int:
    data = _api(args, "GET", CONFIG_PATH, {})
    origin = "the default" if data["default"] else f"version {data['version']} by {data['updated_by']}"
    print(f"# {origin}", file=sys.stderr)
    print(data["config"], end="")
    return 0


def _set(args: argparse.Namespace) -> int:
    data = upload(args, CONFIG_PATH, str(args.file), separator=": ")
    if data is None:
        return REJECTED
    for warning in data["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"stored version {data['version']}: receivers {', '.join(data['receivers'])}")
    return 0


def _check_config(text: str, _path: Path) -> list[str]:
    config = parse_config(text)
    summary = f"SUCCESS: {len(config.receivers)} receivers, {len(config.inhibit_rules)} inhibit rules"
    return [*(f"warning: {w}" for w in config.warnings), summary]


def _check(args: argparse.Namespace) -> int:
    return check_files(args.files, _check_config)
