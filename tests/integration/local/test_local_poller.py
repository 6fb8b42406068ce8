"""The Kinesis poller against moto: order, event shape, partial failures, bisect and on-failure."""

from __future__ import annotations

import base64
import json

import pytest

from tests.integration.local.support import make_wiring, put, read_log


def _delivered(log_entries):
    """Sequence numbers of records in successful invocations, in delivery order."""
    out = []
    for entry in log_entries:
        failed = {f["itemIdentifier"] for f in entry["failures"]}
        for record in entry["event"]["Records"]:
            seq = record["kinesis"]["sequenceNumber"]
            if entry["outcome"] in ("ok", "partial") and not _at_or_after_failure(entry, seq, failed):
                out.append(seq)
    return out


def _at_or_after_failure(entry, seq, failed):
    if not failed:
        return False
    lowest = min(int(f) for f in failed)
    return int(seq) >= lowest


def _dlq_messages(runtime):
    sqs = runtime.client("sqs")
    url = runtime.resources.queue_urls["dlq"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_records_reach_the_handler_in_order_with_lambdas_event_shape(runtime, kinesis, handler_root):
    # Given twelve records put into a one-shard stream (batch size 10)
    sequences = put(kinesis, *(f"record-{i}".encode() for i in range(12)))

    # When the poller catches up
    assert runtime.wait_until_idle(timeout=10)

    # Then every record was delivered once, in order, in batches of at most 10
    entries = read_log(handler_root / "consumer.jsonl")
    records = [r for e in entries for r in e["event"]["Records"]]
    assert [r["kinesis"]["sequenceNumber"] for r in records] == sequences
    assert all(len(e["event"]["Records"]) <= 10 for e in entries)
    assert [base64.b64decode(r["kinesis"]["data"]) for r in records] == [f"record-{i}".encode() for i in range(12)]
    first = records[0]
    assert first["eventSource"] == "aws:kinesis"
    assert first["eventName"] == "aws:kinesis:record"
    assert first["eventID"] == f"shardId-000000000000:{sequences[0]}"
    assert first["eventSourceARN"] == runtime.resources.stream_arns["events"]
    assert first["kinesis"]["partitionKey"] == "pk"
    assert isinstance(first["kinesis"]["approximateArrivalTimestamp"], float)
    assert entries[0]["function"] == "t-consumer"


def test_partial_batch_failure_retries_only_from_the_failed_record(runtime, kinesis, handler_root):
    # Given a batch whose fourth record fails once (reported in batchItemFailures)
    sequences = put(kinesis, b"a", b"b", b"c", b"fail-once", b"e", b"f")

    # When the poller catches up
    assert runtime.wait_until_idle(timeout=10)

    # Then the invocation after the failure starts at the failed record, earlier ones are not resent,
    entries = read_log(handler_root / "consumer.jsonl")
    partial = next(i for i, e in enumerate(entries) if e["outcome"] == "partial")
    retry = entries[partial + 1]["event"]["Records"]
    assert retry[0]["kinesis"]["sequenceNumber"] == sequences[3]
    # and every record ends up delivered exactly once
    assert _delivered(entries) == sequences
    assert _dlq_messages(runtime) == []


@pytest.mark.parametrize("wiring", [make_wiring(max_retry_attempts=6)])
def test_poison_record_goes_to_the_on_failure_queue_after_bisecting(runtime, kinesis, handler_root, wiring):
    # Given eight records, the sixth of which always makes the handler raise
    payloads = [b"ok-%d" % i for i in range(8)]
    payloads[5] = b"poison"
    sequences = put(kinesis, *payloads)

    # When the poller catches up (bisecting, then exhausting the retries of the lone bad record)
    assert runtime.wait_until_idle(timeout=20)

    # Then the seven good records were delivered in order
    entries = read_log(handler_root / "consumer.jsonl")
    assert _delivered(entries) == sequences[:5] + sequences[6:]
    # and the poison record alone was sent to the on-failure queue with Lambda's record shape
    messages = _dlq_messages(runtime)
    assert len(messages) == 1
    message = messages[0]
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["approximateInvokeCount"] == 7  # the first try + 6 retries
    assert message["requestContext"]["functionArn"].endswith(":function:t-consumer")
    assert message["responseContext"]["functionError"] == "Unhandled"
    batch = message["KinesisBatchInfo"]
    assert batch["batchSize"] == 1
    assert batch["startSequenceNumber"] == batch["endSequenceNumber"] == sequences[5]
    assert batch["shardId"] == "shardId-000000000000"
    assert batch["streamArn"] == runtime.resources.stream_arns["events"]
    assert batch["approximateArrivalOfFirstRecord"].endswith("Z")


@pytest.mark.parametrize("wiring", [make_wiring(max_retry_attempts=1)])
def test_few_retries_give_up_the_whole_failing_batch(runtime, kinesis, handler_root, wiring):
    # Given a batch of four with a poison record and only one retry allowed
    sequences = put(kinesis, b"a", b"poison", b"c", b"d")

    # When the poller catches up
    assert runtime.wait_until_idle(timeout=10)

    # Then the half holding the poison record is given up, the other half delivered
    messages = _dlq_messages(runtime)
    assert [(m["KinesisBatchInfo"]["startSequenceNumber"], m["KinesisBatchInfo"]["batchSize"]) for m in messages] == [
        (sequences[0], 2)
    ]
    assert _delivered(read_log(handler_root / "consumer.jsonl")) == sequences[2:]


def test_wait_until_idle_is_true_on_an_empty_stream(runtime):
    assert runtime.wait_until_idle(timeout=5)


def test_stats_count_deliveries(runtime, kinesis):
    put(kinesis, b"x", b"y")
    assert runtime.wait_until_idle(timeout=10)
    stats = runtime.pollers[0].stats()["shardId-000000000000"]
    assert stats.records_delivered == 2
    assert stats.records_discarded == 0
