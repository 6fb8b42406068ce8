"""Reading the Parquet archive back: matchers and a time range → series samples, with pushdown.

Pruning happens at three levels, each before any byte of data is fetched:

1. partitions: only ``parquet/tenant=<t>/date=<d>/`` of the query's dates are listed;
2. files: a file's name carries its min/max sample timestamp, so files outside the range are skipped;
3. row groups: the footer (one ranged read of the file's tail) holds per-row-group min/max statistics
   of ``metric`` and ``timestamp``; rows are sorted by metric, so a query naming its metric reads only
   the row groups that can hold it, and only those byte ranges are fetched (coalesced ranged reads).

Rows then pass the label matchers (evaluated once per distinct label set, not per row).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from novacron.series import METRIC_NAME, Labels, Matcher, SeriesSamples, matches_all
from novacron.storage.reader import QueryTooLarge

from .keys import days_between, parquet_date_prefix, parquet_time_range
from .objects import ArchiveObjects, ObjectInfo

# A range beyond this many days is refused rather than fanned out into one listing per day.
MAX_ARCHIVE_DAYS = 400
_COLUMNS = ["metric", "labels", "timestamp", "value"]


class ArchiveRangeTooLarge(QueryTooLarge):
    """A read would list more days of the archive than allowed (a query's 4xx, like the hot tier's)."""


@dataclass
class ArchiveReadStats:
    """What a reader fetched: to prove pushdown, and for the query API's stats."""

    listings: int = 0
    files_listed: int = 0
    files_opened: int = 0
    row_groups: int = 0
    row_groups_read: int = 0
    requests: int = 0
    bytes_read: int = 0
    samples: int = 0


class RangedObject(io.RawIOBase):
    """A read-only, seekable file over one archive object: every read is one ranged GET."""

    def __init__(self, objects: ArchiveObjects, info: ObjectInfo, stats: ArchiveReadStats) -> None:
        super().__init__()
        self._objects = objects
        self._info = info
        self._stats = stats
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._info.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        end = self._info.size if size is None or size < 0 else min(self._info.size, self._pos + size)
        if end <= self._pos:
            return b""
        data = self._objects.get_range(self._info.key, self._pos, end - self._pos)
        self._stats.requests += 1
        self._stats.bytes_read += len(data)
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _overlaps(low: Any, high: Any, start: Any, end: Any) -> bool:
    return bool(low <= end and high >= start)


