"""NCB3, the hot-tier sample codec: exact round trips, density on monitoring-shaped data, old blocks."""

from __future__ import annotations

import contextlib
import struct

import cramjam
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.series import STALE_NAN_BITS
from novacron.storage.blocks import (
    Block,
    BlockFormatError,
    decode_block,
    encode_block,
    encode_block_v2,
)

START = 1_790_000_000_000
SPECIAL_BITS = [
    STALE_NAN_BITS,
    0x7FF8000000000000,  # the usual quiet NaN
    0xFFF8000000000001,  # a negative NaN with a payload
    0x7FF0000000000000,  # +Inf
    0xFFF0000000000000,  # -Inf
    0x8000000000000000,  # -0.0
    0x0000000000000001,  # the smallest denormal
    0x7FEFFFFFFFFFFFFF,  # the largest double
]


def block_of(runs: list[tuple[list[int], list[float]]]) -> Block:
    counts = [len(ts) for ts, _ in runs]
    offsets = np.zeros(len(runs) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    timestamps = np.array([t for ts, _ in runs for t in ts], dtype=np.int64)
    values = np.array([v for _, vs in runs for v in vs], dtype=np.float64)
    return Block(np.arange(len(runs), dtype=np.uint64), offsets, timestamps, values)


def round_trip(block: Block) -> tuple[Block, bytes]:
    payload, _ = encode_block(block)
    return decode_block(payload, lambda _key: block.series), payload


def assert_same(back: Block, block: Block) -> None:
    np.testing.assert_array_equal(back.offsets, block.offsets)
    np.testing.assert_array_equal(back.timestamps, block.timestamps)
    assert back.values.view(np.uint64).tolist() == block.values.view(np.uint64).tolist()


def bits_to_float(bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<Q", bits))[0])


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    st.integers(-(10**9), 10**9).map(float),
    st.tuples(st.integers(-(10**12), 10**12), st.integers(0, 14)).map(lambda ke: ke[0] / 10 ** ke[1]),
    st.sampled_from(SPECIAL_BITS).map(bits_to_float),
    st.integers(0, 2**64 - 1).map(bits_to_float),
)
series_runs = st.integers(0, 40).flatmap(
    lambda m: st.tuples(
        st.one_of(
            st.lists(st.integers(-(2**63), 2**63 - 1), min_size=m, max_size=m),
            st.tuples(st.integers(0, 2**45), st.lists(st.integers(-20, 15_020), min_size=m, max_size=m)).map(
                lambda first_steps: np.cumsum([first_steps[0], *first_steps[1]])[1:].tolist()
            ),
        ),
        st.one_of(
            st.lists(values, min_size=m, max_size=m),
            st.tuples(values, st.lists(st.integers(-3, 3), min_size=m, max_size=m)).map(
                lambda vs: [vs[0] + sum(vs[1][:i]) * 0.25 for i in range(m)]
            ),
        ),
    )
)


@settings(max_examples=300, deadline=None)
@given(st.lists(series_runs, max_size=12))
def test_any_block_round_trips_bit_for_bit(runs: list[tuple[list[int], list[float]]]) -> None:
    # Given series of any length (empty too), any int64 timestamps or irregular scrapes, and any doubles
    block = block_of(runs)
    # When encoded and decoded
    back, _ = round_trip(block)
    # Then timestamps, counts and value bit patterns (NaN payloads, -0.0, ±Inf, denormals) are unchanged
    assert_same(back, block)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(START - 10**9, START + 10**9), values), min_size=1, max_size=300))
def test_one_sample_per_series_round_trips(samples: list[tuple[int, float]]) -> None:
    # Given a writer's block: one sample per series
    block = block_of([([t], [v]) for t, v in samples])
    # When encoded and decoded, Then it comes back bit for bit
    assert_same(round_trip(block)[0], block)


def regular_runs(n_series: int, m: int, make_values: object) -> Block:
    rng = np.random.default_rng(3)
    times = START + np.arange(m, dtype=np.int64) * 15_000
    runs = [(times.tolist(), list(make_values(rng, m))) for _ in range(n_series)]  # type: ignore[operator]
    return block_of(runs)


