"""The ingest use cases: remote write (1.0 and 2.0) and native JSON in, stream records out.

Status codes follow the remote-write spec's retry semantics: 4xx for data the sender must not send
again (it is wrong and will stay wrong), 5xx/429 for data it should resend (we could not take it
now). Valid series in a request with some invalid ones are still written, and the answer is 400
naming the invalid ones, as Prometheus's own receiver does; nothing that got a 2xx is dropped.
"""

from __future__ import annotations

import json
import operator
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import cramjam
import numpy as np
import numpy.typing as npt

from novacron.ingest.validate import SeriesValidator, Verdict, format_labels
from novacron.protocols.remote_write_pb import Label, Sample, TimeSeries
from novacron.protocols.remote_write_v2 import V2Decoder, V2RequestError
from novacron.protocols.wire import DecodedSeries, WireFormatError, decode_series, decode_write_request
from novacron.records import MAX_RECORD_PAYLOAD, StreamRecord, encode_record

_FRAMED_SNAPPY_MAGIC = b"\xff\x06\x00\x00sNaPpY"
_V1_PROTO = "prometheus.WriteRequest"
_V2_PROTO = "io.prometheus.write.v2.Request"
_MAX_LISTED_REJECTIONS = 10
# Response headers of remote write 2.0: what was written, so the sender can tell partial writes.
SAMPLES_WRITTEN = "X-Prometheus-Remote-Write-Samples-Written"
HISTOGRAMS_WRITTEN = "X-Prometheus-Remote-Write-Histograms-Written"
EXEMPLARS_WRITTEN = "X-Prometheus-Remote-Write-Exemplars-Written"


