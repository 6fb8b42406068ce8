"""Hot-tier block density and codec speed: NCB2 vs NCB3 vs a reference Gorilla encoder.

Data classes are generated the way monitoring data looks (counters with resets, 2-decimal gauges,
integer gauges, latency histograms, full-precision noise, constants, jittered timestamps) plus the
simulated estate's own scrapes. Each is encoded at two block shapes: one sample per series (what the
writer stores: one scrape of a bucket's ~156 series per block) and 480 samples per series (2 hours
of 15 s scrapes, as compaction will store them; ≤ 16,000 samples per block). Bytes are the block
item's ``data``; series tables (shared by many blocks) are not counted.

The Gorilla reference is a straightforward bit-level implementation of the paper's scheme (per
series: 64-bit first timestamp and value, 14-bit first delta, delta-of-delta buckets '0', '10'+7,
'110'+9, '1110'+12, '1111'+32 bits, XOR values with leading/meaningful windows); it is pure Python,
so it runs on a subset of each class's series. Gorilla is a per-series format: with one sample per
series it stores 16 bytes per sample.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bench.workload import estate_series, scrapes
from novacron.storage.blocks import MAX_BLOCK_SAMPLES, Block, decode_block, encode_block, encode_block_v2

STEP_MS = 15_000
PER_SERIES = 480  # 2 hours of 15 s scrapes
WRITER_SERIES = 625  # one scrape of a bucket: 10,000 series over 16 buckets
START_MS = 1_790_000_000_000

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass
class Series:
    """``timestamps`` and ``values`` are (series, samples) matrices."""

    name: str
    timestamps: I64
    values: F64


def regular(rng: np.random.Generator, n: int, m: int) -> I64:
    return np.tile(START_MS + np.arange(m, dtype=np.int64) * STEP_MS, (n, 1))


def counters(rng: np.random.Generator, n: int, m: int) -> Series:
    rates = rng.uniform(0.1, 200, (n, 1))
    increments = rng.poisson(rates * 15, (n, m)).astype(np.float64)
    values = np.cumsum(increments, axis=1) + rng.integers(0, 10**7, (n, 1))
    resets = rng.random((n, m)) < 1 / 2000  # a restarted process starts again from zero
    for row, col in zip(*np.nonzero(resets), strict=True):
        values[row, col:] -= values[row, col] - increments[row, col]
    return Series("counters", regular(rng, n, m), values)


def cpu_percent(rng: np.random.Generator, n: int, m: int) -> Series:
    walk = np.cumsum(rng.normal(0, 1.5, (n, m)), axis=1) + rng.uniform(5, 80, (n, 1))
    values = np.round(np.clip(walk, 0, 100), 2).astype(np.float64)
    return Series("gauges, 2 decimals", regular(rng, n, m), values)


def memory_bytes(rng: np.random.Generator, n: int, m: int) -> Series:
    walk = np.cumsum(rng.integers(-50, 60, (n, m)) * 4096, axis=1) + rng.integers(10**8, 4 * 10**9, (n, 1))
    return Series("integer gauges", regular(rng, n, m), walk.astype(np.float64))


def histogram(rng: np.random.Generator, n: int, m: int) -> Series:
    bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, np.inf]
    groups = max(1, n // (len(bounds) + 2))
    rows: list[F64] = []
    for _ in range(groups):
        requests = rng.poisson(rng.uniform(1, 300) * 15, m)
        latencies = [rng.lognormal(-3, 1, count) for count in requests]
        cumulative = [np.cumsum([np.count_nonzero(lat <= b) for lat in latencies]) for b in bounds]
        rows.extend(np.asarray(c, dtype=np.float64) for c in cumulative)
        rows.append(np.cumsum([float(lat.sum()) for lat in latencies]))  # _sum: full-precision float sums
        rows.append(np.cumsum(requests).astype(np.float64))  # _count
    values = np.stack(rows)
    return Series("histogram _bucket/_sum/_count", regular(rng, len(values), m), values)


def noisy(rng: np.random.Generator, n: int, m: int) -> Series:
    return Series("full-precision floats", regular(rng, n, m), rng.normal(100, 5, (n, m)))


def constants(rng: np.random.Generator, n: int, m: int) -> Series:
    values = np.repeat(rng.choice([0.0, 1.0, 1_789_764_883.0, 4.0], (n, 1)), m, axis=1)
    return Series("constants", regular(rng, n, m), values)


def jittered(rng: np.random.Generator, n: int, m: int) -> Series:
    offsets = rng.integers(0, STEP_MS, (n, 1))
    timestamps = regular(rng, n, m) + offsets + rng.integers(-5, 6, (n, m))
    gauges = cpu_percent(rng, n, m).values
    return Series("irregular timestamps (±5 ms)", timestamps, gauges)


def simulated(n: int, m: int) -> Series:
    """The simulated estate's own scrapes, series in id order as the writer sorts them."""
    simulator = estate_series(n)
    history = scrapes(simulator, m, START_MS + (m - 1) * STEP_MS)
    labels = [labels for labels, _ in history[0]]
    order = sorted(range(len(labels)), key=lambda i: hashlib.blake2b(repr(labels[i]).encode()).digest())
    values = np.array([[value for _, value in scrape] for scrape in history]).T[order]
    return Series("simulated estate", regular(np.random.default_rng(0), len(values), m), values)


