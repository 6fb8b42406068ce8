"""The agent's disk-backed queue: append-only segment files, a cursor, a size bound.

Layout of the queue directory::

    00000000000000000001.seg   segment files, oldest first; entries appended, never rewritten
    cursor                     JSON {"segment": N, "offset": B}: where the first undelivered entry starts
    lock                       held (flock) by the one process using the queue

Each entry is one ready-to-send request (remote write body, OTLP body) with its kind, the headers it
needs, how many samples it holds and when it was enqueued. On disk::

    magic "NQ" | kind u8 | version u8 | payload length u32 | samples u32 | enqueued ms i64 | crc32 u32
    payload = headers length u16 | headers ("name: value\\n"…, UTF-8) | body

all little-endian; the CRC covers the header fields before it and the payload.

Guarantees:

- ``append`` returns after the entries are written and ``fsync``-ed: an entry whose append returned
  survives ``kill -9`` and power loss. A crash mid-append leaves a torn tail, cut off on the next open.
- The cursor is replaced atomically (temp file, fsync, rename) after delivery. A crash between a
  delivery and the cursor update resends that entry; the bodies are resent byte for byte, samples keep
  the timestamps they were given at enqueue time, and NovaCron keeps one sample per series and
  timestamp, so a resend stores nothing twice.
- Corrupt bytes inside a segment (bad CRC, impossible length) are skipped up to the next valid entry
  and counted (``corrupt_regions``); reading never raises for them.
- The queue holds at most ``max_bytes`` of segments. Appending past that deletes the oldest segments
  first and counts the undelivered entries and samples they held as dropped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

MAGIC = b"NQ"
VERSION = 1
_HEADER = struct.Struct("<2sBBIIqI")
HEADER_SIZE = _HEADER.size
_CRC_OFFSET = HEADER_SIZE - 4
_HEADERS_LEN = struct.Struct("<H")
SEGMENT_SUFFIX = ".seg"
CURSOR_FILE = "cursor"
LOCK_FILE = "lock"
# An entry is one HTTP request; nothing legitimate comes near this, so a larger length is corruption.
MAX_ENTRY_BYTES = 256 * 1024 * 1024


class Kind(Enum):
    """What an entry is, which decides where it is sent."""

    REMOTE_WRITE = 1
    OTLP_METRICS = 2
    OTLP_TRACES = 3


@dataclass(frozen=True)
class Entry:
    """One ready-to-send request."""

    kind: Kind
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    samples: int = 0
    enqueued_ms: int = 0


@dataclass(frozen=True, order=True)
class Position:
    """A byte offset in a segment; positions order as the queue does."""

    segment: int
    offset: int


@dataclass(frozen=True)
class QueuedEntry:
    """An entry read from the queue, with where it ends (what ``ack`` takes)."""

    entry: Entry
    start: Position
    end: Position


@dataclass
class QueueStats:
    """Counters and gauges of a queue (since it was opened; depth covers what is on disk)."""

    depth_bytes: int = 0
    depth_entries: int = 0
    depth_samples: int = 0
    appended_entries: int = 0
    appended_bytes: int = 0
    acked_entries: int = 0
    dropped_entries: int = 0
    dropped_samples: int = 0
    corrupt_regions: int = 0
    segments: int = 0


class QueueError(Exception):
    """The queue cannot do what was asked (locked by another process, entry too large)."""


class QueueLockedError(QueueError):
    """Another process (a running agent, an export) holds the queue directory."""


# --- entry encoding -----------------------------------------------------------------------------


def encode_entry(entry: Entry) -> bytes:
    """The on-disk bytes of ``entry``."""
    headers = "".join(f"{k}: {v}\n" for k, v in entry.headers.items()).encode()
    payload_len = _HEADERS_LEN.size + len(headers) + len(entry.body)
    head = _HEADER.pack(MAGIC, entry.kind.value, VERSION, payload_len, entry.samples, entry.enqueued_ms, 0)
    prefix = head[:_CRC_OFFSET]
    payload_head = _HEADERS_LEN.pack(len(headers)) + headers
    crc = zlib.crc32(entry.body, zlib.crc32(payload_head, zlib.crc32(prefix)))
    return b"".join((prefix, struct.pack("<I", crc), payload_head, entry.body))


class _Corrupt(Exception):
    pass


def _decode_at(data: bytes | memoryview, pos: int) -> tuple[Entry, int]:
    """The entry starting at ``pos`` and where it ends; ``_Corrupt`` if the bytes there are not one."""
    if len(data) - pos < HEADER_SIZE:
        raise _Corrupt("truncated header")
    magic, kind, version, payload_len, samples, enqueued_ms, crc = _HEADER.unpack_from(data, pos)
    if magic != MAGIC or version != VERSION or payload_len > MAX_ENTRY_BYTES or payload_len < _HEADERS_LEN.size:
        raise _Corrupt("bad header")
    end = pos + HEADER_SIZE + payload_len
    if end > len(data):
        raise _Corrupt("truncated payload")
    payload = data[pos + HEADER_SIZE : end]
    if zlib.crc32(payload, zlib.crc32(data[pos : pos + _CRC_OFFSET])) != crc:
        raise _Corrupt("crc mismatch")
    try:
        kind_value = Kind(kind)
        (headers_len,) = _HEADERS_LEN.unpack_from(payload, 0)
        text = bytes(payload[_HEADERS_LEN.size : _HEADERS_LEN.size + headers_len]).decode()
    except (ValueError, struct.error) as exc:
        raise _Corrupt(f"bad payload: {exc}") from None
    headers = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    body = bytes(payload[_HEADERS_LEN.size + headers_len :])
    return Entry(kind_value, body, headers, samples, enqueued_ms), end


def _next_valid(data: bytes | memoryview, pos: int) -> int:
    """The offset of the first valid entry after ``pos`` (``len(data)`` if none)."""
    raw = bytes(data)
    probe = raw.find(MAGIC, pos + 1)
    while probe != -1:
        with contextlib.suppress(_Corrupt):
            _decode_at(raw, probe)
            return probe
        probe = raw.find(MAGIC, probe + 1)
    return len(raw)


def scan(data: bytes | memoryview, start: int = 0) -> Iterator[tuple[int, int, Entry | None]]:
    """Each ``(start, end, entry)`` from ``start``; a corrupt region comes as ``entry=None``."""
    pos = 0 + start
    while pos < len(data):
        try:
            entry, end = _decode_at(data, pos)
        except _Corrupt:
            end = _next_valid(data, pos)
            yield pos, end, None
        else:
            yield pos, end, entry
        pos = end


def read_entries_file(path: Path) -> Iterator[Entry]:
    """The valid entries of a segment or export file, skipping corrupt regions (logged)."""
    data = path.read_bytes()
    for start, end, entry in scan(data):
        if entry is None:
            log.warning("%s: skipped %d corrupt bytes at offset %d", path, end - start, start)
            continue
        yield entry


def _read_at(f: BinaryIO, offset: int, limit: int) -> tuple[Entry, int]:
    """The entry at ``offset`` of an open segment holding ``limit`` valid bytes, and its length."""
    f.seek(offset)
    head = f.read(HEADER_SIZE)
    if len(head) < HEADER_SIZE:
        raise _Corrupt("truncated header")
    payload_len = _HEADER.unpack(head)[3]
    if offset + HEADER_SIZE + payload_len > limit:
        raise _Corrupt("length past the end")
    entry, end = _decode_at(head + f.read(payload_len), 0)
    return entry, end


def _headers_only(path: Path, start: int, end: int) -> tuple[int, int]:
    """(entries, samples) between ``start`` and ``end`` of a segment, walking headers without CRC checks."""
    entries = samples = 0
    with path.open("rb") as f:
        pos = start
        while pos < end:
            f.seek(pos)
            head = f.read(HEADER_SIZE)
            if len(head) < HEADER_SIZE:
                break
            magic, _, _, payload_len, n, _, _ = _HEADER.unpack(head)
            if magic != MAGIC:
                break  # corrupt: counted when the reader reaches it
            entries += 1
            samples += n
            pos += HEADER_SIZE + payload_len
    return entries, samples


# --- the queue ----------------------------------------------------------------------------------


@dataclass
class _Segment:
    seq: int
    path: Path
    size: int = 0
    entries: int = 0
    samples: int = 0
    sealed: bool = True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DiskQueue:
    """A bounded, crash-safe FIFO of ``Entry`` on disk, for one producer side and one consumer.

    Any thread may ``append``; one sender thread reads with ``peek`` and confirms with ``ack``.
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = 1024**3,
        segment_bytes: int = 16 * 1024**2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if segment_bytes <= 0 or max_bytes < 2 * segment_bytes:
            raise ValueError("max_bytes must be at least twice segment_bytes")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._segments: list[_Segment] = []
        self._cursor = Position(0, 0)
        self._consumed_entries = 0  # of the cursor's segment, before the cursor
        self._consumed_samples = 0
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self.stats = QueueStats()

    # --- lifecycle ---

    def open(self) -> DiskQueue:
        """Lock the directory, recover from a crash (torn tail), resume after the cursor."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise QueueLockedError(f"queue {self.directory} is in use by another process (a running agent?)") from None
        self._cursor = self._load_cursor()
        found = sorted(int(p.name[: -len(SEGMENT_SUFFIX)]) for p in self.directory.glob(f"*{SEGMENT_SUFFIX}"))
        for seq in found:
            path = self._path(seq)
            if seq < self._cursor.segment:
                path.unlink()  # delivered; the crash came before its deletion
                continue
            self._segments.append(_Segment(seq, path, path.stat().st_size))
        if self._segments:
            self._cut_torn_tail(self._segments[-1])
        for segment in self._segments:
            segment.entries, segment.samples = _headers_only(segment.path, 0, segment.size)
        if self._segments and self._cursor.segment != self._segments[0].seq:
            self._cursor = Position(self._segments[0].seq, 0)  # the cursor's segment was dropped
        elif self._segments:
            offset = min(self._cursor.offset, self._segments[0].size)
            self._cursor = Position(self._segments[0].seq, offset)
            first = self._segments[0]
            self._consumed_entries, self._consumed_samples = _headers_only(first.path, 0, offset)
        next_seq = (self._segments[-1].seq if self._segments else max(self._cursor.segment, 0)) + 1
        if not self._segments:
            self._cursor = Position(next_seq, 0)
        self._start_segment(next_seq)
        self._refresh_depth()
        log.info(
            "queue %s: %d undelivered entries (%d bytes) in %d segments",
            self.directory,
            self.stats.depth_entries,
            self.stats.depth_bytes,
            len(self._segments),
        )
        return self

    def close(self) -> None:
        """fsync and close the active segment, release the directory."""
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = None
            self._changed.notify_all()

    def __enter__(self) -> DiskQueue:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- producing ---

    def append(self, entries: Sequence[Entry]) -> None:
        """Write ``entries`` and fsync; when this returns they survive a crash.

        Entries without ``enqueued_ms`` get the current time. Raises ``QueueError`` for a batch
        larger than the whole queue may hold (nothing is written then).
        """
        if not entries:
            return
        now_ms = int(self._clock() * 1000)
        encoded = [
            (encode_entry(e if e.enqueued_ms else Entry(e.kind, e.body, e.headers, e.samples, now_ms)), e.samples)
            for e in entries
        ]
        total = sum(len(raw) for raw, _ in encoded)
        if total > self.max_bytes - self.segment_bytes:
            raise QueueError(f"a batch of {total} bytes does not fit in a queue of {self.max_bytes} bytes")
        with self._lock:
            if self._fd is None:
                raise QueueError("queue is closed")
            self._make_room(total)
            chunk: list[bytes] = []
            for raw, samples in encoded:
                active = self._segments[-1]
                if active.size > 0 and active.size + len(raw) > self.segment_bytes:
                    self._write(chunk)
                    chunk = []
                    self._seal_and_roll()
                    active = self._segments[-1]
                chunk.append(raw)
                active.size += len(raw)
                active.entries += 1
                active.samples += samples
                self.stats.appended_entries += 1
                self.stats.appended_bytes += len(raw)
            self._write(chunk)
            self._refresh_depth()
            self._changed.notify_all()

    def _write(self, chunk: list[bytes]) -> None:
        if not chunk or self._fd is None:
            return
        data = b"".join(chunk)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)

    def _make_room(self, needed: int) -> None:
        while self._on_disk() + needed > self.max_bytes and self._segments:
            oldest = self._segments[0]
            if not oldest.sealed:
                self._seal_and_roll()
            self._drop_segment(oldest)

    def _drop_segment(self, segment: _Segment) -> None:
        if segment.seq == self._cursor.segment:
            lost_entries = segment.entries - self._consumed_entries
            lost_samples = segment.samples - self._consumed_samples
        else:
            lost_entries, lost_samples = segment.entries, segment.samples
        self.stats.dropped_entries += lost_entries
        self.stats.dropped_samples += lost_samples
        log.warning(
            "queue full (%d bytes): dropped the oldest %d entries (%d samples)",
            self.max_bytes,
            lost_entries,
            lost_samples,
        )
        self._segments.remove(segment)
        segment.path.unlink(missing_ok=True)
        nxt = self._segments[0].seq if self._segments else segment.seq + 1
        if self._cursor.segment <= segment.seq:
            self._cursor = Position(nxt, 0)
            self._consumed_entries = self._consumed_samples = 0
            self._save_cursor()

    def _seal_and_roll(self) -> None:
        active = self._segments[-1]
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
        active.sealed = True
        self._start_segment(active.seq + 1)

    def _start_segment(self, seq: int) -> None:
        path = self._path(seq)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segments.append(_Segment(seq, path, os.fstat(self._fd).st_size, sealed=False))
        _fsync_dir(self.directory)

    # --- consuming ---

    def peek(
        self, max_entries: int = 1, max_bytes: int = 64 * 1024**2, after: Position | None = None
    ) -> list[QueuedEntry]:
        """Undelivered entries from the cursor (or from ``after``) on, without removing them.

        Returns at least one entry when there is one, then stops at ``max_entries`` or ``max_bytes``
        of bodies. Corrupt bytes at the cursor are skipped and counted.
        """
        with self._lock:
            out: list[QueuedEntry] = []
            total = 0
            pos = self._cursor if after is None or after < self._cursor else after
            while len(out) < max_entries:
                segment = self._segment(pos.segment)
                if segment is None:
                    later = [s for s in self._segments if s.seq > pos.segment]
                    if not later:
                        break
                    pos = Position(later[0].seq, 0)
                    continue
                if pos.offset >= segment.size:
                    later = [s for s in self._segments if s.seq > segment.seq]
                    if not segment.sealed or not later:
                        break
                    pos = Position(later[0].seq, 0)
                    continue
                with segment.path.open("rb") as f:
                    offset = pos.offset
                    while offset < segment.size and len(out) < max_entries:
                        try:
                            entry, length = _read_at(f, offset, segment.size)
                        except _Corrupt:
                            if out:
                                return out  # deliver what comes before it first
                            f.seek(offset)
                            end = offset + _next_valid(f.read(segment.size - offset), 0)
                            if Position(segment.seq, offset) == self._cursor:
                                self._skip_corrupt(segment, offset, end)
                            offset = end
                            continue
                        if out and total + len(entry.body) > max_bytes:
                            return out
                        out.append(
                            QueuedEntry(entry, Position(segment.seq, offset), Position(segment.seq, offset + length))
                        )
                        total += len(entry.body)
                        offset += length
                    pos = Position(segment.seq, offset)
            return out

    def wait(self, timeout: float) -> None:
        """Block until something is appended (or ``timeout`` seconds pass)."""
        with self._lock:
            self._changed.wait(timeout)

    def ack(self, *delivered: QueuedEntry) -> None:
        """Mark ``delivered`` (in queue order) and everything before them delivered; persists the cursor once."""
        with self._lock:
            if self._fd is None:
                return  # closed while a send was in flight: it is resent after the next start
            moved = False
            for queued in delivered:
                if queued.end <= self._cursor or self._segment(queued.end.segment) is None:
                    continue  # dropped meanwhile (queue full), or acked already
                if queued.end.segment != self._cursor.segment:
                    self._advance_to_segment(queued.end.segment)
                self._consumed_entries += 1
                self._consumed_samples += queued.entry.samples
                self._cursor = queued.end
                self.stats.acked_entries += 1
                self._release_consumed()
                moved = True
            if moved:
                self._save_cursor()
                self._refresh_depth()

    def _skip_corrupt(self, segment: _Segment, start: int, end: int) -> None:
        self.stats.corrupt_regions += 1
        log.error("queue segment %d: skipped %d corrupt bytes at offset %d", segment.seq, end - start, start)
        # The header walk stops at the corrupt bytes; count again from where the valid entries resume.
        before_e, before_s = _headers_only(segment.path, 0, start)
        after_e, after_s = _headers_only(segment.path, end, segment.size)
        segment.entries, segment.samples = before_e + after_e, before_s + after_s
        self._cursor = Position(segment.seq, end)
        self._consumed_entries, self._consumed_samples = before_e, before_s
        self._save_cursor()
        self._refresh_depth()

    def _advance_to_segment(self, seq: int) -> None:
        for segment in list(self._segments):
            if segment.seq < seq and segment.sealed:
                self._segments.remove(segment)
                segment.path.unlink(missing_ok=True)
        self._cursor = Position(seq, 0)
        self._consumed_entries = self._consumed_samples = 0

    def _release_consumed(self) -> None:
        """Delete the cursor's segment once fully delivered and sealed; move the cursor to the next."""
        while len(self._segments) > 1:
            first = self._segments[0]
            if not (first.sealed and self._cursor.segment == first.seq and self._cursor.offset >= first.size):
                break
            self._segments.remove(first)
            first.path.unlink(missing_ok=True)
            self._cursor = Position(self._segments[0].seq, 0)
            self._consumed_entries = self._consumed_samples = 0

    # --- bookkeeping ---

    def _segment(self, seq: int) -> _Segment | None:
        for segment in self._segments:
            if segment.seq == seq:
                return segment
        return None

    def _on_disk(self) -> int:
        return sum(s.size for s in self._segments)

    def _refresh_depth(self) -> None:
        undelivered = [s for s in self._segments if s.seq >= self._cursor.segment]
        first_is_cursor = bool(undelivered) and undelivered[0].seq == self._cursor.segment
        offset = self._cursor.offset if first_is_cursor else 0
        consumed_e = self._consumed_entries if first_is_cursor else 0
        consumed_s = self._consumed_samples if first_is_cursor else 0
        self.stats.depth_bytes = sum(s.size for s in undelivered) - offset
        self.stats.depth_entries = sum(s.entries for s in undelivered) - consumed_e
        self.stats.depth_samples = sum(s.samples for s in undelivered) - consumed_s
        self.stats.segments = len(self._segments)

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:020d}{SEGMENT_SUFFIX}"

    def _cut_torn_tail(self, segment: _Segment) -> None:
        """Truncate the last segment after its last valid entry (a crash mid-append leaves a torn one)."""
        data = segment.path.read_bytes()
        valid_end = 0
        for _, end, entry in scan(data):
            if entry is not None:
                valid_end = end
        if valid_end < len(data):
            log.warning(
                "queue segment %s: cut a torn tail of %d bytes (an append interrupted by a crash)",
                segment.path.name,
                len(data) - valid_end,
            )
            with segment.path.open("r+b") as f:
                f.truncate(valid_end)
                os.fsync(f.fileno())
            segment.size = valid_end

    def _load_cursor(self) -> Position:
        path = self.directory / CURSOR_FILE
        try:
            data = json.loads(path.read_text())
            return Position(int(data["segment"]), int(data["offset"]))
        except FileNotFoundError:
            return Position(0, 0)
        except (ValueError, KeyError, TypeError):
            log.error("queue cursor %s is unreadable; resending from the oldest segment", path)
            return Position(0, 0)

    def _save_cursor(self) -> None:
        path = self.directory / CURSOR_FILE
        temp = path.with_suffix(".tmp")
        with temp.open("w") as f:
            json.dump({"segment": self._cursor.segment, "offset": self._cursor.offset}, f)
            f.flush()
            os.fsync(f.fileno())
        temp.replace(path)
        _fsync_dir(self.directory)


def export_queue(
    queue: DiskQueue, output_dir: Path, *, file_bytes: int = 64 * 1024**2, drain: bool = False
) -> list[Path]:
    """Write the undelivered entries of an open ``queue`` to files in ``output_dir`` (segment format).

    With ``drain`` the exported entries are acknowledged once their file is fsync-ed, so the agent
    will not send them itself; without it the queue is left as it was.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    files: list[Path] = []
    out: BinaryIO | None = None
    size = 0
    after: Position | None = None
    try:
        while batch := queue.peek(max_entries=1000, after=after):
            for queued in batch:
                raw = encode_entry(queued.entry)
                if out is None or (size and size + len(raw) > file_bytes):
                    if out is not None:
                        _close_synced(out)
                    path = output_dir / f"novacron-queue-{stamp}-{len(files) + 1:04d}{SEGMENT_SUFFIX}"
                    files.append(path)
                    out = path.open("xb")
                    size = 0
                out.write(raw)
                size += len(raw)
            after = batch[-1].end
            if drain and out is not None:
                out.flush()
                os.fsync(out.fileno())
                queue.ack(*batch)
    finally:
        if out is not None:
            _close_synced(out)
    return files


def _close_synced(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())
    out.close()
