"""What the stream-consuming handlers share: a Kinesis event's records in, a partial batch response out.

Consumers work on the whole batch at once (one write per batch, not per record) and report an outcome
per record: its result, or the exception that makes it a batch item failure (retried, bisected, and
finally sent to the on-failure queue by the event source mapping).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.batch import BatchProcessor
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

T = TypeVar("T")


def kinesis_records(event: dict[str, Any]) -> tuple[list[tuple[str, bytes]], str]:
    """The batch as (sequence number, data) pairs, and the shard it came from ("" for an empty batch)."""
    records = event["Records"]
    batch = [(r["kinesis"]["sequenceNumber"], base64.b64decode(r["kinesis"]["data"])) for r in records]
    shard = records[0]["eventID"].split(":")[0] if records else ""
    return batch, shard


def settle(
    processor: BatchProcessor, event: dict[str, Any], context: LambdaContext, outcomes: Mapping[str, T | Exception]
) -> dict[str, T]:
    """Run the batch processor over per-record ``outcomes`` (by sequence number); the successes by sequence.

    ``processor.response()`` is the partial batch response to return afterwards.
    """

    def outcome_of(record: KinesisStreamRecord) -> T:
        outcome = outcomes[record.kinesis.sequence_number]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with processor(records=event["Records"], handler=outcome_of, lambda_context=context):
        settled = processor.process()
    return {record["kinesis"]["sequenceNumber"]: result for status, result, record in settled if status == "success"}
