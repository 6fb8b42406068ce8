"""Whole remote-write bodies: both decoders read what the protobuf runtime reads, or refuse.

Bodies are written by hand (the small encoder below) so that they can hold what real clients
rarely send but the wire format allows: fields out of order, repeated scalar fields, unknown fields
of every wire type, groups, exemplars, histograms, labels of every length-prefix size. The C decoder
is also fuzzed (mutated and truncated bodies) and checked for leaks.
"""

from __future__ import annotations

import gc
import os
import random
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator

import numpy as np
import pytest

from novacron.protocols import wire
from novacron.protocols.remote_write_pb import RawTimeSeries, RawWriteRequest
from novacron.protocols.wire import WireFormatError, decode_series, decode_write_request

NOW = 1_790_000_000_000
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


# --- a minimal protobuf writer (the wire format is a public spec) ----------------------------------


def varint(v: int) -> bytes:
    v &= (1 << 64) - 1  # negative int64: ten-byte two's complement
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def delimited(field: int, payload: bytes) -> bytes:
    return tag(field, 2) + varint(len(payload)) + payload


def random_label(rng: random.Random) -> bytes:
    size = rng.choice([0, 1, 5, 60, 126, 127, 128, 200, 16383, 16384, 20000])
    name = b"l" + bytes([rng.randrange(97, 123)])
    value = bytes(rng.randrange(32, 127) for _ in range(min(size, 40))) * (size // 40 + 1)
    return delimited(1, name) + delimited(2, value[:size])


def random_sample(rng: random.Random) -> bytes:
    value = rng.choice([0.0, -0.0, 1.5, float("nan"), STALE_NAN, float("inf"), -3e300, 5e-324])
    stamp = rng.choice([NOW, NOW + 15_000, 0, 5, -1, -1000, -(2**63), 2**63 - 1, 2**42])
    v = tag(1, 1) + struct.pack("<d", value)
    t = tag(2, 0) + varint(stamp)
    shape = rng.randrange(6)
    if shape == 0:
        return v + t
    if shape == 1:
        return t + v  # timestamp first
    if shape == 2:
        return t  # value omitted (proto3 zero)
    if shape == 3:
        return v  # timestamp omitted
    if shape == 4:  # repeated scalars: the last one wins
        return tag(1, 1) + struct.pack("<d", 7.0) + t + v + tag(2, 0) + varint(stamp)
    return v + tag(9, 0) + varint(3) + t  # an unknown field inside


def random_series(rng: random.Random) -> bytes:
    labels = [delimited(1, random_label(rng)) for _ in range(rng.choice([0, 1, 3, 8]))]
    samples = [delimited(2, random_sample(rng)) for _ in range(rng.choice([0, 1, 1, 2, 10]))]
    extras = []
    if rng.random() < 0.15:
        exemplar = delimited(1, delimited(1, b"trace_id") + delimited(2, b"abc")) + tag(2, 1) + struct.pack("<d", 1)
        extras.append(delimited(3, exemplar))
    if rng.random() < 0.05:
        extras.append(delimited(4, b"\x08\x01"))  # a native histogram
    if rng.random() < 0.1:
        extras.append(tag(7, 0) + varint(2**63) + tag(8, 5) + b"\x00" * 4 + tag(9, 3) + tag(1, 0) + b"\x01" + tag(9, 4))
    if rng.random() < 0.2:  # unsorted fields: labels after samples, or interleaved
        parts = labels + samples + extras
        rng.shuffle(parts)
        return b"".join(parts)
    return b"".join(labels + samples + extras)


def random_body(rng: random.Random, n: int) -> bytes:
    parts = []
    for _ in range(n):
        parts.append(delimited(1, random_series(rng)))
        if rng.random() < 0.05:
            parts.append(delimited(3, tag(1, 0) + varint(1) + delimited(2, b"metric_family")))  # metadata
        if rng.random() < 0.03:
            parts.append(tag(6, 1) + b"\x00" * 8)  # an unknown top-level field
    return b"".join(parts)


# --- the reference: the protobuf runtime ----------------------------------------------------------


Reading = list[tuple[bytes, bytes, list[int], list[int], bool]]


def reference(raw: bytes) -> Reading | None:
    """Per series: content, canonical label bytes, timestamps, value bits, has histograms; None if refused."""
    try:
        request = RawWriteRequest.FromString(raw)
        out = []
        for content in request.timeseries:
            ts = RawTimeSeries.FromString(content)
            labels = RawTimeSeries(labels=ts.labels).SerializeToString()
            stamps = [s.timestamp for s in ts.samples]
            bits = [struct.unpack("<q", struct.pack("<d", s.value))[0] for s in ts.samples]
            out.append((bytes(content), labels, stamps, bits, len(ts.histograms) > 0))
    except Exception:  # the protobuf runtime's DecodeError
        return None
    return out


def reading(decoded: wire.DecodedSeries) -> Reading:
    out = []
    bits = decoded.values.view(np.int64)
    for i in range(len(decoded)):
        a, b = int(decoded.offsets[i]), int(decoded.offsets[i + 1])
        out.append(
            (
                bytes(decoded.contents[i]),
                decoded.label_bytes[i],
                decoded.timestamps[a:b].tolist(),
                bits[a:b].tolist(),
                i in decoded.histogram_series,
            )
        )
    assert decoded.lengths.tolist() == [len(c) for c in decoded.contents]
    return out


native_only = pytest.mark.skipif(not wire.native_available(), reason="novacron.protocols._wirec is not built")


@pytest.fixture
def native() -> Iterator[None]:
    """The C decoder, for tests of what only it does (its messages, its label table)."""
    if not wire.native_available():
        pytest.skip("novacron.protocols._wirec is not built (pip install -e . with a C compiler builds it)")
    previous = wire.use_native(True)
    try:
        yield
    finally:
        wire.use_native(previous)


def ours(raw: bytes) -> Reading | None:
    try:
        return reading(decode_write_request(raw))
    except WireFormatError:
        return None


# --- equivalence ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_whole_bodies_read_like_the_protobuf_runtime(impl: str, seed: int) -> None:
    # Given a body with every shape of series the wire format allows
    rng = random.Random(seed)
    raw = random_body(rng, 300)
    # When decoded from the whole buffer, and from the list of series
    expected = reference(raw)
    assert expected is not None
    # Then both equal the protobuf runtime's reading (values bit for bit: NaN payloads, -0.0)
    assert ours(raw) == expected
    assert reading(decode_series([c for c, *_ in expected])) == expected


@pytest.mark.parametrize("raw", [b"", delimited(1, b""), delimited(1, b"") * 3, delimited(3, b"x")])
def test_empty_bodies_and_series(impl: str, raw: bytes) -> None:
    assert ours(raw) == reference(raw)


def test_body_errors_are_precise(impl: str) -> None:
    # Given a body whose first series claims more bytes than the body holds
    raw = b"\x0a\xff\xff\xff\x0f"
    with pytest.raises(WireFormatError, match="not a valid remote write WriteRequest"):
        decode_write_request(raw)
    # And a body whose second series has a truncated sample
    bad_series = delimited(2, b"\x09\x00\x00")
    with pytest.raises(WireFormatError, match="not a valid TimeSeries"):
        decode_write_request(delimited(1, b"") + delimited(1, bad_series))


def test_native_messages_name_the_series_and_byte(native: None) -> None:
    with pytest.raises(WireFormatError, match=r"series 1 \(at byte 2 of the WriteRequest\).*truncated sample value"):
        decode_write_request(delimited(1, b"") + delimited(1, delimited(2, b"\x09\x00\x00")))
    with pytest.raises(WireFormatError, match=r"length 4294967295 at byte 1 .*|length of 2 GiB or more at byte 1"):
        decode_write_request(b"\x0a\xff\xff\xff\xff\x0f")
    with pytest.raises(WireFormatError, match="varint longer than 10 bytes"):
        decode_write_request(b"\x08" + b"\x80" * 10 + b"\x00")


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x01",  # field number 0
        b"\x0e",  # wire type 6
        b"\x0c",  # an end-group tag outside a group
        b"\x2b\x34",  # a group closed by another field's end tag
        b"\x2b",  # an unterminated group
        b"\x8a\x80\x80\x80\x80\x00\x00",  # a six-byte tag
        b"\xf8\xff\xff\xff\x1f\x00",  # a tag over 32 bits
        b"\x1a\x80\x80\x80\x80\x08",  # a length of 2^31
        b"\x1a\x80\x80\x80\x80\x80\x00",  # a six-byte length
        b"\x19\x00\x00",  # a truncated fixed64
        b"\x1d\x00",  # a truncated fixed32
        b"\x2b" * 101 + b"\x2c" * 101,  # groups nested past the runtime's limit
        b"\x2b" * 100 + b"\x2c" * 100,  # ... and just within it
        b"\x8a\x00\x00",  # a two-byte (non-minimal) tag: accepted
        b"\x18" + b"\xff" * 9 + b"\x7f",  # a ten-byte varint with bits past 64: accepted
        delimited(1, b"\x0a\x81\x00a"),  # a non-minimal label length: labels re-encoded canonically
        delimited(1, b"\x8a\x00\x01a"),  # a non-minimal label tag: likewise
        delimited(1, delimited(2, b"\x0c")),  # an end-group tag inside a sample
        delimited(1, delimited(2, b"\x2b" * 99 + b"\x2c" * 99)),
        delimited(1, delimited(2, b"\x2b" * 100 + b"\x2c" * 100)),
        delimited(1, delimited(2, b"\x08\x05\x11" + b"\x01" * 8)),  # both sample fields with the wrong wire type
        delimited(1, delimited(4, b"\xff\xff") + delimited(3, b"\xff\xff")),  # opaque histograms and exemplars
        delimited(1, tag(4, 0) + b"\x01"),  # field 4 as a varint: unknown, not a histogram
    ],
)
def test_edge_cases_of_the_wire_format(impl: str, raw: bytes) -> None:
    assert ours(raw) == reference(raw)