class ArchiveReader:
    """A ``select`` over one tenant's Parquet archive (the hot tier's ``select`` shape)."""

    def __init__(self, tenant: str, objects: ArchiveObjects, max_days: int = MAX_ARCHIVE_DAYS) -> None:
        self.tenant = tenant
        self.objects = objects
        self.max_days = max_days
        self.stats = ArchiveReadStats()
        self._labels: dict[str, Labels] = {}

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesSamples]:
        """Samples with ``start_ms <= t <= end_ms`` of every archived series matching all ``matchers``."""
        if end_ms < start_ms:
            return []
        start_ms, end_ms = max(start_ms, 0), max(end_ms, 0)
        days = days_between(start_ms, end_ms)
        if len(days) > self.max_days:
            raise ArchiveRangeTooLarge(
                f"time range covers {len(days)} days; at most {self.max_days} days of the archive can be read at once"
            )
        exact = sorted({m.value for m in matchers if m.name == METRIC_NAME and m.op == "="})
        if len(exact) > 1:
            return []  # two different exact names cannot both match
        metric = exact[0] if exact else None
        owners: list[npt.NDArray[np.int64]] = []
        stamps: list[npt.NDArray[np.int64]] = []
        values: list[npt.NDArray[np.float64]] = []
        series: dict[str, int] = {}
        for info in self._files(days, start_ms, end_ms):
            for batch in self._batches(info, metric, start_ms, end_ms):
                self._collect(batch, matchers, start_ms, end_ms, series, owners, stamps, values)
        return self._samples(series, owners, stamps, values)

    def _files(self, days: list[str], start_ms: int, end_ms: int) -> list[ObjectInfo]:
        """Files of the dates whose names promise samples in range (partition and file pruning)."""
        out = []
        for day in days:
            self.stats.listings += 1
            for info in self.objects.list_objects(parquet_date_prefix(self.tenant, day)):
                if not info.key.endswith(".parquet"):
                    continue
                self.stats.files_listed += 1
                span = parquet_time_range(info.key)
                if span is None or _overlaps(span[0], span[1], start_ms, end_ms):
                    out.append(info)
        return out

    def _batches(self, info: ObjectInfo, metric: str | None, start_ms: int, end_ms: int) -> list[pa.RecordBatch]:
        """The row groups of one file that can hold matching rows (row-group pruning), read as batches."""
        self.stats.files_opened += 1
        source = pa.PythonFile(RangedObject(self.objects, info, self.stats), mode="r")
        parquet = pq.ParquetFile(source, pre_buffer=True, read_dictionary=["metric", "labels"])
        meta = parquet.metadata
        columns = {meta.schema.column(i).name: i for i in range(meta.num_columns)}
        wanted = []
        start, end = np.datetime64(start_ms, "ms"), np.datetime64(end_ms, "ms")
        for rg in range(meta.num_row_groups):
            self.stats.row_groups += 1
            group = meta.row_group(rg)
            ts_stats = group.column(columns["timestamp"]).statistics
            if ts_stats is not None and ts_stats.has_min_max:
                low = np.datetime64(ts_stats.min.replace(tzinfo=None), "ms")
                high = np.datetime64(ts_stats.max.replace(tzinfo=None), "ms")
                if not _overlaps(low, high, start, end):
                    continue
            metric_stats = group.column(columns["metric"]).statistics
            if metric is not None and metric_stats is not None and metric_stats.has_min_max:
                low_m, high_m = _text(metric_stats.min), _text(metric_stats.max)
                if not _overlaps(low_m, high_m, metric, metric):
                    continue
            wanted.append(rg)
        self.stats.row_groups_read += len(wanted)
        if not wanted:
            return []
        return list(parquet.read_row_groups(wanted, columns=_COLUMNS).to_batches())

    def _collect(
        self,
        batch: pa.RecordBatch,
        matchers: Sequence[Matcher],
        start_ms: int,
        end_ms: int,
        series: dict[str, int],
        owners: list[npt.NDArray[np.int64]],
        stamps: list[npt.NDArray[np.int64]],
        values: list[npt.NDArray[np.float64]],
    ) -> None:
        """Keep a batch's rows in range whose label set matches (matchers run once per label set)."""
        labels = batch.column(1)
        dictionary = labels.dictionary.to_pylist()
        verdict = np.array([matches_all(self._parsed(text), matchers) for text in dictionary], dtype=bool)
        if not verdict.any():
            return
        indices = labels.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        ts = batch.column(2).cast(pa.int64()).to_numpy(zero_copy_only=False)
        keep = verdict[indices] & (ts >= start_ms) & (ts <= end_ms)
        if not keep.any():
            return
        global_index = np.array([series.setdefault(text, len(series)) for text in dictionary], dtype=np.int64)
        owners.append(global_index[indices[keep]])
        stamps.append(ts[keep].astype(np.int64))
        values.append(batch.column(3).to_numpy(zero_copy_only=False)[keep].astype(np.float64))

    def _parsed(self, text: str) -> Labels:
        found = self._labels.get(text)
        if found is None:
            found = self._labels[text] = tuple(sorted(json.loads(text).items()))
        return found

    def _samples(
        self,
        series: dict[str, int],
        owners: list[npt.NDArray[np.int64]],
        stamps: list[npt.NDArray[np.int64]],
        values: list[npt.NDArray[np.float64]],
    ) -> list[SeriesSamples]:
        """Group rows into series, sorted by time, one sample per timestamp (files can overlap)."""
        if not owners:
            return []
        owner, ts, vals = np.concatenate(owners), np.concatenate(stamps), np.concatenate(values)
        order = np.lexsort((ts, owner))
        owner, ts, vals = owner[order], ts[order], vals[order]
        first = np.ones(len(ts), dtype=bool)
        first[1:] = (owner[1:] != owner[:-1]) | (ts[1:] != ts[:-1])
        owner, ts, vals = owner[first], ts[first], vals[first]
        self.stats.samples += len(ts)
        text_of = {index: text for text, index in series.items()}
        bounds = np.flatnonzero(np.diff(owner)) + 1
        out = [
            SeriesSamples(self._parsed(text_of[int(owner[a])]), ts[a:b].copy(), vals[a:b].copy())
            for a, b in zip([0, *bounds.tolist()], [*bounds.tolist(), len(owner)], strict=True)
        ]
        out.sort(key=lambda s: s.labels)
        return out


def _text(value: Any) -> str:
    """Statistics of a string column come back as str or bytes depending on the writer's logical type."""
    return value.decode() if isinstance(value, bytes) else str(value)
