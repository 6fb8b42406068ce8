"""Raw stream records → sorted, de-duplicated Arrow tables → Parquet files.

One row per sample: ``metric`` (dictionary-encoded), ``series_id``, ``labels`` (compact JSON of the
whole label set, dictionary-encoded: rows of a series share one dictionary entry, so the column costs
next to nothing per row and a reader parses each label set once), ``timestamp`` (ms, UTC) and ``value``.
Rows are sorted by metric, series and timestamp, so that each row group's min/max statistics on
``metric`` and ``timestamp`` are narrow and readers can skip row groups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from novacron.ingest.validate import SeriesValidator
from novacron.protocols.wire import WireFormatError, decode_series
from novacron.records import RecordFormatError, decode_record
from novacron.series import metric_name
from novacron.storage.writer import labels_json

from .keys import DAY_MS, day_of

SCHEMA = pa.schema(
    [
        pa.field("metric", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("series_id", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("labels", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
    ]
)
# ~1-3 bytes per row once compressed: a row group is a few hundred KB, the unit a reader skips or fetches.
ROW_GROUP_ROWS = 65_536
_DIGEST_BYTES = 8


class ArchiveObjectError(ValueError):
    """A raw archive object is not a sequence of length-prefixed records."""


def archive_records(data: bytes) -> list[bytes]:
    """The records of a raw archive object (``storage.writer.archive_object``'s inverse)."""
    out: list[bytes] = []
    pos, size = 0, len(data)
    while pos < size:
        if pos + 4 > size:
            raise ArchiveObjectError(f"truncated length prefix at byte {pos}")
        length = int.from_bytes(data[pos : pos + 4], "little")
        pos += 4
        if pos + length > size:
            raise ArchiveObjectError(f"record of {length} bytes at byte {pos} runs past the end ({size})")
        out.append(data[pos : pos + length])
        pos += length
    return out


def record_digest(record: bytes) -> bytes:
    """A short digest identifying a stream record: the raw archive may hold the same record twice."""
    return hashlib.blake2b(record, digest_size=_DIGEST_BYTES).digest()


@dataclass
class ConvertStats:
    """What a conversion read and produced."""

    records: int = 0
    duplicate_records: int = 0
    bad_records: int = 0
    samples: int = 0
    rows: int = 0
    invalid_series: int = 0


@dataclass
class RowBuffer:
    """Accumulates the samples of raw records (one tenant), then sorts and de-duplicates them.

    Series are kept once (their labels, id and metric); samples are three flat columns pointing at
    them, so memory is ~20 bytes per sample plus one entry per distinct series.
    """

    tenant: str
    validator: SeriesValidator = field(default_factory=SeriesValidator)
    skip_digests: frozenset[bytes] = frozenset()
    stats: ConvertStats = field(default_factory=ConvertStats)
    digests: set[bytes] = field(default_factory=set)
    _index: dict[bytes, int] = field(default_factory=dict)
    _series_ids: list[str] = field(default_factory=list)
    _labels: list[str] = field(default_factory=list)
    _metrics: list[str] = field(default_factory=list)
    _owners: list[npt.NDArray[np.int32]] = field(default_factory=list)
    _stamps: list[npt.NDArray[np.int64]] = field(default_factory=list)
    _values: list[npt.NDArray[np.float64]] = field(default_factory=list)

    def add_object(self, data: bytes) -> None:
        """Add every record of a raw archive object (records of other tenants are not expected; skipped)."""
        for record in archive_records(data):
            self.add_record(record)

    def add_record(self, record: bytes) -> None:
        """Add one stream record, unless it was already converted (same digest) or is not ours."""
        self.stats.records += 1
        digest = record_digest(record)
        if digest in self.skip_digests or digest in self.digests:
            self.stats.duplicate_records += 1
            return
        try:
            decoded_record = decode_record(record)
            if decoded_record.tenant != self.tenant:
                raise RecordFormatError(f"record of tenant {decoded_record.tenant!r} in {self.tenant!r}'s archive")
            decoded = decode_series(decoded_record.contents)
        except (RecordFormatError, WireFormatError):
            # The writer stored these records, so this is damage, not data: count it and go on.
            self.stats.bad_records += 1
            return
        self.digests.add(digest)
        counts = np.diff(decoded.offsets)
        owners = np.empty(len(decoded), dtype=np.int32)
        for i, label_bytes in enumerate(decoded.label_bytes):
            owners[i] = self._series_index(label_bytes)
        keep = np.repeat(owners >= 0, counts)
        self.stats.invalid_series += int(np.count_nonzero(owners < 0))
        self._owners.append(np.repeat(owners, counts)[keep])
        self._stamps.append(decoded.timestamps[keep].astype(np.int64))
        self._values.append(decoded.values[keep].astype(np.float64))
        self.stats.samples += int(np.count_nonzero(keep))

    def _series_index(self, label_bytes: bytes) -> int:
        """The buffer's index of a series (-1 when the writer would have dropped it as invalid)."""
        known = self._index.get(label_bytes)
        if known is not None:
            return known
        verdict = self.validator.check(label_bytes)
        index = -1
        if verdict.valid:
            index = len(self._series_ids)
            self._series_ids.append(verdict.series_id)
            self._labels.append(labels_json(verdict.labels))
            self._metrics.append(metric_name(verdict.labels))
        self._index[label_bytes] = index
        return index

    @property
    def samples(self) -> int:
        """Samples buffered so far."""
        return self.stats.samples

    def tables(self) -> dict[str, pa.Table]:
        """The buffered samples as one table per UTC date of their timestamps, sorted and de-duplicated.

        Sorted by metric, series id and timestamp; of two samples of a series with the same timestamp
        the one added last is kept (as the writer keeps the last value received).
        """
        if not self._stamps:
            return {}
        owners = np.concatenate(self._owners)
        stamps = np.concatenate(self._stamps)
        values = np.concatenate(self._values)
        # Rank of each series in (metric, series id) order: one sort of the series, not of the rows.
        series_order = sorted(range(len(self._series_ids)), key=lambda i: (self._metrics[i], self._series_ids[i]))
        rank = np.empty(len(series_order), dtype=np.int64)
        rank[np.array(series_order, dtype=np.int64)] = np.arange(len(series_order))
        arrival = np.arange(len(stamps))
        order = np.lexsort((arrival, stamps, rank[owners]))
        owners, stamps, values = owners[order], stamps[order], values[order]
        last = np.ones(len(stamps), dtype=bool)
        last[:-1] = (owners[1:] != owners[:-1]) | (stamps[1:] != stamps[:-1])
        owners, stamps, values = owners[last], stamps[last], values[last]
        self.stats.rows += len(stamps)
        days = stamps // DAY_MS
        out: dict[str, pa.Table] = {}
        for day in np.unique(days).tolist():
            on_day = days == day
            out[day_of(day * DAY_MS)] = self._table(owners[on_day], stamps[on_day], values[on_day])
        return out

    def _table(
        self, owners: npt.NDArray[np.int32], stamps: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
    ) -> pa.Table:
        """One table over a compacted dictionary (only the series present), so statistics are exact."""
        present, local = np.unique(owners, return_inverse=True)
        ids = [self._series_ids[i] for i in present.tolist()]
        labels = [self._labels[i] for i in present.tolist()]
        metrics_of = [self._metrics[i] for i in present.tolist()]
        metric_values = sorted(set(metrics_of))
        metric_index = {m: i for i, m in enumerate(metric_values)}
        series_metric = np.array([metric_index[m] for m in metrics_of], dtype=np.int32)
        local = local.astype(np.int32)
        return pa.Table.from_arrays(
            [
                pa.DictionaryArray.from_arrays(pa.array(series_metric[local]), pa.array(metric_values, pa.string())),
                pa.DictionaryArray.from_arrays(pa.array(local), pa.array(ids, pa.string())),
                pa.DictionaryArray.from_arrays(pa.array(local), pa.array(labels, pa.string())),
                pa.array(stamps, pa.timestamp("ms", tz="UTC")),
                pa.array(values, pa.float64()),
            ],
            schema=SCHEMA,
        )


def parquet_bytes(table: pa.Table, row_group_rows: int = ROW_GROUP_ROWS) -> bytes:
    """A Parquet file of a table: zstd, dictionaries for strings, delta-coded timestamps, statistics on."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        row_group_size=row_group_rows,
        compression="zstd",
        use_dictionary=["metric", "series_id", "labels"],
        column_encoding={"timestamp": "DELTA_BINARY_PACKED"},
        write_statistics=True,
    )
    return bytes(sink.getvalue().to_pybytes())


def time_range(table: pa.Table) -> tuple[int, int]:
    """The (min, max) timestamp of a non-empty table, in ms."""
    stamps = table.column("timestamp").cast(pa.int64()).to_numpy()
    return int(stamps.min()), int(stamps.max())


def iter_digests(packed: bytes) -> Iterator[bytes]:
    """The digests packed end to end by ``pack_digests``."""
    for pos in range(0, len(packed), _DIGEST_BYTES):
        yield packed[pos : pos + _DIGEST_BYTES]


def pack_digests(digests: set[bytes] | frozenset[bytes]) -> bytes:
    """Digests end to end, sorted (deterministic)."""
    return b"".join(sorted(digests))
