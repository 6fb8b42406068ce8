"""Object keys of the archive: raw objects (written by the metrics writer), Parquet files and manifests.

Layout (all under one bucket)::

    raw/tenant=<t>/date=<YYYY-MM-DD>/hour=<HH>/<shard>-<first seq>-<last seq>.ncr     received time
    parquet/tenant=<t>/date=<YYYY-MM-DD>/<YYYYMMDDTHH>-<min ms>-<max ms>-<digest>.parquet    sample time
    parquet-manifests/tenant=<t>/date=<YYYY-MM-DD>/hour=<HH>.json                       received time

Raw objects are filed by when ingest received them, Parquet files by the date of their samples (what
analysts filter on). A Parquet file name carries the received hour it was converted from, the range of
its sample timestamps (so readers skip files without opening them) and a digest of the raw objects it
was made from (so a redone conversion rewrites the same key). Manifests live outside ``parquet/`` so
that neither Athena nor the reader ever takes them for data.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime

RAW_PREFIX = "raw/"
PARQUET_PREFIX = "parquet/"
MANIFEST_PREFIX = "parquet-manifests/"
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

_PARQUET_NAME = re.compile(r"/(\d{8}T\d{2})-(\d+)-(\d+)-([0-9a-f]{16})\.parquet$")
_TENANT_PREFIX = re.compile(r"^[a-z-]+/tenant=([^/]+)/$")


def _stamp(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def day_of(ms: int) -> str:
    """The UTC date of a timestamp, as partitions name it (``YYYY-MM-DD``)."""
    return f"{_stamp(ms):%Y-%m-%d}"


def raw_hour_prefix(tenant: str, hour_ms: int) -> str:
    """The prefix of the raw objects of ``tenant`` received in the hour starting at ``hour_ms``.

    The same layout as ``novacron.storage.writer.archive_key`` (a test holds them together).
    """
    stamp = _stamp(hour_ms)
    return f"{RAW_PREFIX}tenant={tenant}/date={stamp:%Y-%m-%d}/hour={stamp:%H}/"


def manifest_key(tenant: str, hour_ms: int) -> str:
    """Where the manifest of one tenant's received hour lives."""
    stamp = _stamp(hour_ms)
    return f"{MANIFEST_PREFIX}tenant={tenant}/date={stamp:%Y-%m-%d}/hour={stamp:%H}.json"


def parquet_date_prefix(tenant: str, date: str) -> str:
    """The partition of one tenant's samples of one UTC date."""
    return f"{PARQUET_PREFIX}tenant={tenant}/date={date}/"


def parquet_key(tenant: str, date: str, hour_ms: int, min_ts: int, max_ts: int, digest: str) -> str:
    """The key of one Parquet file: samples of ``date`` converted from raw objects of received hour ``hour_ms``."""
    return f"{parquet_date_prefix(tenant, date)}{_stamp(hour_ms):%Y%m%dT%H}-{min_ts}-{max_ts}-{digest}.parquet"


def parquet_time_range(key: str) -> tuple[int, int] | None:
    """The (min, max) sample timestamps a Parquet file's name promises, or None for a name of another form."""
    match = _PARQUET_NAME.search(key)
    if match is None:
        return None
    return int(match.group(2)), int(match.group(3))


def tenant_of_prefix(prefix: str) -> str | None:
    """``raw/tenant=acme/`` → ``acme`` (None for anything else)."""
    match = _TENANT_PREFIX.match(prefix)
    return match.group(1) if match else None


def inputs_digest(keys: Iterable[str]) -> str:
    """A digest of a set of raw object keys: what makes output keys deterministic from their input."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]


def hours_between(first_ms: int, last_ms: int) -> list[int]:
    """Start times of the hours from the one holding ``first_ms`` to the one holding ``last_ms``."""
    start = first_ms - first_ms % HOUR_MS
    return list(range(start, last_ms - last_ms % HOUR_MS + 1, HOUR_MS))


def days_between(first_ms: int, last_ms: int) -> list[str]:
    """UTC dates from the one holding ``first_ms`` to the one holding ``last_ms``."""
    first, last = first_ms // DAY_MS, last_ms // DAY_MS
    return [day_of(d * DAY_MS) for d in range(first, last + 1)]
