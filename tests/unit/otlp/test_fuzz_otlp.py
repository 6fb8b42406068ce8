"""Fuzzing the OTLP/HTTP decoders: any body, in either encoding, gets a 200 or a 4xx, never a crash.

A 5xx would make an OpenTelemetry exporter resend the same bad body; an exception would be a 500.
Bodies are arbitrary bytes, valid messages with bytes flipped, and arbitrary JSON documents.
"""

from __future__ import annotations

import gzip
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from novacron.ingest.otlp import OtlpReceiver, OtlpResponse, TraceService
from novacron.ingest.service import IngestService
from tests.builders_otlp import JSON, PROTOBUF, gauge_request, span, trace_request
from tests.fakes import ListSink

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_BYTE = st.integers(min_value=0, max_value=255)
_FLIPS = st.lists(st.tuples(st.integers(min_value=0), _BYTE), min_size=1, max_size=8)
_JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=16)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
_OTLP_KEYS = st.sampled_from(
    ["resourceMetrics", "resourceSpans", "scopeMetrics", "scopeSpans", "metrics", "spans", "gauge", "sum",
     "histogram", "dataPoints", "asDouble", "asInt", "timeUnixNano", "traceId", "spanId", "attributes", "name"]
)  # fmt: skip
_OTLP_SHAPED = st.recursive(
    _JSON_SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_OTLP_KEYS, children, max_size=4),
    max_leaves=30,
)


def _metrics_request() -> bytes:
    request = gauge_request("queue_depth", {"a": 3.0, "b": 4.0})
    histogram = Metric(name="latency", unit="s")
    point = histogram.histogram.data_points.add(time_unix_nano=time.time_ns(), count=3, sum=0.6)
    point.explicit_bounds.extend([0.1, 0.5])
    point.bucket_counts.extend([1, 1, 1])
    histogram.histogram.aggregation_temporality = 2
    request.resource_metrics[0].scope_metrics[0].metrics.append(histogram)
    return request.SerializeToString()


_VALID_METRICS = _metrics_request()
_VALID_TRACES = trace_request([span(name="a", attrs={"http.route": "/x"}), span(name="b")]).SerializeToString()


@pytest.fixture
def receiver() -> OtlpReceiver:
    return OtlpReceiver(IngestService(ListSink()), TraceService(ListSink()), 8 * 1024 * 1024)


def _export(receiver: OtlpReceiver, signal: str, body: bytes, headers: dict[str, str]) -> OtlpResponse:
    export = receiver.export_metrics if signal == "metrics" else receiver.export_traces
    return export(body, headers, "fuzz")


def _assert_answered(response: OtlpResponse) -> None:
    assert response.status == 200 or 400 <= response.status < 500, response
    assert response.body or response.status == 200


def _mutate(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    mutated = bytearray(data)
    for position, value in flips:
        mutated[position % len(mutated)] = value
    return bytes(mutated)


@FUZZ
@given(body=st.binary(max_size=2048), signal=st.sampled_from(["metrics", "traces"]), as_json=st.booleans())
def test_arbitrary_bytes_get_a_200_or_a_4xx(receiver: OtlpReceiver, body: bytes, signal: str, as_json: bool) -> None:
    # Given any bytes, declared as either encoding
    # When exported
    response = _export(receiver, signal, body, JSON if as_json else PROTOBUF)
    # Then the exporter gets an answer it will not retry
    _assert_answered(response)


@FUZZ
@given(flips=_FLIPS, signal=st.sampled_from(["metrics", "traces"]), zipped=st.booleans())
def test_mutated_valid_messages_get_a_200_or_a_4xx(
    receiver: OtlpReceiver, flips: list[tuple[int, int]], signal: str, zipped: bool
) -> None:
    # Given a valid protobuf export with a few bytes changed, maybe gzip'd afterwards
    body = _mutate(_VALID_METRICS if signal == "metrics" else _VALID_TRACES, flips)
    headers = {**PROTOBUF, "content-encoding": "gzip"} if zipped else PROTOBUF
    # When exported
    response = _export(receiver, signal, gzip.compress(body) if zipped else body, headers)
    # Then the exporter gets an answer it will not retry
    _assert_answered(response)


@FUZZ
@given(document=_JSON | _OTLP_SHAPED, signal=st.sampled_from(["metrics", "traces"]))
def test_arbitrary_json_gets_a_200_or_a_4xx(receiver: OtlpReceiver, document: object, signal: str) -> None:
    # Given any JSON document, including ones shaped almost like an OTLP export
    body = json.dumps({"resourceMetrics" if signal == "metrics" else "resourceSpans": document}).encode()
    # When exported as OTLP/JSON
    response = _export(receiver, signal, body, JSON)
    # Then the exporter gets an answer it will not retry
    _assert_answered(response)
