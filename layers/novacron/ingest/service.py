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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import cramjam
import numpy as np
import numpy.typing as npt

from novacron.ingest.admission import (
    BUCKET_MASK,
    CHECK,
    FILLED_UNKNOWN,
    INVALID,
    REFUSED,
    REWRITE,
    Admission,
    AdmissionCache,
)
from novacron.ingest.cardinality import CardinalityGate, CardinalityReader, Refusal
from novacron.ingest.pii import PiiRules, Scrubber
from novacron.ingest.policy import IngestPolicy
from novacron.ingest.validate import RejectReason, SeriesValidator, Verdict, format_labels
from novacron.protocols.histograms import ClassicBatch, native_series_v1, to_classic
from novacron.protocols.remote_write_pb import Label, Sample, TimeSeries
from novacron.protocols.remote_write_v2 import NativeSeries, V2Decoder, V2RequestError
from novacron.protocols.wire import DecodedSeries, WireFormatError, decode_series, decode_write_request
from novacron.records import MAX_RECORD_PAYLOAD, StreamRecord, encode_record
from novacron.storage.writer import day_of

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


class PolicySource(Protocol):
    """Where tenants' ingest policies come from (the settings table, cached; a dict in tests)."""

    def policy(self, tenant: str) -> IngestPolicy:
        """The tenant's policy (the default one when none is stored)."""
        ...


# A sender's API key labels (see auth.KeyRecord.labels).
KeyLabels = Mapping[str, str] | None


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
    # of samples_accepted: samples the receiver made, not float samples of the sender's (zeros from 2.0
    # created timestamps, and the classic series native histograms are stored as)
    created_samples: int = 0
    histograms_written: int = 0  # native histogram samples stored (as classic series)
    exemplars_written: int = 0  # exemplars are not stored yet
    rejected_by_reason: dict[str, int] = field(default_factory=dict)  # RejectReason value -> series
    labels_defaulted: int = 0  # accepted series given "unknown" for a required label

    def reject(self, reason: RejectReason, message: str) -> None:
        """Record one rejected series."""
        self.rejected.append(message)
        self.count_rejections(reason, 1)

    def count_rejections(self, reason: RejectReason, n: int) -> None:
        """Count ``n`` rejected series whose messages are (or will be) in ``rejected``."""
        if n:
            self.rejected_by_reason[reason.value] = self.rejected_by_reason.get(reason.value, 0) + n

    def metric_counts(self) -> dict[str, float]:
        """NovaCron's own metrics of this request: accepted samples, rejected series in all and by reason.

        Every rejection is counted here; rejections from a decoder that gave no reason count as
        ``invalid_labels``.
        """
        by_reason = dict(self.rejected_by_reason)
        unclassified = len(self.rejected) - sum(by_reason.values())
        if unclassified > 0:
            invalid = RejectReason.INVALID_LABELS.value
            by_reason[invalid] = by_reason.get(invalid, 0) + unclassified
        counts: dict[str, float] = {
            "SamplesAccepted": self.samples_accepted,
            "SeriesRejected": len(self.rejected),
            "SeriesLabelsDefaulted": self.labels_defaulted,
        }
        for reason, n in sorted(by_reason.items()):
            counts[f"SeriesRejected_{reason}"] = n
        return counts

    @property
    def samples_written(self) -> int:
        """Float samples of the sender's stored: created-timestamp zeros and histograms' series are not."""
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
    # How long a tenant's cardinality counts are trusted before the index's summary is read again.
    cardinality_ttl_s: float = 60.0


