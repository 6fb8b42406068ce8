"""Fuzzing the metric stream decoders and the Firehose endpoint: any input ends in data or a clean 4xx.

A decoder may only raise MetricStreamError (the endpoint turns it into a counted, rejected record);
the endpoint may only answer with a result or an IngestError of a 4xx status, so that Firehose is never
told to retry something that can never succeed, and the function never crashes.
"""

from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from novacron.ingest.firehose import Delivery, FirehoseEndpoint
from novacron.ingest.service import IngestError, IngestService
from novacron.protocols.cloudwatch import MetricStreamError, SeriesBuilder, decode_json_record, decode_otel_record
from tests.fakes import ListSink
from tests.unit.firehose.sender import Point, firehose_body, json_record, otel_record

NOW = 1_790_000_100_000
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_VALID_OTEL = otel_record([Point("AWS/EC2", "CPUUtilization", NOW, {"InstanceId": "i-1"}, percentiles={"p99": 1.0})])
_VALID_JSON = json_record([Point("AWS/EC2", "CPUUtilization", NOW, {"InstanceId": "i-1"})])

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
_FIELDS = st.sampled_from(
    [
        "namespace",
        "metric_name",
        "timestamp",
        "value",
        "dimensions",
        "unit",
        "account_id",
        "region",
        "metric_stream_name",
    ]
)
# Objects shaped like metric stream lines, with fields of any type: the decoder's checks are reached.
_LINE_LIKE = st.dictionaries(_FIELDS, _JSON, max_size=9)


def _decodes_cleanly(decode: object, data: bytes) -> None:
    assert callable(decode)
    try:
        points = decode(data)
    except MetricStreamError:
        return
    builder = SeriesBuilder()
    try:
        builder.add(points)
    except MetricStreamError:
        return
    builder.encoded()


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_into_the_otel_decoder(data: bytes) -> None:
    _decodes_cleanly(decode_otel_record, data)


@FUZZ
@given(st.data())
def test_mutated_otel_records(data: st.DataObject) -> None:
    # Given a valid record with a few bytes changed, cut or appended
    raw = bytearray(_VALID_OTEL)
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    _decodes_cleanly(decode_otel_record, bytes(raw[:cut]) + data.draw(st.binary(max_size=8)))


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_into_the_json_decoder(data: bytes) -> None:
    _decodes_cleanly(decode_json_record, data)


@FUZZ
@given(st.lists(_LINE_LIKE | _JSON, min_size=1, max_size=3))
def test_random_json_into_the_json_decoder(lines: list[object]) -> None:
    _decodes_cleanly(decode_json_record, "\n".join(json.dumps(line) for line in lines).encode())


def _delivered(body: bytes, headers: dict[str, str]) -> Delivery | IngestError:
    endpoint = FirehoseEndpoint(IngestService(ListSink(), clock_ms=lambda: NOW), max_decoded_bytes=4096)
    outcome: Delivery | IngestError
    try:
        outcome = endpoint.deliver(body, headers, "acme")
    except IngestError as exc:
        outcome = exc
    if isinstance(outcome, IngestError):
        assert 400 <= outcome.status < 500, outcome
    return outcome


@FUZZ
@given(st.binary(max_size=400), st.sampled_from(["", "gzip"]))
def test_random_bodies_into_the_endpoint(body: bytes, encoding: str) -> None:
    _delivered(body, {"content-encoding": encoding} if encoding else {})


@FUZZ
@given(st.lists(st.binary(max_size=200) | st.just(_VALID_JSON) | st.just(_VALID_OTEL), max_size=4), _JSON)
def test_random_records_and_bodies_into_the_endpoint(records: list[bytes], extra: object) -> None:
    # Given records of any bytes (some valid), and request documents of any shape
    outcome = _delivered(firehose_body(records, "r"), {})
    if any(r in (_VALID_JSON, _VALID_OTEL) for r in records):
        assert isinstance(outcome, Delivery)
    doc = {"requestId": "r", "records": [{"data": base64.b64encode(r).decode()} for r in records] + [extra]}
    _delivered(json.dumps(doc).encode(), {"x-amz-firehose-common-attributes": json.dumps(extra)})
