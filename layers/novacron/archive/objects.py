"""What the archive needs of an object store (S3 in production: adapters/s3_archive.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ObjectInfo:
    """A listed object."""

    key: str
    size: int


class ArchiveObjects(Protocol):
    """Objects of the archive bucket."""

    def put(self, key: str, data: bytes, tags: Mapping[str, str] | None = None) -> None:
        """Store an object (overwriting the same key), with optional object tags."""
        ...

    def get(self, key: str) -> bytes | None:
        """An object's bytes, or None when there is no such object."""
        ...

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes of an object from offset ``start`` (one ranged request)."""
        ...

    def get_many(self, keys: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        """(key, bytes) of each object, in the order given (implementations may fetch ahead, boundedly)."""
        ...

    def list_objects(self, prefix: str) -> Iterable[ObjectInfo]:
        """Every object under ``prefix``, in key order."""
        ...

    def list_prefixes(self, prefix: str) -> list[str]:
        """The "folders" directly under ``prefix`` (common prefixes up to the next ``/``)."""
        ...
