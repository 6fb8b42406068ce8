"""OTLP number data points read from the wire, without a protobuf object per point.

A gauge or sum carries its points as ``NumberDataPoint`` messages. Mapping them one protobuf object
at a time costs more than everything else of an export put together, so ``number_points`` reads the
serialized ``Gauge``/``Sum`` directly and gives, per point, what the mapping needs: the raw bytes of
its attribute fields (the identity of its label set, so that a warm function maps each attribute set
once), its time in milliseconds and its sample already encoded as a ``TimeSeries.samples`` field
(the staleness marker for a point flagged as having no recorded value).

The C extension (``_wirec.number_points``) does this when built; the Python code here is the
reference and the fallback (``wire.use_native(False)`` selects it). Both return ``None`` for input
they do not read (groups, malformed fields): the caller then maps the points through the protobuf
runtime, so this is an optimisation, never a different answer.
"""

from __future__ import annotations

import functools
import struct
from typing import Any

from novacron.protocols import wire
from novacron.protocols.descriptors import F as _F
from novacron.protocols.descriptors import field, message, message_classes
from novacron.protocols.timeseries import encode_sample
from novacron.series import STALE_NAN

# Per point, in three lists: its attribute fields' bytes; its time in ms, -1 when it has none
# (time_unix_nano 0); its ``TimeSeries.samples`` field, None when it has no value.
NumberPoints = tuple[list[bytes], list[int], list[bytes | None]]
NO_TIMESTAMP = -1

_DATA_POINTS_TAG = 0x0A  # Gauge.data_points / Sum.data_points: field 1, length-delimited
_ATTRIBUTES_TAG = 0x3A  # NumberDataPoint.attributes: field 7, length-delimited
_TIME_TAG = 0x19  # time_unix_nano: field 3, fixed64
_DOUBLE_TAG = 0x21  # as_double: field 4, double
_INT_TAG = 0x31  # as_int: field 6, sfixed64
_FLAGS_TAG = 0x40  # flags: field 8, varint (uint32)
_NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")


_field = functools.partial(field, "novacron.otlp.raw")
# ExportMetricsServiceRequest down to each metric's Gauge and Sum, kept as the bytes they were sent
# as: parsing the request this way as well hands ``number_points`` its input without re-encoding
# the parsed request. Repeated, so that a field sent twice (which protobuf merges) can be told.
_raw = message_classes(
    "novacron/otlp_raw.proto",
    "novacron.otlp.raw",
    [
        message(
            "Metric", _field("gauge", 5, _F.TYPE_BYTES, repeated=True), _field("sum", 7, _F.TYPE_BYTES, repeated=True)
        ),
        message("ScopeMetrics", _field("metrics", 2, _F.TYPE_MESSAGE, repeated=True, type_name="Metric")),
        message(
            "ResourceMetrics", _field("scope_metrics", 2, _F.TYPE_MESSAGE, repeated=True, type_name="ScopeMetrics")
        ),
        message("Request", _field("resource_metrics", 1, _F.TYPE_MESSAGE, repeated=True, type_name="ResourceMetrics")),
    ],
)
RawMetricsRequest: Any = _raw("Request")


class _Unreadable(Exception):
    """Input this reader leaves to the protobuf runtime."""


def raw_metrics_request(body: bytes) -> Any | None:
    """``body`` (an ``ExportMetricsServiceRequest`` encoding) as a ``RawMetricsRequest``, or None if unreadable."""
    try:
        return RawMetricsRequest.FromString(body)
    except Exception:  # the protobuf runtime's DecodeError: the caller re-encodes the parsed request
        return None


def raw_number_data(raw_metric: Any | None, kind: str) -> bytes | None:
    """The ``Gauge``/``Sum`` (``kind``) bytes of a raw metric, when sent exactly once (else protobuf merged them)."""
    if raw_metric is None:
        return None
    sent = raw_metric.gauge if kind == "gauge" else raw_metric.sum
    return bytes(sent[0]) if len(sent) == 1 else None


def number_points(data: bytes) -> NumberPoints | None:
    """The points of a serialized ``Gauge`` or ``Sum``, or None when it holds something not read here."""
    native = wire.native_module()
    if native is not None:
        points: NumberPoints | None = native.number_points(data)
        return points
    return number_points_python(data)


def number_points_python(data: bytes) -> NumberPoints | None:
    """The pure-Python reader (the reference of the C extension's ``number_points``)."""
    try:
        return _read_points(data)
    except _Unreadable:
        return None


