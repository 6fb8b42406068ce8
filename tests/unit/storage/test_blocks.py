"""The hot-tier block codec."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.storage.blocks import (
    Block,
    BlockFormatError,
    decode_block,
    decode_series_table,
    encode_block,
    encode_series_table,
    series_table_key,
    sort_key_range,
)


def make_block(n_series: int, per_series: int) -> Block:
    rng = np.random.default_rng(7)
    series = np.sort(rng.integers(0, 2**63, n_series, dtype=np.uint64))
    offsets = np.arange(n_series + 1, dtype=np.int64) * per_series
    base = 1_790_000_000_000
    timestamps = np.tile(base + np.arange(per_series, dtype=np.int64) * 15000, n_series)
    values = rng.normal(100, 5, n_series * per_series)
    values[::7] = np.nan
    return Block(series, offsets, timestamps, values)


def test_round_trip_is_exact() -> None:
    # Given a block with NaNs, many series and several samples each
    block = make_block(300, 4)
    # When encoded and decoded
    payload, key = encode_block(block)
    tables = {key: decode_series_table(encode_series_table(block.series))}
    back = decode_block(payload, tables.__getitem__)
    # Then every field comes back bit for bit
    np.testing.assert_array_equal(back.series, block.series)
    np.testing.assert_array_equal(back.offsets, block.offsets)
    np.testing.assert_array_equal(back.timestamps, block.timestamps)
    assert back.values.view(np.uint64).tolist() == block.values.view(np.uint64).tolist()


def test_regular_data_compresses_well() -> None:
    # Given constant gauges scraped every 15 s
    block = make_block(100, 40)
    block.values[:] = 1.0
    # When encoded, Then a sample costs well under two bytes
    assert len(encode_block(block)[0]) / 4000 < 2.0


def test_garbage_is_not_a_block() -> None:
    with pytest.raises(BlockFormatError):
        decode_block(b"nope", {}.__getitem__)


def test_sort_key_range_reaches_back_one_block_span() -> None:
    low, high = sort_key_range(1_000_000_000, 1_000_600_000)
    assert low == f"{1_000_000_000 - 600_000:013d}"
    assert high == "0001000600000#~"


def test_blocks_with_the_same_series_share_one_table() -> None:
    # Given two scrapes of the same series
    first, second = make_block(50, 1), make_block(50, 1)
    second.timestamps += 15000
    # Then both blocks refer to the same series table, keyed by its content
    assert encode_block(first)[1] == encode_block(second)[1] == series_table_key(first.series)


def test_a_table_of_the_wrong_size_is_refused() -> None:
    block = make_block(5, 2)
    payload, key = encode_block(block)
    with pytest.raises(BlockFormatError, match="has 4 ids"):
        decode_block(payload, {key: block.series[:4]}.__getitem__)
