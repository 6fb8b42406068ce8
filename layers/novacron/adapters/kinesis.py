"""Kinesis PutRecords with retries of the entries that failed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from novacron.aws import client
from novacron.ingest.service import StreamUnavailable
from novacron.records import StreamRecord

logger = logging.getLogger(__name__)

_MAX_RECORDS_PER_CALL = 500
_MAX_BYTES_PER_CALL = 5 * 1024 * 1024
_THROTTLE_CODES = {"ProvisionedThroughputExceededException", "ThrottlingException", "LimitExceededException"}


class KinesisSink:
    """A StreamSink writing to one Kinesis stream.

    Entries that fail inside a successful PutRecords call (throttling, internal errors) are sent
    again with exponential backoff; if some still fail after ``attempts`` tries the whole request
    fails with StreamUnavailable, so the sender retries and nothing it was told is stored is lost.
    """

    def __init__(
        self,
        stream_name: str,
        attempts: int = 4,
        base_delay_s: float = 0.05,
        kinesis: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.stream_name = stream_name
        self.attempts = attempts
        self.base_delay_s = base_delay_s
        self._kinesis = kinesis
        self._sleep = sleep

    @property
    def kinesis(self) -> Any:
        if self._kinesis is None:
            self._kinesis = client("kinesis")
        return self._kinesis

    def put(self, records: Sequence[StreamRecord]) -> None:
        for call in _calls(records):
            self._put_call(call)

    def _put_call(self, records: list[StreamRecord]) -> None:
        pending = records
        throttled = False
        last_error = ""
        for attempt in range(self.attempts):
            if attempt:
                self._sleep(self.base_delay_s * 2 ** (attempt - 1))
            entries = [{"Data": r.data, "PartitionKey": r.partition_key} for r in pending]
            try:
                response = self.kinesis.put_records(StreamName=self.stream_name, Records=entries)
            except BotoCoreError as exc:
                # Connection and timeout errors: the stream may be fine; the sender should retry.
                last_error = f"{type(exc).__name__}: {exc}"
                logger.warning("PutRecords failed (attempt %d): %s", attempt + 1, last_error)
                continue
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                throttled = code in _THROTTLE_CODES
                last_error = f"{code}: {exc.response.get('Error', {}).get('Message', '')}"
                logger.warning("PutRecords failed (attempt %d): %s", attempt + 1, last_error)
                continue
            if not response.get("FailedRecordCount"):
                return
            failed = []
            for record, result in zip(pending, response["Records"], strict=True):
                if "ErrorCode" in result:
                    failed.append(record)
                    throttled = throttled or result["ErrorCode"] in _THROTTLE_CODES
                    last_error = f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}"
            logger.warning(
                "PutRecords: %d of %d records failed (attempt %d), retrying them: %s",
                len(failed),
                len(pending),
                attempt + 1,
                last_error,
            )
            pending = failed
        raise StreamUnavailable(
            f"{len(pending)} records not written after {self.attempts} attempts, last error {last_error}",
            throttled=throttled,
        )


def _calls(records: Sequence[StreamRecord]) -> list[list[StreamRecord]]:
    """Group records into PutRecords calls within the per-call count and size limits."""
    calls: list[list[StreamRecord]] = [[]]
    size = 0
    for record in records:
        record_size = len(record.data) + len(record.partition_key)
        if calls[-1] and (len(calls[-1]) >= _MAX_RECORDS_PER_CALL or size + record_size > _MAX_BYTES_PER_CALL):
            calls.append([])
            size = 0
        calls[-1].append(record)
        size += record_size
    return calls