# --- fuzzing --------------------------------------------------------------------------------------


def mutate(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.choice([1, 1, 2, 4])):
        op = rng.randrange(6)
        at = rng.randrange(len(data) + 1)
        if op == 0 and data:  # overwrite a byte
            data[min(at, len(data) - 1)] = rng.choice([0x00, 0x7F, 0x80, 0xFF, 0x0A, 0x12, 0x0C, rng.randrange(256)])
        elif op == 1:  # truncate
            del data[at:]
        elif op == 2:  # insert bytes
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.choice([1, 2, 5])))
        elif op == 3:  # delete a range
            del data[at : at + rng.choice([1, 2, 9])]
        elif op == 4:  # duplicate a range
            data[at:at] = data[at : at + rng.choice([1, 3, 18])]
        elif data:  # flip one bit
            data[min(at, len(data) - 1)] ^= 1 << rng.randrange(8)
    return bytes(data)


def test_fuzzed_bodies_read_like_the_protobuf_runtime_or_are_refused(impl: str) -> None:
    rng = random.Random(20260)
    bases = [random_body(random.Random(seed), 4) for seed in range(40)]
    bases = [b for b in bases if len(b) < 3000] or bases[:5]
    refused = 0
    for i in range(4000):
        raw = mutate(rng, bases[i % len(bases)])
        expected = reference(raw)
        got = ours(raw)
        assert got == expected, f"mutation {i} of base {i % len(bases)}: {raw!r}"
        refused += expected is None
    # The mutations exercise both outcomes.
    assert 200 < refused < 3800


