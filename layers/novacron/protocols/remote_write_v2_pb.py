"""Prometheus remote write 2.0 protobuf messages (``io.prometheus.write.v2``), declared in code.

Built as a descriptor at import time, like ``remote_write_pb``: no generated code, no ``protoc``. The
field numbers are the wire contract of the Remote-Write 2.0 specification (``Request`` keeps 1..3
reserved so that a 1.0 ``WriteRequest`` never parses as a meaningful 2.0 one).
"""

from __future__ import annotations

from typing import Any, TypeAlias

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F: TypeAlias = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "novacron.prompb.v2"

# Metadata.MetricType values (the spec's enum); only the ones the ingest path reasons about are named.
METRIC_TYPE_UNSPECIFIED = 0
METRIC_TYPE_COUNTER = 1
METRIC_TYPE_GAUGE = 2
METRIC_TYPE_HISTOGRAM = 3
METRIC_TYPE_GAUGEHISTOGRAM = 4
METRIC_TYPE_SUMMARY = 5
METRIC_TYPE_INFO = 6
METRIC_TYPE_STATESET = 7
_METRIC_TYPES = {
    "METRIC_TYPE_UNSPECIFIED": METRIC_TYPE_UNSPECIFIED,
    "METRIC_TYPE_COUNTER": METRIC_TYPE_COUNTER,
    "METRIC_TYPE_GAUGE": METRIC_TYPE_GAUGE,
    "METRIC_TYPE_HISTOGRAM": METRIC_TYPE_HISTOGRAM,
    "METRIC_TYPE_GAUGEHISTOGRAM": METRIC_TYPE_GAUGEHISTOGRAM,
    "METRIC_TYPE_SUMMARY": METRIC_TYPE_SUMMARY,
    "METRIC_TYPE_INFO": METRIC_TYPE_INFO,
    "METRIC_TYPE_STATESET": METRIC_TYPE_STATESET,
}
_RESET_HINTS = {"RESET_HINT_UNSPECIFIED": 0, "RESET_HINT_YES": 1, "RESET_HINT_NO": 2, "RESET_HINT_GAUGE": 3}


def _field(
    name: str,
    number: int,
    kind: int,
    *,
    repeated: bool = False,
    type_name: str = "",
    oneof: int | None = None,
) -> _F:
    label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    field = _F(name=name, number=number, type=kind, label=label)
    if type_name:
        field.type_name = f".{_PACKAGE}.{type_name}"
    if oneof is not None:
        field.oneof_index = oneof
    return field


def _enum(name: str, values: dict[str, int]) -> descriptor_pb2.EnumDescriptorProto:
    return descriptor_pb2.EnumDescriptorProto(
        name=name, value=[descriptor_pb2.EnumValueDescriptorProto(name=k, number=v) for k, v in values.items()]
    )


def _message(
    name: str,
    *fields: _F,
    enums: tuple[descriptor_pb2.EnumDescriptorProto, ...] = (),
    oneofs: tuple[str, ...] = (),
) -> descriptor_pb2.DescriptorProto:
    return descriptor_pb2.DescriptorProto(
        name=name,
        field=list(fields),
        enum_type=list(enums),
        oneof_decl=[descriptor_pb2.OneofDescriptorProto(name=o) for o in oneofs],
    )


def _series_fields(samples: _F) -> list[_F]:
    """TimeSeries fields 1..6; ``samples`` differs between the typed and the raw declaration."""
    return [
        _field("labels_refs", 1, _F.TYPE_UINT32, repeated=True),  # proto3: packed by default
        samples,
        _field("histograms", 3, _F.TYPE_MESSAGE, repeated=True, type_name="Histogram"),
        _field("exemplars", 4, _F.TYPE_MESSAGE, repeated=True, type_name="Exemplar"),
        _field("metadata", 5, _F.TYPE_MESSAGE, type_name="Metadata"),
        _field("created_timestamp", 6, _F.TYPE_INT64),
    ]


