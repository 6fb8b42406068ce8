"""``/api/v1/admin/ingest-policy`` and ``/api/v1/admin/cardinality``: a tenant's ingest policy (admin role).

Tenant scoping is as for keys: an admin manages its own tenant, the operator's admin any tenant
(``?tenant=``). Every change is a new policy version; see docs/ingest-policy.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from novacron.auth import Principal
from novacron.ingest.policy import (
    Approval,
    IngestPolicy,
    PolicyConflict,
    field_errors,
    updated_policy,
    with_approval,
)
from novacron.ingest.validate import METRIC_NAME_RE
from novacron.query.keys_api import managed_tenant

Params = Mapping[str, Sequence[str]]
Response = tuple[int, dict[str, Any]]
T = TypeVar("T")
# Approval changes retry on a concurrent edit: they are made against the policy as stored.
_APPROVAL_ATTEMPTS = 5


class PolicyStore(Protocol):
    """Where policies live (the settings table; a dict in tests)."""

    def policy(self, tenant: str) -> IngestPolicy:
        """The tenant's policy (the default one, version 0, when none is stored)."""
        ...

    def put_policy(self, tenant: str, policy: IngestPolicy, expected_version: int) -> bool:
        """Store ``policy`` if the stored version is ``expected_version``; False otherwise."""
        ...


class CardinalitySummary(Protocol):
    """The writer's per-day series counts (the series index)."""

    def cardinality(self, tenant: str, day: str) -> Mapping[str, int]:
        """Distinct series per metric of a tenant on a day."""
        ...


def _error(status: int, message: str, details: list[str] | None = None) -> Response:
    body: dict[str, Any] = {"status": "error", "error": message}
    if details:
        body["details"] = details
    return status, body


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise ValueError(f"body is not valid JSON: {str(exc)[:200]}") from None


# Audit history of a versioned policy (retention, detection): versions per page.
DEFAULT_HISTORY = 20
MAX_HISTORY = 100


def history_limit(params: Params) -> int | Response:
    """The ``limit`` of a policy-history request (default 20, at most 100), or the 400 naming it."""
    raw = (params.get("limit") or [str(DEFAULT_HISTORY)])[0]
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_HISTORY:
        return _error(400, f"limit must be an integer from 1 to {MAX_HISTORY}, got {raw!r}")
    return int(raw)


def parse_change(body: bytes, build: Callable[[Any], T], what: str) -> T | Response:
    """``build`` applied to the JSON body of a change, or the 4xx answer: 409 for a version conflict,
    400 naming the invalid fields, 400 for a body that is not JSON or otherwise wrong."""
    try:
        return build(_json_body(body))
    except PolicyConflict as exc:
        return _error(409, str(exc))
    except ValidationError as exc:
        return _error(400, f"invalid {what}", field_errors(exc))
    except ValueError as exc:
        return _error(400, str(exc))


def get_policy(store: PolicyStore, principal: Principal, params: Params) -> Response:
    """GET: the tenant's policy (the defaults, version 0, until one is stored)."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    return 200, {"status": "success", "data": {"tenant": tenant, **store.policy(tenant).document()}}


def put_policy(store: PolicyStore, principal: Principal, params: Params, body: bytes, now: int) -> Response:
    """PUT: replace the editable fields, given the ``version`` they were read at (409 when it moved on)."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    current = store.policy(tenant)

    def build(doc: Any) -> IngestPolicy:
        if isinstance(doc, dict):
            doc.pop("tenant", None)  # GET's answer names it; the target is the ``tenant`` parameter
        return updated_policy(current, doc, principal.key_id, now)

    policy = parse_change(body, build, "ingest policy")
    if not isinstance(policy, IngestPolicy):
        return policy
    if not store.put_policy(tenant, policy, current.version):
        return _error(409, "the policy changed while this change was made; read it again (GET) and reapply the change")
    return 200, {"status": "success", "data": {"tenant": tenant, **policy.document()}}


def cardinality(
    store: PolicyStore, summary: CardinalitySummary, principal: Principal, params: Params, now_ms: int
) -> Response:
    """GET: series per metric today (``date=YYYY-MM-DD`` for another day), with limits and approvals."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    day = (params.get("date") or [datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y-%m-%d")])[0]
    try:
        datetime.strptime(day, "%Y-%m-%d")
    except ValueError:
        return _error(400, f"date must be YYYY-MM-DD, got {day!r}")
    policy = store.policy(tenant)
    counts = summary.cardinality(tenant, day)
    metrics = sorted(set(counts) | set(policy.approvals), key=lambda m: (-counts.get(m, 0), m))
    rows = [
        {
            "metric": metric,
            "series": counts.get(metric, 0),
            "limit": policy.metric_limit(metric),
            "approved": metric in policy.approvals,
        }
        for metric in metrics
    ]
    data = {
        "tenant": tenant,
        "date": day,
        "series": sum(counts.values()),
        "limit": policy.max_series_per_tenant,
        "metrics": rows,
    }
    return 200, {"status": "success", "data": data}


def list_approvals(store: PolicyStore, principal: Principal, params: Params) -> Response:
    """GET: the tenant's approved high-cardinality metrics."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    approvals = store.policy(tenant).approvals
    data = [{"metric": m, **a.model_dump()} for m, a in sorted(approvals.items())]
    return 200, {"status": "success", "data": data}


def put_approval(
    store: PolicyStore, principal: Principal, metric: str, params: Params, body: bytes, now: int
) -> Response:
    """PUT ``{"limit": N, "reason": "..."}``: allow ``metric`` up to N series a day."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    if not METRIC_NAME_RE.match(metric):
        return _error(400, f"invalid metric name {metric!r}: must match [a-zA-Z_:][a-zA-Z0-9_:]*")
    try:
        doc = _json_body(body)
        if not isinstance(doc, dict):
            raise ValueError('body must be a JSON object {"limit": N, "reason": "..."}')
        # Who approved and when are the server's to say.
        approval = Approval.model_validate({**doc, "approved_by": principal.key_id, "approved_at": now})
    except ValidationError as exc:
        return _error(400, "invalid approval", field_errors(exc))
    except ValueError as exc:
        return _error(400, str(exc))
    return _change_approval(store, principal, tenant, metric, approval, now)


def delete_approval(store: PolicyStore, principal: Principal, metric: str, params: Params, now: int) -> Response:
    """DELETE: the metric is back to ``max_series_per_metric``."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    if metric not in store.policy(tenant).approvals:
        return _error(404, f"no approval for metric {metric!r} in tenant {tenant!r}")
    return _change_approval(store, principal, tenant, metric, None, now)


def _change_approval(
    store: PolicyStore, principal: Principal, tenant: str, metric: str, approval: Approval | None, now: int
) -> Response:
    for _ in range(_APPROVAL_ATTEMPTS):
        current = store.policy(tenant)
        changed = with_approval(current, metric, approval, principal.key_id, now)
        if store.put_policy(tenant, changed, current.version):
            data: dict[str, Any] = {"tenant": tenant, "metric": metric, "version": changed.version}
            if approval is not None:
                data.update(approval.model_dump())
            return 200, {"status": "success", "data": data}
    return _error(409, "the policy kept changing while this approval was saved; try again")