def _read_points(data: bytes) -> NumberPoints:
    points: NumberPoints = ([], [], [])
    pos, end = 0, len(data)
    while pos < end:
        tag, pos = _tag(data, pos, end)
        if tag != _DATA_POINTS_TAG:
            pos = _skip(data, pos, end, tag)  # Sum's temporality and monotonicity, unknown fields
            continue
        length, pos = _length(data, pos, end)
        stop = pos + length
        attributes, time_ns, flags, value = _read_point(data, pos, stop)
        stamp = time_ns // 1_000_000 if time_ns else NO_TIMESTAMP
        if flags & _NO_RECORDED_VALUE:
            value = STALE_NAN
        points[0].append(attributes)
        points[1].append(stamp)
        points[2].append(None if value is None or stamp == NO_TIMESTAMP else encode_sample(value, stamp))
        pos = stop
    return points


def _read_point(data: bytes, pos: int, end: int) -> tuple[bytes, int, int, float | None]:
    attributes: list[bytes] = []
    time_ns = flags = 0
    value: float | None = None
    while pos < end:
        start = pos
        tag, pos = _tag(data, pos, end)
        if tag == _ATTRIBUTES_TAG:
            length, pos = _length(data, pos, end)
            pos += length
            attributes.append(data[start:pos])
        elif tag in (_TIME_TAG, _DOUBLE_TAG, _INT_TAG):
            if pos + 8 > end:
                raise _Unreadable
            if tag == _TIME_TAG:
                time_ns = _U64.unpack_from(data, pos)[0]
            elif tag == _DOUBLE_TAG:
                value = _F64.unpack_from(data, pos)[0]
            else:
                value = float(_I64.unpack_from(data, pos)[0])
            pos += 8
        elif tag == _FLAGS_TAG:
            flags, pos = _varint(data, pos, end)
            flags &= 0xFFFFFFFF
        else:
            pos = _skip(data, pos, end, tag)
    return b"".join(attributes), time_ns, flags, value


def _varint(data: bytes, pos: int, end: int, max_bytes: int = 10) -> tuple[int, int]:
    value = shift = 0
    while shift < 7 * max_bytes:
        if pos >= end:
            raise _Unreadable
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
    raise _Unreadable


