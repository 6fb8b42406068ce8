"""``/api/v1/admin/keys``: create, list and revoke API keys (admin role)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from novacron.auth import KeyStore, Principal, Role, issue_key, key_summary, may_manage, validate_tenant
from novacron.ingest.policy import labels_problem

Params = Mapping[str, Sequence[str]]
Response = tuple[int, dict[str, Any]]


def _first(params: Params, name: str, default: str = "") -> str:
    values = params.get(name) or [default]
    return values[0]


def _error(status: int, message: str) -> Response:
    return status, {"status": "error", "error": message}


def managed_tenant(principal: Principal, params: Params) -> str | Response:
    """The tenant an admin request is about (``tenant``, default the caller's), or the response refusing it."""
    tenant = _first(params, "tenant", principal.tenant)
    try:
        validate_tenant(tenant)
    except ValueError as exc:
        return _error(400, str(exc))
    if not may_manage(principal, tenant):
        return _error(403, f"an admin key of tenant {principal.tenant!r} cannot manage tenant {tenant!r}")
    return tenant


def key_labels(params: Params, body: bytes) -> dict[str, str]:
    """A new key's labels: ``label=name=value`` parameters and/or a JSON body ``{"labels": {...}}``.

    Raises ValueError naming what is wrong.
    """
    labels: dict[str, str] = {}
    for pair in params.get("label", []):
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"label must be name=value, got {pair!r}")
        labels[name] = value
    if body.strip():
        try:
            doc = json.loads(body)
        except ValueError:
            raise ValueError("body must be a JSON object") from None
        given = doc.get("labels", {}) if isinstance(doc, dict) else None
        if not isinstance(given, dict):
            raise ValueError('body must be a JSON object whose "labels" is an object of strings')
        labels.update(given)
    problem = labels_problem(labels, "labels")
    if problem is not None:
        raise ValueError(problem)
    return labels


def handle(store: KeyStore, principal: Principal, method: str, params: Params, now: int, body: bytes = b"") -> Response:
    """GET lists the keys of a tenant; POST creates one (``tenant``, ``role``, ``description``, labels).

    Labels (see ``key_labels``) are added by the ingest policy to the key's series that lack them.
    """
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    if method == "GET":
        return 200, {"status": "success", "data": [key_summary(r) for r in store.list(tenant)]}
    role = _first(params, "role")
    if role not in {r.value for r in Role}:
        return _error(400, f"role must be one of ingest, read, admin (got {role!r})")
    description = _first(params, "description")[:256]
    try:
        labels = key_labels(params, body)
    except ValueError as exc:
        return _error(400, str(exc))
    api_key, record = issue_key(store, tenant, role, now, description, labels)
    return 201, {"status": "success", "data": {**key_summary(record), "key": api_key}}


def revoke(store: KeyStore, principal: Principal, key_id: str, params: Params, now: int) -> Response:
    """DELETE revokes a key of the tenant (``tenant`` parameter, default the caller's)."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    if not store.revoke(key_id, tenant, now):
        return _error(404, f"no key {key_id!r} in tenant {tenant!r}")
    return 200, {"status": "success", "data": {"key_id": key_id, "revoked_at": now}}
