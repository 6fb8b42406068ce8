"""Rule files and the Prometheus rules API.

Admin role (the admin function), per tenant (``?tenant=`` for the operator's key, as the other admin APIs):

- ``PUT /api/v1/rules/files/{name}``: the body is a Prometheus rule file as written (YAML, at most 1 MB),
  checked as ``promtool check rules`` does; 400 lists every problem as ``line:column: message`` in
  ``details``. ``?version=N`` makes the write conditional (409 when the stored file is at another version).
  Files, groups and rules per tenant are bounded (:class:`RuleLimits`).
- ``GET /api/v1/rules/files``: names, versions, group names, rule counts, who changed each file last;
  ``GET /api/v1/rules/files/{name}``: one file's text; ``DELETE /api/v1/rules/files/{name}``: gone, with
  its groups' evaluation state.

Read role (the query function), the caller's tenant:

- ``GET /api/v1/rules``: Prometheus's answer from the stored files and the alert function's group states,
  with Prometheus's filters ``type=alert|record``, ``rule_name[]``, ``rule_group[]``, ``file[]``,
  ``match[]`` (rule labels) and ``exclude_alerts``. A group left without rules by the filters is left out.
- ``GET /api/v1/alerts``: every pending and firing alert.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from novacron.alert.evaluate import alerts_json, rules_json
from novacron.alert.rule_state import GroupState
from novacron.alert.rules import RuleFile, RuleFileError, parse_rule_file
from novacron.alert.state import AlertingStore, StoredText
from novacron.alert.uploads import api_error, write_versioned, yaml_text
from novacron.auth import Principal
from novacron.promql import BadData
from novacron.query.keys_api import managed_tenant
from novacron.query.prom_api import (
    Params,
    Response,
    _bool_param,
    _matcher_sets,
    _param,
    _params,
    _run,
    error,
    success,
)
from novacron.series import Matcher

NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
DEFAULT_INTERVAL_MS = 60_000  # the alert function's default evaluation interval
_TYPES = {"alert": "alerting", "record": "recording"}


@dataclass(frozen=True)
class RuleLimits:
    """How much a tenant may upload: a bound on the alert function's work per run."""

    max_files: int = 100
    max_groups: int = 200
    max_rules: int = 2_000


def _counts(text: str) -> tuple[list[str], int]:
    """Group names and the number of rules of a stored (valid) file, without compiling its expressions."""
    doc = yaml.safe_load(text) or {}
    groups = doc.get("groups") or []
    return [str(g["name"]) for g in groups], sum(len(g.get("rules") or []) for g in groups)


def _summary(name: str, stored: StoredText) -> dict[str, Any]:
    groups, rules = _counts(stored.text)
    return {
        "name": name,
        "version": stored.version,
        "groups": groups,
        "rules": rules,
        "updated_at": stored.updated_at,
        "updated_by": stored.updated_by,
    }


def _checked_name(name: str) -> str | Response:
    if NAME_RE.fullmatch(name) is None or set(name) == {"."}:
        return api_error(
            400, "bad_data", f"invalid rule file name {name!r}: 1-128 of A-Z a-z 0-9 . _ - (not only dots)"
        )
    return name


def _over_limit(files: Mapping[str, StoredText], name: str, new: RuleFile, limits: RuleLimits) -> Response | None:
    """The 400 naming the limit the tenant's files would exceed with ``new`` stored as ``name``, or None."""
    others = [_counts(f.text) for n, f in files.items() if n != name]
    n_files = len(others) + 1
    n_groups = sum(len(groups) for groups, _ in others) + len(new.groups)
    n_rules = sum(rules for _, rules in others) + sum(len(g.rules) for g in new.groups)
    for what, count, limit in (
        ("rule files", n_files, limits.max_files),
        ("rule groups", n_groups, limits.max_groups),
        ("rules", n_rules, limits.max_rules),
    ):
        if count > limit:
            return api_error(
                400, "bad_data", f"limit exceeded: the tenant would have {count} {what}, at most {limit} allowed"
            )
    return None


