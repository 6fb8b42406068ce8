"""The hot tier and the series index in DynamoDB (pynamodb)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

from novacron.adapters.dynamodb import bind_model
from novacron.storage.writer import BlockItem, SeriesEntry, StoredItem, labels_json


class _BlockItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = BinaryAttribute(legacy_encoding=False)
    samples = NumberAttribute()
    min_ts = NumberAttribute()
    max_ts = NumberAttribute()
    expires_at = NumberAttribute()


class _IndexItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    labels = UnicodeAttribute(null=True)
    series = NumberAttribute(null=True)  # of a cardinality summary item
    expires_at = NumberAttribute()


class DynamoBlockStore:
    """BlockStore over the blocks table."""

    def __init__(self, table_name: str) -> None:
        self._model = bind_model(_BlockItem, table_name)

    def put_blocks(self, items: Sequence[BlockItem]) -> None:
        # batch_write retries unprocessed items itself and raises if they never go through.
        with self._model.batch_write() as batch:
            for item in items:
                batch.save(
                    self._model(
                        item.pk,
                        item.sk,
                        data=item.data,
                        samples=item.samples,
                        min_ts=item.min_ts,
                        max_ts=item.max_ts,
                        expires_at=item.expires_at,
                    )
                )

    def get_items(self, pk: str, sks: Sequence[str]) -> dict[str, bytes]:
        # batch_get splits into requests of 100 keys and retries unprocessed keys itself.
        items = self._model.batch_get([(pk, sk) for sk in sks], attributes_to_get=["sk", "data"])
        return {item.sk: bytes(item.data) for item in items}

    def query_blocks(self, pk: str, sk_low: str, sk_high: str) -> Iterable[bytes]:
        for item in self._model.query(pk, self._model.sk.between(sk_low, sk_high), attributes_to_get=["data"]):
            yield bytes(item.data)

    def query_items(
        self, pk: str, sk_low: str, sk_high: str, limit: int | None = None, consistent: bool = False
    ) -> Iterable[StoredItem]:
        condition = self._model.sk.between(sk_low, sk_high)
        items = self._model.query(
            pk, condition, attributes_to_get=["sk", "data", "max_ts"], limit=limit, consistent_read=consistent
        )
        for item in items:
            yield StoredItem(item.sk, bytes(item.data), int(item.max_ts))

    def delete_items(self, pk: str, sks: Sequence[str]) -> None:
        # batch_write retries unprocessed deletes itself and raises if they never go through.
        with self._model.batch_write() as batch:
            for sk in sks:
                batch.delete(self._model(pk, sk))


def _series_pk(tenant: str, day: str, metric: str) -> str:
    return f"{tenant}#s#{day}#{metric}"


def _labels_pk(tenant: str, day: str) -> str:
    return f"{tenant}#l#{day}"


def _cardinality_pk(tenant: str, day: str) -> str:
    return f"{tenant}#card#{day}"


# Above this many series to look up, reading a metric's whole partition (keys only) costs fewer requests.
_EXISTENCE_BATCH_LIMIT = 300


class DynamoIndexStore:
    """IndexStore over the index table.

    Per tenant and day: one item per series under its metric (``tenant#s#day#metric``, sort key the
    series id, the labels as JSON) and one item per label pair (``tenant#l#day``, sort key
    ``name=value``; names cannot contain ``=``). Days bound every lookup and expire with TTL.

    The cardinality summary of a tenant's day is one item per metric (``tenant#card#day``, sort key the
    metric, ``series`` its distinct series): one Query reads it, and no item nears DynamoDB's 400 KB
    limit however many metrics a tenant has. Counts only grow within a day, so a write never lowers
    one (a late writer with an older count loses).
    """

    def __init__(self, table_name: str) -> None:
        self._model = bind_model(_IndexItem, table_name)

    def put_series(self, entries: Sequence[SeriesEntry], expires_at: int) -> None:
        pairs = {(e.tenant, e.day, name, value) for e in entries for name, value in e.labels}
        with self._model.batch_write() as batch:
            for e in entries:
                batch.save(
                    self._model(
                        _series_pk(e.tenant, e.day, e.metric),
                        e.series_id,
                        labels=labels_json(e.labels),
                        expires_at=expires_at,
                    )
                )
            for tenant, day, name, value in sorted(pairs):
                batch.save(self._model(_labels_pk(tenant, day), f"{name}={value}", expires_at=expires_at))

    def series_of_metric(self, tenant: str, day: str, metric: str) -> list[SeriesEntry]:
        return [
            SeriesEntry(tenant, day, item.sk, tuple(sorted(json.loads(item.labels).items())))
            for item in self._model.query(_series_pk(tenant, day, metric))
        ]

    def count_series(self, tenant: str, day: str, metric: str) -> int:
        """Exact number of series of ``metric`` on ``day`` (a COUNT query of its index partition)."""
        return int(self._model.count(_series_pk(tenant, day, metric)))

    def put_cardinality(self, tenant: str, day: str, counts: Mapping[str, int], expires_at: int) -> None:
        """Record series counts per metric in the day's summary, never lowering a stored count."""
        for metric, count in sorted(counts.items()):
            item = self._model(_cardinality_pk(tenant, day), metric)
            try:
                item.update(
                    actions=[self._model.series.set(count), self._model.expires_at.set(expires_at)],
                    condition=self._model.series.does_not_exist() | (self._model.series < count),
                )
            except UpdateError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException":
                    raise

    def cardinality(self, tenant: str, day: str) -> dict[str, int]:
        """Series per metric of a tenant's day, from the summary."""
        items = self._model.query(_cardinality_pk(tenant, day), attributes_to_get=["sk", "series"])
        return {item.sk: int(item.series or 0) for item in items}

    def existing_series(self, tenant: str, day: str, metric: str, series_ids: Sequence[str]) -> set[str]:
        """Which of ``series_ids`` of ``metric`` are in the index on ``day``."""
        pk = _series_pk(tenant, day, metric)
        if len(series_ids) > _EXISTENCE_BATCH_LIMIT:
            stored = {item.sk for item in self._model.query(pk, attributes_to_get=["sk"])}
            return stored.intersection(series_ids)
        # batch_get splits into requests of 100 keys and retries unprocessed keys itself.
        return {item.sk for item in self._model.batch_get([(pk, sid) for sid in series_ids], attributes_to_get=["sk"])}

    def label_pairs(self, tenant: str, day: str, name: str | None = None) -> list[tuple[str, str]]:
        condition = self._model.sk.startswith(f"{name}=") if name is not None else None
        out = []
        for item in self._model.query(_labels_pk(tenant, day), condition, attributes_to_get=["sk"]):
            label, _, value = item.sk.partition("=")
            out.append((label, value))
        return out
