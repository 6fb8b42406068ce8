"""Raw records → sorted, de-duplicated Arrow tables and Parquet files; object keys."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from novacron.archive.convert import (
    SCHEMA,
    ArchiveObjectError,
    RowBuffer,
    archive_records,
    parquet_bytes,
    record_digest,
)
from novacron.archive.keys import (
    DAY_MS,
    HOUR_MS,
    inputs_digest,
    manifest_key,
    parquet_key,
    parquet_time_range,
    raw_hour_prefix,
    tenant_of_prefix,
)
from novacron.storage.writer import archive_key, archive_object
from tests.archive_support import HOUR0, series_record


def rows(table: pa.Table) -> list[tuple[str, str, int, float]]:
    data = table.to_pydict()
    return [
        (m, s, int(t.timestamp() * 1000), v)
        for m, s, t, v in zip(data["metric"], data["series_id"], data["timestamp"], data["value"], strict=True)
    ]


def test_raw_hour_prefix_is_where_the_writer_files_raw_objects():
    # Given a raw object key as the writer makes it, received 59 minutes into an hour
    key = archive_key("acme", HOUR0 + 59 * 60_000, "shardId-000000000001", "10", "20")
    # Then the archive's prefix for that hour holds it, and the next hour's does not
    assert key.startswith(raw_hour_prefix("acme", HOUR0))
    assert not key.startswith(raw_hour_prefix("acme", HOUR0 + HOUR_MS))


def test_parquet_keys_carry_their_time_range_and_are_deterministic():
    # Given the same inputs in another order
    digest = inputs_digest(["raw/b", "raw/a"])
    assert digest == inputs_digest(["raw/a", "raw/b"])
    # When a key is made
    key = parquet_key("acme", "2026-09-21", HOUR0, 5, 99, digest)
    # Then it sits in the tenant/date partition and names its range
    assert key.startswith("parquet/tenant=acme/date=2026-09-21/")
    assert parquet_time_range(key) == (5, 99)
    assert parquet_time_range("parquet/tenant=acme/date=2026-09-21/other.parquet") is None
    assert manifest_key("acme", HOUR0).startswith("parquet-manifests/tenant=acme/")
    assert tenant_of_prefix("raw/tenant=acme/") == "acme"
    assert tenant_of_prefix("raw/other/") is None


def test_archive_records_inverts_archive_object_and_rejects_truncation():
    # Given records framed as the writer frames them
    records = [b"one", b"", b"three"]
    data = archive_object(records)
    # Then they come back, and a truncated object is refused
    assert archive_records(data) == records
    with pytest.raises(ArchiveObjectError):
        archive_records(data[:-1])


def test_rows_are_sorted_by_metric_series_and_time():
    # Given samples of two metrics arriving out of order
    buffer = RowBuffer("acme")
    buffer.add_record(
        series_record(
            "acme",
            HOUR0,
            [
                ({"__name__": "zeta", "job": "a"}, [(HOUR0 + 2000, 2.0), (HOUR0 + 1000, 1.0)]),
                ({"__name__": "alpha", "job": "b"}, [(HOUR0 + 5000, 5.0)]),
                ({"__name__": "alpha", "job": "a"}, [(HOUR0 + 3000, 3.0)]),
            ],
        )
    )
    # When tables are built
    (table,) = buffer.tables().values()
    # Then rows are in (metric, series id, timestamp) order, with the schema promised
    assert table.schema == SCHEMA
    got = rows(table)
    assert [r[0] for r in got] == ["alpha", "alpha", "zeta", "zeta"]
    assert got == sorted(got, key=lambda r: (r[0], r[1], r[2]))
    assert [r[2] for r in got if r[0] == "zeta"] == [HOUR0 + 1000, HOUR0 + 2000]


def test_a_record_archived_twice_and_a_resent_sample_give_one_row_each():
    # Given the same record twice (a partial batch failure re-archives it) and a resent sample
    record = series_record("acme", HOUR0, [({"__name__": "up", "job": "a"}, [(HOUR0, 1.0)])])
    resent = series_record("acme", HOUR0 + 1, [({"__name__": "up", "job": "a"}, [(HOUR0, 2.0), (HOUR0 + 15_000, 3.0)])])
    buffer = RowBuffer("acme")
    # When all are added
    for r in (record, record, resent):
        buffer.add_record(r)
    # Then one row per (series, timestamp): the value received last wins
    (table,) = buffer.tables().values()
    assert [(r[2], r[3]) for r in rows(table)] == [(HOUR0, 2.0), (HOUR0 + 15_000, 3.0)]
    assert buffer.stats.duplicate_records == 1


def test_already_converted_records_and_foreign_or_broken_ones_are_skipped():
    # Given a record whose digest is known as converted, one of another tenant, one broken, one fine
    done = series_record("acme", HOUR0, [({"__name__": "up"}, [(HOUR0, 1.0)])])
    foreign = series_record("globex", HOUR0, [({"__name__": "up"}, [(HOUR0 + 1, 1.0)])])
    fine = series_record("acme", HOUR0, [({"__name__": "up"}, [(HOUR0 + 2, 1.0)]), ({"bad-name": "x"}, [(HOUR0, 0.0)])])
    buffer = RowBuffer("acme", skip_digests=frozenset({record_digest(done)}))
    for r in (done, foreign, b"garbage", fine):
        buffer.add_record(r)
    # Then only the fine record's valid series is kept
    (table,) = buffer.tables().values()
    assert [r[2] for r in rows(table)] == [HOUR0 + 2]
    assert (buffer.stats.duplicate_records, buffer.stats.bad_records, buffer.stats.invalid_series) == (1, 2, 1)


def test_samples_are_split_by_their_utc_date():
    # Given samples on both sides of midnight in one record
    midnight = HOUR0 - HOUR0 % DAY_MS + DAY_MS
    buffer = RowBuffer("acme")
    buffer.add_record(series_record("acme", midnight, [({"__name__": "up"}, [(midnight - 1, 1.0), (midnight, 2.0)])]))
    # Then there is one table per date
    tables = buffer.tables()
    assert sorted(tables) == ["2026-09-21", "2026-09-22"]
    assert [t.num_rows for _, t in sorted(tables.items())] == [1, 1]


def test_parquet_row_groups_have_narrow_metric_and_time_statistics():
    # Given 8 metrics x 10 series x 100 samples written with small row groups
    buffer = RowBuffer("acme")
    buffer.add_record(
        series_record(
            "acme",
            HOUR0,
            [
                ({"__name__": f"m{m}", "i": str(i)}, [(HOUR0 + t * 1000, float(t)) for t in range(100)])
                for m in range(8)
                for i in range(10)
            ],
        )
    )
    (table,) = buffer.tables().values()
    meta = pq.ParquetFile(io.BytesIO(parquet_bytes(table, row_group_rows=1000))).metadata
    # Then each row group covers exactly one metric (min == max), thanks to the sort
    assert meta.num_row_groups == 8
    for rg in range(meta.num_row_groups):
        stats = meta.row_group(rg).column(0).statistics
        assert stats.min == stats.max == f"m{rg}"
    # And the file reads back to the same rows, timestamps as UTC milliseconds
    back = pq.read_table(io.BytesIO(parquet_bytes(table)))
    assert back.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    assert rows(back) == rows(table)