def _build() -> descriptor_pool.DescriptorPool:
    proto = descriptor_pb2.FileDescriptorProto(name="novacron/prompb_v2.proto", package=_PACKAGE, syntax="proto3")
    proto.message_type.extend(
        [
            _message("Sample", _field("value", 1, _F.TYPE_DOUBLE), _field("timestamp", 2, _F.TYPE_INT64)),
            _message(
                "Exemplar",
                _field("labels_refs", 1, _F.TYPE_UINT32, repeated=True),
                _field("value", 2, _F.TYPE_DOUBLE),
                _field("timestamp", 3, _F.TYPE_INT64),
            ),
            _message(
                "Metadata",
                _field("type", 1, _F.TYPE_ENUM, type_name="Metadata.MetricType"),
                _field("help_ref", 3, _F.TYPE_UINT32),
                _field("unit_ref", 4, _F.TYPE_UINT32),
                enums=(_enum("MetricType", _METRIC_TYPES),),
            ),
            _message("BucketSpan", _field("offset", 1, _F.TYPE_SINT32), _field("length", 2, _F.TYPE_UINT32)),
            _message(
                "Histogram",
                _field("count_int", 1, _F.TYPE_UINT64, oneof=0),
                _field("count_float", 2, _F.TYPE_DOUBLE, oneof=0),
                _field("sum", 3, _F.TYPE_DOUBLE),
                _field("schema", 4, _F.TYPE_SINT32),
                _field("zero_threshold", 5, _F.TYPE_DOUBLE),
                _field("zero_count_int", 6, _F.TYPE_UINT64, oneof=1),
                _field("zero_count_float", 7, _F.TYPE_DOUBLE, oneof=1),
                _field("negative_spans", 8, _F.TYPE_MESSAGE, repeated=True, type_name="BucketSpan"),
                _field("negative_deltas", 9, _F.TYPE_SINT64, repeated=True),
                _field("negative_counts", 10, _F.TYPE_DOUBLE, repeated=True),
                _field("positive_spans", 11, _F.TYPE_MESSAGE, repeated=True, type_name="BucketSpan"),
                _field("positive_deltas", 12, _F.TYPE_SINT64, repeated=True),
                _field("positive_counts", 13, _F.TYPE_DOUBLE, repeated=True),
                _field("reset_hint", 14, _F.TYPE_ENUM, type_name="Histogram.ResetHint"),
                _field("timestamp", 15, _F.TYPE_INT64),
                _field("custom_values", 16, _F.TYPE_DOUBLE, repeated=True),
                enums=(_enum("ResetHint", _RESET_HINTS),),
                oneofs=("count", "zero_count"),
            ),
            _message(
                "TimeSeries",
                *_series_fields(_field("samples", 2, _F.TYPE_MESSAGE, repeated=True, type_name="Sample")),
            ),
            _message(
                "Request",
                _field("symbols", 4, _F.TYPE_STRING, repeated=True),
                _field("timeseries", 5, _F.TYPE_MESSAGE, repeated=True, type_name="TimeSeries"),
            ),
            # What the decoder parses. Samples stay bytes: a 2.0 ``Sample`` is wire-identical to a 1.0
            # one, so they are copied into the 1.0 encoding without a Python object per sample.
            _message("RawTimeSeries", *_series_fields(_field("samples", 2, _F.TYPE_BYTES, repeated=True))),
            # Symbols as bytes, so that invalid UTF-8 is reported per label by the validator instead
            # of failing the whole body. Field 1 is reserved in 2.0 and is the ``timeseries`` of a 1.0
            # ``WriteRequest``: declared here only to recognise a 1.0 body sent with the 2.0 type.
            _message(
                "RawRequest",
                _field("v1_timeseries", 1, _F.TYPE_BYTES, repeated=True),
                _field("symbols", 4, _F.TYPE_BYTES, repeated=True),
                _field("timeseries", 5, _F.TYPE_MESSAGE, repeated=True, type_name="RawTimeSeries"),
            ),
        ]
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return pool


_POOL = _build()


def _cls(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


Request: Any = _cls("Request")
TimeSeries: Any = _cls("TimeSeries")
Sample: Any = _cls("Sample")
Exemplar: Any = _cls("Exemplar")
Metadata: Any = _cls("Metadata")
Histogram: Any = _cls("Histogram")
BucketSpan: Any = _cls("BucketSpan")
RawRequest: Any = _cls("RawRequest")
RawTimeSeries: Any = _cls("RawTimeSeries")
