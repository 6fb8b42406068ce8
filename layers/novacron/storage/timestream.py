"""Timestream for LiveAnalytics records from stored samples (pure: no AWS calls).

The mapping (docs/deploy.md, "Optional Timestream sink"):

- One multi-measure record per sample: ``MeasureName`` is the metric name (``__name__``), the one
  measure is ``value`` (DOUBLE), ``Time`` is the sample's timestamp in milliseconds.
- Dimensions are the series' other labels plus the tenant (``__tenant``; NovaCron refuses label names
  starting with ``__``, so it cannot collide with a label). Label names Timestream cannot take as
  dimension names (reserved, or longer than 60 bytes) are renamed, see :func:`dimension_name`.
- ``Version`` is when ingest received the sample. Timestream keys a record by (dimensions, time,
  measure name): a retried batch resends identical records, which Timestream accepts as the same
  record, and a later copy of a sample (a sender resending it with another value) supersedes the
  earlier one, as Prometheus keeps the last value received.

Several metrics are deliberately not packed into one multi-measure record: records are keyed by
(dimensions, time, measure name), and the metrics sharing a label set reach the writer in different
stream records (the stream is partitioned by series), so a packed record would be written several
times with different measure sets and all but one would be rejected. Requests share what they can
instead: records are sorted by tenant, metric and labels, and whatever a request's records have in
common (dimensions, measure name, version) travels once, in ``CommonAttributes``.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from novacron.series import METRIC_NAME, Labels
from novacron.storage.writer import SeriesSamples

# Amazon Timestream for LiveAnalytics service limits (Developer Guide, "Quotas"; API reference, "Record").
MAX_RECORDS_PER_WRITE = 100  # records in one WriteRecords request
MAX_DIMENSIONS = 128  # dimensions of a record (and of a table)
MAX_DIMENSION_NAME_BYTES = 60
MAX_MEASURE_NAME_BYTES = 256
MAX_SERIES_DIMENSION_BYTES = 2048  # dimension names and values of one series, together
MAX_RECORD_BYTES = 2048
# Dimension names Timestream reserves outright, and prefixes it refuses (compared case-insensitively).
RESERVED_DIMENSION_NAMES = frozenset({"measure_name", "measure_value", "time"})
RESERVED_DIMENSION_PREFIXES = ("ts_", "measure_value")

TENANT_DIMENSION = "__tenant"
VALUE_MEASURE = "value"
RENAMED_PREFIX = "__"


class SkipReason(StrEnum):
    """Why a sample is not sent to Timestream at all (Timestream could only reject it)."""

    NON_FINITE = "non_finite"  # NaN (staleness markers included) and infinities: DOUBLE cannot hold them
    MEASURE_NAME_TOO_LONG = "measure_name_too_long"
    TOO_MANY_DIMENSIONS = "too_many_dimensions"
    DIMENSIONS_TOO_LARGE = "dimensions_too_large"


class RejectionKind(StrEnum):
    """What a record Timestream rejected ran into; no kind is fixed by sending the record again."""

    DUPLICATE = "duplicate"  # the same record with another value and an equal or higher version is stored
    RETENTION = "retention"  # outside the memory store's retention (and magnetic store writes are off)
    LIMIT = "limit"  # a dimension, measure or size limit (e.g. the table's 128 dimensions)
    OTHER = "other"


@dataclass(frozen=True)
class WriteRequest:
    """The ``CommonAttributes`` and ``Records`` of one WriteRecords request."""

    common: dict[str, Any]
    records: list[dict[str, Any]]


@dataclass
class RecordBatch:
    """What a batch of stored samples becomes: requests of at most 100 records, and samples left out."""

    requests: list[WriteRequest] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # samples, by SkipReason

    @property
    def records(self) -> int:
        """Records in all requests (one per sample sent)."""
        return sum(len(r.records) for r in self.requests)


def _utf8_len(text: str) -> int:
    return len(text.encode())


def dimension_name(label: str) -> str:
    """The dimension name of a label name: itself, or ``__`` + it when Timestream would refuse it.

    Names longer than 60 bytes keep their first bytes and end in a hash of the whole name, so two
    long names stay apart. The ``__`` prefix cannot collide with a label: NovaCron refuses label
    names starting with ``__``.
    """
    lowered = label.lower()
    reserved = lowered in RESERVED_DIMENSION_NAMES or lowered.startswith(RESERVED_DIMENSION_PREFIXES)
    if not reserved and _utf8_len(label) <= MAX_DIMENSION_NAME_BYTES:
        return label
    renamed = RENAMED_PREFIX + label
    if _utf8_len(renamed) <= MAX_DIMENSION_NAME_BYTES:
        return renamed
    digest = hashlib.blake2b(label.encode(), digest_size=4).hexdigest()
    keep = MAX_DIMENSION_NAME_BYTES - len(RENAMED_PREFIX) - 1 - len(digest)
    head = label.encode()[:keep].decode(errors="ignore")  # never split a UTF-8 character
    return f"{RENAMED_PREFIX}{head}_{digest}"


def series_dimensions(tenant: str, labels: Labels) -> tuple[tuple[str, str], ...]:
    """The (name, value) dimensions of a series, sorted by name; empty label values are absent labels."""
    pairs = [(TENANT_DIMENSION, tenant)]
    pairs.extend((dimension_name(name), value) for name, value in labels if name != METRIC_NAME and value)
    return tuple(sorted(pairs))


def series_problem(measure_name: str, dimensions: tuple[tuple[str, str], ...]) -> SkipReason | None:
    """Why no sample of this series can be written to Timestream, or None."""
    if _utf8_len(measure_name) > MAX_MEASURE_NAME_BYTES:
        return SkipReason.MEASURE_NAME_TOO_LONG
    if len(dimensions) > MAX_DIMENSIONS:
        return SkipReason.TOO_MANY_DIMENSIONS
    dimension_bytes = sum(_utf8_len(n) + _utf8_len(v) for n, v in dimensions)
    # A record carries the dimensions, the measure name and the measure (its name and at most 24 characters).
    record_bytes = dimension_bytes + _utf8_len(measure_name) + len(VALUE_MEASURE) + 24
    if dimension_bytes > MAX_SERIES_DIMENSION_BYTES or record_bytes > MAX_RECORD_BYTES:
        return SkipReason.DIMENSIONS_TOO_LARGE
    return None


def format_value(value: float) -> str:
    """A DOUBLE measure value: the shortest text that reads back as the same float."""
    return repr(float(value))


@dataclass(frozen=True)
class _Row:
    dimensions: tuple[tuple[str, str], ...]
    measure_name: str
    time_ms: int
    value: str
    version: int


def write_requests(series: Sequence[SeriesSamples], max_records: int = MAX_RECORDS_PER_WRITE) -> RecordBatch:
    """The WriteRecords requests that copy ``series`` into Timestream, in a deterministic order."""
    if not 1 <= max_records <= MAX_RECORDS_PER_WRITE:
        raise ValueError(f"max_records must be 1-{MAX_RECORDS_PER_WRITE}, got {max_records}")
    batch = RecordBatch()
    keyed: list[tuple[tuple[str, str, tuple[tuple[str, str], ...]], int, SeriesSamples]] = []
    for position, one in enumerate(series):
        measure_name = next((value for name, value in one.labels if name == METRIC_NAME), "")
        dimensions = series_dimensions(one.tenant, one.labels)
        problem = series_problem(measure_name, dimensions)
        if problem is not None:
            batch.skipped[problem] += len(one.timestamps)
            continue
        keyed.append(((one.tenant, measure_name, dimensions), position, one))
    rows: list[_Row] = []
    # Sorted so that neighbouring records (and so the records of one request) share dimensions and names.
    for (_, measure_name, dimensions), _, one in sorted(keyed, key=lambda k: (k[0], k[1])):
        for ts, value in zip(one.timestamps.tolist(), one.values.tolist(), strict=True):
            if not math.isfinite(value):
                batch.skipped[SkipReason.NON_FINITE] += 1
                continue
            rows.append(_Row(dimensions, measure_name, ts, format_value(value), one.received_ms))
    for start in range(0, len(rows), max_records):
        batch.requests.append(_request(rows[start : start + max_records]))
    return batch


def _request(rows: Sequence[_Row]) -> WriteRequest:
    """One request: what all its rows share goes into ``CommonAttributes``, the rest into each record."""
    shared = set(rows[0].dimensions)
    for dimensions in {row.dimensions for row in rows}:
        shared.intersection_update(dimensions)
    common: dict[str, Any] = {"MeasureValueType": "MULTI", "TimeUnit": "MILLISECONDS"}
    if shared:
        common["Dimensions"] = [{"Name": n, "Value": v} for n, v in sorted(shared)]
    same_name = len({row.measure_name for row in rows}) == 1
    same_version = len({row.version for row in rows}) == 1
    if same_name:
        common["MeasureName"] = rows[0].measure_name
    if same_version:
        common["Version"] = rows[0].version
    records: list[dict[str, Any]] = []
    for row in rows:
        record: dict[str, Any] = {
            "Time": str(row.time_ms),
            "MeasureValues": [{"Name": VALUE_MEASURE, "Value": row.value, "Type": "DOUBLE"}],
        }
        own = [{"Name": n, "Value": v} for n, v in row.dimensions if (n, v) not in shared]
        if own:
            record["Dimensions"] = own
        if not same_name:
            record["MeasureName"] = row.measure_name
        if not same_version:
            record["Version"] = row.version
        records.append(record)
    return WriteRequest(common, records)


def rejection_kind(reason: str, existing_version: int | None = None) -> RejectionKind:
    """Classify a RejectedRecords entry by its ``Reason`` text (and ``ExistingVersion``, set for duplicates)."""
    text = reason.lower()
    if existing_version is not None or "version" in text or "duplicate" in text or "already exists" in text:
        return RejectionKind.DUPLICATE
    if any(word in text for word in ("retention", "memory store", "ingestion window", "time range", "outside")):
        return RejectionKind.RETENTION
    if any(word in text for word in ("limit", "exceed", "maximum", "too many", "too long", "too large")):
        return RejectionKind.LIMIT
    return RejectionKind.OTHER