def test_fuzzed_series_lists_read_like_the_protobuf_runtime_or_are_refused(impl: str) -> None:
    rng = random.Random(7)
    for i in range(3000):
        series = [random_series(random.Random(i * 3 + k)) for k in range(3)]
        series = [s if len(s) < 2000 else s[:40] for s in series]
        series[i % 3] = mutate(rng, series[i % 3])
        raw = b"".join(delimited(1, s) for s in series)
        expected = reference(raw)
        try:
            got: Reading | None = reading(decode_series(series))
        except WireFormatError:
            got = None
        assert got == expected, f"case {i}: {series!r}"


# --- the C extension itself -----------------------------------------------------------------------


@native_only
def test_repeated_label_sets_share_one_bytes_object() -> None:
    from novacron.protocols import _wirec

    raw = random_body(random.Random(3), 50)
    first = _wirec.split_write_request(raw)
    second = _wirec.split_write_request(raw)
    assert first[1] == second[1]
    shared = [a is b for a, b in zip(first[1], second[1], strict=True) if a]
    assert sum(shared) >= len(shared) // 2  # canonical prefixes are shared; re-encoded ones need not be
    _wirec.clear_label_cache()
    assert _wirec.label_cache_size() == 0
    assert _wirec.split_write_request(raw)[1] == first[1]


