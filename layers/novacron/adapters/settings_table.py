"""Tenant settings in DynamoDB (pynamodb): versioned documents per tenant, with a TTL cache for hot paths.

One item per tenant and kind of setting: ``pk`` = tenant, ``sk`` = the kind (``ingest-policy``,
``retention``, ``detection``); ``version`` is a top-level number so that writes can be made conditional on it,
``document`` the setting as JSON. Kinds with a history also keep one item per version,
``sk`` = ``<kind>#v<version, 10 digits>``, holding that version's audit record; it is written in the
same transaction as the current item, so a version never exists without its record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from novacron.adapters.dynamodb import bind_model
from novacron.aws import endpoint_override, region
from novacron.detect.policy import DETECTION_KEY, DetectionChange, DetectionPolicy
from novacron.ingest.policy import POLICY_KEY, IngestPolicy
from novacron.retention.changes import RetentionChange
from novacron.retention.policy import RETENTION_KEY, RetentionPolicy

_T = TypeVar("_T", bound=BaseModel)
_CONFLICT_CODES = ("ConditionalCheckFailedException", "TransactionCanceledException")


class _SettingsItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    version = NumberAttribute()
    document = UnicodeAttribute()


def history_key(kind: str, version: int) -> str:
    """The sort key of one version's record of a kind of setting (sorts by version)."""
    return f"{kind}#v{version:010d}"


class SettingsTable:
    """Settings by tenant; reads are cached for ``cache_ttl_s`` (0: always read)."""

    def __init__(self, table_name: str, cache_ttl_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._model: Any = bind_model(_SettingsItem, table_name)
        self._cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}

    # --- the ingest policy ------------------------------------------------------------------------

    def policy(self, tenant: str) -> IngestPolicy:
        """The tenant's stored ingest policy, or the default one (version 0) when none is stored."""
        return self._setting(tenant, POLICY_KEY, IngestPolicy)

    def put_policy(self, tenant: str, policy: IngestPolicy, expected_version: int) -> bool:
        """Store ``policy`` if the stored version is still ``expected_version``; False otherwise."""
        return self._put(tenant, POLICY_KEY, policy.version, policy.document(), expected_version)

    # --- the retention policy ---------------------------------------------------------------------

    def retention(self, tenant: str) -> RetentionPolicy:
        """The tenant's stored retention policy, or the defaults (version 0) when none is stored."""
        return self._setting(tenant, RETENTION_KEY, RetentionPolicy)

    def put_retention(self, tenant: str, policy: RetentionPolicy, change: RetentionChange) -> bool:
        """Store ``policy`` and its audit record if the stored version is ``change.previous_version``."""
        history = (history_key(RETENTION_KEY, policy.version), change.document())
        return self._put(tenant, RETENTION_KEY, policy.version, policy.document(), change.previous_version, history)

    def retention_history(self, tenant: str, limit: int) -> list[RetentionChange]:
        """The audit records of the tenant's retention versions, newest first."""
        return [RetentionChange.model_validate(doc) for doc in self._history(tenant, RETENTION_KEY, limit)]

    # --- the detection policy ---------------------------------------------------------------------

    def detection(self, tenant: str) -> DetectionPolicy:
        """The tenant's stored detection policy, or the defaults (version 0) when none is stored."""
        return self._setting(tenant, DETECTION_KEY, DetectionPolicy)

    def put_detection(self, tenant: str, policy: DetectionPolicy, change: DetectionChange) -> bool:
        """Store ``policy`` and its audit record if the stored version is ``change.previous_version``."""
        history = (history_key(DETECTION_KEY, policy.version), change.document())
        return self._put(tenant, DETECTION_KEY, policy.version, policy.document(), change.previous_version, history)

    def detection_history(self, tenant: str, limit: int) -> list[DetectionChange]:
        """The audit records of the tenant's detection versions, newest first."""
        return [DetectionChange.model_validate(doc) for doc in self._history(tenant, DETECTION_KEY, limit)]

    # --- any versioned document -------------------------------------------------------------------

    def _setting(self, tenant: str, kind: str, model: type[_T]) -> _T:
        now = self._clock()
        cached = self._cache.get((tenant, kind))
        if cached is not None and now - cached[0] < self._cache_ttl_s:
            value: _T = cached[1]
            return value
        try:
            item = self._model.get(tenant, kind, consistent_read=True)
        except self._model.DoesNotExist:
            value = model()
        else:
            value = model.model_validate({**json.loads(item.document), "version": int(item.version)})
        if self._cache_ttl_s > 0:
            self._cache[(tenant, kind)] = (now, value)
        return value

    def _put(
        self,
        tenant: str,
        kind: str,
        version: int,
        document: dict[str, Any],
        expected_version: int,
        history: tuple[str, dict[str, Any]] | None = None,
    ) -> bool:
        """Write a kind's document at ``version`` if the stored one is ``expected_version`` (0: none)."""
        item = self._model(tenant, kind, version=version, document=json.dumps(document, sort_keys=True))
        if expected_version == 0:
            condition = self._model.pk.does_not_exist()
        else:
            condition = self._model.version == expected_version
        try:
            if history is None:
                item.save(condition=condition)
            else:
                record = self._model(tenant, history[0], version=version, document=json.dumps(history[1]))
                with TransactWrite(connection=Connection(region=region(), host=endpoint_override())) as tx:
                    tx.save(item, condition=condition)
                    # A record is never overwritten: a version is written once.
                    tx.save(record, condition=self._model.pk.does_not_exist())
        except (PutError, TransactWriteError) as exc:
            if exc.cause_response_code in _CONFLICT_CODES:
                return False
            raise
        self._cache.pop((tenant, kind), None)
        return True

    def _history(self, tenant: str, kind: str, limit: int) -> list[dict[str, Any]]:
        """The version records of a kind, newest first."""
        items = self._model.query(tenant, self._model.sk.startswith(f"{kind}#v"), scan_index_forward=False, limit=limit)
        return [json.loads(item.document) for item in items]
