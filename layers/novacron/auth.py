"""API keys: format, hashing, roles and the authorization decision.

A key looks like ``nck_<key id>_<secret>``. The key id is public (it names the key in listings and
revocations); only a SHA-256 of the whole key is stored, so a leaked table does not leak keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

_KEY_RE = re.compile(r"^nck_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Role(StrEnum):
    """What a key may do. ``admin`` may do everything within its tenant."""

    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


class AuthError(Exception):
    """Authentication or authorization failed; ``status`` is 401 or 403."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class KeyRecord:
    """A stored key: never the key itself, only its hash."""

    key_id: str
    key_hash: str
    tenant: str
    role: Role
    created_at: int
    description: str = ""
    revoked_at: int | None = None
    # Labels the ingest policy adds to this key's series when they lack them (source, environment, owner…).
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    tenant: str
    role: Role
    key_id: str
    labels: dict[str, str] = field(default_factory=dict)  # the key's labels


class KeyStore(Protocol):
    """Where key records live (DynamoDB in AWS and locally, a dict in tests)."""

    def get(self, key_id: str) -> KeyRecord | None:
        """The record of ``key_id`` or None."""
        ...

    def put(self, record: KeyRecord) -> None:
        """Store a record (overwrites)."""
        ...

    def revoke(self, key_id: str, tenant: str, at: int) -> bool:
        """Mark a key of ``tenant`` revoked; False when no such key exists in that tenant."""
        ...

    def list(self, tenant: str) -> list[KeyRecord]:
        """Every key of a tenant."""
        ...


def hash_key(api_key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def generate_key() -> str:
    """A new random API key."""
    return f"nck_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def key_id_of(api_key: str) -> str:
    """The public id of a key: embedded in generated keys, derived from the hash otherwise.

    Operators may bring their own key (``novacron local --api-key``); any printable string without
    whitespace of up to 256 characters is accepted, and ValueError is raised for anything else.
    """
    match = _KEY_RE.match(api_key)
    if match is not None:
        return match.group(1)
    if not api_key or len(api_key) > 256 or not api_key.isprintable() or any(c.isspace() for c in api_key):
        raise ValueError("an API key is 1-256 printable characters without whitespace")
    return "x" + hash_key(api_key)[:11]


def validate_tenant(tenant: str) -> str:
    """Return ``tenant`` if it is a valid tenant id, else raise ValueError."""
    if not TENANT_RE.match(tenant):
        raise ValueError(
            f"invalid tenant {tenant!r}: use 1-63 lower-case letters, digits and '-', starting with a letter or digit"
        )
    return tenant


def new_key_record(
    api_key: str,
    tenant: str,
    role: Role | str,
    created_at: int,
    description: str = "",
    labels: dict[str, str] | None = None,
) -> KeyRecord:
    """The record to store for ``api_key`` (``labels`` validated by the caller)."""
    return KeyRecord(
        key_id=key_id_of(api_key),
        key_hash=hash_key(api_key),
        tenant=validate_tenant(tenant),
        role=Role(role),
        created_at=created_at,
        description=description,
        labels=dict(labels or {}),
    )


def bearer_token(authorization: str | None) -> str:
    """The API key of an ``Authorization`` header; AuthError(401) otherwise.

    ``Bearer <api key>`` is the native form. ``Basic`` with the key as the password is accepted as
    well, because some clients can only send basic auth (promtool's instant queries, via a URL with
    user info; Grafana's and Prometheus's basic-auth settings). The user name is ignored.
    """
    if not authorization:
        raise AuthError(401, "missing Authorization header: send 'Authorization: Bearer <api key>'")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() == "basic" and token:
        try:
            _, sep, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            sep, password = "", ""
        if not sep or not password:
            raise AuthError(401, "malformed Basic credentials: expected base64 of '<any user>:<api key>'")
        return password
    if scheme.lower() != "bearer" or not token:
        raise AuthError(401, "malformed Authorization header: expected 'Bearer <api key>'")
    return token


def authenticate(authorization: str | None, store: KeyStore) -> Principal:
    """Resolve the caller of a request from its Authorization header."""
    token = bearer_token(authorization)
    try:
        key_id = key_id_of(token)
    except ValueError:
        raise AuthError(401, "invalid API key") from None
    record = store.get(key_id)
    # Compare hashes in constant time; an unknown id and a wrong secret give the same answer.
    if record is None or not hmac.compare_digest(record.key_hash, hash_key(token)):
        raise AuthError(401, "invalid API key")
    if record.revoked_at is not None:
        raise AuthError(401, f"API key {key_id} has been revoked")
    return Principal(tenant=record.tenant, role=record.role, key_id=key_id, labels=record.labels)


def authorize(principal: Principal, needed: Role) -> None:
    """Raise AuthError(403) unless the principal's role allows ``needed``."""
    if principal.role is Role.ADMIN or principal.role is needed:
        return
    raise AuthError(
        403, f"API key {principal.key_id} has role '{principal.role}', this route needs role '{needed}' or 'admin'"
    )


def register_key(api_key: str, tenant: str, role: Role | str, table_name: str, description: str = "") -> KeyRecord:
    """Store ``api_key`` in the keys table (bootstrap helper for the CLI and the local runtime)."""
    import time

    from novacron.adapters.keys_table import DynamoKeyStore

    record = new_key_record(api_key, tenant, role, int(time.time()), description)
    DynamoKeyStore(table_name).put(record)
    return record


OPERATOR_TENANT = "default"


def may_manage(principal: Principal, tenant: str, operator_tenant: str = OPERATOR_TENANT) -> bool:
    """Whether an admin may manage keys of ``tenant``: its own, or any if it is the operator's."""
    return principal.role is Role.ADMIN and principal.tenant in (tenant, operator_tenant)


def issue_key(
    store: KeyStore,
    tenant: str,
    role: Role | str,
    now: int,
    description: str = "",
    labels: dict[str, str] | None = None,
) -> tuple[str, KeyRecord]:
    """Create, store and return a new key; the key itself is shown once and never stored."""
    api_key = generate_key()
    record = new_key_record(api_key, tenant, role, now, description, labels)
    store.put(record)
    return api_key, record


def key_summary(record: KeyRecord) -> dict[str, object]:
    """What the API shows of a key: never its hash."""
    return {
        "key_id": record.key_id,
        "tenant": record.tenant,
        "role": str(record.role),
        "description": record.description,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
        "labels": dict(record.labels),
    }
