"""``/api/v1/admin/detection`` (and ``/history``) and ``POST /api/v1/anomalies/{id}/feedback`` (admin role).

The detection policy follows the retention policy's conventions (retention_api.py): an admin manages
its own tenant, the operator's admin any tenant (``?tenant=``); a PUT carries the ``version`` it was
based on and is refused with 409 when the policy moved on; 400 answers list ``field: problem`` lines;
every change is a new version with an audit record (novacron.detect.policy).

Feedback is a user's verdict on one anomaly episode of the tenant, ``{"verdict": "true_positive" |
"false_positive", "comment": "..."}``, stored beside the episode with who gave it (the key id) and
when; ``GET /api/v1/anomalies`` shows each episode's latest.
"""

from __future__ import annotations

import json
from typing import Protocol

from novacron.auth import Principal
from novacron.detect.events import Anomaly, Feedback, FeedbackVerdict
from novacron.detect.policy import DetectionChange, DetectionPolicy, change_record, updated_detection
from novacron.query.keys_api import managed_tenant
from novacron.query.policy_api import Params, Response, _error, history_limit, parse_change

MAX_COMMENT = 1_000
# Feedback outlives the episodes (30 days): training and the shadow comparison of models learn from it.
FEEDBACK_TTL_DAYS = 400
_FEEDBACK_FIELDS = ("verdict", "comment")


class DetectionStore(Protocol):
    """Where detection policies and their audit records live (the settings table; a dict in tests)."""

    def detection(self, tenant: str) -> DetectionPolicy:
        """The tenant's policy (the defaults, version 0, when none is stored)."""
        ...

    def put_detection(self, tenant: str, policy: DetectionPolicy, change: DetectionChange) -> bool:
        """Store ``policy`` with its record if the stored version is ``change.previous_version``."""
        ...

    def detection_history(self, tenant: str, limit: int) -> list[DetectionChange]:
        """Audit records, newest first."""
        ...


class FeedbackStore(Protocol):
    """Anomaly episodes and users' feedback on them (the anomalies table)."""

    def anomaly(self, tenant: str, anomaly_id: str) -> Anomaly | None:
        """The tenant's episode ``anomaly_id``, or None."""
        ...

    def put_feedback(self, tenant: str, feedback: Feedback, expires_at: int) -> None:
        """Store one verdict on an episode."""
        ...


def _answer(tenant: str, policy: DetectionPolicy) -> Response:
    return 200, {"status": "success", "data": {"tenant": tenant, **policy.document()}}


def get_detection(store: DetectionStore, principal: Principal, params: Params) -> Response:
    """GET: the tenant's detection policy (the defaults, version 0, until one is stored)."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    return _answer(tenant, store.detection(tenant))


def put_detection(store: DetectionStore, principal: Principal, params: Params, body: bytes, now: int) -> Response:
    """PUT: replace the editable fields, given the ``version`` they were read at (409 when it moved on)."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    current = store.detection(tenant)
    policy = parse_change(body, lambda doc: updated_detection(current, doc, principal.key_id, now), "detection policy")
    if not isinstance(policy, DetectionPolicy):
        return policy
    if not store.put_detection(tenant, policy, change_record(current, policy, principal)):
        return _error(
            409, "the detection policy changed while this change was made; read it again (GET) and reapply the change"
        )
    return _answer(tenant, policy)


def detection_history(store: DetectionStore, principal: Principal, params: Params) -> Response:
    """GET: the audit records of the tenant's versions, newest first (``limit``, default 20, at most 100)."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    limit = history_limit(params)
    if not isinstance(limit, int):
        return limit
    records = store.detection_history(tenant, limit)
    return 200, {"status": "success", "data": {"tenant": tenant, "versions": [r.document() for r in records]}}


def feedback_body(body: bytes) -> tuple[FeedbackVerdict, str]:
    """The verdict and comment of a feedback body; ValueError naming the field that is wrong."""
    try:
        doc = json.loads(body or b"null")
    except ValueError:
        raise ValueError(
            'body must be JSON: {"verdict": "true_positive" | "false_positive", "comment": "..."}'
        ) from None
    if not isinstance(doc, dict):
        raise ValueError('body must be a JSON object {"verdict": ..., "comment": ...}')
    unknown = sorted(set(doc) - set(_FEEDBACK_FIELDS))
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(unknown)}; feedback has {' and '.join(_FEEDBACK_FIELDS)}")
    verdicts = [str(v) for v in FeedbackVerdict]
    if doc.get("verdict") not in verdicts:
        raise ValueError(f"verdict: required, one of {', '.join(verdicts)}; got {doc.get('verdict')!r}")
    comment = doc.get("comment", "")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise ValueError(f"comment: must be a string of at most {MAX_COMMENT} characters")
    return FeedbackVerdict(doc["verdict"]), comment


def post_feedback(
    store: FeedbackStore, principal: Principal, anomaly_id: str, params: Params, body: bytes, now: int
) -> Response:
    """POST: record a verdict on one of the tenant's episodes (404 when the tenant has no such episode)."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    try:
        verdict, comment = feedback_body(body)
    except ValueError as exc:
        return _error(400, str(exc))
    # Episode ids are hex digests: anything else cannot name one (and never reaches the table's filter).
    if (
        not anomaly_id
        or not all(c in "0123456789abcdef" for c in anomaly_id)
        or store.anomaly(tenant, anomaly_id) is None
    ):
        return _error(404, f"no anomaly {anomaly_id!r} in tenant {tenant!r}")
    feedback = Feedback(anomaly_id, verdict, comment, principal.key_id, now)
    store.put_feedback(tenant, feedback, now + FEEDBACK_TTL_DAYS * 86_400)
    return 200, {"status": "success", "data": {"tenant": tenant, **feedback.to_json()}}
