"""Kinesis Data Firehose HTTP endpoint delivery (request/response format 1.0) of CloudWatch metric streams.

Firehose POSTs ``{"requestId", "timestamp", "records": [{"data": <base64>}]}`` (optionally gzip-encoded)
with the API key in ``X-Amz-Firehose-Access-Key``, and expects ``{"requestId", "timestamp"}`` back,
plus ``errorMessage`` on failures. Only 200 counts as delivered; 413 is a permanent failure that
Firehose does not even back up; every other status is retried with back-off until the stream's retry
duration runs out, and then the batch goes to the stream's backup bucket.

So that nothing is lost and nothing loops (docs/cloudwatch.md):
- good records are stored and answered 200 even when other records of the batch are invalid: the
  invalid ones would fail identically on every retry, so they are counted and logged, not retried;
- a request with *no* usable record is answered 400: Firehose retries it for its retry duration and
  then writes it to the backup bucket, where it stays for inspection;
- "retry later" conditions of the metrics stream are 429/503, which Firehose retries.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from novacron.auth import AuthError
from novacron.ingest.service import IngestError, IngestResult, IngestService, KeyLabels
from novacron.protocols.cloudwatch import (
    DIMENSION_PREFIX,
    RECORD_LABELS,
    MetricStreamError,
    SeriesBuilder,
    label_name,
)

ACCESS_KEY_HEADER = "x-amz-firehose-access-key"
REQUEST_ID_HEADER = "x-amz-firehose-request-id"
COMMON_ATTRIBUTES_HEADER = "x-amz-firehose-common-attributes"
PROTOCOL_VERSION_HEADER = "x-amz-firehose-protocol-version"
PROTOCOL_VERSION = "1.0"
# The response schema's limit on errorMessage.
MAX_ERROR_MESSAGE = 8192
_LISTED_RECORD_ERRORS = 10


@dataclass(frozen=True)
class FirehoseRequest:
    """A parsed delivery request: its id and its records, still base64-encoded."""

    request_id: str
    records: list[object]


@dataclass
class Delivery:
    """What happened to one delivery request."""

    request_id: str
    records: int = 0
    record_errors: list[str] = field(default_factory=list)  # one per rejected record
    ingest: IngestResult = field(default_factory=IngestResult)

    def counts(self) -> dict[str, float]:
        """The business metrics of a delivery."""
        return {
            "SamplesAccepted": self.ingest.samples_accepted,
            "SeriesRejected": len(self.ingest.rejected),
            "RecordsRejected": len(self.record_errors),
        }

    def summary(self) -> dict[str, Any]:
        """Counts and the first rejections, for the log (never the records' data)."""
        return {
            "request_id": self.request_id,
            "records": self.records,
            "records_rejected": len(self.record_errors),
            "record_errors": self.record_errors[:_LISTED_RECORD_ERRORS],
            "series_accepted": self.ingest.series_accepted,
            "samples_accepted": self.ingest.samples_accepted,
            "series_rejected": len(self.ingest.rejected),
            "series_errors": self.ingest.rejected[:_LISTED_RECORD_ERRORS],
        }


def request_id_of(headers: Mapping[str, str]) -> str:
    """The request id to echo: Firehose sends it in a header (and repeats it in the body)."""
    return headers.get(REQUEST_ID_HEADER, "")


def response_body(request_id: str, now_ms: int, error: str | None = None) -> dict[str, Any]:
    """The contract's response document; ``errorMessage`` only for failures, within its 8 KiB limit."""
    body: dict[str, Any] = {"requestId": request_id, "timestamp": now_ms}
    if error is not None:
        body["errorMessage"] = error if len(error) <= MAX_ERROR_MESSAGE else error[: MAX_ERROR_MESSAGE - 3] + "..."
    return body


def credential_of(headers: Mapping[str, str]) -> str:
    """An ``Authorization`` value for the API key Firehose sends in ``X-Amz-Firehose-Access-Key``.

    The key is copied verbatim from the delivery stream's configuration; a key kept in Secrets
    Manager is the ``api_key`` of a JSON object, so that form is accepted as well. Without the
    Firehose header, an ``Authorization`` header is used (for trying the endpoint by hand).
    """
    key = headers.get(ACCESS_KEY_HEADER, "").strip()
    if key.startswith("{"):
        try:
            key = str(json.loads(key).get("api_key", ""))
        except (ValueError, AttributeError):
            raise AuthError(
                401, 'malformed X-Amz-Firehose-Access-Key: expected an API key or {"api_key": ...}'
            ) from None
    if key:
        return f"Bearer {key}"
    authorization = headers.get("authorization")
    if authorization:
        return authorization
    raise AuthError(
        401,
        "missing X-Amz-Firehose-Access-Key header: set the delivery stream's access key to a NovaCron API key "
        "with the ingest role",
    )


def parse_request(body: bytes, headers: Mapping[str, str], max_decoded_bytes: int) -> FirehoseRequest:
    """Check the headers, decompress and parse a delivery request; IngestError for a refused one."""
    version = headers.get(PROTOCOL_VERSION_HEADER, PROTOCOL_VERSION).strip()
    if version != PROTOCOL_VERSION:
        raise IngestError(400, f"unsupported X-Amz-Firehose-Protocol-Version {version[:40]!r}; supported: 1.0")
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding == "gzip":
        body = gunzip(body, max_decoded_bytes)
    elif encoding not in ("", "identity"):
        raise IngestError(415, f"unsupported Content-Encoding {encoding[:40]!r}: Firehose sends gzip or none")
    if len(body) > max_decoded_bytes:
        raise IngestError(413, _too_large(max_decoded_bytes))
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise IngestError(400, f"body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        raise IngestError(400, 'body must be a JSON object with a "records" array (Firehose request format 1.0)')
    body_id = doc.get("requestId")
    request_id = request_id_of(headers) or (body_id if isinstance(body_id, str) else "")
    return FirehoseRequest(request_id=request_id, records=doc["records"])


def gunzip(body: bytes, max_decoded_bytes: int) -> bytes:
    """Decompress a gzip body, refusing (413) one that grows past the limit without inflating all of it."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, max_decoded_bytes + 1)
    except zlib.error as exc:
        raise IngestError(400, f"body is not valid gzip data: {exc}") from None
    if len(out) > max_decoded_bytes:
        raise IngestError(413, _too_large(max_decoded_bytes))
    if not inflater.eof:
        raise IngestError(400, "body is not valid gzip data: the stream is truncated")
    return out


def common_labels(headers: Mapping[str, str]) -> dict[str, str]:
    """Labels from the delivery stream's common attributes (``X-Amz-Firehose-Common-Attributes``).

    Each attribute becomes a label of every series (its name made a valid label name); ``source``
    replaces the default ``source="cloudwatch"``. Names the data points own are refused.
    """
    raw = headers.get(COMMON_ATTRIBUTES_HEADER, "").strip()
    if not raw:
        return {}
    try:
        attributes = json.loads(raw).get("commonAttributes", {})
    except (ValueError, AttributeError, RecursionError):
        raise IngestError(400, 'X-Amz-Firehose-Common-Attributes must be {"commonAttributes": {...}}') from None
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise IngestError(400, "X-Amz-Firehose-Common-Attributes: commonAttributes must map names to strings")
    labels = {}
    for name, value in attributes.items():
        label = label_name(name)
        if not label or label.startswith("__") or label in RECORD_LABELS or label.startswith(DIMENSION_PREFIX):
            raise IngestError(
                400,
                f"common attribute {name[:80]!r} cannot be a label: {', '.join(RECORD_LABELS[1:])}, "
                f"'{DIMENSION_PREFIX}*' and names starting with '__' are taken",
            )
        labels[label] = value
    return labels


class FirehoseEndpoint:
    """Parse a delivery, decode its records into series and ingest them for a tenant."""

    def __init__(self, service: IngestService, max_decoded_bytes: int) -> None:
        self.service = service
        self.max_decoded_bytes = max_decoded_bytes

    def deliver(self, body: bytes, headers: Mapping[str, str], tenant: str, key_labels: KeyLabels = None) -> Delivery:
        """Store what is usable; IngestError when nothing is (400) or the stream cannot take it (429/503).

        ``key_labels`` are the API key's labels, which the tenant's ingest policy adds to series lacking them.
        """
        request = parse_request(body, headers, self.max_decoded_bytes)
        builder = SeriesBuilder(common_labels(headers))
        delivery = Delivery(request_id=request.request_id, records=len(request.records))
        for number, record in enumerate(request.records):
            try:
                builder.add_record(_record_data(record))
            except MetricStreamError as exc:
                delivery.record_errors.append(f"record {number}: {exc}")
        if delivery.record_errors and len(delivery.record_errors) == delivery.records:
            shown = delivery.record_errors[:_LISTED_RECORD_ERRORS]
            raise IngestError(
                400,
                f"none of the {delivery.records} records is a CloudWatch metric stream record "
                f"(json or opentelemetry1.0): " + "; ".join(shown),
            )
        delivery.ingest = self.service.ingest_encoded(builder.encoded(), tenant, key_labels)
        return delivery


def _record_data(record: object) -> bytes:
    if not isinstance(record, dict) or not isinstance(record.get("data"), str):
        raise MetricStreamError('a record must be an object with a base64 "data" string')
    try:
        return base64.b64decode(record["data"], validate=True)
    except (binascii.Error, ValueError):
        raise MetricStreamError("record data is not valid base64") from None


def _too_large(limit: int) -> str:
    return f"request body decompresses to more than {limit} bytes; lower the delivery stream's buffering size"
