"""The Firehose HTTP endpoint contract: request parsing, partial failures, limits and the response shape."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from novacron.auth import AuthError
from novacron.ingest.firehose import (
    FirehoseEndpoint,
    common_labels,
    credential_of,
    parse_request,
    request_id_of,
    response_body,
)
from novacron.ingest.service import IngestError, IngestService, StreamUnavailable
from tests.fakes import ListSink
from tests.unit.firehose.sender import Point, delivery, firehose_body, json_record, otel_record

NOW = 1_790_000_100_000
T = NOW - 120_000
LIMIT = 1024 * 1024
KEY = "nck_0123456789ab_secretsecretsecretsecret"
POINTS = [
    Point("AWS/EC2", "CPUUtilization", T, {"InstanceId": "i-1"}, sum=12.0),
    Point("AWS/EC2", "CPUUtilization", T, {"InstanceId": "i-2"}, sum=34.0, percentiles={"p99": 9.5}),
]


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def endpoint(sink: ListSink) -> FirehoseEndpoint:
    return FirehoseEndpoint(IngestService(sink, clock_ms=lambda: NOW), max_decoded_bytes=LIMIT)


def stored(sink: ListSink) -> dict[tuple[str, str], float]:
    """(metric name, instance) → value of everything that reached the stream."""
    out = {}
    for labels, samples in sink.stored_samples().items():
        found = dict(labels)
        for _, value in samples:
            out[(found["__name__"], found.get("dimension_InstanceId", ""))] = value
    return out


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "plain"])
@pytest.mark.parametrize("encode", [json_record, otel_record], ids=["json", "otel"])
def test_a_delivery_is_stored_for_the_tenant(endpoint: FirehoseEndpoint, sink: ListSink, compress, encode) -> None:
    # Given a delivery of two records, each with several metrics
    sent = delivery([encode(POINTS), encode(POINTS[:1])], KEY, compress=compress)
    # When the endpoint takes it
    result = endpoint.deliver(sent.body, sent.headers, "acme")
    # Then every statistic is on the stream, keyed by the tenant
    assert result.request_id == sent.request_id
    assert result.records == 2
    assert result.record_errors == []
    assert stored(sink)[("aws_ec2_cpuutilization_sum", "i-2")] == 34.0
    assert stored(sink)[("aws_ec2_cpuutilization_p99", "i-2")] == 9.5
    assert result.ingest.series_accepted == 4 + 5
    assert all(record.partition_key.startswith("acme:") for record in sink.records)


def test_bad_records_are_counted_and_the_good_ones_stored(endpoint: FirehoseEndpoint, sink: ListSink) -> None:
    # Given one good record among a bad-JSON one, an empty one and bad base64
    body = json.loads(firehose_body([b"{oops", json_record(POINTS), b""], "req-1"))
    body["records"].append({"data": "%%% not base64"})
    body["records"].append("not an object")
    # When delivered
    result = endpoint.deliver(json.dumps(body).encode(), {"x-amz-firehose-request-id": "req-1"}, "acme")
    # Then the good record is stored and each bad one is named by its position
    assert stored(sink)[("aws_ec2_cpuutilization_sum", "i-1")] == 12.0
    assert [e.split(":")[0] for e in result.record_errors] == ["record 0", "record 2", "record 3", "record 4"]
    assert "not valid base64" in result.record_errors[2]
    assert result.counts()["RecordsRejected"] == 4
    assert result.summary()["records_rejected"] == 4


def test_a_delivery_with_no_usable_record_is_a_400(endpoint: FirehoseEndpoint, sink: ListSink) -> None:
    # Given records none of which is a metric stream record
    sent = delivery([b"hello", b'{"a": 1}'], KEY)
    # When delivered, Then it is refused (Firehose retries, then backs the batch up to S3)
    with pytest.raises(IngestError) as caught:
        endpoint.deliver(sent.body, sent.headers, "acme")
    assert caught.value.status == 400
    assert "none of the 2 records" in caught.value.message
    assert "record 0: not JSON (no '{' first) and not OpenTelemetry 1.0" in caught.value.message
    assert "record 1: line 1: missing or empty string field 'namespace'" in caught.value.message
    assert sink.records == []


def test_series_the_validator_rejects_do_not_fail_the_delivery(endpoint: FirehoseEndpoint, sink: ListSink) -> None:
    # Given a record with a data point far older than the accepted window, and a fresh one
    old = Point("AWS/EC2", "CPUUtilization", NOW - 3 * 86_400_000, {"InstanceId": "i-old"})
    sent = delivery([json_record([old, POINTS[0]])], KEY)
    # When delivered
    result = endpoint.deliver(sent.body, sent.headers, "acme")
    # Then the fresh point is stored and the old one counted as rejected (a retry would not help)
    assert stored(sink)[("aws_ec2_cpuutilization_sum", "i-1")] == 12.0
    assert len(result.ingest.rejected) == 4
    assert "outside the accepted window" in result.ingest.rejected[0]


@pytest.mark.parametrize(("throttled", "status"), [(True, 429), (False, 503)])
def test_a_stream_that_cannot_take_the_data_asks_firehose_to_retry(throttled: bool, status: int) -> None:
    # Given a stream that refuses writes
    sink = ListSink(fail_with=StreamUnavailable("busy", throttled=throttled, retry_after_s=2))
    endpoint = FirehoseEndpoint(IngestService(sink, clock_ms=lambda: NOW), max_decoded_bytes=LIMIT)
    sent = delivery([json_record(POINTS)], KEY)
    # When delivered, Then the status is one Firehose retries
    with pytest.raises(IngestError) as caught:
        endpoint.deliver(sent.body, sent.headers, "acme")
    assert caught.value.status == status
    assert caught.value.headers == {"Retry-After": "2"}


def test_a_body_over_the_limit_is_a_413_without_inflating_it(endpoint: FirehoseEndpoint) -> None:
    # Given a gzip body that inflates to far more than the limit (a "zip bomb")
    bomb = gzip.compress(b" " * (LIMIT * 20))
    # When parsed, Then it is refused with 413 as soon as the limit is passed
    with pytest.raises(IngestError) as caught:
        endpoint.deliver(bomb, {"content-encoding": "gzip"}, "acme")
    assert caught.value.status == 413
    assert str(LIMIT) in caught.value.message


def test_an_uncompressed_body_over_the_limit_is_a_413() -> None:
    with pytest.raises(IngestError) as caught:
        parse_request(b" " * 101, {}, max_decoded_bytes=100)
    assert caught.value.status == 413


@pytest.mark.parametrize(
    ("body", "headers", "status", "fragment"),
    [
        (b"\x1f\x8b garbage", {"content-encoding": "gzip"}, 400, "not valid gzip"),
        (gzip.compress(b"{}")[:-6], {"content-encoding": "gzip"}, 400, "truncated"),
        (b"{}", {"content-encoding": "br"}, 415, "Content-Encoding 'br'"),
        (b"not json", {}, 400, "not valid JSON"),
        (b'{"records": {}}', {}, 400, '"records" array'),
        (b"[]", {}, 400, '"records" array'),
        (b'{"records": []}', {"x-amz-firehose-protocol-version": "2.0"}, 400, "Protocol-Version '2.0'"),
    ],
)
def test_malformed_requests_are_refused_clearly(
    body: bytes, headers: dict[str, str], status: int, fragment: str
) -> None:
    with pytest.raises(IngestError) as caught:
        parse_request(body, headers, max_decoded_bytes=LIMIT)
    assert caught.value.status == status
    assert fragment in caught.value.message


def test_the_request_id_comes_from_the_header_or_else_the_body() -> None:
    body = firehose_body([], "from-body")
    assert parse_request(body, {"x-amz-firehose-request-id": "from-header"}, LIMIT).request_id == "from-header"
    assert parse_request(body, {}, LIMIT).request_id == "from-body"
    assert request_id_of({}) == ""


def test_response_documents_follow_the_contract() -> None:
    assert response_body("r-1", NOW) == {"requestId": "r-1", "timestamp": NOW}
    failed = response_body("r-1", NOW, "x" * 10_000)
    assert failed["requestId"] == "r-1"
    assert len(failed["errorMessage"]) == 8192
    assert failed["errorMessage"].endswith("...")


def test_an_empty_delivery_is_accepted(endpoint: FirehoseEndpoint, sink: ListSink) -> None:
    result = endpoint.deliver(firehose_body([], "r"), {}, "acme")
    assert result.records == 0
    assert sink.records == []


def test_common_attributes_become_labels(endpoint: FirehoseEndpoint, sink: ListSink) -> None:
    # Given a delivery stream configured with common attributes
    sent = delivery(
        [json_record(POINTS[:1])], KEY, common_attributes={"deployment-context": "pre-prod", "source": "acct-a"}
    )
    # When delivered
    endpoint.deliver(sent.body, sent.headers, "acme")
    # Then every series carries them, sanitised, and "source" replaces the default
    labels = dict(next(iter(sink.stored_samples())))
    assert labels["deployment_context"] == "pre-prod"
    assert labels["source"] == "acct-a"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ('{"commonAttributes": {"region": "x"}}', "cannot be a label"),
        ('{"commonAttributes": {"dimension_X": "x"}}', "cannot be a label"),
        ('{"commonAttributes": {"__x": "x"}}', "cannot be a label"),
        ('{"commonAttributes": {"a": 1}}', "map names to strings"),
        ("not json", "must be"),
        ("[1]", "must be"),
    ],
)
def test_unusable_common_attributes_are_refused(raw: str, fragment: str) -> None:
    with pytest.raises(IngestError) as caught:
        common_labels({"x-amz-firehose-common-attributes": raw})
    assert caught.value.status == 400
    assert fragment in caught.value.message


def test_common_attribute_names_starting_with_a_digit_get_a_prefix() -> None:
    assert common_labels({"x-amz-firehose-common-attributes": '{"commonAttributes": {"1a": "v"}}'}) == {"_1a": "v"}


def test_the_access_key_header_is_the_credential() -> None:
    # Given the header Firehose sends, plain or as a Secrets Manager {"api_key"} document
    assert credential_of({"x-amz-firehose-access-key": KEY}) == f"Bearer {KEY}"
    assert credential_of({"x-amz-firehose-access-key": json.dumps({"api_key": KEY})}) == f"Bearer {KEY}"
    # And an Authorization header when there is no Firehose header (trying the endpoint by hand)
    assert credential_of({"authorization": f"Bearer {KEY}"}) == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "missing X-Amz-Firehose-Access-Key"),
        ({"x-amz-firehose-access-key": "  "}, "missing X-Amz-Firehose-Access-Key"),
        ({"x-amz-firehose-access-key": "{broken"}, "malformed X-Amz-Firehose-Access-Key"),
    ],
)
def test_a_missing_or_malformed_access_key_is_a_401(headers: dict[str, str], fragment: str) -> None:
    with pytest.raises(AuthError) as caught:
        credential_of(headers)
    assert caught.value.status == 401
    assert fragment in caught.value.message


def test_records_are_base64(endpoint: FirehoseEndpoint, sink: ListSink) -> None:
    # Given a record whose data is the raw JSON text rather than its base64 (not what Firehose sends)
    body = json.dumps({"requestId": "r", "records": [{"data": json_record(POINTS).decode()}]}).encode()
    # When delivered, Then it is refused as not base64
    with pytest.raises(IngestError, match="not valid base64"):
        endpoint.deliver(body, {}, "acme")
    assert base64.b64encode(b"x")  # the sender's encoding is the standard alphabet
