"""Prometheus remote write 2.0 protobuf messages (``io.prometheus.write.v2``), declared in code.

Built as a descriptor at import time, like ``remote_write_pb``: no generated code, no ``protoc``. The
field numbers are the wire contract of the Remote-Write 2.0 specification (``Request`` keeps 1..3
reserved so that a 1.0 ``WriteRequest`` never parses as a meaningful 2.0 one).
"""

from __future__ import annotations

import functools
from typing import Any

from novacron.protocols.descriptors import F as _F
from novacron.protocols.descriptors import enum, field, message, message_classes

_PACKAGE = "novacron.prompb.v2"
_field = functools.partial(field, _PACKAGE)

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


_cls = message_classes(
    "novacron/prompb_v2.proto",
    _PACKAGE,
    [
        message("Sample", _field("value", 1, _F.TYPE_DOUBLE), _field("timestamp", 2, _F.TYPE_INT64)),
        message(
            "Exemplar",
            _field("labels_refs", 1, _F.TYPE_UINT32, repeated=True),
            _field("value", 2, _F.TYPE_DOUBLE),
            _field("timestamp", 3, _F.TYPE_INT64),
        ),
        message(
            "Metadata",
            _field("type", 1, _F.TYPE_ENUM, type_name="Metadata.MetricType"),
            _field("help_ref", 3, _F.TYPE_UINT32),
            _field("unit_ref", 4, _F.TYPE_UINT32),
            enums=(enum("MetricType", _METRIC_TYPES),),
        ),
        message("BucketSpan", _field("offset", 1, _F.TYPE_SINT32), _field("length", 2, _F.TYPE_UINT32)),
        message(
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
            enums=(enum("ResetHint", _RESET_HINTS),),
            oneofs=("count", "zero_count"),
        ),
        message(
            "TimeSeries",
            *_series_fields(_field("samples", 2, _F.TYPE_MESSAGE, repeated=True, type_name="Sample")),
        ),
        message(
            "Request",
            _field("symbols", 4, _F.TYPE_STRING, repeated=True),
            _field("timeseries", 5, _F.TYPE_MESSAGE, repeated=True, type_name="TimeSeries"),
        ),
        # What the decoder parses. Samples stay bytes: a 2.0 ``Sample`` is wire-identical to a 1.0
        # one, so they are copied into the 1.0 encoding without a Python object per sample.
        message("RawTimeSeries", *_series_fields(_field("samples", 2, _F.TYPE_BYTES, repeated=True))),
        # Symbols as bytes, so that invalid UTF-8 is reported per label by the validator instead
        # of failing the whole body. Field 1 is reserved in 2.0 and is the ``timeseries`` of a 1.0
        # ``WriteRequest``: declared here only to recognise a 1.0 body sent with the 2.0 type.
        message(
            "RawRequest",
            _field("v1_timeseries", 1, _F.TYPE_BYTES, repeated=True),
            _field("symbols", 4, _F.TYPE_BYTES, repeated=True),
            _field("timeseries", 5, _F.TYPE_MESSAGE, repeated=True, type_name="RawTimeSeries"),
        ),
    ],
)

Request: Any = _cls("Request")
TimeSeries: Any = _cls("TimeSeries")
Sample: Any = _cls("Sample")
Exemplar: Any = _cls("Exemplar")
Metadata: Any = _cls("Metadata")
Histogram: Any = _cls("Histogram")
BucketSpan: Any = _cls("BucketSpan")
RawRequest: Any = _cls("RawRequest")
RawTimeSeries: Any = _cls("RawTimeSeries")
