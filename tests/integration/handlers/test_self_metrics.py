"""NovaCron's own ingest metrics through the real handlers: a rejection becomes a series the tenant can query."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from tests.builders import RW_HEADERS, timeseries, write_request
from tests.integration.handlers.conftest import Stack, body_json


def query(stack: Stack, promql: str, key: str) -> list[dict[str, Any]]:
    # A moment ahead of now: the counters' latest samples are stamped when they were sent.
    at = time.time() + 1
    response = stack.http(stack.query, "GET", "/api/v1/query", key=key, query=urlencode({"query": promql, "time": at}))
    assert response["statusCode"] == 200, response["body"]
    result: list[dict[str, Any]] = body_json(response)["data"]["result"]
    return result


def test_a_rejected_series_is_counted_in_the_tenants_own_metrics(stack: Stack) -> None:
    # Given a remote write with one valid series and one with an invalid label name
    t = int(time.time() * 1000)
    series = [
        timeseries({"__name__": "up", "job": "node"}, [(t, 1.0)]),
        timeseries({"__name__": "up", "bad-name": "x"}, [(t, 1.0)]),
    ]
    key = stack.keys["acme-ingest"]
    response = stack.http(
        stack.ingest, "POST", "/api/v1/write", key=key, body=write_request(series), headers=RW_HEADERS
    )
    assert response["statusCode"] == 400
    # And a request refused as a whole (wrong Content-Encoding)
    response = stack.http(
        stack.ingest,
        "POST",
        "/api/v1/write",
        key=key,
        body=write_request(series),
        headers={**RW_HEADERS, "content-encoding": "gzip"},
    )
    assert response["statusCode"] == 415
    # When the writer consumes the stream (the handler sent its counters after each request)
    assert stack.consume(stack.stream_event()) == {"batchItemFailures": []}
    # Then the tenant sees its rejection, by reason, with PromQL
    read = stack.keys["acme-read"]
    rejected = query(stack, 'sum by (reason) (novacron_ingest_series_total{outcome="rejected"})', read)
    assert [(r["metric"], float(r["value"][1])) for r in rejected] == [({"reason": "invalid_labels"}, 1.0)]
    rate = query(stack, 'sum by (reason) (rate(novacron_ingest_series_total{outcome="rejected"}[5m]))', read)
    assert float(rate[0]["value"][1]) > 0
    accepted = query(stack, 'novacron_ingest_samples_total{outcome="accepted", protocol="remote_write"}', read)
    assert float(accepted[0]["value"][1]) == 1.0
    refused = query(stack, "novacron_ingest_requests_refused_total", read)
    assert [(r["metric"]["status"], float(r["value"][1])) for r in refused] == [("415", 1.0)]
    # And another tenant sees none of it
    assert query(stack, "novacron_ingest_series_total", stack.keys["globex-read"]) == []
