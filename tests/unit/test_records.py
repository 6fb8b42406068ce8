"""The metrics stream's record format."""

from __future__ import annotations

import cramjam
import pytest

from novacron.records import RecordFormatError, decode_record, encode_record


def test_round_trip_keeps_tenant_time_and_series() -> None:
    # Given three series encodings, one empty
    contents = [b"\x0a\x03abc", b"", b"\x12" * 40]
    # When encoded and decoded
    record = decode_record(encode_record("acme", 1234, contents))
    # Then everything comes back
    assert (record.tenant, record.received_ms, record.contents) == ("acme", 1234, contents)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"plain garbage", "not LZ4"),
        (bytes(cramjam.lz4.compress_block(b"XXXX-not-ours")), "magic"),
        (bytes(cramjam.lz4.compress_block(b"NCR1\x09\x00\x00")), "unknown record version 9"),
        (
            bytes(cramjam.lz4.compress_block(b"NCR1\x01\x04\x00acme" + b"\x00" * 8 + b"\x05\x00\x00\x00")),
            "length table",
        ),
    ],
)
def test_poison_records_are_recognised(data: bytes, fragment: str) -> None:
    with pytest.raises(RecordFormatError, match=fragment):
        decode_record(data)
