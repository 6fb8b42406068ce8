"""Anomaly episodes in DynamoDB (pynamodb): the anomalies table.

``pk`` = ``<tenant>``, ``sk`` = ``<start ms:013d>#<episode id>`` (episodes in start order; a retried batch
rewrites the same item), ``anomaly`` the episode's JSON (labels, observed and expected values, band,
methods, ...), ``status`` open/resolved, ``end_ms`` once resolved, ``expires_at`` the TTL.

Users' feedback on an episode is a separate item in the same partition: ``sk`` =
``feedback#<episode id>#<epoch seconds:010d>`` (an episode's items sort by time: the last is the latest),
``feedback`` its JSON (verdict, comment, the key id that gave it, when).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from novacron.adapters.dynamodb import bind_model
from novacron.detect.events import Anomaly, Feedback

FEEDBACK_PREFIX = "feedback#"


class _AnomalyItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    anomaly = UnicodeAttribute()
    status = UnicodeAttribute()
    end_ms = NumberAttribute(null=True)
    expires_at = NumberAttribute()


class _FeedbackItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    feedback = UnicodeAttribute()
    expires_at = NumberAttribute()


def anomaly_sort_key(anomaly: Anomaly) -> str:
    """The sort key of an episode: its start, then its id."""
    return f"{anomaly.start_ms:013d}#{anomaly.id}"


class DynamoAnomalyStore:
    """AnomalyStore over the anomalies table, and the reads the API needs."""

    def __init__(self, table_name: str) -> None:
        self._model = bind_model(_AnomalyItem, table_name)
        self._feedback = bind_model(_FeedbackItem, table_name)

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

    def anomaly(self, tenant: str, anomaly_id: str) -> Anomaly | None:
        """The tenant's episode ``anomaly_id``, or None.

        Episodes are keyed by start, so this reads the tenant's episodes (kept ``anomaly_ttl_days``)
        with a filter: fine for a user's feedback, not for a hot path.
        """
        items = self._model.query(
            tenant, self._model.sk.between("0", "9~"), filter_condition=self._model.sk.contains(f"#{anomaly_id}")
        )
        for item in items:
            if item.sk.endswith(f"#{anomaly_id}"):
                return Anomaly.from_json(json.loads(item.anomaly))
        return None

    def put_feedback(self, tenant: str, feedback: Feedback, expires_at: int) -> None:
        """Store one verdict on an episode (one a second per episode: a second one in the same second wins)."""
        self._feedback(
            tenant,
            f"{FEEDBACK_PREFIX}{feedback.anomaly_id}#{feedback.at:010d}",
            feedback=json.dumps(feedback.to_json(), separators=(",", ":")),
            expires_at=expires_at,
        ).save()

    def latest_feedback(self, tenant: str, anomaly_ids: Collection[str]) -> dict[str, Feedback]:
        """The latest verdict on each of ``anomaly_ids`` that has one.

        One query over the tenant's feedback items (few: people write them), rather than one per episode.
        """
        wanted = set(anomaly_ids)
        latest: dict[str, Feedback] = {}
        if not wanted:
            return latest
        for item in self._feedback.query(tenant, self._feedback.sk.startswith(FEEDBACK_PREFIX)):
            anomaly_id = item.sk[len(FEEDBACK_PREFIX) :].rpartition("#")[0]
            if anomaly_id in wanted:  # items sort by time within an episode: the last one wins
                latest[anomaly_id] = Feedback.from_json(json.loads(item.feedback))
        return latest