class IngestService:
    """Decode → validate → apply the ingest policy → pack into stream records → put.

    Without ``policies`` series are validated only (no label completion, no limits); without
    ``cardinality`` the policy's labels apply but its cardinality limits do not.
    """

    def __init__(
        self,
        sink: StreamSink,
        settings: IngestSettings | None = None,
        validator: SeriesValidator | None = None,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        policies: PolicySource | None = None,
        cardinality: CardinalityReader | None = None,
        pii_secret: bytes | Callable[[], bytes] | None = None,
    ) -> None:
        self.sink = sink
        self.settings = settings or IngestSettings()
        self.validator = validator or SeriesValidator()
        self.clock_ms = clock_ms
        self.policies = policies
        self.cardinality = cardinality
        self._admissions = AdmissionCache()
        self._gates: dict[str, CardinalityGate] = {}
        # The deployment secret, or how to read it: read on first use, so that a cold start does not
        # wait on it and a failed read is a retryable 503 of one request rather than a broken function.
        self._pii_secret = pii_secret
        self._scrubbers: dict[tuple[str, PiiRules], Scrubber] = {}

    # --- remote write 1.0 and 2.0 -----------------------------------------------------------

    def remote_write(
        self, body: bytes, headers: Mapping[str, str], tenant: str, key_labels: KeyLabels = None
    ) -> IngestResult:
        """Handle one ``POST /api/v1/write`` body (headers with lower-case names).

        The ``proto`` parameter of ``Content-Type`` picks the message: 1.0 ``prometheus.WriteRequest``
        (the default) or 2.0 ``io.prometheus.write.v2.Request``.
        """
        if check_remote_write_headers(headers) == 2:
            records, result = self.pack_remote_write_v2(body, tenant, key_labels)
        else:
            records, result = self.pack_remote_write(body, tenant, key_labels)
        self._put(records)
        return result

    def pack_remote_write(
        self, body: bytes, tenant: str, key_labels: KeyLabels = None
    ) -> tuple[list[StreamRecord], IngestResult]:
        """Decode, validate and pack a snappy-compressed WriteRequest (no I/O)."""
        raw = decompress_snappy_block(body, self.settings.max_decoded_bytes)
        try:
            decoded = decode_write_request(raw)
        except WireFormatError as exc:
            raise IngestError(400, str(exc)) from None
        if not decoded.histogram_series:
            return self.pack(decoded, tenant, key_labels=key_labels)
        # Series carrying native histograms are stored as classic histogram series instead.
        now = self.clock_ms()
        try:
            native = [native_series_v1(decoded.contents[i], f"timeseries[{i}]: ") for i in decoded.histogram_series]
            classic = self._classic_histograms(native, now)
            histogram_series = set(decoded.histogram_series)
            floats = [c for i, c in enumerate(decoded.contents) if i not in histogram_series]
            decoded = decode_series(floats + classic.contents)
        except WireFormatError as exc:
            raise IngestError(400, str(exc)) from None
        records, result = self.pack(decoded, tenant, now=now, key_labels=key_labels)
        _add_histogram_outcome(result, classic)
        return records, result

    def pack_remote_write_v2(
        self, body: bytes, tenant: str, key_labels: KeyLabels = None
    ) -> tuple[list[StreamRecord], IngestResult]:
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
                classic = self._classic_histograms(v2.native, now)
                decoded = decode_series(v2.contents + classic.contents)
            except (WireFormatError, V2RequestError) as exc:
                raise IngestError(400, str(exc)) from None
        except IngestError as exc:
            exc.headers.update(IngestResult(version=2).response_headers())
            raise
        # Samples of the classic histogram series are the histograms', not float samples of the sender's.
        added = np.concatenate([v2.created_samples, np.asarray(classic.added_samples, dtype=np.int64)])
        # The same clock reading as the decoder's window: a created timestamp it kept stays inside.
        records, result = self.pack(decoded, tenant, created_samples=added, now=now, key_labels=key_labels)
        result.version = 2
        result.rejected[:0] = v2.rejected
        _add_histogram_outcome(result, classic)
        return records, result

    def _classic_histograms(self, native: Sequence[NativeSeries], now: int) -> ClassicBatch:
        """Native histogram series as classic series, each checked whole against the validator and window."""
        window = (now - self.settings.max_sample_age_s * 1000, now + self.settings.max_sample_future_s * 1000)

        def labels_problem(label_bytes: bytes) -> str | None:
            verdict = self.validator.check(label_bytes)
            return None if verdict.valid else verdict.error

        return to_classic(native, labels_problem, window, MAX_RECORD_PAYLOAD - 4)

    # --- native JSON ------------------------------------------------------------------------

    def ingest_json(self, body: bytes, tenant: str, key_labels: KeyLabels = None) -> IngestResult:
        """Handle one ``POST /api/v1/ingest`` body (see docs/ingest-json.md)."""
        return self.ingest_encoded(json_to_series(body, self.clock_ms()), tenant, key_labels)

    def ingest_encoded(
        self, contents: list[bytes], tenant: str, key_labels: KeyLabels = None, *, apply_policy: bool = True
    ) -> IngestResult:
        """Validate, pack and put series given as ``TimeSeries`` encodings.

        The one entry point of every protocol that is not remote write (OTLP, Firehose, the agent's
        imports): each turns its payload into ``TimeSeries`` encodings and hands them here.
        ``apply_policy=False`` is for NovaCron's own series about the tenant (self-metrics): they are
        validated, but the tenant's label rules and cardinality limits are not theirs to meet.
        """
        try:
            decoded = decode_series(contents)
        except WireFormatError as exc:
            raise IngestError(400, str(exc)) from None
        records, result = self.pack(decoded, tenant, key_labels=key_labels, apply_policy=apply_policy)
        self._put(records)
        return result

    # --- shared -----------------------------------------------------------------------------

    def pack(
        self,
        decoded: DecodedSeries,
        tenant: str,
        created_samples: npt.NDArray[np.int64] | None = None,
        now: int | None = None,
        key_labels: KeyLabels = None,
        apply_policy: bool = True,
    ) -> tuple[list[StreamRecord], IngestResult]:
        """Validate decoded series, apply the ingest policy and pack the accepted ones into records by bucket.

        ``created_samples`` counts, per series, samples the receiver added (2.0 created timestamps),
        so that the result can tell them from the sender's. Per-series work is a cache lookup;
        everything else is numpy over all series at once. ``now`` defaults to the service's clock.
        ``key_labels`` are the sending key's labels, which the policy adds to series lacking them.
        """
        result = IngestResult()
        n = len(decoded)
        if n == 0:
            return [], result
        if now is None:
            now = self.clock_ms()
        low = now - self.settings.max_sample_age_s * 1000
        high = now + self.settings.max_sample_future_s * 1000
        admission = None
        if apply_policy:
            with _policy_reads():
                admission = self._admission(tenant, key_labels, now)
        contents, lengths = decoded.contents, decoded.lengths
        refusals: dict[int, Refusal] = {}
        if admission is None:
            buckets = np.fromiter(map(self.validator.bucket_of, decoded.label_bytes), dtype=np.int64, count=n)
            validator = self.validator
        else:
            buckets, contents, lengths, refusals = _admit(admission, decoded, result)
            validator = admission.validator
        outside = _series_outside(decoded, low, high)
        # A series travels in one stream record, so one larger than a record can hold is refused.
        oversized = lengths + 4 > MAX_RECORD_PAYLOAD
        refused = (buckets < 0) | outside | oversized
        refused[decoded.histogram_series] = True
        if refused.any():
            for i in np.flatnonzero(refused).tolist():
                if i in refusals:
                    refusal = refusals[i]
                    labels = format_labels(validator.check(decoded.label_bytes[i]).labels)
                    result.reject(refusal.reason, f"{refusal.message}: {labels}")
                    continue
                verdict = validator.check(decoded.label_bytes[i])
                if verdict.valid and oversized[i]:
                    result.reject(
                        RejectReason.OVERSIZED,
                        f"series encodes to {int(lengths[i])} bytes, more than the {MAX_RECORD_PAYLOAD} a "
                        f"series may take in one request; send fewer samples per request: "
                        f"{format_labels(verdict.labels)}",
                    )
                    continue
                result.reject(*_rejection(decoded, i, verdict, bool(outside[i]), low, high))
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
        sizes = lengths[order]
        gathered = operator.itemgetter(*order.tolist())(contents) if order.size > 1 else (contents[int(order[0])],)
        records = []
        bounds = np.flatnonzero(np.diff(ordered_buckets)) + 1
        for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), order.size], strict=True):
            key = f"{tenant}:{int(ordered_buckets[lo])}"
            for a, b in _chunk_bounds(sizes[lo:hi]):
                data = encode_record(tenant, now, gathered[lo + a : lo + b], sizes[lo + a : lo + b])
                records.append(StreamRecord(key, data))
        result.records = len(records)
        return records, result

    def _admission(self, tenant: str, key_labels: KeyLabels, now: int) -> Admission | None:
        """The sender's Admission under the tenant's current policy (None without a policy source)."""
        if self.policies is None:
            return None
        policy = self.policies.policy(tenant)
        gate = None
        if self.cardinality is not None:
            gate = self._gates.get(tenant)
            if gate is None:
                if len(self._gates) >= 64:
                    self._gates.clear()  # many tenants in one function is rare; the gates refill
                ttl_s = self.settings.cardinality_ttl_s
                gate = CardinalityGate(tenant, self.cardinality, ttl_s, lambda: self.clock_ms() / 1000)
                self._gates[tenant] = gate
            gate.begin(day_of(now), policy.version)
        labels = tuple(sorted(key_labels.items())) if key_labels else ()
        scrubber = self._scrubber(tenant, policy.pii)  # within the caller's _policy_reads: a failed read is a 503
        return self._admissions.get(tenant, policy, labels, gate, scrubber.scrub_labels if scrubber else None)

    def scrubber(self, tenant: str) -> Scrubber | None:
        """The tenant's PII scrubber under its current policy (None without a secret or with scrubbing off)."""
        with _policy_reads():
            rules = self.policies.policy(tenant).pii if self.policies is not None else PiiRules()
            return self._scrubber(tenant, rules)

    def _scrubber(self, tenant: str, rules: PiiRules) -> Scrubber | None:
        if self._pii_secret is None or not rules.enabled:
            return None
        key = (tenant, rules)
        found = self._scrubbers.get(key)
        if found is None:
            if callable(self._pii_secret):
                self._pii_secret = self._pii_secret()
            if len(self._scrubbers) >= 256:
                self._scrubbers.clear()  # one entry per tenant and rule set: a full map is rare and refills
            found = self._scrubbers[key] = Scrubber.for_tenant(tenant, self._pii_secret, rules)
        return found

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


