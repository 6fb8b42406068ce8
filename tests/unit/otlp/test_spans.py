"""Spans: validation, the spans-stream record format, size splitting, archive objects and keys."""

from __future__ import annotations

import gzip

import pytest

from novacron.records import MAX_RECORD_PAYLOAD, RecordFormatError, encode_record
from novacron.spans import (
    MAGIC,
    TRACE_BUCKETS,
    archive_key,
    archive_object,
    archive_span_records,
    decode_span_record,
    encode_span_record,
    pack_spans,
    read_archive_object,
    span_error,
    trace_bucket,
)
from tests.builders_otlp import all_spans, span, trace_request
from tests.fakes import MemoryArchive

NOW_MS = 1_790_000_000_000


def unpack(records) -> list:  # type: ignore[no-untyped-def]
    """Every span carried by stream records, decoded back."""
    return [s for r in records for s in all_spans(decode_span_record(r.data).request())]


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "names"),
    [
        (span(trace_id=b"\0" * 16), "trace_id must be 16 bytes, not all zero"),
        (span(trace_id=b"\1" * 8), "trace_id must be 16 bytes"),
        (span(span_id=b"\0" * 8), "span_id must be 8 bytes, not all zero"),
        (span(span_id=b""), "span_id must be 8 bytes"),
        (span(parent_span_id=b"\1" * 4), "parent_span_id must be empty or 8 bytes"),
        (span(name=""), "name is empty"),
        (span(start_ns=2_000, duration_ns=-1_000), "ends (1000) before it starts (2000)"),
    ],
)
def test_an_invalid_span_is_named_with_its_problem(bad, names: str) -> None:
    # Given a span breaking one rule / When it is checked / Then the error names the rule
    error = span_error(bad)
    assert error is not None
    assert names in error
    assert bad.span_id.hex() in error or not bad.span_id


def test_a_valid_span_passes() -> None:
    # Given a well-formed root span and a child / Then neither has an error
    root = span()
    assert span_error(root) is None
    assert span_error(span(trace_id=root.trace_id, parent_span_id=root.span_id, duration_ns=0)) is None


def test_invalid_spans_are_rejected_and_the_others_packed() -> None:
    # Given a request of 3 valid spans and 2 invalid ones
    good = [span(name=f"ok-{i}") for i in range(3)]
    request = trace_request([*good, span(name=""), span(trace_id=b"\0" * 16)])
    # When it is packed
    packed = pack_spans(request, "acme", NOW_MS)
    # Then the valid spans travel, the invalid ones are counted and explained
    assert packed.accepted == 3
    assert len(packed.rejected) == 2
    assert sorted(s.name for s in unpack(packed.records)) == ["ok-0", "ok-1", "ok-2"]
    assert packed.rejection_message().startswith("2 spans rejected (3 accepted): span '' ")


# --- record format ----------------------------------------------------------------------------


def test_a_record_round_trips_with_resource_and_scope() -> None:
    # Given spans of two resources
    spans = [span(name=f"s{i}", attrs={"i": i}) for i in range(6)]
    request = trace_request(spans, resources=2)
    # When packed into records and decoded
    packed = pack_spans(request, "acme", NOW_MS, buckets=1)
    [record] = packed.records
    decoded = decode_span_record(record.data)
    # Then tenant, time, spans, resources and scopes come back intact
    assert (decoded.tenant, decoded.received_ms, decoded.spans) == ("acme", NOW_MS, 6)
    assert decoded.request() == request
    assert record.partition_key == "acme:0"


def test_partition_keys_spread_traces_and_keep_a_trace_together() -> None:
    # Given 200 traces of two spans each
    spans = []
    for _ in range(100):
        root = span()
        spans += [root, span(trace_id=root.trace_id, parent_span_id=root.span_id)]
    # When packed
    packed = pack_spans(trace_request(spans), "acme", NOW_MS)
    # Then records use several buckets, and each trace's spans share one record
    assert len({r.partition_key for r in packed.records}) > TRACE_BUCKETS // 2
    for record in packed.records:
        bucket = int(record.partition_key.split(":")[1])
        assert {trace_bucket(s.trace_id) for s in unpack([record])} == {bucket}
    assert len(unpack(packed.records)) == 200


def test_records_are_split_under_the_size_limit() -> None:
    # Given 40 spans of ~3 KB each (one resource, one trace bucket) and a 20 KB record limit
    spans = [span(name=f"s{i}", attrs={"blob": "x" * 3000}) for i in range(40)]
    request = trace_request(spans)
    # When packed
    packed = pack_spans(request, "acme", NOW_MS, max_payload=20_000, buckets=1)
    # Then several records hold them all, each payload within the limit, resource kept in each
    assert len(packed.records) >= 6
    for record in packed.records:
        decoded = decode_span_record(record.data)
        assert len(decoded.payload) <= 20_000
        assert decoded.request().resource_spans[0].resource == request.resource_spans[0].resource
    assert [s.name for s in unpack(packed.records)] == [f"s{i}" for i in range(40)]
    assert packed.rejected == []


