"""A conversion run: every completed received-hour of every tenant, raw objects → Parquet files.

Per tenant and hour: read the manifest, redo a pending part if a previous run was interrupted, list
the hour's raw objects, and convert the ones not converted yet in parts of bounded size (the memory
bound: a part is sorted in memory). Raw objects are only read, never deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from novacron.ingest.validate import SeriesValidator

from .convert import ROW_GROUP_ROWS, RowBuffer, parquet_bytes, time_range
from .keys import (
    HOUR_MS,
    RAW_PREFIX,
    hours_between,
    inputs_digest,
    manifest_key,
    parquet_key,
    raw_hour_prefix,
    tenant_of_prefix,
)
from .manifest import Manifest, ManifestError, Part
from .objects import ArchiveObjects, ObjectInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchiverSettings:
    """How far back a run looks and how big a part may grow."""

    # Raw objects can arrive for an hour long after it ended (the writer retries records for up to
    # 6 hours): hours this far back are looked at again on every run.
    lookback_hours: int = 8
    # An hour is converted once it ended this long ago (most of its raw objects are in by then).
    settle_ms: int = 10 * 60_000
    # Raw bytes per part: ~15-20 samples per KB of raw records, so 48 MB is ~1M samples, ~100 MB sorted.
    max_part_raw_bytes: int = 48 * 1024 * 1024
    row_group_rows: int = ROW_GROUP_ROWS


@dataclass
class RunStats:
    """What one run did."""

    hours_checked: int = 0
    parts: int = 0
    files: int = 0
    raw_objects: int = 0
    rows: int = 0
    duplicate_records: int = 0
    bad_records: int = 0
    redone_pending: int = 0
    unreadable_manifests: int = 0
    stopped_early: bool = False
    written: list[str] = field(default_factory=list)


class Archiver:
    """Converts raw archive objects to Parquet, idempotently and restartably."""

    def __init__(
        self,
        objects: ArchiveObjects,
        settings: ArchiverSettings | None = None,
        tags_for: Callable[[str], Mapping[str, str]] | None = None,
        validator: SeriesValidator | None = None,
    ) -> None:
        self.objects = objects
        self.settings = settings or ArchiverSettings()
        self.tags_for = tags_for
        self.validator = validator or SeriesValidator()

    def run(self, now_ms: int, time_left: Callable[[], bool] = lambda: True) -> RunStats:
        """Convert what is due; stops starting new parts once ``time_left()`` says no."""
        stats = RunStats()
        last_hour = now_ms - self.settings.settle_ms - HOUR_MS
        if last_hour < 0:
            return stats
        hours = hours_between(max(0, now_ms - self.settings.lookback_hours * HOUR_MS), last_hour)
        for tenant in self.tenants():
            for hour_ms in hours:
                if not time_left():
                    stats.stopped_early = True
                    return stats
                self.convert_hour(tenant, hour_ms, stats, time_left)
        return stats

    def tenants(self) -> list[str]:
        """Tenants with raw objects."""
        found = (tenant_of_prefix(p) for p in self.objects.list_prefixes(RAW_PREFIX))
        return sorted(t for t in found if t)

    def convert_hour(
        self, tenant: str, hour_ms: int, stats: RunStats, time_left: Callable[[], bool] = lambda: True
    ) -> None:
        """Convert what is not converted yet of one tenant's received hour."""
        stats.hours_checked += 1
        manifest = self._manifest(tenant, hour_ms)
        if manifest is None:
            stats.unreadable_manifests += 1
            return
        if manifest.pending is not None:
            stats.redone_pending += 1
            self._convert_part(manifest, list(manifest.pending), stats)
        listed = {info.key: info for info in self.objects.list_objects(raw_hour_prefix(tenant, hour_ms))}
        new = manifest.new_inputs(list(listed))
        for chunk in self._chunks([listed[k] for k in new]):
            if not time_left():
                stats.stopped_early = True
                return
            manifest.pending = tuple(chunk)
            self._save(manifest)
            self._convert_part(manifest, chunk, stats)

    def _convert_part(self, manifest: Manifest, inputs: list[str], stats: RunStats) -> None:
        """Convert ``inputs`` into Parquet files, then record the part as done in the manifest."""
        buffer = RowBuffer(manifest.tenant, self.validator, frozenset(manifest.digests))
        for _, data in self.objects.get_many(inputs):
            buffer.add_object(data)
        digest = inputs_digest(inputs)
        files = []
        tags = self.tags_for(manifest.tenant) if self.tags_for else None
        rows = 0
        for date, table in sorted(buffer.tables().items()):
            low, high = time_range(table)
            key = parquet_key(manifest.tenant, date, manifest.hour_ms, low, high, digest)
            self.objects.put(key, parquet_bytes(table, self.settings.row_group_rows), tags)
            files.append(key)
            rows += table.num_rows
        manifest.commit(Part(tuple(inputs), tuple(files), rows), buffer.digests)
        self._save(manifest)
        stats.parts += 1
        stats.files += len(files)
        stats.raw_objects += len(inputs)
        stats.rows += rows
        stats.duplicate_records += buffer.stats.duplicate_records
        stats.bad_records += buffer.stats.bad_records
        stats.written.extend(files)
        if buffer.stats.bad_records:
            log.warning("%s: %d unreadable records skipped", inputs[0], buffer.stats.bad_records)

    def _chunks(self, infos: list[ObjectInfo]) -> list[list[str]]:
        """Consecutive runs of raw objects of at most ``max_part_raw_bytes`` (at least one object each)."""
        chunks: list[list[str]] = []
        size = 0
        for info in infos:
            if not chunks or size + info.size > self.settings.max_part_raw_bytes:
                chunks.append([])
                size = 0
            chunks[-1].append(info.key)
            size += info.size
        return chunks

    def _manifest(self, tenant: str, hour_ms: int) -> Manifest | None:
        """The hour's manifest (empty when there is none); None when it exists but cannot be read."""
        data = self.objects.get(manifest_key(tenant, hour_ms))
        if data is None:
            return Manifest(tenant, hour_ms)
        try:
            return Manifest.from_json(data)
        except ManifestError as exc:
            # Never convert over a manifest we cannot read: that could duplicate the hour's rows.
            log.error("%s: %s; leaving the hour alone", manifest_key(tenant, hour_ms), exc)
            return None

    def _save(self, manifest: Manifest) -> None:
        self.objects.put(manifest_key(manifest.tenant, manifest.hour_ms), manifest.to_json())
