"""API keys: format, authentication and authorization decisions."""

from __future__ import annotations

import base64

import pytest

from novacron.auth import (
    AuthError,
    Role,
    authenticate,
    authorize,
    generate_key,
    hash_key,
    issue_key,
    key_id_of,
    key_summary,
    may_manage,
    new_key_record,
    validate_tenant,
)
from tests.fakes import MemoryKeyStore


@pytest.fixture
def store() -> MemoryKeyStore:
    return MemoryKeyStore()


def test_generated_keys_carry_their_id_and_are_stored_hashed(store: MemoryKeyStore) -> None:
    # When a key is issued
    key, record = issue_key(store, "acme", "read", 1000)
    # Then its id is embedded in it and only its hash is stored
    assert key.startswith(f"nck_{record.key_id}_")
    assert record.key_hash == hash_key(key)
    assert key not in repr(store.records)


def test_bearer_and_basic_credentials_authenticate(store: MemoryKeyStore) -> None:
    key, _ = issue_key(store, "acme", Role.INGEST, 1000)
    basic = base64.b64encode(f"anyone:{key}".encode()).decode()
    for header in (f"Bearer {key}", f"bearer  {key} ", f"Basic {basic}"):
        principal = authenticate(header, store)
        assert (principal.tenant, principal.role) == ("acme", Role.INGEST)


def test_operator_chosen_keys_work(store: MemoryKeyStore) -> None:
    # Given a key that is not in the generated format (novacron local --api-key devkey)
    store.put(new_key_record("devkey-123", "default", "admin", 0))
    # Then it authenticates, under an id derived from its hash
    assert authenticate("Bearer devkey-123", store).key_id == key_id_of("devkey-123")
    assert key_id_of("devkey-123").startswith("x")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing Authorization header"),
        ("", "missing Authorization header"),
        ("Token abc", "malformed Authorization header"),
        ("Bearer", "malformed Authorization header"),
        ("Basic !!!", "malformed Basic credentials"),
        ("Basic " + base64.b64encode(b"nopassword").decode(), "malformed Basic credentials"),
        ("Bearer nck_000000000000_" + "a" * 40, "invalid API key"),
        ("Bearer has space", "invalid API key"),
    ],
)
def test_bad_credentials_are_401(store: MemoryKeyStore, header: str | None, message: str) -> None:
    with pytest.raises(AuthError) as err:
        authenticate(header, store)
    assert err.value.status == 401
    assert message in err.value.message


def test_a_wrong_secret_for_a_known_id_is_refused(store: MemoryKeyStore) -> None:
    _key, record = issue_key(store, "acme", "read", 1000)
    forged = f"nck_{record.key_id}_{'b' * 43}"
    with pytest.raises(AuthError, match="invalid API key"):
        authenticate(f"Bearer {forged}", store)


def test_revoked_keys_are_refused(store: MemoryKeyStore) -> None:
    key, record = issue_key(store, "acme", "read", 1000)
    store.revoke(record.key_id, "acme", 2000)
    with pytest.raises(AuthError, match="revoked"):
        authenticate(f"Bearer {key}", store)


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        (Role.ADMIN, Role.INGEST, True),
        (Role.ADMIN, Role.READ, True),
        (Role.INGEST, Role.INGEST, True),
        (Role.INGEST, Role.READ, False),
        (Role.READ, Role.INGEST, False),
        (Role.READ, Role.ADMIN, False),
    ],
)
def test_roles(store: MemoryKeyStore, role: Role, needed: Role, allowed: bool) -> None:
    key, _ = issue_key(store, "acme", role, 1000)
    principal = authenticate(f"Bearer {key}", store)
    if allowed:
        authorize(principal, needed)
    else:
        with pytest.raises(AuthError) as err:
            authorize(principal, needed)
        assert err.value.status == 403


def test_only_own_or_operator_admins_manage_a_tenant(store: MemoryKeyStore) -> None:
    acme_admin = authenticate(f"Bearer {issue_key(store, 'acme', 'admin', 0)[0]}", store)
    operator = authenticate(f"Bearer {issue_key(store, 'default', 'admin', 0)[0]}", store)
    acme_reader = authenticate(f"Bearer {issue_key(store, 'acme', 'read', 0)[0]}", store)
    assert may_manage(acme_admin, "acme")
    assert not may_manage(acme_admin, "globex")
    assert may_manage(operator, "globex")
    assert not may_manage(acme_reader, "acme")


@pytest.mark.parametrize("tenant", ["", "UPPER", "-lead", "a" * 64, "sp ace", "a/b"])
def test_bad_tenant_ids(tenant: str) -> None:
    with pytest.raises(ValueError, match="invalid tenant"):
        validate_tenant(tenant)


def test_generate_key_is_random() -> None:
    assert generate_key() != generate_key()


def test_a_keys_labels_reach_its_principal(store: MemoryKeyStore) -> None:
    # Given an ingest key issued with labels
    key, record = issue_key(store, "acme", Role.INGEST, 1, labels={"owner": "team-a"})
    # When it authenticates
    principal = authenticate(f"Bearer {key}", store)
    # Then the principal carries the labels, and the listing shows them
    assert principal.labels == {"owner": "team-a"}
    assert key_summary(record)["labels"] == {"owner": "team-a"}