def test_a_span_larger_than_a_record_is_rejected_alone() -> None:
    # Given a small span and one larger than a whole record
    request = trace_request([span(name="small"), span(name="huge", attrs={"blob": "x" * (MAX_RECORD_PAYLOAD + 1)})])
    # When packed with the real limit
    packed = pack_spans(request, "acme", NOW_MS)
    # Then the huge span is rejected by name, the small one travels
    assert [s.name for s in unpack(packed.records)] == ["small"]
    [error] = packed.rejected
    assert "'huge'" in error
    assert "more than the 1000000 a stream record holds" in error


def test_a_full_size_record_stays_under_kinesis_limit() -> None:
    # Given incompressible spans filling a record
    import os

    spans = [span(attrs={"blob": os.urandom(30_000).hex()}) for _ in range(40)]
    # When packed into one bucket
    packed = pack_spans(trace_request(spans), "acme", NOW_MS, buckets=1)
    # Then every record (data + partition key) is under Kinesis's 1 MiB
    assert len(packed.records) >= 2
    assert all(len(r.data) + len(r.partition_key) < 1024 * 1024 for r in packed.records)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not lz4 at all", "not LZ4-compressed"),
        (encode_record("acme", NOW_MS, []), "NCS1 magic"),  # a metrics record on the wrong stream
        (encode_span_record("acme", NOW_MS, b"\xff\xff\xff"), "not an ExportTraceServiceRequest"),
    ],
)
def test_a_foreign_record_is_a_format_error(data: bytes, message: str) -> None:
    # Given bytes that are not a spans record / When decoded / Then RecordFormatError says why
    with pytest.raises(RecordFormatError, match=message):
        decode_span_record(data)


def test_the_header_carries_the_magic() -> None:
    # Given an encoded record / Then its decompressed header starts with NCS1
    import cramjam

    assert bytes(cramjam.lz4.decompress_block(encode_span_record("acme", NOW_MS, b"")))[:4] == MAGIC


# --- archive --------------------------------------------------------------------------------


def test_archive_key_is_deterministic_and_scoped() -> None:
    # Given the same batch coordinates twice / Then the key is the same, under the tenant and hour
    key = archive_key("acme", NOW_MS, "shardId-000000000000", "100", "200")
    assert key == archive_key("acme", NOW_MS, "shardId-000000000000", "100", "200")
    assert key == "spans/acme/2026/09/21/14/shardId-000000000000-100-200.otlp.pb.gz"


def test_archive_object_is_length_delimited_and_reproducible() -> None:
    # Given two payloads
    first, second = trace_request([span(name="a")]), trace_request([span(name="b"), span(name="c")])
    payloads = [first.SerializeToString(), second.SerializeToString()]
    # When archived twice
    data = archive_object(payloads)
    # Then the bytes are identical, gzip, and read back as the two messages
    assert data == archive_object(payloads)
    assert gzip.decompress(data)[0] == len(payloads[0])
    assert read_archive_object(data) == [first, second]


def test_a_batch_is_archived_per_tenant_and_a_retry_overwrites() -> None:
    # Given a batch with records of two tenants
    archive = MemoryArchive()
    batch = [
        ("1", pack_spans(trace_request([span(name="a1")]), "acme", NOW_MS, buckets=1).records[0].data),
        ("2", pack_spans(trace_request([span(name="g1")]), "globex", NOW_MS, buckets=1).records[0].data),
        ("3", pack_spans(trace_request([span(name="a2"), span(name="a3")]), "acme", NOW_MS, buckets=1).records[0].data),
    ]
    # When it is archived twice (a retried batch)
    outcomes = archive_span_records(archive, "shardId-000000000000", batch)
    archive_span_records(archive, "shardId-000000000000", batch)
    # Then there is one object per tenant, holding that tenant's spans only
    assert outcomes == [1, 1, 2]
    assert sorted(archive.objects) == [
        "spans/acme/2026/09/21/14/shardId-000000000000-1-3.otlp.pb.gz",
        "spans/globex/2026/09/21/14/shardId-000000000000-2-2.otlp.pb.gz",
    ]
    acme = read_archive_object(archive.objects["spans/acme/2026/09/21/14/shardId-000000000000-1-3.otlp.pb.gz"])
    assert [s.name for m in acme for s in all_spans(m)] == ["a1", "a2", "a3"]


def test_a_poison_record_fails_alone() -> None:
    # Given a batch with a poison record between two good ones
    archive = MemoryArchive()
    good = pack_spans(trace_request([span(name="ok")]), "acme", NOW_MS, buckets=1).records[0].data
    batch = [("1", good), ("2", b"garbage"), ("3", good)]
    # When archived
    outcomes = archive_span_records(archive, "shardId-000000000000", batch)
    # Then only the poison record fails; the good ones are archived
    assert outcomes[0] == 1
    assert outcomes[2] == 1
    assert isinstance(outcomes[1], RecordFormatError)
    [data] = archive.objects.values()
    assert len(read_archive_object(data)) == 2