def put_rule_file(
    store: AlertingStore,
    principal: Principal,
    name: str,
    params: Params,
    body: bytes,
    content_type: str,
    now: int,
    limits: RuleLimits = RuleLimits(),
) -> Response:
    """``PUT /api/v1/rules/files/{name}``: store a valid rule file; the answer describes the stored version."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    checked = _checked_name(name)
    if not isinstance(checked, str):
        return checked
    text = yaml_text(body, content_type)
    if not isinstance(text, str):
        return text
    try:
        parsed = parse_rule_file(text, name)
    except RuleFileError as exc:
        problems = len(exc.issues)
        message = f"{name}: {problems} problem{'s' if problems != 1 else ''}"
        return api_error(400, "bad_data", message, [str(issue) for issue in exc.issues])
    files = store.rule_files(tenant)
    refused = _over_limit(files, name, parsed, limits)
    if refused is not None:
        return refused
    version = write_versioned(
        params,
        files.get(name),
        lambda expected: store.put_rule_file(tenant, name, text, principal.key_id, now, expected),
        f"rule file {name!r}",
    )
    if not isinstance(version, int):
        return version
    return success(_summary(name, StoredText(text, version, now, principal.key_id)))


def list_rule_files(store: AlertingStore, principal: Principal, params: Params) -> Response:
    """``GET /api/v1/rules/files``: the tenant's files, by name."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    files = store.rule_files(tenant)
    return success({"files": [_summary(name, files[name]) for name in sorted(files)]})


def get_rule_file(store: AlertingStore, principal: Principal, name: str, params: Params) -> Response:
    """``GET /api/v1/rules/files/{name}``: the file as uploaded, with its version."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    stored = store.rule_files(tenant).get(name)
    if stored is None:
        return error("not_found", f"no rule file {name!r} in tenant {tenant!r}")
    return success({**_summary(name, stored), "text": stored.text})


def delete_rule_file(store: AlertingStore, principal: Principal, name: str, params: Params) -> Response:
    """``DELETE /api/v1/rules/files/{name}``: 404 when there is no such file."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    checked = _checked_name(name)
    if not isinstance(checked, str):
        return checked
    if not store.delete_rule_file(tenant, name):
        return error("not_found", f"no rule file {name!r} in tenant {tenant!r}")
    return success({"name": name, "deleted": True})


# --- the Prometheus API --------------------------------------------------------------------------


def _loaded(store: AlertingStore, tenant: str) -> tuple[list[tuple[str, RuleFile]], list[str]]:
    """The tenant's files parsed, by name; a stored file that no longer parses is a warning, not a failure."""
    files, warnings = [], []
    for name, stored in sorted(store.rule_files(tenant).items()):
        try:
            files.append((name, parse_rule_file(stored.text, name)))
        except RuleFileError as exc:
            warnings.append(f"rule file {name!r} skipped: {len(exc.issues)} problems (first: {exc.issues[0]})")
    return files, warnings


def _file_states(states: Mapping[str, GroupState], file: str) -> dict[str, GroupState]:
    """The states of one file's groups by group name (the store keys them ``<file>/<group>``)."""
    prefix = f"{file}/"
    return {key[len(prefix) :]: state for key, state in states.items() if key.startswith(prefix)}


def _rule_kept(rule: Mapping[str, Any], kind: str, names: set[str], matcher_sets: list[list[Matcher]]) -> bool:
    if kind and rule["type"] != _TYPES[kind]:
        return False
    if names and rule["name"] not in names:
        return False
    labels = rule.get("labels") or {}
    return not matcher_sets or any(all(m.matches(labels.get(m.name, "")) for m in ms) for ms in matcher_sets)


def rules(
    store: AlertingStore, tenant: str, params: Params, default_interval_ms: int = DEFAULT_INTERVAL_MS
) -> Response:
    """``GET /api/v1/rules`` in Prometheus's shape, with its filters."""

    def run() -> Response:
        kind = _param(params, "type").lower()
        if kind not in ("", *_TYPES):
            raise BadData(f'invalid parameter "type": not supported value "{kind}"')
        exclude_alerts = _bool_param(params, "exclude_alerts")
        matcher_sets = _matcher_sets(params)
        names, groups, files = (set(_params(params, f"{p}[]")) for p in ("rule_name", "rule_group", "file"))
        loaded, warnings = _loaded(store, tenant)
        states = store.group_states(tenant) if loaded else {}
        out = []
        for name, rule_file in loaded:
            if files and name not in files:
                continue
            for group in rules_json(rule_file, _file_states(states, name), default_interval_ms)["groups"]:
                if groups and group["name"] not in groups:
                    continue
                group["rules"] = [r for r in group["rules"] if _rule_kept(r, kind, names, matcher_sets)]
                if exclude_alerts:
                    for rule in group["rules"]:
                        if rule["type"] == "alerting":
                            rule["alerts"] = None  # as Prometheus answers exclude_alerts
                if group["rules"]:
                    out.append(group)
        return success({"groups": out}, warnings)

    return _run(run)


def alerts(store: AlertingStore, tenant: str) -> Response:
    """``GET /api/v1/alerts``: the pending and firing alerts of every stored rule file."""
    loaded, warnings = _loaded(store, tenant)
    states = store.group_states(tenant) if loaded else {}
    found: list[dict[str, Any]] = []
    for name, rule_file in loaded:
        found += alerts_json(rule_file, _file_states(states, name))["alerts"]
    return success({"alerts": found}, warnings)
