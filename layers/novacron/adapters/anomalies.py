"""Anomaly episodes in DynamoDB (pynamodb): the anomalies table.

``pk`` = ``<tenant>``, ``sk`` = ``<start ms:013d>#<episode id>`` (episodes in start order; a retried batch
rewrites the same item), ``anomaly`` the episode's JSON (labels, observed and expected values, band,
methods, ...), ``status`` open/resolved, ``end_ms`` once resolved, ``expires_at`` the TTL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from novacron.adapters.dynamodb import bind_model
from novacron.detect.events import Anomaly


class _AnomalyItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    anomaly = UnicodeAttribute()
    status = UnicodeAttribute()
    end_ms = NumberAttribute(null=True)
    expires_at = NumberAttribute()


def anomaly_sort_key(anomaly: Anomaly) -> str:
    """The sort key of an episode: its start, then its id."""
    return f"{anomaly.start_ms:013d}#{anomaly.id}"


class DynamoAnomalyStore:
    """AnomalyStore over the anomalies table, and the reads the API needs."""

    def __init__(self, table_name: str) -> None:
        self._model = bind_model(_AnomalyItem, table_name)

    def put_anomalies(self, anomalies: Sequence[Anomaly], expires_at: int) -> None:
        """Store the episodes (overwriting the same episode's earlier version)."""
        with self._model.batch_write() as batch:
            for anomaly in anomalies:
                batch.save(
                    self._model(
                        anomaly.tenant,
                        anomaly_sort_key(anomaly),
                        anomaly=json.dumps(anomaly.to_json(), separators=(",", ":")),
                        status=str(anomaly.status),
                        end_ms=anomaly.end_ms,
                        expires_at=expires_at,
                    )
                )

    def list_anomalies(
        self, tenant: str, start_ms: int, end_ms: int, limit: int = 100, newest_first: bool = False
    ) -> list[Anomaly]:
        """The tenant's episodes that started within [start_ms, end_ms], oldest (or newest) first, at most
        ``limit``."""
        # Episode ids are hex: "~" sorts after every one of them.
        low, high = f"{start_ms:013d}", f"{end_ms:013d}#~"
        items = self._model.query(
            tenant, self._model.sk.between(low, high), limit=limit, scan_index_forward=not newest_first
        )
        return [Anomaly.from_json(json.loads(item.anomaly)) for item in items]