@pytest.mark.parametrize(
    ("name", "make_values", "limit"),
    [
        ("two-decimal gauge", lambda rng, m: np.round(50 + np.cumsum(rng.normal(0, 1, m)), 2), 1.6),
        ("steady counter", lambda rng, m: 1000.0 + 42 * np.arange(m), 0.05),
        ("counter", lambda rng, m: np.cumsum(rng.poisson(30, m)).astype(float), 1.2),
        ("constant", lambda rng, m: np.full(m, 1.0), 0.05),
    ],
)
def test_compacted_runs_are_dense(name: str, make_values: object, limit: float) -> None:
    # Given 33 series of 480 regular scrapes (a compacted block)
    block = regular_runs(33, 480, make_values)
    # When encoded
    back, payload = round_trip(block)
    # Then it round-trips and costs less than the limit per sample (regular timestamps cost ~nothing)
    assert_same(back, block)
    assert len(payload) / len(block.values) < limit, name


def test_ncb3_beats_ncb2_on_decimal_gauges() -> None:
    block = regular_runs(33, 480, lambda rng, m: np.round(50 + np.cumsum(rng.normal(0, 1, m)), 2))
    assert len(encode_block(block)[0]) * 3 < len(encode_block_v2(block)[0])


def test_stale_markers_stay_exceptions_in_a_decimal_series() -> None:
    # Given a two-decimal gauge that goes stale now and then (Prometheus's staleness marker NaN)
    rng = np.random.default_rng(1)
    block = regular_runs(20, 480, lambda r, m: np.round(50 + np.cumsum(rng.normal(0, 1, m)), 2))
    clean = len(encode_block(block)[0])
    block.values[::97] = bits_to_float(STALE_NAN_BITS)
    # When encoded
    back, payload = round_trip(block)
    # Then the markers come back with their exact bits and cost only their own bytes
    assert_same(back, block)
    assert (back.values.view(np.uint64)[::97] == STALE_NAN_BITS).all()
    assert len(payload) < clean + 13 * len(block.values[::97])


def test_writer_blocks_store_decimals_compactly() -> None:
    # Given one scrape of 156 series holding two-decimal and integer values
    rng = np.random.default_rng(2)
    values = np.where(rng.random(156) < 0.5, np.round(rng.uniform(0, 100, 156), 2), rng.integers(0, 10**6, 156))
    block = block_of([([START], [v]) for v in values])
    # When encoded, Then it round-trips in fewer bytes than NCB2 needs
    back, payload = round_trip(block)
    assert_same(back, block)
    assert len(payload) < 0.75 * len(encode_block_v2(block)[0])


def test_blocks_written_as_ncb2_still_decode() -> None:
    # Given a block in the previous format (tables hold them)
    block = regular_runs(10, 30, lambda rng, m: rng.normal(0, 1, m))
    block.values[5] = bits_to_float(STALE_NAN_BITS)
    payload, _ = encode_block_v2(block)
    assert bytes(cramjam.zstd.decompress(payload))[:4] == b"NCB2"
    # When decoded, Then it comes back unchanged
    assert_same(decode_block(payload, lambda _key: block.series), block)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_corrupt_bodies_are_refused_cleanly(data: st.DataObject) -> None:
    # Given a valid NCB3 block (either layout) with a few bytes changed or cut off
    per_series = data.draw(st.sampled_from([1, 7]))
    block = regular_runs(9, per_series, lambda rng, m: np.round(rng.uniform(0, 9, m), 1))
    raw = bytearray(cramjam.zstd.decompress(encode_block(block)[0]))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(4, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(len(raw) - 9, len(raw)))]
    # When decoded, Then it either decodes or raises BlockFormatError — never anything else
    with contextlib.suppress(BlockFormatError):
        decode_block(bytes(cramjam.zstd.compress(bytes(raw))), lambda _key: block.series)
