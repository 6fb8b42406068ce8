"""The manifest of one tenant's received hour: which raw objects are converted, and into what.

A conversion of a set of raw objects ("a part") is recorded twice: first as ``pending`` (its inputs),
then, once its Parquet files are written, as done (inputs, files, record digests). A run that finds a
pending part redoes exactly that part: the same inputs and the same digests to skip give the same
rows and the same keys, so the files it may have written before being interrupted are overwritten,
never duplicated. Raw objects that arrive for the hour later become a further part.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from .convert import iter_digests, pack_digests

MANIFEST_VERSION = 1


class ManifestError(ValueError):
    """A manifest object cannot be read."""


@dataclass(frozen=True)
class Part:
    """One done conversion: the Parquet files written from ``inputs``."""

    inputs: tuple[str, ...]
    files: tuple[str, ...]
    rows: int


@dataclass
class Manifest:
    """What has been converted of one tenant's received hour."""

    tenant: str
    hour_ms: int
    parts: list[Part] = field(default_factory=list)
    pending: tuple[str, ...] | None = None
    # Digests of every stream record converted so far: a record archived twice is converted once.
    digests: set[bytes] = field(default_factory=set)

    @property
    def inputs(self) -> set[str]:
        """Raw objects converted so far."""
        return {key for part in self.parts for key in part.inputs}

    def new_inputs(self, listed: list[str]) -> list[str]:
        """The listed raw objects not converted yet and not pending, sorted."""
        done = self.inputs | set(self.pending or ())
        return sorted(key for key in listed if key not in done)

    def commit(self, part: Part, digests: set[bytes]) -> None:
        """Record a part as done (clearing ``pending``)."""
        self.parts.append(part)
        self.digests |= digests
        self.pending = None

    def to_json(self) -> bytes:
        """The manifest as stored."""
        document: dict[str, Any] = {
            "version": MANIFEST_VERSION,
            "tenant": self.tenant,
            "hour_ms": self.hour_ms,
            "parts": [{"inputs": list(p.inputs), "files": list(p.files), "rows": p.rows} for p in self.parts],
            "pending": list(self.pending) if self.pending is not None else None,
            "digests": base64.b64encode(pack_digests(self.digests)).decode(),
        }
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Read a stored manifest; ManifestError when it is not one."""
        try:
            doc = json.loads(data)
            if doc.get("version") != MANIFEST_VERSION:
                raise ManifestError(f"unknown manifest version {doc.get('version')!r}")
            pending = doc.get("pending")
            return cls(
                tenant=str(doc["tenant"]),
                hour_ms=int(doc["hour_ms"]),
                parts=[
                    Part(tuple(map(str, p["inputs"])), tuple(map(str, p["files"])), int(p["rows"]))
                    for p in doc["parts"]
                ],
                pending=tuple(map(str, pending)) if pending is not None else None,
                digests=set(iter_digests(base64.b64decode(doc["digests"]))),
            )
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, ManifestError):
                raise
            raise ManifestError(f"manifest is not readable: {exc}") from None
