"""The `prometheus-remote-writer` Python client against the local stack's remote write endpoint."""

from __future__ import annotations

import time

import pytest
from prometheus_remote_writer import RemoteWriter

from tests.e2e.conftest import LocalStack, query, wait_for

pytestmark = pytest.mark.e2e


def test_samples_sent_by_the_client_are_queryable_with_their_labels(local_stack: LocalStack) -> None:
    # Given the third-party client pointed at NovaCron with an ingest key
    writer = RemoteWriter(
        f"{local_stack.url}/api/v1/write", auth={"bearer_token": local_stack.ingest_key}, sort_labels=True
    )
    now_ms = int(time.time() * 1000)
    metrics = [
        {
            "metric": {"__name__": "batch_jobs_completed", "queue": queue, "source": "cron", "owner": "data"},
            "values": [value - 2, value - 1, value],
            "timestamps": [now_ms - 30_000, now_ms - 15_000, now_ms],
        }
        for queue, value in (("orders", 12.0), ("emails", 40.0))
    ]
    # When it sends two series of three samples each
    result = writer.send(metrics)
    # Then the client saw success, and PromQL reads back the latest values and every sample
    assert (result.series_sent, result.samples_sent) == (2, 6)
    assert result.last_response is not None
    assert result.last_response.status_code == 204

    def latest() -> dict[str, float]:
        rows = query(local_stack, "batch_jobs_completed")
        return {row["metric"]["queue"]: float(row["value"][1]) for row in rows}

    wait_for(lambda: latest() == {"orders": 12.0, "emails": 40.0}, 20, "the client's samples to be queryable")
    counts = query(local_stack, "count_over_time(batch_jobs_completed[1m])")
    assert sorted(float(row["value"][1]) for row in counts) == [3.0, 3.0]
    # And the default ingest policy filled the label the sender left out
    (orders,) = query(local_stack, 'batch_jobs_completed{queue="orders"}')
    assert orders["metric"]["environment"] == "unknown"


def test_a_bad_series_is_refused_with_a_message_the_client_surfaces(local_stack: LocalStack) -> None:
    # Given the client and a series whose label name is not a Prometheus label name
    writer = RemoteWriter(f"{local_stack.url}/api/v1/write", auth={"bearer_token": local_stack.ingest_key}, retries=0)
    bad = [{"metric": {"__name__": "jobs", "bad-label": "x"}, "values": [1.0], "timestamps": [int(time.time() * 1000)]}]
    # When it sends it
    # Then the client raises with NovaCron's 400 message (a 4xx is not retried)
    with pytest.raises(RuntimeError, match="400") as raised:
        writer.send(bad)
    assert "invalid label name 'bad-label'" in str(raised.value)
