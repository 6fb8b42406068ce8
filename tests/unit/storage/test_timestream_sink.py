"""The Timestream sink: batched writes, rejected records counted not retried, throttling retried then raised;
and the writer's hook that feeds it every stored sample."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from novacron.adapters.timestream import TimestreamSink, TimestreamWriteError
from novacron.records import encode_record
from novacron.storage.writer import MetricsWriter, SeriesSamples
from tests.builders import timeseries
from tests.fakes import MemoryBlockStore, MemoryIndexStore

NOW = 1_790_000_000_000


def client_error(code: str, status: int = 400, **extra: Any) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}, **extra},
        "WriteRecords",
    )


class FakeTimestream:
    """Records WriteRecords calls; fails the first calls with the errors queued in ``failures``."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.failures = list(failures or [])

    def write_records(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        if self.failures:
            raise self.failures.pop(0)
        return {"RecordsIngested": {"Total": len(request["Records"])}}


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def series(n: int, metric: str = "m") -> SeriesSamples:
    return SeriesSamples(
        "acme",
        (("__name__", metric), ("job", "api")),
        np.arange(NOW, NOW + n, dtype=np.int64),
        np.ones(n, dtype=np.float64),
        NOW,
    )


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def sink_over(fake: FakeTimestream, sleeps: Sleeps) -> TimestreamSink:
    return TimestreamSink("db", "tbl", fake, attempts=3, backoff_s=0.1, sleep=sleeps)


def test_samples_are_written_in_requests_of_at_most_100(sleeps: Sleeps) -> None:
    # Given 230 samples
    fake = FakeTimestream()
    sink = sink_over(fake, sleeps)

    # When written
    sink.write_samples([series(230)])

    # Then three requests to the configured table carry them all
    assert [len(c["Records"]) for c in fake.calls] == [100, 100, 30]
    assert {(c["DatabaseName"], c["TableName"]) for c in fake.calls} == {("db", "tbl")}
    assert sink.drain_counts() == {"TimestreamRecords": 230.0, "TimestreamRequests": 3.0}
    assert sink.drain_counts() == {}  # drained


def test_rejected_records_are_counted_by_kind_and_not_retried(sleeps: Sleeps, caplog: pytest.LogCaptureFixture) -> None:
    # Given Timestream rejects two records of a request: one duplicate, one outside the retention window
    rejected = [
        {"RecordIndex": 0, "Reason": "A record with a higher version exists", "ExistingVersion": NOW + 1},
        {"RecordIndex": 3, "Reason": "The record timestamp is outside the memory store retention"},
    ]
    fake = FakeTimestream([client_error("RejectedRecordsException", 419, RejectedRecords=rejected)])
    sink = sink_over(fake, sleeps)

    # When ten samples are written
    sink.write_samples([series(10)])

    # Then the request was sent once, the rest counts as written, the rejections by kind, and they are logged
    assert len(fake.calls) == 1
    assert sleeps.delays == []
    assert sink.drain_counts() == {
        "TimestreamRecords": 8.0,
        "TimestreamRequests": 1.0,
        "TimestreamRejected.duplicate": 1.0,
        "TimestreamRejected.retention": 1.0,
    }
    assert "2 of 10 records rejected" in caplog.text


def test_throttling_is_retried_with_growing_backoff(sleeps: Sleeps) -> None:
    # Given two throttled attempts, then success
    fake = FakeTimestream([client_error("ThrottlingException"), client_error("InternalServerException", 500)])
    sink = sink_over(fake, sleeps)

    # When written
    sink.write_samples([series(5)])

    # Then the same request went three times, after 0.1 s and 0.2 s
    assert len(fake.calls) == 3
    assert fake.calls[0] == fake.calls[2]
    assert sleeps.delays == [0.1, 0.2]
    assert sink.drain_counts()["TimestreamRecords"] == 5.0


@pytest.mark.parametrize(
    "failure",
    [
        client_error("ThrottlingException"),
        client_error("ServiceUnavailable", 503),
        EndpointConnectionError(endpoint_url="x"),
    ],
)
def test_persistent_transient_failures_raise_so_that_the_batch_is_retried(sleeps: Sleeps, failure: Exception) -> None:
    # Given Timestream fails every attempt
    fake = FakeTimestream([failure] * 3)
    sink = sink_over(fake, sleeps)

    # When written, Then after three attempts the sink raises (Lambda retries the Kinesis batch)
    with pytest.raises(TimestreamWriteError, match="3 attempt"):
        sink.write_samples([series(5)])
    assert len(fake.calls) == 3


def test_errors_that_a_retry_cannot_fix_raise_at_once(sleeps: Sleeps) -> None:
    # Given the table does not exist
    fake = FakeTimestream([client_error("ResourceNotFoundException", 404)])
    sink = sink_over(fake, sleeps)

    # When written, Then the sink raises without retrying
    with pytest.raises(TimestreamWriteError, match="1 attempt"):
        sink.write_samples([series(5)])
    assert len(fake.calls) == 1
    assert sleeps.delays == []


def test_skipped_samples_are_counted(sleeps: Sleeps) -> None:
    nan_series = SeriesSamples("acme", (("__name__", "m"),), np.array([NOW], dtype=np.int64), np.array([np.nan]), NOW)
    sink = sink_over(FakeTimestream(), sleeps)
    sink.write_samples([nan_series])
    assert sink.drain_counts() == {"TimestreamSkipped.non_finite": 1.0}


def test_the_sink_is_optional() -> None:
    assert TimestreamSink.optional(None, None) is None
    sink = TimestreamSink.optional("db", "tbl")
    assert sink is not None
    assert (sink.database, sink.table) == ("db", "tbl")


# --- the writer's hook ---------------------------------------------------------------------------


class ListSampleSink:
    def __init__(self, fail: bool = False) -> None:
        self.received: list[SeriesSamples] = []
        self.fail = fail

    def write_samples(self, batch: list[SeriesSamples]) -> None:
        if self.fail:
            raise TimestreamWriteError("down")
        self.received.extend(batch)


def stream_record(tenant: str, series: list[Any], received_ms: int = NOW) -> bytes:
    return encode_record(tenant, received_ms, [s.SerializeToString() for s in series])


def test_the_writer_hands_every_stored_sample_to_the_sink_with_labels_tenant_and_receive_time() -> None:
    # Given a writer with a sink, and two records: a duplicate timestamp, an invalid series, two tenants
    sink = ListSampleSink()
    blocks = MemoryBlockStore()
    writer = MetricsWriter(blocks, MemoryIndexStore(), sink=sink)
    first = stream_record(
        "acme",
        [
            timeseries({"__name__": "up", "job": "a"}, [(NOW, 1.0), (NOW + 15_000, 0.0), (NOW + 15_000, 1.0)]),
            timeseries({"__name__": "bad metric"}, [(NOW, 1.0)]),
        ],
    )
    second = stream_record("globex", [timeseries({"__name__": "up", "job": "b"}, [(NOW, 5.0)])], NOW + 7)

    # When the batch is written
    outcomes = writer.write_batch([("1", first), ("2", second)])

    # Then the sink got exactly what the hot tier stored: valid series, the last of duplicate timestamps
    assert sum(o.samples for o in outcomes if not isinstance(o, Exception)) == 3
    got = {
        (s.tenant, s.labels, s.received_ms): list(zip(s.timestamps.tolist(), s.values.tolist(), strict=True))
        for s in sink.received
    }
    assert got == {
        ("acme", (("__name__", "up"), ("job", "a")), NOW): [(NOW, 1.0), (NOW + 15_000, 1.0)],
        ("globex", (("__name__", "up"), ("job", "b")), NOW + 7): [(NOW, 5.0)],
    }


def test_a_failing_sink_fails_the_batch_after_the_hot_tier_is_written() -> None:
    # Given a sink that fails
    blocks = MemoryBlockStore()
    writer = MetricsWriter(blocks, MemoryIndexStore(), sink=ListSampleSink(fail=True))

    # When a record is written, Then the failure propagates (Lambda retries; the blocks rewrite the same keys)
    with pytest.raises(TimestreamWriteError):
        writer.write_batch([("1", stream_record("acme", [timeseries({"__name__": "up"}, [(NOW, 1.0)])]))])
    assert blocks.items  # the hot tier was written first


def test_without_a_sink_nothing_is_collected() -> None:
    writer = MetricsWriter(MemoryBlockStore(), MemoryIndexStore())
    record = stream_record("acme", [timeseries({"__name__": "up"}, [(NOW, 1.0)])])
    [stats] = writer.write_batch([("1", record)])
    assert not isinstance(stats, Exception)
    assert stats.samples == 1