@contextmanager
def _policy_reads() -> Iterator[None]:
    """Turn a failure to read the policy or the cardinality counts into a "retry later" (503)."""
    try:
        yield
    except IngestError:
        raise
    except Exception as exc:  # the stores' own errors (DynamoDB throttling, timeouts): nothing was accepted
        raise IngestError(
            503,
            f"could not read the tenant's ingest policy or series counts ({type(exc).__name__}); retry later",
            {"Retry-After": "1"},
        ) from exc


def _admit(
    admission: Admission, decoded: DecodedSeries, result: IngestResult
) -> tuple[npt.NDArray[np.int64], list[bytes], npt.NDArray[np.int64], dict[int, Refusal]]:
    """Buckets (-1: not admitted), contents and lengths (labels completed) and cardinality refusals."""
    n = len(decoded)
    codes = np.fromiter(map(admission.code_of, decoded.label_bytes), dtype=np.int64, count=n)
    refusals: dict[int, Refusal] = {}
    if (codes < INVALID).any():
        waiting = np.flatnonzero(codes == CHECK)
        if waiting.size:
            with _policy_reads():
                codes[waiting] = admission.settle([decoded.label_bytes[i] for i in waiting.tolist()])
        for i in np.flatnonzero(codes == REFUSED).tolist():
            refusals[i] = admission.refusal(decoded.label_bytes[i])
    contents, lengths = decoded.contents, decoded.lengths
    rewrite = codes >= REWRITE
    if rewrite.any():
        where = np.flatnonzero(rewrite)
        if where.size == n:  # the usual case: a sender's series all lack the same labels
            rewritten = admission.rewrite_all(contents, decoded.label_bytes)
            contents = rewritten
        else:
            picked = where.tolist()
            pick = operator.itemgetter(*picked) if len(picked) > 1 else lambda seq: (seq[picked[0]],)
            rewritten = admission.rewrite_all(pick(contents), pick(decoded.label_bytes))
            contents = list(contents)
            for i, content in zip(picked, rewritten, strict=True):
                contents[i] = content
        lengths = lengths.copy()
        lengths[where] = np.fromiter(map(len, rewritten), dtype=np.int64, count=len(rewritten))
        result.labels_defaulted = int(np.count_nonzero(codes[rewrite] & FILLED_UNKNOWN))
    buckets = np.where(codes >= 0, codes & BUCKET_MASK, -1)
    return buckets, contents, lengths, refusals


def _rejection(
    decoded: DecodedSeries, i: int, verdict: Verdict, outside: bool, low: int, high: int
) -> tuple[RejectReason, str]:
    if not verdict.valid:
        return verdict.reason or RejectReason.INVALID_LABELS, verdict.error
    if outside:
        stamps = decoded.timestamps[decoded.offsets[i] : decoded.offsets[i + 1]]
        first = int(stamps[(stamps < low) | (stamps > high)][0])
        return RejectReason.OUT_OF_WINDOW, (
            f"sample at {_iso(first)} is outside the accepted window [{_iso(low)}, {_iso(high)}]: "
            f"{format_labels(verdict.labels)}"
        )
    return RejectReason.NATIVE_HISTOGRAM, (
        f"native histograms are accepted over remote write only: {format_labels(verdict.labels)}"
    )


def _add_histogram_outcome(result: IngestResult, classic: ClassicBatch) -> None:
    """Put the histogram series' outcome in a packed request's result (their rejections first)."""
    result.histograms_written = classic.histograms
    result.rejected[:0] = [message for _, message in classic.rejected]
    for reason, _ in classic.rejected:
        result.count_rejections(reason, 1)


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