GENERATORS: list[Callable[[np.random.Generator, int, int], Series]] = [
    counters,
    cpu_percent,
    memory_bytes,
    histogram,
    noisy,
    constants,
    jittered,
]


def blocks_of(data: Series, per_series: int) -> list[Block]:
    """The data cut into blocks: one sample per series per block, or runs of ``per_series`` samples."""
    n, m = data.values.shape
    ids = np.arange(n, dtype=np.uint64)
    if per_series == 1:
        out = []
        for first in range(0, n, WRITER_SERIES):
            rows = slice(first, first + WRITER_SERIES)
            count = len(ids[rows])
            offsets = np.arange(count + 1, dtype=np.int64)
            for col in range(m):
                out.append(Block(ids[rows], offsets, data.timestamps[rows, col].copy(), data.values[rows, col].copy()))
        return out
    rows_per_block = max(1, MAX_BLOCK_SAMPLES // per_series)
    out = []
    for first in range(0, n, rows_per_block):
        rows = slice(first, first + rows_per_block)
        count = len(ids[rows])
        offsets = np.arange(count + 1, dtype=np.int64) * m
        out.append(Block(ids[rows], offsets, data.timestamps[rows].reshape(-1), data.values[rows].reshape(-1)))
    return out


class BitWriter:
    """Bits appended most significant first; only the length matters here, the bytes are real."""

    def __init__(self) -> None:
        self.words: list[int] = []
        self.current = 0
        self.used = 0
        self.bits = 0

    def write(self, value: int, width: int) -> None:
        self.bits += width
        self.current = (self.current << width) | (value & ((1 << width) - 1))
        self.used += width
        while self.used >= 64:
            self.used -= 64
            self.words.append(self.current >> self.used)
            self.current &= (1 << self.used) - 1


def gorilla_bits(timestamps: list[int], values: list[float]) -> int:
    """Bits of one series in the Gorilla paper's encoding."""
    out = BitWriter()
    raw = np.asarray(values, dtype=np.float64).view(np.uint64).tolist()
    out.write(timestamps[0], 64)
    out.write(raw[0], 64)
    prev_ts, prev_delta, prev_bits = timestamps[0], 0, raw[0]
    prev_lead, prev_trail = 65, 65
    for i in range(1, len(timestamps)):
        delta = timestamps[i] - prev_ts
        if i == 1:
            out.write(delta, 14)
        else:
            dod = delta - prev_delta
            if dod == 0:
                out.write(0, 1)
            elif -63 <= dod <= 64:
                out.write(0b10, 2)
                out.write(dod, 7)
            elif -255 <= dod <= 256:
                out.write(0b110, 3)
                out.write(dod, 9)
            elif -2047 <= dod <= 2048:
                out.write(0b1110, 4)
                out.write(dod, 12)
            else:
                out.write(0b1111, 4)
                out.write(dod, 32)
        prev_ts, prev_delta = timestamps[i], delta
        xor = raw[i] ^ prev_bits
        prev_bits = raw[i]
        if xor == 0:
            out.write(0, 1)
            continue
        lead = min(64 - xor.bit_length(), 31)
        trail = (xor & -xor).bit_length() - 1
        if lead >= prev_lead and trail >= prev_trail:
            out.write(0b10, 2)
            out.write(xor >> prev_trail, 64 - prev_lead - prev_trail)
        else:
            meaningful = 64 - lead - trail
            out.write(0b11, 2)
            out.write(lead, 5)
            out.write(meaningful & 63, 6)  # 64 meaningful bits are written as 0
            out.write(xor >> trail, meaningful)
            prev_lead, prev_trail = lead, trail
    return out.bits


def gorilla_bytes_per_sample(data: Series, max_series: int) -> float:
    rows = range(min(max_series, len(data.values)))
    bits = sum(gorilla_bits(data.timestamps[r].tolist(), data.values[r].tolist()) for r in rows)
    return bits / 8 / (len(rows) * data.values.shape[1])


def tables_of(block: Block) -> Callable[[str], npt.NDArray[np.uint64]]:
    """The series-table lookup of one block (the bench keeps ids beside the blocks)."""
    return lambda _key: block.series


def encoded_size(blocks: list[Block], encode: Callable[[Block], tuple[bytes, str]]) -> int:
    total = 0
    for block in blocks:
        data, _ = encode(block)
        total += len(data)
        back = decode_block(data, tables_of(block))
        assert np.array_equal(back.timestamps, block.timestamps), "timestamps did not round-trip"
        assert np.array_equal(back.values.view(np.uint64), block.values.view(np.uint64)), "values did not round-trip"
    return total


def throughput(blocks: list[Block], encode: Callable[[Block], tuple[bytes, str]], rounds: int) -> tuple[float, float]:
    """(encode, decode) samples per second over ``blocks``, best of ``rounds``."""
    samples = sum(len(b.timestamps) for b in blocks)
    payloads: list[bytes] = []
    encode_best = decode_best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        payloads = [encode(b)[0] for b in blocks]
        encode_best = min(encode_best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for payload, block in zip(payloads, blocks, strict=True):
            decode_block(payload, tables_of(block))
        decode_best = min(decode_best, time.perf_counter() - t0)
    return samples / encode_best, samples / decode_best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=312, help="series per generated class")
    parser.add_argument("--estate", type=int, default=2000, help="minimum series of the simulated estate")
    parser.add_argument("--gorilla-series", type=int, default=40, help="series per class the Gorilla reference encodes")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (best is kept)")
    args = parser.parse_args()
    rng = np.random.default_rng(5)
    classes = [make(rng, args.series, PER_SERIES) for make in GENERATORS]
    classes.append(simulated(args.estate, PER_SERIES))

    print(
        f"compression benchmark: {len(classes)} data classes, {PER_SERIES} scrapes of 15 s each; "
        f"bytes/sample (raw 16.00); Gorilla on {args.gorilla_series} series per class"
    )
    header = f"  {'class':<32}{'samples':>10}  {'writer: NCB2':>12}{'NCB3':>7}  {'compacted: NCB2':>15}{'NCB3':>7}"
    print(header + f"{'Gorilla':>9}{'NCB3/Gorilla':>14}")
    totals = {"samples": 0, "w2": 0, "w3": 0, "c2": 0, "c3": 0, "g": 0.0}
    for data in classes:
        samples = data.values.size
        writer_blocks, compacted_blocks = blocks_of(data, 1), blocks_of(data, PER_SERIES)
        w2, w3 = encoded_size(writer_blocks, encode_block_v2), encoded_size(writer_blocks, encode_block)
        c2, c3 = encoded_size(compacted_blocks, encode_block_v2), encoded_size(compacted_blocks, encode_block)
        gorilla = gorilla_bytes_per_sample(data, args.gorilla_series)
        for key, size in (("w2", w2), ("w3", w3), ("c2", c2), ("c3", c3)):
            totals[key] += size
        totals["samples"] += samples
        totals["g"] += gorilla * samples
        print(
            f"  {data.name:<32}{samples:>10,}  {w2 / samples:>12.2f}{w3 / samples:>7.2f}  "
            f"{c2 / samples:>15.2f}{c3 / samples:>7.2f}{gorilla:>9.2f}{c3 / samples / gorilla:>14.2f}"
        )
    n = totals["samples"]
    print(
        f"  {'overall':<32}{n:>10,}  {totals['w2'] / n:>12.2f}{totals['w3'] / n:>7.2f}  "
        f"{totals['c2'] / n:>15.2f}{totals['c3'] / n:>7.2f}{totals['g'] / n:>9.2f}"
        f"{totals['c3'] / totals['g']:>14.2f}"
    )

    estate = classes[-1]
    print("codec speed on the simulated estate, one core (Msamples/s; best of rounds)")
    for shape, blocks in (
        ("writer, 1/series", blocks_of(estate, 1)[:2000]),
        ("compacted", blocks_of(estate, PER_SERIES)),
    ):
        enc2, dec2 = throughput(blocks, encode_block_v2, args.rounds)
        enc3, dec3 = throughput(blocks, encode_block, args.rounds)
        print(
            f"  {shape:<18} encode NCB2 {enc2 / 1e6:6.2f}  NCB3 {enc3 / 1e6:6.2f}   "
            f"decode NCB2 {dec2 / 1e6:6.2f}  NCB3 {dec3 / 1e6:6.2f}  (NCB3/NCB2 decode {dec3 / dec2:.2f})"
        )


if __name__ == "__main__":
    main()