class StreamUnavailable(Exception):
    """The stream did not take all records after retries; the sender should retry later."""

    def __init__(self, message: str, throttled: bool, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.throttled = throttled
        self.retry_after_s = retry_after_s


class StreamSink(Protocol):
    """Where packed records go (Kinesis in AWS and locally, a list in tests)."""

    def put(self, records: Sequence[StreamRecord]) -> None:
        """Write every record or raise StreamUnavailable."""
        ...


class IngestError(Exception):
    """The whole request is refused with ``status``."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass
class IngestResult:
    """What happened to one request."""

    series_accepted: int = 0
    samples_accepted: int = 0  # samples stored, including zeros added for created timestamps
    records: int = 0
    rejected: list[str] = field(default_factory=list)
    version: int = 1  # remote write protocol major version (1 also for native JSON)
    created_samples: int = 0  # of samples_accepted: zeros added from 2.0 created timestamps
    histograms_written: int = 0  # native histograms are not stored yet
    exemplars_written: int = 0  # exemplars are not stored yet

    @property
    def samples_written(self) -> int:
        """Samples of the sender's stored: the added created-timestamp zeros are not the sender's."""
        return self.samples_accepted - self.created_samples

    def response_headers(self) -> dict[str, str]:
        """The written-count headers remote write 2.0 answers with (none for 1.0, which has none)."""
        if self.version < 2:
            return {}
        return {
            SAMPLES_WRITTEN: str(self.samples_written),
            HISTOGRAMS_WRITTEN: str(self.histograms_written),
            EXEMPLARS_WRITTEN: str(self.exemplars_written),
        }

    def rejection_message(self) -> str:
        """A 400 body naming the rejected series (the first few, and how many in all)."""
        shown = self.rejected[:_MAX_LISTED_REJECTIONS]
        more = len(self.rejected) - len(shown)
        lines = [f"{len(self.rejected)} series rejected ({self.series_accepted} accepted):", *shown]
        if more:
            lines.append(f"... and {more} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class IngestSettings:
    """Request-level rules of the ingest path."""

    max_decoded_bytes: int = 64 * 1024 * 1024
    max_sample_age_s: int = 2 * 3600
    max_sample_future_s: int = 600


class IngestService:
    """Decode → validate → pack into stream records → put."""

    def __init__(
        self,
        sink: StreamSink,
        settings: IngestSettings | None = None,
        validator: SeriesValidator | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.sink = sink
        self.settings = settings or IngestSettings()
        self.validator = validator or SeriesValidator()
        self.clock_ms = clock_ms

    # --- remote write 1.0 and 2.0 -----------------------------------------------------------

    def remote_write(self, body: bytes, headers: Mapping[str, str], tenant: str) -> IngestResult:
        """Handle one ``POST /api/v1/write`` body (headers with lower-case names).

        The ``proto`` parameter of ``Content-Type`` picks the message: 1.0 ``prometheus.WriteRequest``
        (the default) or 2.0 ``io.prometheus.write.v2.Request``.
        """
        if check_remote_write_headers(headers) == 2:
            records, result = self.pack_remote_write_v2(body, tenant)
        else:
            records, result = self.pack_remote_write(body, tenant)
        self._put(records)
        return result

    def pack_remote_write(self, body: bytes, tenant: str) -> tuple[list[StreamRecord], IngestResult]:
        """Decode, validate and pack a snappy-compressed WriteRequest (no I/O)."""
        raw = decompress_snappy_block(body, self.settings.max_decoded_bytes)
        try:
            decoded = decode_write_request(raw)
        except WireFormatError as exc:
            raise IngestError(400, str(exc)) from None
        return self.pack(decoded, tenant)

    def pack_remote_write_v2(self, body: bytes, tenant: str) -> tuple[list[StreamRecord], IngestResult]:
        """Decode, validate and pack a snappy-compressed 2.0 Request (no I/O).

        Each 2.0 series is rewritten as its 1.0 encoding first, so everything after decoding is the
        1.0 path. Requests refused as a whole still carry the (zero) written-count headers.
        """
        try:
            raw = decompress_snappy_block(body, self.settings.max_decoded_bytes)
            now = self.clock_ms()
            window = (now - self.settings.max_sample_age_s * 1000, now + self.settings.max_sample_future_s * 1000)
            try:
                v2 = V2Decoder(window).decode(raw)
                decoded = decode_series(v2.contents)
            except (WireFormatError, V2RequestError) as exc:
                raise IngestError(400, str(exc)) from None
        except IngestError as exc:
            exc.headers.update(IngestResult(version=2).response_headers())
            raise
        # The same clock reading as the decoder's window: a created timestamp it kept stays inside.
        records, result = self.pack(decoded, tenant, created_samples=v2.created_samples, now=now)
        result.version = 2
        result.rejected[:0] = v2.rejected
        return records, result

    # --- native JSON ------------------------------------------------------------------------

    def ingest_json(self, body: bytes, tenant: str) -> IngestResult:
        """Handle one ``POST /api/v1/ingest`` body (see docs/ingest-json.md)."""
        return self.ingest_encoded(json_to_series(body, self.clock_ms()), tenant)

    def ingest_encoded(self, contents: list[bytes], tenant: str) -> IngestResult:
        """Validate, pack and put series given as ``TimeSeries`` encodings.

        The one entry point of every protocol that is not remote write (OTLP, Firehose, the agent's
        imports): each turns its payload into ``TimeSeries`` encodings and hands them here.
        """
        try:
            decoded = decode_series(contents)
        except WireFormatError as exc:
            raise IngestError(400, str(exc)) from None
        records, result = self.pack(decoded, tenant)
        self._put(records)
        return result

    # --- shared -----------------------------------------------------------------------------

    def pack(
        self,
        decoded: DecodedSeries,
        tenant: str,
        created_samples: npt.NDArray[np.int64] | None = None,
        now: int | None = None,
    ) -> tuple[list[StreamRecord], IngestResult]:
        """Validate decoded series and pack the valid ones into records by partition bucket.

        ``created_samples`` counts, per series, samples the receiver added (2.0 created timestamps),
        so that the result can tell them from the sender's. Per-series work is a cache lookup;
        everything else is numpy over all series at once. ``now`` defaults to the service's clock.
        """
        result = IngestResult()
        n = len(decoded)
        if n == 0:
            return [], result
        if now is None:
            now = self.clock_ms()
        low = now - self.settings.max_sample_age_s * 1000
        high = now + self.settings.max_sample_future_s * 1000
        buckets = np.fromiter(map(self.validator.bucket_of, decoded.label_bytes), dtype=np.int64, count=n)
        outside = _series_outside(decoded, low, high)
        # A series travels in one stream record, so one larger than a record can hold is refused.
        oversized = decoded.lengths + 4 > MAX_RECORD_PAYLOAD
        refused = (buckets < 0) | outside | oversized
        refused[decoded.histogram_series] = True
        if refused.any():
            for i in np.flatnonzero(refused).tolist():
                verdict = self.validator.check(decoded.label_bytes[i])
                if verdict.valid and oversized[i]:
                    result.rejected.append(
                        f"series encodes to {int(decoded.lengths[i])} bytes, more than the {MAX_RECORD_PAYLOAD} a "
                        f"series may take in one request; send fewer samples per request: "
                        f"{format_labels(verdict.labels)}"
                    )
                    continue
                result.rejected.append(_rejection(decoded, i, verdict, bool(outside[i]), low, high))
        accepted = np.flatnonzero(~refused)
        counts = np.diff(decoded.offsets)
        result.series_accepted = int(accepted.size)
        result.samples_accepted = int(counts[accepted].sum())
        if created_samples is not None:
            result.created_samples = int(created_samples[accepted].sum())
        if accepted.size == 0:
            return [], result
        order = accepted[np.argsort(buckets[accepted], kind="stable")]
        ordered_buckets = buckets[order]
        sizes = decoded.lengths[order]
        gathered = (
            operator.itemgetter(*order.tolist())(decoded.contents)
            if order.size > 1
            else (decoded.contents[int(order[0])],)
        )
        records = []
        bounds = np.flatnonzero(np.diff(ordered_buckets)) + 1
        for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), order.size], strict=True):
            key = f"{tenant}:{int(ordered_buckets[lo])}"
            for a, b in _chunk_bounds(sizes[lo:hi]):
                data = encode_record(tenant, now, gathered[lo + a : lo + b], sizes[lo + a : lo + b])
                records.append(StreamRecord(key, data))
        result.records = len(records)
        return records, result

    def _put(self, records: list[StreamRecord]) -> None:
        if not records:
            return
        try:
            self.sink.put(records)
        except StreamUnavailable as exc:
            status = 429 if exc.throttled else 503
            raise IngestError(
                status,
                f"the metrics stream did not accept the data ({exc}); retry later",
                {"Retry-After": str(exc.retry_after_s)},
            ) from None


def check_remote_write_headers(headers: Mapping[str, str]) -> int:
    """The remote write major version a request uses (1 or 2); 415 for anything else."""
    content_type = headers.get("content-type", "")
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if media != "application/x-protobuf":
        raise IngestError(
            415, f"unsupported Content-Type {content_type!r}: remote write needs 'application/x-protobuf'"
        )
    proto = ""
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "proto":
            proto = value.strip().strip('"')
    if proto not in ("", _V1_PROTO, _V2_PROTO):
        raise IngestError(415, f"unknown remote write message {proto!r}; supported: {_V1_PROTO}, {_V2_PROTO}")
    if proto == _V2_PROTO:
        major = 2  # the proto parameter names the message; the version header adds nothing to it
    else:
        major = 1
        version = headers.get("x-prometheus-remote-write-version", "")
        if version and not version.startswith("0.1"):
            raise IngestError(415, f"unsupported X-Prometheus-Remote-Write-Version {version!r}; supported: 0.1.0")
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding != "snappy":
        raise IngestError(
            415, f"unsupported Content-Encoding {encoding or '(none)'!r}: remote write bodies must be snappy-compressed"
        )
    return major


def decompress_snappy_block(body: bytes, max_decoded_bytes: int) -> memoryview:
    """Decompress a snappy *block* body, refusing framed snappy and oversized bodies clearly."""
    if body.startswith(_FRAMED_SNAPPY_MAGIC):
        raise IngestError(400, "body uses the snappy framed format; remote write uses the snappy block format")
    if not body:
        raise IngestError(400, "empty body: expected a snappy-compressed WriteRequest")
    declared = _uvarint_prefix(body)
    if declared is None:
        raise IngestError(400, "body is not snappy-compressed (no valid length header)")
    if declared > max_decoded_bytes:
        raise IngestError(
            413,
            f"body decompresses to {declared} bytes, more than the limit of {max_decoded_bytes}; send smaller batches",
        )
    try:
        # A view of cramjam's buffer: the protobuf parser reads it without a copy of the body.
        return memoryview(cramjam.snappy.decompress_raw(body))
    except Exception as exc:
        raise IngestError(400, f"body is not valid snappy block data: {exc}") from None


def json_to_series(body: bytes, now_ms: int) -> list[bytes]:
    """Turn a native JSON ingest body into TimeSeries encodings, validating its shape."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise IngestError(400, f"body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("series"), list):
        raise IngestError(400, 'body must be a JSON object with a "series" array')
    out = []
    for n, entry in enumerate(doc["series"]):
        where = f"series[{n}]"
        if not isinstance(entry, dict):
            raise IngestError(400, f"{where} must be an object with 'labels' and 'samples'")
        labels = entry.get("labels")
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise IngestError(400, f"{where}.labels must be an object of string to string")
        if not all(_encodable(k) and _encodable(v) for k, v in labels.items()):
            raise IngestError(400, f"{where}.labels holds a string that is not valid Unicode (a lone surrogate)")
        samples = entry.get("samples")
        if not isinstance(samples, list) or not samples:
            raise IngestError(400, f"{where}.samples must be a non-empty array of [timestamp_ms, value]")
        ts = TimeSeries(labels=[Label(name=k, value=v) for k, v in sorted(labels.items())])
        for m, sample in enumerate(samples):
            stamp, value = _json_sample(sample, now_ms, f"{where}.samples[{m}]")
            ts.samples.append(Sample(timestamp=stamp, value=value))
        out.append(ts.SerializeToString())
    return out


