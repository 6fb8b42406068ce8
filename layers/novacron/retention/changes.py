"""Versioned changes of a retention policy, and the audit record each one leaves.

Every change is made against the version the admin read (409 otherwise, as for the ingest policy),
bumps the version by one, and is recorded with who made it (the API key's id and tenant, never the
key itself), when, the old and new versions and documents, and a readable list of what changed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from novacron.auth import Principal
from novacron.ingest.policy import check_based_on
from novacron.retention.policy import RetentionPolicy

# Fields an admin sets with PUT; the rest are the server's.
EDITABLE_FIELDS = ("defaults", "overrides")


class RetentionChange(BaseModel):
    """The audit record of one version of a tenant's retention policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = Field(gt=0)
    previous_version: int = Field(ge=0)
    changed_by: str  # the API key id
    changed_by_tenant: str  # the key's tenant (the operator's admin may change another tenant)
    changed_by_role: str
    changed_at: int  # epoch seconds
    changes: tuple[str, ...]  # "defaults.raw_days: 15 → 7", ...
    before: dict[str, Any]
    after: dict[str, Any]

    def document(self) -> dict[str, Any]:
        """The JSON form the history answers with and the table stores."""
        return self.model_dump(mode="json")


def updated_retention(current: RetentionPolicy, body: Any, by: str, now: int) -> RetentionPolicy:
    """The policy an admin's PUT body makes of ``current``.

    The body holds ``defaults`` and ``overrides`` (omitted: their defaults) and the ``version`` it was
    based on. Raises ValueError for a body that is not an object or lacks ``version``, PolicyConflict
    when ``version`` is not the current one, and pydantic's ValidationError for invalid fields.
    """
    body = check_based_on(body, current.version, "retention policy")
    unknown = sorted(set(body) - {*EDITABLE_FIELDS, "version", "tenant", "updated_by", "updated_at", "archive"})
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(unknown)}; a policy has {' and '.join(EDITABLE_FIELDS)}")
    editable = {k: body[k] for k in EDITABLE_FIELDS if k in body}
    server = {"version": current.version + 1, "updated_by": by, "updated_at": now}
    return RetentionPolicy.model_validate({**editable, **server})


class VersionedPolicy(Protocol):
    """A tenant policy changed version by version (retention, detection)."""

    @property
    def version(self) -> int: ...

    @property
    def updated_at(self) -> int: ...

    def document(self) -> dict[str, Any]: ...


C = TypeVar("C", bound=RetentionChange)


def audit_record(
    before: VersionedPolicy,
    after: VersionedPolicy,
    principal: Principal,
    editable: Sequence[str],
    record: type[C],
) -> C:
    """The audit record of ``after`` replacing ``before``; ``changes`` lists what differs in ``editable``."""
    old, new = before.document(), after.document()
    return record(
        version=after.version,
        previous_version=before.version,
        changed_by=principal.key_id,
        changed_by_tenant=principal.tenant,
        changed_by_role=str(principal.role),
        changed_at=after.updated_at,
        changes=tuple(differences({k: old[k] for k in editable}, {k: new[k] for k in editable})),
        before=old,
        after=new,
    )


def change_record(before: RetentionPolicy, after: RetentionPolicy, principal: Principal) -> RetentionChange:
    """The audit record of ``after`` replacing ``before``."""
    return audit_record(before, after, principal, EDITABLE_FIELDS, RetentionChange)


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Readable ``path: old → new`` lines between two JSON documents (``-`` for absent)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{path}.{key}" if path else str(key)
            out += differences(old.get(key, _ABSENT), new.get(key, _ABSENT), where)
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i in range(max(len(old), len(new))):
            out += differences(old[i] if i < len(old) else _ABSENT, new[i] if i < len(new) else _ABSENT, f"{path}[{i}]")
        return out
    if old == new:
        return []
    return [f"{path}: {_show(old)} → {_show(new)}"]


class _Absent:
    def __repr__(self) -> str:
        return "-"


_ABSENT: Any = _Absent()


def _show(value: Any) -> str:
    return "-" if value is _ABSENT else json.dumps(value, sort_keys=True)