def _tag(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """A field's tag, as upb reads one: at most 5 bytes and 32 bits, never field number 0."""
    tag, pos = _varint(data, pos, end, 5)
    if tag > 0xFFFFFFFF or tag >> 3 == 0:
        raise _Unreadable
    return tag, pos


def _length(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """A length prefix, as upb reads one: at most 5 bytes, below 2 GiB, within the message; returns the end."""
    length, pos = _varint(data, pos, end, 5)
    if length > 0x7FFFFFFF or length > end - pos:
        raise _Unreadable
    return length, pos


def _skip(data: bytes, pos: int, end: int, tag: int) -> int:
    """Past the value of a field whose tag was read; groups and bad wire types are not read here."""
    wire_type = tag & 7
    if wire_type == 0:
        return _varint(data, pos, end)[1]
    if wire_type == 1:
        pos += 8
    elif wire_type == 5:
        pos += 4
    elif wire_type == 2:
        length, pos = _length(data, pos, end)
        pos += length
    else:
        raise _Unreadable
    if pos > end:
        raise _Unreadable
    return pos


# --- summary points (CloudWatch metric streams' OpenTelemetry format) -----------------------------

# Per point, in three lists: its key (the resource's payloads, the metric's unit, the point's
# attribute fields, its quantiles), its start time (or time) in ms (-1 without one), and its values
# [sum, count, the quantiles' values...].
SummaryKey = tuple[bytes, str, bytes, tuple[float, ...]]
SummaryPoints = tuple[list[SummaryKey], list[int], list[list[float]]]
_MAX_QUANTILES = 64
_DATA_FIELDS = frozenset({5, 7, 9, 10, 11})  # Metric's data oneof: gauge, sum, histogram, exponential, summary
_SUMMARY = 11


def summary_points(data: bytes) -> SummaryPoints | None:
    """The summary points of a serialized ``ExportMetricsServiceRequest``, or None when it holds anything else.

    None also for a metric that is not a summary, a summary sent in parts (protobuf merges them),
    groups and malformed data: the caller then reads the request through the protobuf runtime.
    """
    native = wire.native_module()
    if native is not None:
        points: SummaryPoints | None = native.summary_points(data)
        return points
    return summary_points_python(data)


def summary_points_python(data: bytes) -> SummaryPoints | None:
    """The pure-Python reader (the reference of the C extension's ``summary_points``)."""
    out: SummaryPoints = ([], [], [])
    try:
        for start, end in _occurrences(data, 0, len(data), 1):
            resource = b"".join(data[a:b] for a, b in _occurrences(data, start, end, 1))
            for scope_start, scope_end in _occurrences(data, start, end, 2):
                for metric_start, metric_end in _occurrences(data, scope_start, scope_end, 2):
                    _summary_metric(data, metric_start, metric_end, resource, out)
    except _Unreadable:
        return None
    return out


def _occurrences(data: bytes, pos: int, end: int, wanted: int) -> list[tuple[int, int]]:
    """Where each occurrence of length-delimited field ``wanted`` lies in ``data[pos:end]``."""
    found = []
    while pos < end:
        tag, pos = _tag(data, pos, end)
        if tag == (wanted << 3 | 2):
            length, pos = _length(data, pos, end)
            found.append((pos, pos + length))
            pos += length
        else:
            pos = _skip(data, pos, end, tag)
    return found


def _summary_metric(data: bytes, pos: int, end: int, resource: bytes, out: SummaryPoints) -> None:
    unit = b""
    last_data = 0
    summaries: list[tuple[int, int]] = []
    while pos < end:
        tag, pos = _tag(data, pos, end)
        field_number = tag >> 3
        if tag & 7 == 2 and (field_number == 3 or field_number in _DATA_FIELDS):
            length, pos = _length(data, pos, end)
            if field_number == 3:
                unit = data[pos : pos + length]
            else:
                last_data = field_number
                if field_number == _SUMMARY:
                    summaries.append((pos, pos + length))
            pos += length
        else:
            pos = _skip(data, pos, end, tag)
    if last_data != _SUMMARY or len(summaries) != 1:
        raise _Unreadable
    try:
        unit_text = unit.decode()
    except UnicodeDecodeError:
        raise _Unreadable from None
    for start, stop in _occurrences(data, *summaries[0], 1):
        _summary_point(data, start, stop, resource, unit_text, out)


def _summary_point(data: bytes, pos: int, end: int, resource: bytes, unit: str, out: SummaryPoints) -> None:
    attributes: list[bytes] = []
    start_ns = time_ns = count = 0
    total = 0.0
    quantiles: list[float] = []
    values: list[float] = []
    while pos < end:
        start = pos
        tag, pos = _tag(data, pos, end)
        if tag == _ATTRIBUTES_TAG:
            length, pos = _length(data, pos, end)
            pos += length
            attributes.append(data[start:pos])
        elif tag in (0x11, 0x19, 0x21, 0x29):  # start_time_unix_nano, time_unix_nano, count, sum: 64-bit
            if pos + 8 > end:
                raise _Unreadable
            if tag == 0x29:
                total = _F64.unpack_from(data, pos)[0]
            else:
                number = _U64.unpack_from(data, pos)[0]
                if tag == 0x11:
                    start_ns = number
                elif tag == 0x19:
                    time_ns = number
                else:
                    count = number
            pos += 8
        elif tag == 0x32:  # quantile_values
            length, pos = _length(data, pos, end)
            if len(quantiles) == _MAX_QUANTILES:
                raise _Unreadable
            quantile, value = _value_at_quantile(data, pos, pos + length)
            quantiles.append(quantile)
            values.append(value)
            pos += length
        else:
            pos = _skip(data, pos, end, tag)
    stamp_ns = start_ns or time_ns
    out[0].append((resource, unit, b"".join(attributes), tuple(quantiles)))
    out[1].append(stamp_ns // 1_000_000 if stamp_ns else NO_TIMESTAMP)
    out[2].append([total, float(count), *values])


def _value_at_quantile(data: bytes, pos: int, end: int) -> tuple[float, float]:
    quantile = value = 0.0
    while pos < end:
        tag, pos = _tag(data, pos, end)
        if tag in (0x09, 0x11):  # quantile, value: doubles
            if pos + 8 > end:
                raise _Unreadable
            if tag == 0x09:
                quantile = _F64.unpack_from(data, pos)[0]
            else:
                value = _F64.unpack_from(data, pos)[0]
            pos += 8
        else:
            pos = _skip(data, pos, end, tag)
    return quantile, value
