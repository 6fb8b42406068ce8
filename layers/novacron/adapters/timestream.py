"""The optional Timestream for LiveAnalytics sink: stored samples → batched WriteRecords.

Records are built by :mod:`novacron.storage.timestream`. What Timestream rejects record by record
(``RejectedRecordsException``: duplicates with an equal or higher stored version, timestamps outside
the memory store's retention, limits) cannot be fixed by sending it again, so it is counted and
logged, and the batch goes on. Throttling and server errors are retried with backoff here (on top of
botocore's own retries); if they persist, :class:`TimestreamWriteError` fails the batch and Lambda
retries it, which rewrites the same records (see the Version rule in the storage module).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, cast

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from novacron.aws import client
from novacron.storage.timestream import MAX_RECORDS_PER_WRITE, WriteRequest, rejection_kind, write_requests
from novacron.storage.writer import SeriesSamples

logger = logging.getLogger(__name__)

REJECTED = "RejectedRecordsException"
RETRYABLE_CODES = frozenset({"ThrottlingException", "InternalServerException", "ServiceUnavailableException"})


class TimestreamWriteError(RuntimeError):
    """Timestream kept failing (throttling, server errors) or refused the request: fail the batch."""


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, ConnectionError | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return exc.response.get("Error", {}).get("Code") in RETRYABLE_CODES or int(status) >= 500
    return False


class TimestreamSink:
    """A ``SampleSink`` writing multi-measure records into one Timestream table.

    ``counts`` accumulates what happened (records written, samples skipped, records rejected by kind)
    until :meth:`drain_counts` hands it to the caller's metrics.
    """

    def __init__(
        self,
        database: str,
        table: str,
        timestream: Any = None,
        *,
        attempts: int = 3,
        backoff_s: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        max_records: int = MAX_RECORDS_PER_WRITE,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self.database = database
        self.table = table
        self._timestream = timestream
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._max_records = max_records
        self.counts: Counter[str] = Counter()

    def write_samples(self, series: Sequence[SeriesSamples]) -> None:
        """Write every sample of ``series`` (those Timestream cannot hold are counted and left out)."""
        batch = write_requests(series, self._max_records)
        if batch.skipped:
            logger.warning("timestream: %d samples not sent: %s", sum(batch.skipped.values()), dict(batch.skipped))
            for reason, count in batch.skipped.items():
                self.counts[f"TimestreamSkipped.{reason}"] += count
        for request in batch.requests:
            self._write(request)

    @classmethod
    def optional(cls, database: str | None, table: str | None) -> TimestreamSink | None:
        """The sink when the deployment named a database and table (the sink is on), else None."""
        return cls(database, table) if database and table else None

    def drain_counts(self) -> dict[str, float]:
        """The counts since the last call (metric name → count), and start again from zero."""
        counts = {name: float(count) for name, count in self.counts.items()}
        self.counts.clear()
        return counts

    def _write(self, request: WriteRequest) -> None:
        timestream = self._timestream or client("timestream-write")
        for attempt in range(1, self._attempts + 1):
            try:
                timestream.write_records(
                    DatabaseName=self.database,
                    TableName=self.table,
                    CommonAttributes=request.common,
                    Records=request.records,
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == REJECTED:
                    rejected = cast("list[dict[str, Any]]", exc.response.get("RejectedRecords", []))
                    self._count_rejected(request, rejected)
                    return
                self._retry_or_raise(exc, attempt)
            except (ConnectionError, HTTPClientError) as exc:
                self._retry_or_raise(exc, attempt)
            else:
                self.counts["TimestreamRecords"] += len(request.records)
                self.counts["TimestreamRequests"] += 1
                return

    def _retry_or_raise(self, exc: Exception, attempt: int) -> None:
        if not _retryable(exc) or attempt >= self._attempts:
            raise TimestreamWriteError(
                f"WriteRecords to {self.database}.{self.table} failed after {attempt} attempt(s): {exc}"
            ) from exc
        delay = self._backoff_s * 2 ** (attempt - 1)
        logger.info("timestream: %s; retrying in %.2fs", exc, delay)
        self._sleep(delay)

    def _count_rejected(self, request: WriteRequest, rejected: Sequence[dict[str, Any]]) -> None:
        """The rest of the request was written; the rejected records are counted and logged, not retried."""
        kinds: Counter[str] = Counter()
        for entry in rejected:
            kinds[rejection_kind(str(entry.get("Reason", "")), entry.get("ExistingVersion"))] += 1
        for kind, count in kinds.items():
            self.counts[f"TimestreamRejected.{kind}"] += count
        self.counts["TimestreamRecords"] += len(request.records) - len(rejected)
        self.counts["TimestreamRequests"] += 1
        examples = [
            {k: entry.get(k) for k in ("RecordIndex", "Reason", "ExistingVersion") if k in entry}
            for entry in rejected[:3]
        ]
        logger.warning(
            "timestream: %d of %d records rejected (%s), e.g. %s",
            len(rejected),
            len(request.records),
            dict(kinds),
            examples,
        )
