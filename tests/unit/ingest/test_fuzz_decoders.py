"""Fuzzing the remote write (1.0, 2.0) and native JSON decoders: any body ends in a result or a 4xx.

A sender must never see a 5xx (it would resend the same bad body forever) and the function must
never crash, whatever the bytes. Both decoders of the wire format (the C extension and the numpy
reference) are driven.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import cramjam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from novacron.ingest.service import IngestError, IngestResult, IngestService
from novacron.protocols import wire
from tests.builders import NOW, RW_HEADERS, raw_body, timeseries
from tests.builders_v2 import V2_HEADERS, V2Spec, v2_raw
from tests.fakes import ListSink

_BYTE = st.integers(min_value=0, max_value=255)
_LABEL_NAMES = st.sampled_from(["__name__", "job", "a b", "", "__x"])
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

_VALID_V1 = raw_body(
    [
        timeseries({"__name__": "http_requests_total", "job": "api", "code": "200"}, [(NOW - 15_000, 3.0), (NOW, 5.0)]),
        timeseries({"__name__": "up", "instance": "a:9100"}, [(NOW, 1.0)]),
    ]
)
_VALID_V2 = v2_raw([V2Spec({"__name__": "queue_depth", "queue": "orders"}, [(NOW, 7.0)], created=NOW - 60_000)])


@pytest.fixture(params=["native", "numpy"])
def decoder(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "native" and not wire.native_available():
        pytest.skip("the C extension is not built on this machine; the numpy decoder is fuzzed instead")
    previous = wire.use_native(request.param == "native")
    yield request.param
    wire.use_native(previous)


@pytest.fixture
def service() -> IngestService:
    return IngestService(ListSink(), clock_ms=lambda: NOW)


def _outcome(call: object) -> IngestResult | IngestError:
    assert callable(call)
    try:
        result = call()
    except IngestError as exc:
        return exc
    assert isinstance(result, IngestResult)
    return result


def _assert_client_error_or_result(outcome: IngestResult | IngestError) -> None:
    if isinstance(outcome, IngestError):
        assert 400 <= outcome.status < 500, outcome.message
        assert outcome.message.strip(), "a refusal must say what is wrong"


def _mutate(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    mutated = bytearray(data)
    for position, value in flips:
        mutated[position % len(mutated)] = value
    return bytes(mutated)


@FUZZ
@given(body=st.binary(max_size=2048), version=st.sampled_from([1, 2]), compress=st.booleans())
def test_arbitrary_bytes_get_a_result_or_a_4xx(
    service: IngestService, decoder: str, body: bytes, version: int, compress: bool
) -> None:
    # Given any bytes, sent raw or snappy-compressed, as a 1.0 or 2.0 body
    payload = bytes(cramjam.snappy.compress_raw(body)) if compress else body
    headers = RW_HEADERS if version == 1 else V2_HEADERS
    # When written
    outcome = _outcome(lambda: service.remote_write(payload, headers, "fuzz"))
    # Then the sender gets a result or a client error with a message
    _assert_client_error_or_result(outcome)


@FUZZ
@given(
    flips=st.lists(st.tuples(st.integers(min_value=0), _BYTE), min_size=1, max_size=8),
    version=st.sampled_from([1, 2]),
)
def test_mutated_valid_messages_get_a_result_or_a_4xx(
    service: IngestService, decoder: str, flips: list[tuple[int, int]], version: int
) -> None:
    # Given a valid message with a few bytes changed (lengths, tags, varints, label text)
    raw = _mutate(_VALID_V1 if version == 1 else _VALID_V2, flips)
    headers = RW_HEADERS if version == 1 else V2_HEADERS
    # When written
    outcome = _outcome(lambda: service.remote_write(bytes(cramjam.snappy.compress_raw(raw)), headers, "fuzz"))
    # Then the sender gets a result or a client error with a message
    _assert_client_error_or_result(outcome)


_JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_SERIES_LIKE = st.fixed_dictionaries(
    {
        "series": st.lists(
            st.fixed_dictionaries(
                {
                    "labels": st.dictionaries(_LABEL_NAMES, _JSON, max_size=3),
                    "samples": st.lists(st.lists(_JSON, max_size=3), max_size=3),
                }
            ),
            max_size=3,
        )
    }
)


@FUZZ
@given(document=_JSON | _SERIES_LIKE)
def test_native_json_gets_a_result_or_a_4xx(service: IngestService, document: object) -> None:
    # Given any JSON document, including ones shaped almost like an ingest body
    body = json.dumps(document).encode()
    # When ingested
    outcome = _outcome(lambda: service.ingest_json(body, "fuzz"))
    # Then the sender gets a result or a client error with a message
    _assert_client_error_or_result(outcome)


@FUZZ
@given(body=st.binary(max_size=512))
def test_native_json_arbitrary_bytes_get_a_4xx(service: IngestService, body: bytes) -> None:
    # Given bytes that are rarely JSON at all
    outcome = _outcome(lambda: service.ingest_json(body, "fuzz"))
    # Then the sender gets a result or a client error with a message
    _assert_client_error_or_result(outcome)
