"""The alerting table in DynamoDB (pynamodb): ``novacron.alert.state.AlertingStore``.

One partition per tenant (``pk`` = ``<tenant>``); the sort key says what an item is:

- ``rules#<file name>``: a rule file: ``text``, ``version``, ``updated_at``, ``updated_by``;
- ``group#<file name>/<group name>``: a rule group's evaluation state (``data``: zlib-compressed JSON);
- ``amconfig``: the Alertmanager-style configuration (``text``, ``version``, ``updated_at``, ``updated_by``);
- ``correlation``: the correlation settings document (the same attributes);
- ``silence#<id>``: a silence (``data``: its v2 API JSON, compressed like the others);
- ``dispatcher``: the dispatcher's state (``data``).

Documents users write (rule files, the configuration) are written only if their stored version is the one
the writer read (a conditional put), so two concurrent uploads cannot silently overwrite each other.
States are compressed because a rule with many alert instances easily exceeds DynamoDB's 400 KB item limit
as plain JSON.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DeleteError, PutError
from pynamodb.models import Model

from novacron.adapters.dynamodb import bind_model
from novacron.alert.rule_state import GroupState
from novacron.alert.silences import Silence
from novacron.alert.state import StoredText

RULES_PREFIX = "rules#"
GROUP_PREFIX = "group#"
SILENCE_PREFIX = "silence#"
AMCONFIG_KEY = "amconfig"
CORRELATION_KEY = "correlation"
DISPATCHER_KEY = "dispatcher"
_CONDITION_FAILED = "ConditionalCheckFailedException"


class _AlertingItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    text = UnicodeAttribute(null=True)
    version = NumberAttribute(null=True)
    updated_at = NumberAttribute(null=True)
    updated_by = UnicodeAttribute(null=True)
    data = BinaryAttribute(legacy_encoding=False, null=True)


def _pack(value: Any) -> bytes:
    return zlib.compress(json.dumps(value, separators=(",", ":")).encode(), 6)


def _unpack(data: bytes) -> Any:
    return json.loads(zlib.decompress(data))


class DynamoAlertingStore:
    """AlertingStore over the alerting table."""

    def __init__(self, table_name: str) -> None:
        self._model = bind_model(_AlertingItem, table_name)

    # --- tenants ---

    def tenants(self) -> list[str]:
        """Tenants that have rule files or an Alertmanager configuration (a scan of keys only)."""
        found = set()
        for item in self._model.scan(attributes_to_get=["pk", "sk"]):
            if item.sk.startswith(RULES_PREFIX) or item.sk == AMCONFIG_KEY:
                found.add(item.pk)
        return sorted(found)

    # --- user documents ---

    def rule_files(self, tenant: str) -> dict[str, StoredText]:
        """The tenant's rule files by name."""
        items = self._model.query(tenant, self._model.sk.startswith(RULES_PREFIX))
        return {item.sk[len(RULES_PREFIX) :]: _stored_text(item) for item in items}

    def put_rule_file(self, tenant: str, name: str, text: str, by: str, at: int, expected_version: int) -> bool:
        """Store a rule file if its stored version is ``expected_version`` (0: none yet); False otherwise."""
        return self._put_text(tenant, RULES_PREFIX + name, text, by, at, expected_version)

    def delete_rule_file(self, tenant: str, name: str) -> bool:
        """Delete a rule file and its groups' states; False when there was none."""
        try:
            self._model(tenant, RULES_PREFIX + name).delete(condition=self._model.sk.exists())
        except DeleteError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                return False
            raise
        groups = self._model.query(tenant, self._model.sk.startswith(f"{GROUP_PREFIX}{name}/"))
        with self._model.batch_write() as batch:
            for item in groups:
                batch.delete(item)
        return True

    def alertmanager_config(self, tenant: str) -> StoredText | None:
        """The tenant's Alertmanager-style configuration, or None (the default routing applies)."""
        item = self._get(tenant, AMCONFIG_KEY)
        return None if item is None else _stored_text(item)

    def put_alertmanager_config(self, tenant: str, text: str, by: str, at: int, expected_version: int) -> bool:
        """Store the configuration if its stored version is ``expected_version`` (0: none yet)."""
        return self._put_text(tenant, AMCONFIG_KEY, text, by, at, expected_version)

    def correlation_config(self, tenant: str) -> StoredText | None:
        """The tenant's correlation settings document, or None (the defaults apply)."""
        item = self._get(tenant, CORRELATION_KEY)
        return None if item is None else _stored_text(item)

    def put_correlation_config(self, tenant: str, text: str, by: str, at: int, expected_version: int) -> bool:
        """Store the correlation document if its stored version is ``expected_version`` (0: none yet)."""
        return self._put_text(tenant, CORRELATION_KEY, text, by, at, expected_version)

    # --- states ---

    def group_states(self, tenant: str) -> dict[str, GroupState]:
        """Rule groups' evaluation states by ``<file>/<group>``."""
        items = self._model.query(tenant, self._model.sk.startswith(GROUP_PREFIX))
        return {item.sk[len(GROUP_PREFIX) :]: GroupState.from_json(_unpack(bytes(item.data))) for item in items}

    def put_group_states(self, tenant: str, states: Mapping[str, GroupState]) -> None:
        """Overwrite these groups' states (BatchWriteItem; unprocessed items are retried by pynamodb)."""
        with self._model.batch_write() as batch:
            for key, state in states.items():
                batch.save(self._model(tenant, GROUP_PREFIX + key, data=_pack(state.to_json())))

    def silences(self, tenant: str) -> list[Silence]:
        """Every silence of the tenant."""
        items = self._model.query(tenant, self._model.sk.startswith(SILENCE_PREFIX))
        return [Silence.from_api(_unpack(bytes(item.data))) for item in items]

    def put_silence(self, tenant: str, silence: Silence) -> None:
        """Create or replace a silence (by id)."""
        data = _pack(silence.to_api(silence.updated_at))
        self._model(tenant, SILENCE_PREFIX + silence.id, data=data).save()

    def dispatcher_state(self, tenant: str) -> dict[str, Any] | None:
        """The dispatcher's saved state, or None."""
        item = self._get(tenant, DISPATCHER_KEY)
        return None if item is None else dict(_unpack(bytes(item.data)))

    def put_dispatcher_state(self, tenant: str, state: Mapping[str, Any]) -> None:
        """Save the dispatcher's state."""
        self._model(tenant, DISPATCHER_KEY, data=_pack(dict(state))).save()

    # --- internals ---

    def _get(self, tenant: str, sk: str) -> Any:
        try:
            return self._model.get(tenant, sk, consistent_read=True)
        except self._model.DoesNotExist:
            return None

    def _put_text(self, tenant: str, sk: str, text: str, by: str, at: int, expected_version: int) -> bool:
        item = self._model(tenant, sk, text=text, version=expected_version + 1, updated_at=at, updated_by=by)
        condition = (
            self._model.sk.does_not_exist() if expected_version == 0 else self._model.version == expected_version
        )
        try:
            item.save(condition=condition)
        except PutError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                return False
            raise
        return True


def _stored_text(item: Any) -> StoredText:
    return StoredText(str(item.text), int(item.version), int(item.updated_at), str(item.updated_by))
