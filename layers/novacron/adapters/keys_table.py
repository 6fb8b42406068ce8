"""API key records in DynamoDB (pynamodb)."""

from __future__ import annotations

import json
import time
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

from novacron.adapters.dynamodb import bind_model
from novacron.auth import KeyRecord, Role


class _KeyItem(Model):
    class Meta:
        table_name = "unset"

    key_id = UnicodeAttribute(hash_key=True)
    key_hash = UnicodeAttribute()
    tenant = UnicodeAttribute()
    role = UnicodeAttribute()
    created_at = NumberAttribute()
    description = UnicodeAttribute(default="")
    revoked_at = NumberAttribute(null=True)
    labels = UnicodeAttribute(null=True)  # JSON object; absent on keys made before labels existed


class DynamoKeyStore:
    """KeyStore over the keys table, with a short positive cache so hot paths skip a read per request."""

    def __init__(self, table_name: str, cache_ttl_s: float = 30.0) -> None:
        self._model: Any = bind_model(_KeyItem, table_name)
        self._cache_ttl_s = cache_ttl_s
        self._cache: dict[str, tuple[float, KeyRecord]] = {}

    def get(self, key_id: str) -> KeyRecord | None:
        cached = self._cache.get(key_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._cache_ttl_s:
            return cached[1]
        try:
            item = self._model.get(key_id, consistent_read=True)
        except self._model.DoesNotExist:
            return None
        record = _to_record(item)
        if record.revoked_at is None and self._cache_ttl_s > 0:
            self._cache[key_id] = (now, record)
        return record

    def put(self, record: KeyRecord) -> None:
        item = self._model(
            record.key_id,
            key_hash=record.key_hash,
            tenant=record.tenant,
            role=str(record.role),
            created_at=record.created_at,
            description=record.description,
            revoked_at=record.revoked_at,
            labels=json.dumps(record.labels, sort_keys=True) if record.labels else None,
        )
        item.save()

    def revoke(self, key_id: str, tenant: str, at: int) -> bool:
        self._cache.pop(key_id, None)
        item = self._model(key_id)
        try:
            item.update(
                actions=[self._model.revoked_at.set(at)],
                condition=(self._model.key_id.exists()) & (self._model.tenant == tenant),
            )
        except UpdateError as exc:
            # Unknown id (the update would create it) or another tenant's key: both are "not found".
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def tenants(self) -> list[str]:
        """Every tenant that has (or had) a key: whose data scheduled jobs such as compaction visit."""
        return sorted({str(item.tenant) for item in self._model.scan(attributes_to_get=["tenant"])})

    def list(self, tenant: str) -> list[KeyRecord]:
        return sorted(
            (_to_record(item) for item in self._model.scan(self._model.tenant == tenant)),
            key=lambda r: r.created_at,
        )


def _to_record(item: _KeyItem) -> KeyRecord:
    return KeyRecord(
        key_id=item.key_id,
        key_hash=item.key_hash,
        tenant=item.tenant,
        role=Role(item.role),
        created_at=int(item.created_at),
        description=item.description or "",
        revoked_at=None if item.revoked_at is None else int(item.revoked_at),
        labels=json.loads(item.labels) if item.labels else {},
    )
