"""``novacron correlation get|set|check``: a tenant's correlation settings, declared service topology and
business tiers (docs/alerting.md), through a running NovaCron (an admin key).

``get`` prints the stored document (or the default, until one is stored); ``set`` uploads a file (YAML, or
JSON when its name ends in ``.json``): when NovaCron rejects it, every problem is printed as
``FILE: line N: field: message`` and the exit status is 2; ``check`` validates files offline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from novacron.alert.correlation import CorrelationError, parse_correlation
from novacron.alert.rules_cli import REJECTED, check_files, upload
from novacron.cli import _api
from novacron.policy_cli import _target

CORRELATION_PATH = "/api/v1/admin/correlation"


def register(commands: Any) -> None:
    """Add the ``correlation`` command."""
    correlation = commands.add_parser(
        "correlation",
        help="show, set or check the correlation settings (window, service topology, business tiers)",
        description="How a tenant's alerts are correlated into incidents: the time window, the declared "
        "service topology and the business tiers that weigh an incident's priority.",
    )
    actions = correlation.add_subparsers(title="actions", metavar="ACTION", required=True)
    get = actions.add_parser("get", help="print the correlation document")
    _target(get)
    get.set_defaults(run=_get)

    change = actions.add_parser("set", help="upload a correlation document (an admin key); exit status 2 when rejected")
    _target(change)
    change.add_argument("file", type=Path, help="the document (YAML, or JSON for a .json file)")
    change.add_argument("--version", type=int, help="only if the stored document is at this version (0: none yet)")
    change.set_defaults(run=_set)

    check = actions.add_parser("check", help="validate correlation documents offline")
    check.add_argument("files", type=Path, nargs="+", help="documents (YAML or JSON)")
    check.set_defaults(run=_check)


def _get(args: argparse.Namespace) -> int:
    data = _api(args, "GET", CORRELATION_PATH, {})
    origin = "the default" if data["default"] else f"version {data['version']} by {data['updated_by']}"
    print(f"# {origin}", file=sys.stderr)
    print(data["config"], end="" if data["config"].endswith("\n") else "\n")
    return 0


def _set(args: argparse.Namespace) -> int:
    content_type = "application/json" if args.file.suffix.lower() == ".json" else "text/yaml"
    data = upload(args, CORRELATION_PATH, str(args.file), content_type, separator=": ")
    if data is None:
        return REJECTED
    print(
        f"stored version {data['version']}: {data['services']} services, {data['calls']} calls, {data['tiers']} tiers"
    )
    return 0


def _check_document(text: str, _path: Path) -> list[str]:
    try:
        config = parse_correlation(text)
    except CorrelationError as exc:
        raise ValueError("\n".join(f"  {p}" for p in exc.problems)) from None
    counts = config.summary()
    return [f"SUCCESS: {counts['services']} services, {counts['calls']} calls, {counts['tiers']} tiers"]


def _check(args: argparse.Namespace) -> int:
    return check_files(args.files, _check_document)
