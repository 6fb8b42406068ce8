"""Event and message shapes of the local Kinesis poller (pure functions, no network)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from novacron.local.poller import (
    BatchFailedError,
    KinesisRecord,
    PollerSettings,
    first_failed_index,
    kinesis_event,
    on_failure_record,
    retry_delay,
)

STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/novacron-metrics"
SHARD = "shardId-000000000000"


@pytest.fixture
def records() -> list[KinesisRecord]:
    arrival = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    return [KinesisRecord(str(seq), f"pk{seq}", f"payload-{seq}".encode(), arrival) for seq in (7, 8, 9)]


def test_kinesis_event_has_lambdas_record_shape(records):
    # Given three records read from a shard
    # When they are turned into a Lambda event
    event = kinesis_event(records, SHARD, STREAM_ARN)

    # Then each record carries exactly the fields Lambda sends, data base64-encoded
    first = event["Records"][0]
    assert first == {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "pk7",
            "sequenceNumber": "7",
            "data": base64.b64encode(b"payload-7").decode(),
            "approximateArrivalTimestamp": records[0].arrival.timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{SHARD}:7",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": first["invokeIdentityArn"],
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM_ARN,
    }
    assert first["invokeIdentityArn"].startswith("arn:aws:iam::123456789012:role/")
    assert [r["kinesis"]["sequenceNumber"] for r in event["Records"]] == ["7", "8", "9"]


def test_on_failure_record_describes_the_batch(records):
    # Given a batch that was given up after 3 invocations that raised
    now = datetime(2026, 1, 2, 3, 5, 0, 1000, tzinfo=UTC)

    # When the on-failure record is built
    message = on_failure_record(
        records,
        shard_id=SHARD,
        stream_arn=STREAM_ARN,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:novacron-writer",
        condition="RetryAttemptsExhausted",
        invoke_count=3,
        function_error="Unhandled",
        now=now,
    )

    # Then it has Lambda's shape: request and response context plus the batch coordinates
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 3
    assert message["requestContext"]["functionArn"].endswith(":function:novacron-writer")
    assert message["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert message["version"] == "1.0"
    assert message["timestamp"] == "2026-01-02T03:05:00.001Z"
    assert message["KinesisBatchInfo"] == {
        "shardId": SHARD,
        "startSequenceNumber": "7",
        "endSequenceNumber": "9",
        "approximateArrivalOfFirstRecord": "2026-01-02T03:04:05.678Z",
        "approximateArrivalOfLastRecord": "2026-01-02T03:04:05.678Z",
        "batchSize": 3,
        "streamArn": STREAM_ARN,
    }


def test_on_failure_record_for_records_never_invoked_has_empty_response_context(records):
    # Given records that expired before any invocation
    # When the on-failure record is built
    message = on_failure_record(
        records[:1],
        shard_id=SHARD,
        stream_arn=STREAM_ARN,
        function_arn="arn",
        condition="RecordAgeExceeded",
        invoke_count=0,
        function_error=None,
    )
    # Then there is no response to describe
    assert message["responseContext"] == {}
    assert message["KinesisBatchInfo"]["batchSize"] == 1


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (None, None),
        ("ok", None),
        ({}, None),
        ({"batchItemFailures": []}, None),
        ({"batchItemFailures": [{"itemIdentifier": "9"}, {"itemIdentifier": "8"}]}, 1),
        ({"batchItemFailures": [{"itemIdentifier": "7"}]}, 0),
    ],
)
def test_first_failed_index_finds_the_lowest_failed_record(records, response, expected):
    # Given a handler response / When it is read / Then the lowest failed position is found
    assert first_failed_index(response, records) == expected


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifier": "999"}]},
        {"batchItemFailures": [{}]},
        {"batchItemFailures": "7"},
    ],
)
def test_malformed_failure_list_fails_the_whole_batch(records, response):
    # Given a response naming no valid record / When read / Then the whole batch counts as failed
    with pytest.raises(BatchFailedError):
        first_failed_index(response, records)


def test_retry_delay_grows_exponentially_and_is_capped():
    # Given short test delays / When attempts grow / Then delays double up to the cap
    settings = PollerSettings(retry_base_delay_s=0.1, retry_max_delay_s=0.5)
    assert [retry_delay(n, settings) for n in (1, 2, 3, 4, 10)] == [0.1, 0.2, 0.4, 0.5, 0.5]
