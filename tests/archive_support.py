"""Test helpers for the Parquet archive: an in-memory, request-counting object store and raw objects."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from novacron.archive.keys import HOUR_MS
from novacron.archive.objects import ObjectInfo
from novacron.records import encode_record
from novacron.storage.writer import archive_key, archive_object
from tests.builders import timeseries

HOUR0 = 1_790_000_000_000 - 1_790_000_000_000 % HOUR_MS  # an hour start near the tests' NOW


@dataclass
class MemoryObjects:
    """ArchiveObjects in memory, counting requests and bytes fetched; ``fail_puts_after`` simulates a crash."""

    objects: dict[str, bytes] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    gets: int = 0
    range_gets: int = 0
    bytes_fetched: int = 0
    puts: int = 0
    fail_puts_after: int | None = None

    def put(self, key: str, data: bytes, tags: Mapping[str, str] | None = None) -> None:
        if self.fail_puts_after is not None and self.puts >= self.fail_puts_after:
            raise RuntimeError("simulated crash")
        self.puts += 1
        self.objects[key] = bytes(data)
        if tags:
            self.tags[key] = dict(tags)

    def get(self, key: str) -> bytes | None:
        self.gets += 1
        data = self.objects.get(key)
        if data is not None:
            self.bytes_fetched += len(data)
        return data

    def get_range(self, key: str, start: int, length: int) -> bytes:
        self.range_gets += 1
        data = self.objects[key][start : start + length]
        self.bytes_fetched += len(data)
        return data

    def get_many(self, keys: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        for key in keys:
            data = self.get(key)
            assert data is not None, key
            yield key, data

    def list_objects(self, prefix: str) -> Iterable[ObjectInfo]:
        return [ObjectInfo(k, len(v)) for k, v in sorted(self.objects.items()) if k.startswith(prefix)]

    def list_prefixes(self, prefix: str) -> list[str]:
        found = {prefix + k[len(prefix) :].split("/", 1)[0] + "/" for k in self.objects if k.startswith(prefix)}
        return sorted(p for p in found if not p.endswith("//"))

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))


def series_record(
    tenant: str, received_ms: int, series: Sequence[tuple[dict[str, str], list[tuple[int, float]]]]
) -> bytes:
    """One metrics-stream record holding ``series`` (labels, samples)."""
    return encode_record(
        tenant, received_ms, [timeseries(labels, samples).SerializeToString() for labels, samples in series]
    )


def put_raw(
    objects: MemoryObjects, tenant: str, received_ms: int, records: Sequence[bytes], first: str = "1", last: str = "1"
) -> str:
    """Store raw records as the writer does (archive_key / archive_object); returns the key."""
    key = archive_key(tenant, received_ms, "shardId-000000000000", first, last)
    objects.put(key, archive_object(records))
    return key
