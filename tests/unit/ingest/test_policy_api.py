"""The admin logic of the ingest policy and cardinality routes, over in-memory stores."""

from __future__ import annotations

import json

import pytest

from novacron.auth import Principal, Role
from novacron.ingest.policy import IngestPolicy
from novacron.query import policy_api
from tests.fakes import MemoryIndexStore, MemoryPolicyStore

NOW_S = 1_790_000_000
OPERATOR = Principal("default", Role.ADMIN, "op1")
ACME_ADMIN = Principal("acme", Role.ADMIN, "ad1")


@pytest.fixture
def store() -> MemoryPolicyStore:
    return MemoryPolicyStore()


def test_the_operator_changes_another_tenants_policy(store: MemoryPolicyStore) -> None:
    # When the operator PUTs globex's policy
    status, _body = policy_api.put_policy(store, OPERATOR, {"tenant": ["globex"]}, b'{"version": 0}', NOW_S)
    # Then globex has version 1 by the operator's key, and acme is untouched
    assert status == 200
    assert (store.policy("globex").version, store.policy("globex").updated_by) == (1, "op1")
    assert store.policy("acme").version == 0


def test_a_tenant_admin_cannot_change_another_tenant(store: MemoryPolicyStore) -> None:
    status, body = policy_api.put_policy(store, ACME_ADMIN, {"tenant": ["globex"]}, b'{"version": 0}', NOW_S)
    assert status == 403
    assert "cannot manage tenant 'globex'" in body["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"not json", "not valid JSON"), (b"[]", "JSON object"), (b"{}", "version: required")],
)
def test_malformed_puts_are_400(store: MemoryPolicyStore, body: bytes, message: str) -> None:
    status, answer = policy_api.put_policy(store, ACME_ADMIN, {}, body, NOW_S)
    assert status == 400
    assert message in answer["error"]


def test_a_lost_race_on_save_is_a_409(store: MemoryPolicyStore) -> None:
    # Given a store whose conditional write fails (another admin saved in between)
    class Racing(MemoryPolicyStore):
        def put_policy(self, tenant: str, policy: IngestPolicy, expected_version: int) -> bool:
            return False

    # When a change is saved
    status, _answer = policy_api.put_policy(Racing(), ACME_ADMIN, {}, b'{"version": 0}', NOW_S)
    # Then it is a conflict, not a silent overwrite
    assert status == 409


def test_cardinality_lists_metrics_by_size_with_limits_and_approvals(store: MemoryPolicyStore) -> None:
    # Given a summary of two metrics and an approval for a third, not yet seen today
    index = MemoryIndexStore()
    index.summary[("acme", "2026-09-21")] = {"small": 2, "big": 40}
    policy_api.put_approval(store, ACME_ADMIN, "huge", {}, json.dumps({"limit": 9, "reason": "r"}).encode(), NOW_S)
    # When the cardinality of that day is read
    status, body = policy_api.cardinality(store, index, ACME_ADMIN, {"date": ["2026-09-21"]}, NOW_S * 1000)
    # Then metrics come largest first, each with its limit, and the tenant's total and limit
    assert status == 200
    data = body["data"]
    assert [(r["metric"], r["series"], r["limit"], r["approved"]) for r in data["metrics"]] == [
        ("big", 40, 50_000, False),
        ("small", 2, 50_000, False),
        ("huge", 0, 9, True),
    ]
    assert (data["series"], data["limit"]) == (42, 1_000_000)


def test_an_approval_for_an_invalid_metric_name_is_400(store: MemoryPolicyStore) -> None:
    status, body = policy_api.put_approval(store, ACME_ADMIN, "bad-name", {}, b'{"limit": 5, "reason": "r"}', NOW_S)
    assert status == 400
    assert "invalid metric name" in body["error"]


def test_approval_fields_from_the_caller_are_the_servers(store: MemoryPolicyStore) -> None:
    # When a body claims someone else approved it long ago
    body = json.dumps({"limit": 5, "reason": "r", "approved_by": "ceo", "approved_at": 1}).encode()
    policy_api.put_approval(store, ACME_ADMIN, "m", {}, body, NOW_S)
    # Then the record says who really did, and when
    approval = store.policy("acme").approvals["m"]
    assert (approval.approved_by, approval.approved_at) == ("ad1", NOW_S)
