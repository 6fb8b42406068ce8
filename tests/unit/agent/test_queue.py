"""The agent's disk queue: append/read/ack, restarts, torn tails, corruption, the size bound, export."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from novacron.agent.queue import (
    HEADER_SIZE,
    SEGMENT_SUFFIX,
    DiskQueue,
    Entry,
    Kind,
    QueueError,
    QueueLockedError,
    encode_entry,
    export_queue,
    read_entries_file,
)

SEGMENT = 4096


def entry(n: int, size: int = 100, samples: int = 1) -> Entry:
    """A distinct entry: its body starts with its number."""
    return Entry(Kind.REMOTE_WRITE, f"{n:08d}".encode() + b"x" * (size - 8), {"Content-Encoding": "snappy"}, samples)


def bodies(queued: list) -> list[int]:
    return [int(q.entry.body[:8]) for q in queued]


def drain(queue: DiskQueue) -> list[int]:
    """Read and ack everything; the numbers of the entries in order."""
    seen: list[int] = []
    while batch := queue.peek(max_entries=7):
        seen += bodies(batch)
        queue.ack(*batch)
    return seen


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SEGMENT_SUFFIX}"))


@pytest.fixture
def qdir(tmp_path: Path) -> Path:
    return tmp_path / "queue"


@pytest.fixture
def queue(qdir: Path) -> Iterator[DiskQueue]:
    q = DiskQueue(qdir, max_bytes=64 * SEGMENT, segment_bytes=SEGMENT).open()
    yield q
    q.close()


def reopen(queue: DiskQueue, **kwargs: int) -> DiskQueue:
    queue.close()
    options = {"max_bytes": queue.max_bytes, "segment_bytes": queue.segment_bytes, **kwargs}
    return DiskQueue(queue.directory, **options).open()


def test_entries_come_back_in_order_with_everything_they_carry(queue: DiskQueue) -> None:
    # Given entries of each kind appended in two batches
    first = Entry(Kind.OTLP_TRACES, b"\x00\x01traces", {"Content-Type": "application/x-protobuf"}, 0, 1234)
    queue.append([first, entry(1, samples=5)])
    queue.append([entry(2)])
    # When they are read
    got = queue.peek(max_entries=10)
    # Then they come back in order, byte for byte, with kind, headers, samples and enqueue time
    assert got[0].entry == first
    assert bodies(got[1:]) == [1, 2]
    assert got[1].entry.samples == 5
    assert got[1].entry.enqueued_ms > 1_600_000_000_000  # stamped at enqueue when not given
    assert queue.stats.depth_entries == 3
    assert queue.stats.depth_samples == 6


def test_peek_does_not_consume_and_ack_does(queue: DiskQueue) -> None:
    queue.append([entry(i) for i in range(3)])
    # When peeking twice without acking
    assert bodies(queue.peek()) == [0]
    assert bodies(queue.peek()) == [0]
    # Then acking moves on
    queue.ack(*queue.peek(max_entries=2))
    assert bodies(queue.peek(max_entries=10)) == [2]
    assert queue.stats.depth_entries == 1


def test_peek_stops_at_max_bytes_but_returns_at_least_one(queue: DiskQueue) -> None:
    queue.append([entry(i, size=1000) for i in range(3)])
    assert len(queue.peek(max_entries=10, max_bytes=1500)) == 1
    assert len(queue.peek(max_entries=10, max_bytes=10)) == 1
    assert len(queue.peek(max_entries=10, max_bytes=2000)) == 2


def test_restart_resumes_after_the_cursor(queue: DiskQueue) -> None:
    # Given 50 entries over several segments, the first 20 acknowledged
    queue.append([entry(i, size=300) for i in range(50)])
    for _ in range(20):
        queue.ack(*queue.peek())
    # When the queue is reopened
    queue = reopen(queue)
    # Then the other 30 come back, in order, and the depth counts only them
    assert queue.stats.depth_entries == 30
    assert drain(queue) == list(range(20, 50))
    assert queue.stats.depth_entries == 0
    queue.close()


def test_delivered_segments_are_deleted(queue: DiskQueue, qdir: Path) -> None:
    queue.append([entry(i, size=1000) for i in range(20)])
    assert len(segments(qdir)) >= 5
    drain(queue)
    # Only the active segment is left
    assert len(segments(qdir)) == 1
    assert queue.stats.depth_bytes == 0


def test_appends_after_restart_follow_the_old_ones(queue: DiskQueue) -> None:
    queue.append([entry(1), entry(2)])
    queue = reopen(queue)
    queue.append([entry(3)])
    assert drain(queue) == [1, 2, 3]
    queue.close()


def test_a_torn_tail_is_cut_and_appends_go_on(queue: DiskQueue, qdir: Path) -> None:
    # Given a crash in the middle of writing an entry (half of it on disk)
    queue.append([entry(1), entry(2)])
    queue.close()
    last = segments(qdir)[-1]
    with last.open("ab") as f:
        f.write(encode_entry(entry(3))[: HEADER_SIZE + 20])
    # When the queue is opened again
    queue = DiskQueue(qdir, max_bytes=64 * SEGMENT, segment_bytes=SEGMENT).open()
    queue.append([entry(4)])
    # Then the torn entry is gone, nothing is counted corrupt, and the rest reads on
    assert drain(queue) == [1, 2, 4]
    assert queue.stats.corrupt_regions == 0
    queue.close()


def test_corruption_in_the_middle_is_skipped_and_counted(queue: DiskQueue, qdir: Path) -> None:
    # Given three entries in one segment, the middle one with a flipped body byte
    queue.append([entry(1), entry(2), entry(3)])
    queue.close()
    path = segments(qdir)[-1]
    data = bytearray(path.read_bytes())
    one = len(encode_entry(entry(1)))
    data[one + HEADER_SIZE + 30] ^= 0xFF
    path.write_bytes(bytes(data))
    queue = DiskQueue(qdir, max_bytes=64 * SEGMENT, segment_bytes=SEGMENT).open()
    # When reading through
    seen = drain(queue)
    # Then the bad entry is skipped, the others delivered, and the skip counted once
    assert seen == [1, 3]
    assert queue.stats.corrupt_regions == 1
    queue.close()


def test_a_garbage_length_does_not_crash_the_reader(queue: DiskQueue, qdir: Path) -> None:
    # Given an entry whose length field is garbage, in a sealed segment followed by good entries
    queue.append([entry(i, size=1000) for i in range(8)])
    queue.close()
    first = segments(qdir)[0]
    data = bytearray(first.read_bytes())
    data[4:8] = b"\xff\xff\xff\x7f"
    first.write_bytes(bytes(data))
    queue = DiskQueue(qdir, max_bytes=64 * SEGMENT, segment_bytes=SEGMENT).open()
    # When reading through: everything but the broken entry arrives
    assert drain(queue) == list(range(1, 8))
    assert queue.stats.corrupt_regions == 1
    queue.close()


def test_when_full_the_oldest_are_dropped_and_counted(qdir: Path) -> None:
    # Given a queue of 8 segments' worth, receiving far more than it holds, nothing delivered
    queue = DiskQueue(qdir, max_bytes=8 * SEGMENT, segment_bytes=SEGMENT).open()
    size = 1000
    per_entry = len(encode_entry(entry(0, size=size, samples=3)))
    for i in range(100):
        queue.append([entry(i, size=size, samples=3)])
    # Then the disk use stays within the bound
    assert sum(p.stat().st_size for p in segments(qdir)) <= 8 * SEGMENT
    # And the newest entries are kept, the oldest dropped, with exact counts
    kept = drain(queue)
    assert kept == list(range(100 - len(kept), 100))
    assert queue.stats.dropped_entries == 100 - len(kept)
    assert queue.stats.dropped_samples == 3 * (100 - len(kept))
    assert len(kept) >= (8 * SEGMENT // per_entry) - 2 * (SEGMENT // per_entry) - 1
    queue.close()


def test_drops_count_only_undelivered_entries_of_a_partly_delivered_segment(qdir: Path) -> None:
    queue = DiskQueue(qdir, max_bytes=8 * SEGMENT, segment_bytes=SEGMENT).open()
    queue.append([entry(i, size=1000) for i in range(4)])  # one segment's worth (3 fit)
    queue.ack(*queue.peek(max_entries=2))
    for i in range(4, 60):
        queue.append([entry(i, size=1000)])
    kept = drain(queue)
    # Every entry is either delivered, kept or counted as dropped: none vanishes
    assert 2 + len(kept) + queue.stats.dropped_entries == 60
    queue.close()


def test_a_batch_larger_than_the_queue_is_refused(queue: DiskQueue) -> None:
    with pytest.raises(QueueError, match="does not fit"):
        queue.append([entry(0, size=64 * SEGMENT)])
    assert queue.stats.depth_entries == 0


def test_a_second_process_cannot_open_the_same_queue(queue: DiskQueue, qdir: Path) -> None:
    with pytest.raises(QueueLockedError, match="in use"):
        DiskQueue(qdir, max_bytes=64 * SEGMENT, segment_bytes=SEGMENT).open()


def test_export_round_trip_keeps_the_queue_unless_drained(queue: DiskQueue, tmp_path: Path) -> None:
    # Given 40 entries, 10 of them delivered
    queue.append([entry(i, size=500) for i in range(40)])
    queue.ack(*queue.peek(max_entries=10))
    # When exported without draining, into small files
    files = export_queue(queue, tmp_path / "out", file_bytes=4000)
    # Then the files hold exactly the 30 undelivered entries, and the queue still has them
    assert len(files) > 1
    exported = [int(e.body[:8]) for f in files for e in read_entries_file(f)]
    assert exported == list(range(10, 40))
    assert queue.stats.depth_entries == 30
    # When exported again with drain
    files = export_queue(queue, tmp_path / "drained", drain=True)
    # Then the queue is empty and the files have everything
    assert [int(e.body[:8]) for f in files for e in read_entries_file(f)] == list(range(10, 40))
    assert queue.stats.depth_entries == 0
    assert queue.peek() == []


def test_reading_an_export_file_skips_corrupt_regions(tmp_path: Path) -> None:
    path = tmp_path / "x.seg"
    path.write_bytes(encode_entry(entry(1)) + b"garbage" * 10 + encode_entry(entry(2)))
    assert [int(e.body[:8]) for e in read_entries_file(path)] == [1, 2]
