"""The retention admin logic over an in-memory store: versions, conflicts, audit records, history."""

from __future__ import annotations

import json
from typing import Any

from novacron.auth import Principal, Role
from novacron.query import retention_api
from tests.unit.retention.conftest import MemoryRetentionStore

NOW_S = 1_790_000_000
OPERATOR = Principal("default", Role.ADMIN, "op1")
ACME_ADMIN = Principal("acme", Role.ADMIN, "ad1")


def put(store: MemoryRetentionStore, doc: Any, who: Principal = ACME_ADMIN, now: int = NOW_S) -> tuple[int, Any]:
    return retention_api.put_retention(store, who, {}, json.dumps(doc).encode(), now)


def test_get_answers_the_defaults_at_version_0(store: MemoryRetentionStore) -> None:
    status, body = retention_api.get_retention(store, ACME_ADMIN, {})
    data = body["data"]
    assert (status, data["tenant"], data["version"], data["defaults"]["raw_days"]) == (200, "acme", 0, 15)
    # And it says which class archive objects of the tenant are tagged with
    assert data["archive"] == {"tag": "novacron-retention=400d", "longest_days": 400}


def test_a_change_is_versioned_and_audited(store: MemoryRetentionStore) -> None:
    # Given the policy as read (version 0)
    _, read = retention_api.get_retention(store, ACME_ADMIN, {})
    doc = read["data"]
    # When the admin shortens raw data and adds an override, sending back what GET answered
    doc["defaults"]["raw_days"] = 7
    doc["overrides"] = [{"metric": "debug_requests", "raw_days": 1, "rollup_1m_days": 1}]
    status, body = put(store, doc)
    # Then version 1 is stored, by the admin's key id
    assert status == 200
    assert (body["data"]["version"], body["data"]["updated_by"], body["data"]["updated_at"]) == (1, "ad1", NOW_S)
    assert store.retention("acme").defaults.raw_days == 7
    # And one audit record says who, when, old → new, and what changed
    (record,) = store.retention_history("acme", 10)
    assert (record.version, record.previous_version, record.changed_by, record.changed_at) == (1, 0, "ad1", NOW_S)
    assert (record.changed_by_tenant, record.changed_by_role) == ("acme", "admin")
    assert "defaults.raw_days: 15 → 7" in record.changes
    assert any(line.startswith("overrides[0]: - → {") for line in record.changes)
    assert (record.before["defaults"]["raw_days"], record.after["defaults"]["raw_days"]) == (15, 7)


def test_a_change_based_on_an_old_version_is_a_409(store: MemoryRetentionStore) -> None:
    assert put(store, {"version": 0, "defaults": {"raw_days": 10}})[0] == 200
    # When a second admin PUTs a change still based on version 0
    status, body = put(store, {"version": 0, "defaults": {"raw_days": 5}})
    # Then it is refused, naming the current version, and nothing is recorded
    assert status == 409
    assert "at version 1" in body["error"]
    assert store.retention("acme").defaults.raw_days == 10
    assert len(store.retention_history("acme", 10)) == 1


def test_a_lost_race_at_the_store_is_a_409(store: MemoryRetentionStore) -> None:
    class Racing(MemoryRetentionStore):
        def put_retention(self, tenant: str, policy: Any, change: Any) -> bool:
            return False  # another admin's write landed between the read and this write

    status, body = put(Racing(), {"version": 0})
    assert status == 409
    assert "changed while this change was made" in body["error"]


def test_an_invalid_policy_is_a_400_listing_the_fields(store: MemoryRetentionStore) -> None:
    status, body = put(
        store, {"version": 0, "defaults": {"raw_days": 0}, "overrides": [{"match": "{a=~'('}", "raw_days": 1}]}
    )
    assert status == 400
    assert body["error"] == "invalid retention policy"
    assert any(d.startswith("defaults.raw_days:") for d in body["details"])
    assert any(d.startswith("overrides.0.match:") for d in body["details"])
    assert store.retention("acme").version == 0


def test_bodies_that_are_not_a_policy_are_400s(store: MemoryRetentionStore) -> None:
    assert "version: required" in put(store, {"defaults": {}})[1]["error"]
    assert "unknown fields: raw_days" in put(store, {"version": 0, "raw_days": 3})[1]["error"]
    status, body = retention_api.put_retention(store, ACME_ADMIN, {}, b"{not json", NOW_S)
    assert (status, body["error"].startswith("body is not valid JSON")) == (400, True)


def test_history_is_newest_first_and_limited(store: MemoryRetentionStore) -> None:
    for version, raw in enumerate((10, 9, 8)):
        assert put(store, {"version": version, "defaults": {"raw_days": raw}}, now=NOW_S + version)[0] == 200
    status, body = retention_api.retention_history(store, ACME_ADMIN, {"limit": ["2"]})
    assert status == 200
    assert [v["version"] for v in body["data"]["versions"]] == [3, 2]
    assert body["data"]["versions"][0]["changes"] == ["defaults.raw_days: 9 → 8"]


def test_history_limit_is_validated(store: MemoryRetentionStore) -> None:
    for limit in ("0", "101", "x"):
        status, body = retention_api.retention_history(store, ACME_ADMIN, {"limit": [limit]})
        assert status == 400, limit
        assert "limit must be an integer from 1 to 100" in body["error"]


def test_tenants_are_scoped(store: MemoryRetentionStore) -> None:
    # A tenant's admin cannot name another tenant; the operator's admin can, and is recorded as such
    assert retention_api.get_retention(store, ACME_ADMIN, {"tenant": ["globex"]})[0] == 403
    assert retention_api.retention_history(store, ACME_ADMIN, {"tenant": ["globex"]})[0] == 403
    status, _ = retention_api.put_retention(store, OPERATOR, {"tenant": ["globex"]}, b'{"version": 0}', NOW_S)
    assert status == 200
    (record,) = store.retention_history("globex", 1)
    assert (record.changed_by, record.changed_by_tenant) == ("op1", "default")
    assert store.retention("acme").version == 0
