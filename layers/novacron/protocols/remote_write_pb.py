"""Prometheus remote write 1.0 protobuf messages, declared in code.

The schema is Prometheus's ``prompb`` (remote.proto / types.proto), built as a descriptor at import
time so that no generated code and no ``protoc`` are needed. Field numbers are the wire contract.
"""

from __future__ import annotations

import functools
from typing import Any

from novacron.protocols.descriptors import F as _F
from novacron.protocols.descriptors import field, message, message_classes

_PACKAGE = "novacron.prompb"
_field = functools.partial(field, _PACKAGE)

_cls = message_classes(
    "novacron/prompb.proto",
    _PACKAGE,
    [
        message("Label", _field("name", 1, _F.TYPE_STRING), _field("value", 2, _F.TYPE_STRING)),
        message("Sample", _field("value", 1, _F.TYPE_DOUBLE), _field("timestamp", 2, _F.TYPE_INT64)),
        message(
            "Exemplar",
            _field("labels", 1, _F.TYPE_MESSAGE, repeated=True, type_name="Label"),
            _field("value", 2, _F.TYPE_DOUBLE),
            _field("timestamp", 3, _F.TYPE_INT64),
        ),
        message(
            "TimeSeries",
            _field("labels", 1, _F.TYPE_MESSAGE, repeated=True, type_name="Label"),
            _field("samples", 2, _F.TYPE_MESSAGE, repeated=True, type_name="Sample"),
            _field("exemplars", 3, _F.TYPE_MESSAGE, repeated=True, type_name="Exemplar"),
            # Native histograms (field 4) are recognised only to refuse them clearly; their
            # contents are not parsed until remote write 2.0 support lands.
            _field("histograms", 4, _F.TYPE_BYTES, repeated=True),
        ),
        message(
            "MetricMetadata",
            _field("type", 1, _F.TYPE_INT32),
            _field("metric_family_name", 2, _F.TYPE_STRING),
            _field("help", 4, _F.TYPE_STRING),
            _field("unit", 5, _F.TYPE_STRING),
        ),
        message(
            "WriteRequest",
            _field("timeseries", 1, _F.TYPE_MESSAGE, repeated=True, type_name="TimeSeries"),
            _field("metadata", 3, _F.TYPE_MESSAGE, repeated=True, type_name="MetricMetadata"),
        ),
        # The same wire bytes seen one level deep only: each series stays an opaque byte string,
        # which the columnar decoder in ``wire.py`` reads without a Python object per sample.
        # Labels with their strings as bytes, so invalid UTF-8 can be reported per label.
        message("RawLabel", _field("name", 1, _F.TYPE_BYTES), _field("value", 2, _F.TYPE_BYTES)),
        message("RawLabels", _field("labels", 1, _F.TYPE_MESSAGE, repeated=True, type_name="RawLabel")),
        # A series with its label fields kept as bytes, for the decoder's general path.
        message(
            "RawTimeSeries",
            _field("labels", 1, _F.TYPE_BYTES, repeated=True),
            _field("samples", 2, _F.TYPE_MESSAGE, repeated=True, type_name="Sample"),
            _field("histograms", 4, _F.TYPE_BYTES, repeated=True),
        ),
        message(
            "RawWriteRequest",
            _field("timeseries", 1, _F.TYPE_BYTES, repeated=True),
            _field("metadata", 3, _F.TYPE_BYTES, repeated=True),
        ),
    ],
)

WriteRequest: Any = _cls("WriteRequest")
TimeSeries: Any = _cls("TimeSeries")
Label: Any = _cls("Label")
Sample: Any = _cls("Sample")
RawWriteRequest: Any = _cls("RawWriteRequest")
RawLabels: Any = _cls("RawLabels")
RawTimeSeries: Any = _cls("RawTimeSeries")