@native_only
def test_no_reference_or_memory_leak_over_many_calls() -> None:
    from novacron.protocols import _wirec

    raw = random_body(random.Random(11), 20)
    contents = _wirec.split_write_request(raw)[0]
    bad = [raw[: len(raw) // 2], b"\x0a\x05\x12\x03\x09\x00", b"\x2b" * 200, mutate(random.Random(1), raw)]
    bad = [b for b in bad if reference(b) is None]
    assert bad
    # Empty and one-byte bytes are shared singletons whose counts other threads move; skip them.
    owned = [c for c in contents if len(c) > 1]
    raw_refs, contents_refs = sys.getrefcount(raw), [sys.getrefcount(c) for c in owned]

    def run(times: int) -> None:
        for _ in range(times):
            _wirec.split_write_request(raw)
            _wirec.decode_series_list(contents)
            _wirec.decode_series_list(tuple(bytearray(c) for c in contents[:3]))
            for b in bad:  # the error paths free what they built, too
                for call, arg in ((_wirec.split_write_request, b), (_wirec.decode_series_list, [contents[0], b])):
                    try:
                        call(arg)
                    except ValueError:
                        continue
                    raise AssertionError(f"{call.__name__} accepted {arg!r}")

    run(200)  # warm up: the label table and allocator pools reach their steady size
    # Only allocations made from this file count: other tests may leave threads running
    # (local stacks, simulators) whose allocations would otherwise show up here.
    here = [tracemalloc.Filter(True, __file__)]
    tracemalloc.start()
    try:
        gc.collect()
        start = sum(s.size for s in tracemalloc.take_snapshot().filter_traces(here).statistics("filename"))
        run(10_000)
        gc.collect()  # cyclic garbage (generators, pytest.raises tracebacks) is not a leak
        end = sum(s.size for s in tracemalloc.take_snapshot().filter_traces(here).statistics("filename"))
    finally:
        tracemalloc.stop()
    assert end - start < 64 * 1024, f"traced memory grew by {end - start} bytes over 10,000 calls"
    assert sys.getrefcount(raw) == raw_refs
    assert [sys.getrefcount(c) for c in owned] == contents_refs


@native_only
def test_bad_arguments_are_type_errors() -> None:
    from novacron.protocols import _wirec

    with pytest.raises(TypeError):
        _wirec.split_write_request("not bytes")
    with pytest.raises(TypeError):
        _wirec.decode_series_list(5)
    with pytest.raises(TypeError):
        _wirec.decode_series_list([b"", 5])


def test_the_environment_can_force_the_numpy_decoder() -> None:
    script = "from novacron.protocols import wire; print(wire.native_available(), wire.native_enabled())"
    env = {**os.environ, "NOVACRON_WIRE_NATIVE": "0"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["False", "False"]
