"""OTLP/JSON metrics requests written straight as protobuf wire bytes.

``json_format.ParseDict`` builds a protobuf message field by field in Python, which costs far more
than reading the JSON itself. The metrics senders emit (gauges and sums with string, boolean,
integer and double attributes) need only a handful of message types, so ``metrics_request_bytes``
writes the ``ExportMetricsServiceRequest`` those documents stand for as wire bytes, which the
protobuf runtime parses at C speed, and which the mapper reads gauges and sums from directly.

It takes the plain case only: field names it knows (lowerCamelCase or the proto names, not both),
values of exactly the types the proto3 JSON mapping writes, no nulls. Anything else (histograms,
summaries, exemplars, byte or array attributes, unknown fields, a value ParseDict would refuse or
convert in some unusual way) gives None, and the caller parses the document with ``ParseDict``, so
the answer is always the one ParseDict gives.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from typing import Any

from novacron.protocols.remote_write_v2 import uvarint

_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_DECIMAL = re.compile(r"-?[0-9]+")  # what int() reads in the way ParseDict does, and nothing unusual
_INT64 = (-(2**63), 2**63)
_UINT64 = (0, 2**64)
_UINT32 = (0, 2**32)
_TEMPORALITIES = {
    "AGGREGATION_TEMPORALITY_UNSPECIFIED": 0,
    "AGGREGATION_TEMPORALITY_DELTA": 1,
    "AGGREGATION_TEMPORALITY_CUMULATIVE": 2,
}
_CACHE_LIMIT = 100_000
# Encoded KeyValue fields by (key, value kind, value): attribute sets repeat in every export.
_key_values: dict[tuple[str, str, type, object], bytes] = {}


class _NotPlain(Exception):
    """Something this writer leaves to ParseDict."""


def metrics_request_bytes(document: dict[str, Any]) -> bytes | None:
    """The wire encoding of the ``ExportMetricsServiceRequest`` ``document`` stands for, or None (see module)."""
    try:
        return _REQUEST(document)
    except _NotPlain:
        return None


# --- scalars --------------------------------------------------------------------------------


def _integer(value: object, bounds: tuple[int, int]) -> int:
    if type(value) is int:
        number = value
    elif type(value) is str and _DECIMAL.fullmatch(value):
        number = int(value)
    else:
        raise _NotPlain
    if not bounds[0] <= number < bounds[1]:
        raise _NotPlain
    return number


def _string(value: object) -> bytes:
    if type(value) is not str:
        raise _NotPlain
    try:
        return value.encode()
    except UnicodeEncodeError:
        raise _NotPlain from None


def _double(value: object) -> float:
    if type(value) is float:
        if not math.isfinite(value):
            raise _NotPlain
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise _NotPlain from None
    raise _NotPlain


def _bool(value: object) -> bool:
    if type(value) is not bool:
        raise _NotPlain
    return value


def _tag(number: int, wire_type: int) -> bytes:
    return uvarint(number << 3 | wire_type)


def _delimited(number: int, payload: bytes) -> bytes:
    return _tag(number, 2) + uvarint(len(payload)) + payload


# --- field writers: (JSON value) -> encoded field(s) ------------------------------------------

Writer = Callable[[object], bytes]


def _string_field(number: int) -> Writer:
    return lambda value: _delimited(number, _string(value))


def _varint_field(number: int, bounds: tuple[int, int]) -> Writer:
    return lambda value: _tag(number, 0) + uvarint(_integer(value, bounds))


def _bool_field(number: int) -> Writer:
    return lambda value: _tag(number, 0) + (b"\x01" if _bool(value) else b"\x00")


def _fixed64_field(number: int) -> Writer:
    return lambda value: _tag(number, 1) + _U64.pack(_integer(value, _UINT64))


def _sfixed64_field(number: int) -> Writer:
    return lambda value: _tag(number, 1) + _I64.pack(_integer(value, _INT64))


def _double_field(number: int) -> Writer:
    return lambda value: _tag(number, 1) + _F64.pack(_double(value))


def _enum_field(number: int, names: dict[str, int]) -> Writer:
    def write(value: object) -> bytes:
        if type(value) is str and value in names:
            return _tag(number, 0) + uvarint(names[value])
        return _tag(number, 0) + uvarint(_integer(value, (0, 2**31)))

    return write


def _message_field(number: int, message: Writer) -> Writer:
    return lambda value: _delimited(number, message(value))


def _repeated_field(number: int, message: Writer) -> Writer:
    def write(value: object) -> bytes:
        if type(value) is not list:
            raise _NotPlain
        return b"".join([_delimited(number, message(item)) for item in value])

    return write


def _empty_list(value: object) -> bytes:
    if value != [] or type(value) is not list:
        raise _NotPlain
    return b""


def _message(fields: dict[str, tuple[str, Writer]], oneofs: tuple[frozenset[str], ...] = ()) -> Writer:
    """A message writer; ``fields`` maps each JSON name (both spellings) to (proto name, writer)."""

    def write(value: object) -> bytes:
        if type(value) is not dict:
            raise _NotPlain
        seen: set[str] = set()
        parts = []
        for key, item in value.items():
            known = fields.get(key)
            if known is None or item is None or known[0] in seen:
                raise _NotPlain  # unknown, null, or given under both names
            seen.add(known[0])
            parts.append(known[1](item))
        for oneof in oneofs:
            if len(oneof & seen) > 1:
                raise _NotPlain
        return b"".join(parts)

    return write


def _spellings(proto_name: str, writer: Writer) -> dict[str, tuple[str, Writer]]:
    """Both JSON names of a field: its lowerCamelCase name and its proto name."""
    head, *rest = proto_name.split("_")
    camel = head + "".join(part.capitalize() for part in rest)
    return {camel: (proto_name, writer), proto_name: (proto_name, writer)}


def _fields(*declared: tuple[str, Writer]) -> dict[str, tuple[str, Writer]]:
    out: dict[str, tuple[str, Writer]] = {}
    for proto_name, writer in declared:
        out.update(_spellings(proto_name, writer))
    return out


# --- the messages -----------------------------------------------------------------------------


def _key_value(value: object) -> bytes:
    """A KeyValue with a string, boolean, integer or double value (cached: attribute sets repeat)."""
    if type(value) is not dict or len(value) != 2:
        raise _NotPlain
    key = value.get("key")
    any_value = value.get("value")
    if type(key) is not str or type(any_value) is not dict or len(any_value) != 1:
        raise _NotPlain
    ((kind, item),) = any_value.items()
    if type(item) not in (str, bool, int, float):
        raise _NotPlain
    cache_key = (key, kind, type(item), item)  # 1, 1.0 and True are equal keys, not equal values
    known = _key_values.get(cache_key)
    if known is None:
        writer = _ANY_VALUE.get(kind)
        if writer is None:
            raise _NotPlain
        known = _delimited(1, _string(key)) + _delimited(2, writer(item))
        if len(_key_values) >= _CACHE_LIMIT:
            _key_values.clear()
        _key_values[cache_key] = known
    return known


_ANY_VALUE: dict[str, Writer] = {}
for _name, _writer in (
    ("string_value", _string_field(1)),
    ("bool_value", _bool_field(2)),
    ("int_value", lambda value: _tag(3, 0) + uvarint(_integer(value, _INT64) & 0xFFFFFFFFFFFFFFFF)),
    ("double_value", _double_field(4)),
):
    _ANY_VALUE.update({spelling: writer for spelling, (_, writer) in _spellings(_name, _writer).items()})


def _attributes(number: int) -> tuple[str, Writer]:
    return "attributes", _repeated_field(number, _key_value)


_NUMBER_POINT = _message(
    _fields(
        _attributes(7),
        ("start_time_unix_nano", _fixed64_field(2)),
        ("time_unix_nano", _fixed64_field(3)),
        ("as_double", _double_field(4)),
        ("exemplars", _empty_list),
        ("as_int", _sfixed64_field(6)),
        ("flags", _varint_field(8, _UINT32)),
    ),
    oneofs=(frozenset({"as_double", "as_int"}),),
)
_GAUGE = _message(_fields(("data_points", _repeated_field(1, _NUMBER_POINT))))
_SUM = _message(
    _fields(
        ("data_points", _repeated_field(1, _NUMBER_POINT)),
        ("aggregation_temporality", _enum_field(2, _TEMPORALITIES)),
        ("is_monotonic", _bool_field(3)),
    )
)
_METRIC = _message(
    _fields(
        ("name", _string_field(1)),
        ("description", _string_field(2)),
        ("unit", _string_field(3)),
        ("gauge", _message_field(5, _GAUGE)),
        ("sum", _message_field(7, _SUM)),
        ("metadata", _repeated_field(12, _key_value)),
    ),
    oneofs=(frozenset({"gauge", "sum"}),),
)
_SCOPE = _message(
    _fields(
        ("name", _string_field(1)),
        ("version", _string_field(2)),
        _attributes(3),
        ("dropped_attributes_count", _varint_field(4, _UINT32)),
    )
)
_RESOURCE = _message(_fields(_attributes(1), ("dropped_attributes_count", _varint_field(2, _UINT32))))
_SCOPE_METRICS = _message(
    _fields(
        ("scope", _message_field(1, _SCOPE)),
        ("metrics", _repeated_field(2, _METRIC)),
        ("schema_url", _string_field(3)),
    )
)
_RESOURCE_METRICS = _message(
    _fields(
        ("resource", _message_field(1, _RESOURCE)),
        ("scope_metrics", _repeated_field(2, _SCOPE_METRICS)),
        ("schema_url", _string_field(3)),
    )
)
_REQUEST = _message(_fields(("resource_metrics", _repeated_field(1, _RESOURCE_METRICS))))
