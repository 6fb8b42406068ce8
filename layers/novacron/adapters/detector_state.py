"""The detector's per-series state in DynamoDB (pynamodb): one item per (tenant, series).

``pk`` = ``<tenant>#<series id>``, ``state`` the detector's bytes (zlib-compressed JSON, ~12 KB at most),
``meta`` the rest of the series' state as JSON (its open anomaly episode, a counter's last raw value),
``expires_at`` the TTL: a series that stops reporting is forgotten after ``state_ttl_days``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from novacron.adapters.dynamodb import bind_model
from novacron.detect.service import SeriesKey, StoredState


class _StateItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    state = BinaryAttribute(legacy_encoding=False)
    meta = UnicodeAttribute()
    expires_at = NumberAttribute()


def state_key(key: SeriesKey) -> str:
    """The item key of a series' state."""
    tenant, series_id = key
    return f"{tenant}#{series_id}"


class DynamoStateStore:
    """StateStore over the detector-state table."""

    def __init__(self, table_name: str) -> None:
        self._model = bind_model(_StateItem, table_name)

    def get_states(self, keys: Sequence[SeriesKey]) -> dict[SeriesKey, StoredState]:
        """The stored states of ``keys``, in BatchGetItem requests of 100 (unprocessed keys retried)."""
        by_pk = {state_key(key): key for key in keys}
        found: dict[SeriesKey, StoredState] = {}
        for item in self._model.batch_get(list(by_pk)):
            found[by_pk[item.pk]] = StoredState(bytes(item.state), item.meta)
        return found

    def put_states(self, states: dict[SeriesKey, StoredState], expires_at: int) -> None:
        """Overwrite the states, in BatchWriteItem requests (unprocessed items retried)."""
        with self._model.batch_write() as batch:
            for key, stored in states.items():
                batch.save(self._model(state_key(key), state=stored.detector, meta=stored.meta, expires_at=expires_at))
