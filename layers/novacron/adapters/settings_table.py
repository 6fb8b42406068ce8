"""Tenant settings in DynamoDB (pynamodb): the ingest policy, with a TTL cache for the ingest path.

One item per tenant and kind of setting: ``pk`` = tenant, ``sk`` = ``ingest-policy``; ``version`` is
a top-level number so that writes can be made conditional on it, ``document`` the policy as JSON.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from novacron.adapters.dynamodb import bind_model
from novacron.ingest.policy import POLICY_KEY, IngestPolicy


class _SettingsItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    version = NumberAttribute()
    document = UnicodeAttribute()


class SettingsTable:
    """Policies by tenant; reads are cached for ``cache_ttl_s`` (0: always read)."""

    def __init__(self, table_name: str, cache_ttl_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._model: Any = bind_model(_SettingsItem, table_name)
        self._cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, IngestPolicy]] = {}

    def policy(self, tenant: str) -> IngestPolicy:
        """The tenant's stored policy, or the default one (version 0) when none is stored."""
        now = self._clock()
        cached = self._cache.get(tenant)
        if cached is not None and now - cached[0] < self._cache_ttl_s:
            return cached[1]
        try:
            item = self._model.get(tenant, POLICY_KEY, consistent_read=True)
        except self._model.DoesNotExist:
            policy = IngestPolicy()
        else:
            policy = IngestPolicy.model_validate({**json.loads(item.document), "version": int(item.version)})
        if self._cache_ttl_s > 0:
            self._cache[tenant] = (now, policy)
        return policy

    def put_policy(self, tenant: str, policy: IngestPolicy, expected_version: int) -> bool:
        """Store ``policy`` if the stored version is still ``expected_version``; False otherwise."""
        item = self._model(
            tenant, POLICY_KEY, version=policy.version, document=json.dumps(policy.document(), sort_keys=True)
        )
        if expected_version == 0:
            condition = self._model.pk.does_not_exist()
        else:
            condition = self._model.version == expected_version
        try:
            item.save(condition=condition)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        self._cache.pop(tenant, None)
        return True
