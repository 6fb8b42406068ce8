"""Series identity, label matchers and the read interface every query path goes through."""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

# Prometheus's staleness marker: a NaN with this exact bit pattern ends a series (other NaNs are values).
STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]

METRIC_NAME = "__name__"

# A series' labels, sorted by name, ``__name__`` included. Tuples so they hash and compare.
Labels = tuple[tuple[str, str], ...]


def encoded_series_id(pairs: Sequence[tuple[bytes, bytes]]) -> str:
    """The stable 64-bit identity of a label set given as UTF-8 (name, value) bytes, as 16 hex digits.

    The separator bytes cannot occur in valid UTF-8, so distinct label sets cannot collide by
    concatenation.
    """
    joined = b"".join(name + b"\xff" + value + b"\xfe" for name, value in pairs)
    return hashlib.blake2b(joined, digest_size=8).hexdigest()


# Series of a tenant are spread over this many partition buckets: one Kinesis partition key and one
# hot-tier key range each. It is part of the storage layout, so it never changes for a deployment.
# Sixteen, not more: every writer batch stores one item per bucket, billed per started KB, so more
# buckets make small tenants pay for near-empty items (bench/cost.py), and a query over all series
# makes one round trip per bucket. Even 10 million series of one tenant write well under DynamoDB's
# 1,000 write units per second per partition key into each of sixteen.
PARTITION_BUCKETS = 16


def partition_bucket(sid: str) -> int:
    """The partition bucket of a series id."""
    return int(sid, 16) % PARTITION_BUCKETS


def metric_name(labels: Labels) -> str:
    """The ``__name__`` of a label set, or ``""``."""
    for name, value in labels:
        if name == METRIC_NAME:
            return value
    return ""


@dataclass(frozen=True)
class Matcher:
    """One PromQL label matcher: ``name op "value"`` with op one of ``=``, ``!=``, ``=~``, ``!~``."""

    name: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"unknown matcher operator {self.op!r}")
        if self.op in ("=~", "!~"):
            _ = self.regex  # validate eagerly so bad regexes fail at parse time

    @cached_property
    def regex(self) -> re.Pattern[str]:
        # PromQL regexes are fully anchored.
        return re.compile(f"^(?:{self.value})$", re.DOTALL)

    def matches(self, value: str) -> bool:
        """Whether a label value (``""`` when the label is absent) satisfies this matcher."""
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        if self.op == "=~":
            return self.regex.match(value) is not None
        return self.regex.match(value) is None

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


def matches_all(labels: Labels, matchers: Sequence[Matcher]) -> bool:
    """Whether a label set satisfies every matcher."""
    as_dict = dict(labels)
    return all(m.matches(as_dict.get(m.name, "")) for m in matchers)


@dataclass
class SeriesSamples:
    """One series' samples in a time range, sorted by timestamp, one value per timestamp."""

    labels: Labels
    timestamps: npt.NDArray[np.int64]  # milliseconds since the epoch
    values: npt.NDArray[np.float64]


class SeriesReader(Protocol):
    """What the query engine and the query API read from. Always scoped to one tenant."""

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesSamples]:
        """Samples with ``start_ms <= t <= end_ms`` of every series matching all ``matchers``."""
        ...

    def series(
        self,
        matcher_sets: Sequence[Sequence[Matcher]],
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[Labels]:
        """Label sets of the series matching any of the matcher sets (seen within the bounds)."""
        ...

    def label_names(
        self,
        matcher_sets: Sequence[Sequence[Matcher]],
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[str]:
        """Sorted label names (of the matching series, or of all series when no sets are given)."""
        ...

    def label_values(
        self,
        name: str,
        matcher_sets: Sequence[Sequence[Matcher]],
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[str]:
        """Sorted values of one label (of the matching series, or of all series)."""
        ...


@runtime_checkable
class RollupReader(Protocol):
    """A reader that also serves rollups (the hot tier): the engine uses it for long ranges."""

    def select_views(
        self, matchers: Sequence[Matcher], start_ms: int, end_ms: int, resolution: str, views: Sequence[str]
    ) -> dict[str, list[SeriesSamples]]:
        """Per view, the matching series' rollup samples at ``resolution`` (``1m``, ``5m``, ``1h``)."""
        ...
