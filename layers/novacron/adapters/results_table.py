"""The shared results cache in DynamoDB (pynamodb): chunk results every query function instance reuses.

One item per chunk: ``pk`` = ``tenant#digest`` (the digest names the query, step, phase, chunk size and
lookback, see ``chunk_digest``), ``sk`` = the chunk's start, ``data`` the encoded series. Items expire
with TTL: a cached chunk is only worth keeping while dashboards still look at its hour.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from novacron.adapters.dynamodb import bind_model
from novacron.query.results_cache import ChunkKey, chunk_digest, decode_chunk, encode_chunk
from novacron.series import SeriesSamples

# DynamoDB items are limited to 400 KB (attribute names and keys included): larger chunks stay local.
MAX_ITEM_BYTES = 380_000
DEFAULT_TTL_S = 24 * 3600


class _ChunkItem(Model):
    class Meta:
        table_name = "unset"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = BinaryAttribute(legacy_encoding=False)
    expires_at = NumberAttribute()


def _item_key(key: ChunkKey) -> tuple[str, str]:
    return f"{key.tenant}#{chunk_digest(key)}", f"{key.chunk_start_ms:013d}"


class DynamoResultsStore:
    """ResultsStore over the query-cache table."""

    def __init__(self, table_name: str, ttl_s: int = DEFAULT_TTL_S, clock: Callable[[], float] = time.time) -> None:
        self._model = bind_model(_ChunkItem, table_name)
        self._ttl_s = ttl_s
        self._clock = clock
        self.oversized = 0  # chunks too large to share, for tests and metrics

    def get_many(self, keys: Sequence[ChunkKey]) -> dict[ChunkKey, list[SeriesSamples]]:
        by_item = {_item_key(key): key for key in keys}
        if not by_item:
            return {}
        # batch_get splits into requests of 100 keys and retries unprocessed keys itself.
        found: dict[ChunkKey, list[SeriesSamples]] = {}
        now = self._clock()
        for item in self._model.batch_get(list(by_item), attributes_to_get=["pk", "sk", "data", "expires_at"]):
            if item.expires_at < now:  # TTL deletes lazily (up to days later): an expired item is a miss
                continue
            try:
                found[by_item[(item.pk, item.sk)]] = decode_chunk(bytes(item.data))
            except ValueError:
                continue  # an unreadable item is a miss; the next put replaces it
        return found

    def put_many(self, entries: Sequence[tuple[ChunkKey, list[SeriesSamples]]]) -> None:
        expires_at = int(self._clock()) + self._ttl_s
        encoded = [(_item_key(key), encode_chunk(series)) for key, series in entries]
        with self._model.batch_write() as batch:
            for (pk, sk), data in encoded:
                if len(data) > MAX_ITEM_BYTES:
                    self.oversized += 1
                    continue
                batch.save(self._model(pk, sk, data=data, expires_at=expires_at))
