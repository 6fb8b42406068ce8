"""Incidents in DynamoDB (pynamodb): the incidents table.

``pk`` = ``<tenant>``, ``sk`` = the incident id (which starts with its opening time in ms, so a tenant's
incidents sort by opening time), ``incident`` its JSON, ``status``, ``revision`` (optimistic locking: a
write names the revision it read, and fails if someone wrote since), ``expires_at`` the TTL.
"""

from __future__ import annotations

import json
from dataclasses import replace

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model

from novacron.adapters.dynamodb import bind_model
from novacron.alert.incidents import Incident, IncidentConflict, IncidentStatus


class _IncidentItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    incident = UnicodeAttribute()
    status = UnicodeAttribute()
    revision = NumberAttribute()
    expires_at = NumberAttribute()


class DynamoIncidentStore:
    """IncidentStore over the incidents table."""

    def __init__(self, table_name: str) -> None:
        self._model = bind_model(_IncidentItem, table_name)

    def save(self, incident: Incident, expires_at: int) -> Incident:
        """Write ``incident`` if the stored revision is still the one it was read at (none for a new one);
        the incident at its new revision. IncidentConflict otherwise."""
        saved = replace(incident, revision=incident.revision + 1)
        stored = self._model(
            incident.tenant,
            incident.id,
            incident=json.dumps(saved.to_json(), separators=(",", ":")),
            status=str(incident.status),
            revision=saved.revision,
            expires_at=expires_at,
        )
        condition = (
            self._model.sk.does_not_exist() if incident.revision == 0 else self._model.revision == incident.revision
        )
        try:
            stored.save(condition=condition)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise IncidentConflict(f"incident {incident.id} changed since revision {incident.revision}") from exc
            raise
        return saved

    def incident(self, tenant: str, incident_id: str) -> Incident | None:
        """The tenant's incident ``incident_id``, or None."""
        try:
            item = self._model.get(tenant, incident_id)
        except self._model.DoesNotExist:
            return None
        return Incident.from_json(json.loads(item.incident))

    def list_incidents(
        self, tenant: str, start_ms: int, end_ms: int, limit: int = 100, newest_first: bool = True
    ) -> list[Incident]:
        """The tenant's incidents opened within [start_ms, end_ms], newest (or oldest) first, at most ``limit``."""
        items = self._model.query(
            tenant,
            self._model.sk.between(f"{start_ms:013d}", f"{end_ms:013d}-~"),
            limit=limit,
            scan_index_forward=not newest_first,
        )
        return [Incident.from_json(json.loads(item.incident)) for item in items]

    def active_incidents(self, tenant: str, since_ms: int, resolved_since_ms: int) -> list[Incident]:
        """The tenant's incidents opened since ``since_ms`` that are not resolved, or were resolved after
        ``resolved_since_ms`` (they may still be reopened), oldest first."""
        found = self.list_incidents(tenant, since_ms, 9_999_999_999_999, limit=10_000, newest_first=False)
        return [i for i in found if _active(i, resolved_since_ms)]


def _active(incident: Incident, resolved_since_ms: int) -> bool:
    return incident.status is not IncidentStatus.RESOLVED or (incident.resolved_at_ms or 0) >= resolved_since_ms
