"""OTLP/JSON: the proto3 JSON mapping, with the exceptions the OTLP specification makes to it.

OTLP/JSON follows protobuf's JSON mapping (``google.protobuf.json_format`` reads it: lowerCamelCase
or original field names, enums as integers or names, 64-bit integers as strings or numbers) except
that trace and span ids are hex strings instead of base64, and unknown fields must be ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from novacron.protocols.otlp_json_metrics import metrics_request_bytes

M = TypeVar("M", bound=Message)

# Every bytes field OTLP carries as hex: span and link ids, exemplar ids, log record ids.
_HEX_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"})


class OtlpJsonError(ValueError):
    """The body is not an OTLP/JSON encoding of the expected message."""


def parse_json(body: bytes, message_type: type[M]) -> M:
    """Parse an OTLP/JSON body into ``message_type``, with hex ids and unknown fields ignored."""
    return _parse_document(_document(body, message_type), message_type)


def parse_metrics_json(body: bytes) -> tuple[ExportMetricsServiceRequest, bytes | None]:
    """``parse_json`` of an ``ExportMetricsServiceRequest``, and its protobuf encoding when made on the way.

    Plain documents (see ``otlp_json_metrics``) are written as protobuf bytes and parsed by the
    protobuf runtime; the others go through ``json_format``. Either way the message is the same.
    """
    document = _document(body, ExportMetricsServiceRequest)
    encoded = metrics_request_bytes(document)
    if encoded is not None:
        try:
            return ExportMetricsServiceRequest.FromString(encoded), encoded
        except DecodeError:  # cannot happen for what the writer accepts; json_format says why if it does
            pass
    return _parse_document(document, ExportMetricsServiceRequest), None


def _document(body: bytes, message_type: type[Message]) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise OtlpJsonError(f"body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(document, dict):
        raise OtlpJsonError(f"body must be a JSON object (an {message_type.DESCRIPTOR.name})")
    return document


def _parse_document(document: dict[str, Any], message_type: type[M]) -> M:
    hex_ids_to_base64(document)
    message: M = message_type()
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError) as exc:
        raise OtlpJsonError(f"body is not a valid {message_type.DESCRIPTOR.name}: {str(exc)[:300]}") from None
    return message


def hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite, in place, every hex id of an OTLP/JSON document into the base64 protobuf's mapping reads.

    Walks iteratively: attribute values nest arbitrarily deep. Raises OtlpJsonError naming the
    first id that is not hex.
    """
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _HEX_ID_FIELDS and isinstance(value, str):
                    node[key] = _hex_to_base64(value, f"{path}.{key}" if path else key)
                elif isinstance(value, dict | list):
                    stack.append((value, f"{path}.{key}" if path else key))
        elif isinstance(node, list):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node) if isinstance(item, dict | list))


def to_json(message: Message) -> bytes:
    """The OTLP/JSON encoding of a response message (lowerCamelCase keys, unset fields left out)."""
    text: str = json_format.MessageToJson(message, indent=None)
    return text.encode()


def _hex_to_base64(value: str, path: str) -> str:
    try:
        # unhexlify, unlike bytes.fromhex, refuses embedded whitespace.
        raw = binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        raise OtlpJsonError(
            f"{path} is {value[:64]!r}, not a hex string: OTLP/JSON encodes trace and span ids as hex"
        ) from None
    return base64.b64encode(raw).decode()
