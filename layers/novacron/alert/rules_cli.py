"""``novacron rules push|check|list|show|delete``: Prometheus rule files, through a running NovaCron.

``push`` uploads a file (``PUT /api/v1/rules/files/{name}``, an admin key); when NovaCron rejects it,
every problem is printed as ``FILE:line:column: message`` and the exit status is 2. ``check`` runs the
same validation offline, as ``promtool check rules`` does (exit status 1 on problems).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from novacron.alert.rules import AlertingRule, iter_rules, parse_rule_file
from novacron.cli import ApiError, CliError, _api, _call
from novacron.policy_cli import _target

FILES_PATH = "/api/v1/rules/files"
REJECTED = 2  # push: the file has problems (distinct from 1, "could not do it")


def register(commands: Any) -> None:
    """Add the ``rules`` command."""
    rules = commands.add_parser(
        "rules",
        help="upload, check, list, show and delete Prometheus rule files",
        description="A tenant's Prometheus rule files (alerting and recording rules), evaluated by NovaCron.",
    )
    actions = rules.add_subparsers(title="actions", metavar="ACTION", required=True)
    push = actions.add_parser("push", help="upload a rule file (an admin key); exit status 2 when rejected")
    _target(push)
    push.add_argument("file", type=Path, help="the rule file (YAML, as promtool reads it)")
    push.add_argument("--name", help="the name to store it under (default: the file's name)")
    push.add_argument("--version", type=int, help="only if the stored file is at this version (0: a new file)")
    push.set_defaults(run=_push)

    check = actions.add_parser("check", help="validate rule files offline, as `promtool check rules` does")
    check.add_argument("files", type=Path, nargs="+", help="rule files")
    check.set_defaults(run=_check)

    listing = actions.add_parser("list", help="the tenant's rule files")
    _target(listing)
    listing.add_argument("--json", action="store_true", help="print them as JSON")
    listing.set_defaults(run=_list)

    show = actions.add_parser("show", help="print a stored rule file")
    _target(show)
    show.add_argument("name", help="the file's name (from `rules list`)")
    show.set_defaults(run=_show)

    delete = actions.add_parser("delete", help="delete a rule file and its rules' state (an admin key)")
    _target(delete)
    delete.add_argument("name", help="the file's name")
    delete.set_defaults(run=_delete)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None


def _file_path(name: str) -> str:
    return f"{FILES_PATH}/{urllib.parse.quote(name, safe='')}"


def upload(
    args: argparse.Namespace, path: str, what: str, content_type: str = "text/yaml", separator: str = ":"
) -> dict[str, Any] | None:
    """PUT ``args.file`` at ``path`` (conditional on ``args.version`` when given); the answer's data, or None
    when the server rejected the document: then each problem is printed after the file's name (joined by
    ``separator``), as compilers and promtool print them, and a last line names ``what`` was rejected."""
    params = {} if args.version is None else {"version": str(args.version)}
    try:
        answer = _call(args, "PUT", path, params, _read(args.file).encode(), content_type)
    except ApiError as exc:
        if exc.status != 400 or not exc.details:
            raise
        for problem in exc.details:
            print(f"{args.file}{separator}{problem}", file=sys.stderr)
        print(f"novacron: {what} rejected: {len(exc.details)} problem(s)", file=sys.stderr)
        return None
    data: dict[str, Any] = answer["data"]
    return data


def _push(args: argparse.Namespace) -> int:
    name = args.name or args.file.name
    stored = upload(args, _file_path(name), name)
    if stored is None:
        return REJECTED
    print(f"{stored['name']}: version {stored['version']}, {len(stored['groups'])} groups, {stored['rules']} rules")
    return 0


def check_files(paths: Sequence[Path], check: Callable[[str, Path], list[str]]) -> int:
    """An offline check of each file (``check`` raises ValueError naming the problems, else returns what
    to print), as promtool and amtool report: exit status 1 when any file failed."""
    failed = False
    for path in paths:
        print(f"Checking {path}")
        try:
            lines = check(_read(path), path)
        except ValueError as exc:
            failed = True
            print(f"  FAILED:\n{exc}", file=sys.stderr)
            continue
        print("".join(f"  {line}\n" for line in lines), end="")
    return 1 if failed else 0


def _check_rules(text: str, path: Path) -> list[str]:
    rule_file = parse_rule_file(text, str(path))
    alerting = sum(isinstance(rule, AlertingRule) for _, rule in iter_rules(rule_file))
    total = sum(1 for _ in iter_rules(rule_file))
    return [f"SUCCESS: {total} rules found ({alerting} alerting, {total - alerting} recording)"]


def _check(args: argparse.Namespace) -> int:
    return check_files(args.files, _check_rules)


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _list(args: argparse.Namespace) -> int:
    files = _api(args, "GET", FILES_PATH, {})["files"]
    if args.json:
        print(json.dumps(files, indent=2))
        return 0
    for f in files:
        print(
            f"{f['name']}  v{f['version']}  {f['rules']} rules in {', '.join(f['groups'])}  "
            f"updated {_when(f['updated_at'])} by {f['updated_by']}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    print(_api(args, "GET", _file_path(args.name), {})["text"], end="")
    return 0


def _delete(args: argparse.Namespace) -> int:
    _api(args, "DELETE", _file_path(args.name), {})
    print(f"deleted {args.name}")
    return 0