def _json_sample(sample: object, now_ms: int, where: str) -> tuple[int, float]:
    if not isinstance(sample, list) or len(sample) != 2:
        raise IngestError(400, f"{where} must be [timestamp_ms, value] (timestamp may be null for now)")
    stamp, value = sample
    if stamp is None:
        stamp = now_ms
    if isinstance(stamp, bool) or not isinstance(stamp, int) or not -(2**63) <= stamp < 2**63:
        raise IngestError(400, f"{where}: timestamp must be integer milliseconds since the epoch or null")
    if isinstance(value, str) and value in ("NaN", "+Inf", "-Inf", "Inf"):
        value = float(value.replace("Inf", "inf"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IngestError(400, f'{where}: value must be a number (or "NaN", "+Inf", "-Inf")')
    try:
        return stamp, float(value)
    except OverflowError:
        raise IngestError(400, f"{where}: value {str(value)[:40]}... does not fit a 64-bit float") from None


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _uvarint_prefix(data: bytes) -> int | None:
    value = 0
    for shift, byte in zip(range(0, 35, 7), data, strict=False):
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value
    return None


def _series_outside(decoded: DecodedSeries, low: int, high: int) -> npt.NDArray[np.bool_]:
    """Per series: whether at least one of its samples lies outside [low, high]."""
    outside = np.zeros(len(decoded), dtype=bool)
    bad = (decoded.timestamps < low) | (decoded.timestamps > high)
    if bad.any():
        owners = np.searchsorted(decoded.offsets, np.flatnonzero(bad), side="right") - 1
        outside[owners] = True
    return outside


def _rejection(decoded: DecodedSeries, i: int, verdict: Verdict, outside: bool, low: int, high: int) -> str:
    if not verdict.valid:
        return verdict.error
    if outside:
        stamps = decoded.timestamps[decoded.offsets[i] : decoded.offsets[i + 1]]
        first = int(stamps[(stamps < low) | (stamps > high)][0])
        return (
            f"sample at {_iso(first)} is outside the accepted window [{_iso(low)}, {_iso(high)}]: "
            f"{format_labels(verdict.labels)}"
        )
    return f"native histograms are not stored yet: {format_labels(verdict.labels)}"


def _iso(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return f"{ms}ms"


def _chunk_bounds(sizes: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    """Split one bucket's series into runs whose encoding stays under Kinesis's record size."""
    framed = sizes + 4
    if int(framed.sum()) <= MAX_RECORD_PAYLOAD:
        return [(0, int(sizes.size))]
    bounds = []
    start, total = 0, 0
    for i, size in enumerate(framed.tolist()):
        if total + size > MAX_RECORD_PAYLOAD and i > start:
            bounds.append((start, i))
            start, total = i, 0
        total += size
    bounds.append((start, int(sizes.size)))
    return bounds
