"""The ``novacron`` command."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

import novacron


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        print(f"novacron: error: {exc}", file=sys.stderr)
        return 1


class CliError(Exception):
    """A failure to report as one line, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="novacron", description="Serverless real-time monitoring for AWS.")
    parser.add_argument("--version", action="version", version=f"novacron {novacron.__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    local = commands.add_parser("local", help="run the whole platform locally, in one process, against moto")
    local.add_argument("--port", type=int, default=9090, help="HTTP port of the local API (default 9090)")
    local.add_argument("--api-key", help="bootstrap admin key of tenant 'default' (generated when omitted)")
    local.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    local.add_argument("--prefix", default="novacron", help="prefix of the local resource names")
    local.add_argument("--timestream", action="store_true", help="also write every sample to a (moto) Timestream table")
    local.set_defaults(run=_run_local)

    from novacron.demo import register as register_demo
    from novacron.simulate.cli import register as register_simulate

    register_simulate(commands)
    register_demo(commands)
    from novacron.agent.cli import register as register_agent

    register_agent(commands)
    _register_keys(commands)
    from novacron.policy_cli import register as register_policy

    register_policy(commands)
    from novacron.retention_cli import register as register_retention

    register_retention(commands)
    from novacron.detect.cli import register as register_detect

    register_detect(commands)
    from novacron.detect.anomalies_cli import register as register_anomalies

    register_anomalies(commands)
    from novacron.forecast.cli import register as register_forecast

    register_forecast(commands)
    from novacron.alert import alertmanager_cli, correlation_cli, incidents_cli, rules_cli, silences_cli

    for alerting in (rules_cli, silences_cli, alertmanager_cli, correlation_cli, incidents_cli):
        alerting.register(commands)
    from novacron.notify.inbox_cli import register as register_notifications

    register_notifications(commands)
    return parser


def _run_local(args: argparse.Namespace) -> int:
    from novacron.local.runtime import run

    run(args.port, args.api_key, args.prefix, runtime_options={"host": args.host, "timestream": args.timestream})
    return 0


# --- keys ---------------------------------------------------------------------------------------


def _register_keys(commands: Any) -> None:
    keys = commands.add_parser(
        "keys",
        help="create, list and revoke API keys",
        description=(
            "Manage API keys through a running NovaCron (--url with an admin key), or directly in the "
            "keys table of a deployed stack (--table, with your AWS credentials) to create the first one."
        ),
    )
    actions = keys.add_subparsers(title="actions", metavar="ACTION", required=True)

    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", help="NovaCron API base URL, e.g. http://127.0.0.1:9090")
        p.add_argument("--api-key", help="an admin key (with --url)")
        p.add_argument("--table", help="the keys table name (direct mode, uses AWS credentials)")
        p.add_argument("--tenant", help="tenant (default: the admin key's own)")

    create = actions.add_parser("create", help="create a key and print it (it is shown only once)")
    target(create)
    create.add_argument("--role", required=True, choices=["ingest", "read", "admin"])
    create.add_argument("--description", default="")
    create.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a label the ingest policy adds to this key's series lacking it (repeatable), e.g. owner=team-a",
    )
    create.set_defaults(run=_keys_create)

    listing = actions.add_parser("list", help="list the keys of a tenant")
    target(listing)
    listing.set_defaults(run=_keys_list)

    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    target(revoke)
    revoke.add_argument("key_id")
    revoke.set_defaults(run=_keys_revoke)


def _direct_store(args: argparse.Namespace) -> Any:
    from novacron.adapters.keys_table import DynamoKeyStore

    if not args.tenant:
        raise CliError("--tenant is required with --table")
    return DynamoKeyStore(args.table, cache_ttl_s=0)


def _keys_create(args: argparse.Namespace) -> int:
    from novacron.query.keys_api import key_labels

    try:
        labels = key_labels({"label": args.label}, b"")
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.table:
        from novacron.auth import issue_key, key_summary

        now = int(time.time())
        key, record = issue_key(_direct_store(args), args.tenant, args.role, now, args.description, labels)
        data: dict[str, Any] = {**key_summary(record), "key": key}
    else:
        params = {"role": args.role, "description": args.description}
        data = _api(args, "POST", "/api/v1/admin/keys", params, {"labels": labels} if labels else None)
    print(json.dumps(data, indent=2))
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    if args.table:
        from novacron.auth import key_summary

        rows = [key_summary(r) for r in _direct_store(args).list(args.tenant)]
    else:
        rows = _api(args, "GET", "/api/v1/admin/keys", {})
    for row in rows:
        state = "revoked" if row["revoked_at"] else "active"
        print(f"{row['key_id']}  {row['tenant']:<16} {row['role']:<7} {state:<8} {row['description']}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    if args.table:
        if not _direct_store(args).revoke(args.key_id, args.tenant, int(time.time())):
            raise CliError(f"no key {args.key_id!r} in tenant {args.tenant!r}")
    else:
        _api(args, "DELETE", f"/api/v1/admin/keys/{urllib.parse.quote(args.key_id)}", {})
    print(f"revoked {args.key_id}")
    return 0


def _api(args: argparse.Namespace, method: str, path: str, params: dict[str, str], body: Any = None) -> Any:
    """Call the admin API; ``body``, when given, is sent as JSON. Returns the answer's ``data``."""
    data = None if body is None else json.dumps(body).encode()
    return _call(args, method, path, params, data)["data"]


class ApiError(CliError):
    """An API call answered with an error status: the status, and the problems the answer lists."""

    def __init__(self, message: str, status: int, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.details = list(details)


def _call(
    args: argparse.Namespace,
    method: str,
    path: str,
    params: dict[str, str],
    data: bytes | None = None,
    content_type: str = "application/json",
) -> Any:
    """Call the API with ``data`` as the body; the whole decoded answer (ApiError for an error status)."""
    if not args.url or not args.api_key:
        raise CliError("give --url and --api-key (an admin key), or --table and --tenant")
    if args.tenant:
        params = {**params, "tenant": args.tenant}
    query = urllib.parse.urlencode(params)
    headers = {"Authorization": f"Bearer {args.api_key}"}
    if data is not None:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(  # noqa: S310 (scheme checked by _http_url)
        _http_url(args.url.rstrip("/") + f"{path}?{query}"),
        data=data,
        method=method,
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (scheme checked)
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail: Any = exc.read().decode(errors="replace")
        details: list[str] = []
        with contextlib.suppress(ValueError):
            answer = json.loads(detail)
            # The Prometheus-style envelope, or a bare string (Alertmanager's v2 API).
            if isinstance(answer, dict):
                detail, details = answer.get("error", detail), answer.get("details") or []
            elif isinstance(answer, str):
                detail = answer
        raise ApiError(f"{method} {path}: HTTP {exc.code}: {str(detail).strip()}", exc.code, details) from None
    except urllib.error.URLError as exc:
        raise CliError(f"cannot reach {args.url}: {exc.reason}") from None


def _http_url(url: str) -> str:
    """``url`` if it is http(s); urllib would also open file: and other schemes."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise CliError(f"--url must be an http:// or https:// URL, not {url!r}")
    return url


if __name__ == "__main__":
    sys.exit(main())
