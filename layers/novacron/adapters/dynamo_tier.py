"""The hot tier and the series index in DynamoDB (pynamodb)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from novacron.adapters.dynamodb import bind_model
from novacron.storage.writer import BlockItem, SeriesEntry, labels_json


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


def _series_pk(tenant: str, day: str, metric: str) -> str:
    return f"{tenant}#s#{day}#{metric}"


def _labels_pk(tenant: str, day: str) -> str:
    return f"{tenant}#l#{day}"


class DynamoIndexStore:
    """IndexStore over the index table.

    Per tenant and day: one item per series under its metric (``tenant#s#day#metric``, sort key the
    series id, the labels as JSON) and one item per label pair (``tenant#l#day``, sort key
    ``name=value``; names cannot contain ``=``). Days bound every lookup and expire with TTL.
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

    def label_pairs(self, tenant: str, day: str, name: str | None = None) -> list[tuple[str, str]]:
        condition = self._model.sk.startswith(f"{name}=") if name is not None else None
        out = []
        for item in self._model.query(_labels_pk(tenant, day), condition, attributes_to_get=["sk"]):
            label, _, value = item.sk.partition("=")
            out.append((label, value))
        return out
