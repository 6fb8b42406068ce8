"""``/api/v1/admin/retention`` and ``/retention/history``: a tenant's retention policy (admin role).

Conventions are those of the ingest policy (policy_api.py): an admin manages its own tenant, the
operator's admin any tenant (``?tenant=``); a PUT carries the ``version`` it was based on and is
refused with 409 when the policy moved on; 400 answers list ``field: problem`` lines. Every change is
a new version with an audit record (novacron.retention.changes); see docs/retention.md.
"""

from __future__ import annotations

from typing import Any, Protocol

from novacron.auth import Principal
from novacron.query.keys_api import managed_tenant
from novacron.query.policy_api import Params, Response, _error, history_limit, parse_change
from novacron.retention.archive import RETENTION_TAG
from novacron.retention.changes import RetentionChange, change_record, updated_retention
from novacron.retention.policy import RetentionPolicy, Tier


class RetentionStore(Protocol):
    """Where retention policies and their audit records live (the settings table; a dict in tests)."""

    def retention(self, tenant: str) -> RetentionPolicy:
        """The tenant's policy (the defaults, version 0, when none is stored)."""
        ...

    def put_retention(self, tenant: str, policy: RetentionPolicy, change: RetentionChange) -> bool:
        """Store ``policy`` with its record if the stored version is ``change.previous_version``."""
        ...

    def retention_history(self, tenant: str, limit: int) -> list[RetentionChange]:
        """Audit records, newest first."""
        ...


def _answer(tenant: str, policy: RetentionPolicy) -> dict[str, Any]:
    # What archive objects of this tenant are tagged with: its longest archive retention, rounded up.
    tag = policy.archive_tag()[RETENTION_TAG]
    archive = {"tag": f"{RETENTION_TAG}={tag}", "longest_days": policy.longest_days(Tier.ARCHIVE)}
    return {"status": "success", "data": {"tenant": tenant, **policy.document(), "archive": archive}}


def get_retention(store: RetentionStore, principal: Principal, params: Params) -> Response:
    """GET: the tenant's retention policy (the defaults, version 0, until one is stored)."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    return 200, _answer(tenant, store.retention(tenant))


def put_retention(store: RetentionStore, principal: Principal, params: Params, body: bytes, now: int) -> Response:
    """PUT: replace ``defaults`` and ``overrides``, given the ``version`` they were read at (409 when it moved on)."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    current = store.retention(tenant)
    policy = parse_change(body, lambda doc: updated_retention(current, doc, principal.key_id, now), "retention policy")
    if not isinstance(policy, RetentionPolicy):
        return policy
    if not store.put_retention(tenant, policy, change_record(current, policy, principal)):
        return _error(
            409, "the retention policy changed while this change was made; read it again (GET) and reapply the change"
        )
    return 200, _answer(tenant, policy)


def retention_history(store: RetentionStore, principal: Principal, params: Params) -> Response:
    """GET: the audit records of the tenant's versions, newest first (``limit``, default 20, at most 100)."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    limit = history_limit(params)
    if not isinstance(limit, int):
        return limit
    records = store.retention_history(tenant, limit)
    return 200, {"status": "success", "data": {"tenant": tenant, "versions": [r.document() for r in records]}}
