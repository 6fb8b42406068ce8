"""Remote write 2.0 through the real ingest handler against moto: write → stream → writer → query."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import pytest

from novacron.protocols import remote_write_v2_pb as pb
from tests.builders_v2 import V2_HEADERS, V2Spec, native_histogram, v2_body
from tests.integration.handlers.conftest import Stack, body_json

SAMPLES_WRITTEN = "X-Prometheus-Remote-Write-Samples-Written"
HISTOGRAMS_WRITTEN = "X-Prometheus-Remote-Write-Histograms-Written"
EXEMPLARS_WRITTEN = "X-Prometheus-Remote-Write-Exemplars-Written"


def write_v2(stack: Stack, specs: list[V2Spec]) -> dict[str, Any]:
    return stack.http(
        stack.ingest, "POST", "/api/v1/write", key=stack.keys["acme-ingest"], body=v2_body(specs), headers=V2_HEADERS
    )


def query(stack: Stack, promql: str, at_s: float) -> Any:
    params = urlencode({"query": promql, "time": at_s})
    answer = stack.http(stack.query, "GET", "/api/v1/query", key=stack.keys["acme-read"], query=params)
    assert answer["statusCode"] == 200
    return body_json(answer)["data"]["result"]


def test_a_2_0_body_is_written_consumed_and_queried_back(stack: Stack) -> None:
    # Given 10 gauge series and a counter with a created timestamp, as a 2.0 request
    t = int(time.time() * 1000)
    specs = [
        V2Spec({"__name__": "up", "job": "node", "instance": f"i{i}"}, [(t - 15000, 1.0), (t, float(i))])
        for i in range(10)
    ]
    specs.append(
        V2Spec(
            {"__name__": "jobs_total", "job": "node"},
            [(t, 30.0)],
            created=t - 30_000,
            metric_type=pb.METRIC_TYPE_COUNTER,
            help="Jobs done.",
        )
    )
    # When it is written
    response = write_v2(stack, specs)
    # Then it is accepted with the 2.0 written counts (the sender's 21 samples)
    assert response["statusCode"] == 204
    assert response["headers"][SAMPLES_WRITTEN] == "21"
    assert response["headers"][HISTOGRAMS_WRITTEN] == "0"
    assert response["headers"][EXEMPLARS_WRITTEN] == "0"
    # And once the writer has consumed the stream, PromQL sees the data
    assert stack.consume(stack.stream_event()) == {"batchItemFailures": []}
    (total,) = query(stack, 'sum(up{job="node"})', t / 1000)
    assert float(total["value"][1]) == sum(range(10))
    # And the counter's created timestamp let increase() see it start from zero
    (increase,) = query(stack, "increase(jobs_total[1m])", t / 1000)
    assert float(increase["value"][1]) >= 30


def test_a_partial_2_0_write_gets_400_with_the_counts(stack: Stack) -> None:
    # Given a float series and a native histogram series with a schema NovaCron cannot store
    t = int(time.time() * 1000)
    unusable = native_histogram(t, {1: 1}, schema=20)
    specs = [V2Spec({"__name__": "kept"}, [(t, 1.0)]), V2Spec({"__name__": "hist", "job": "x"}, native=[unusable])]
    # When written
    response = write_v2(stack, specs)
    # Then the histogram series is named, the counts are there, and the float series is stored
    assert response["statusCode"] == 400
    assert (
        'native histogram schema 20 is not supported (-4 to 8, or -53 for custom buckets): hist{job="x"}'
        in (response["body"])
    )
    assert response["headers"][SAMPLES_WRITTEN] == "1"
    assert response["headers"][HISTOGRAMS_WRITTEN] == "0"
    stack.consume(stack.stream_event())
    (kept,) = query(stack, "kept", t / 1000)
    assert kept["value"][1] == "1"


def test_an_unknown_proto_gets_415(stack: Stack) -> None:
    headers = {**V2_HEADERS, "content-type": "application/x-protobuf;proto=io.prometheus.write.v3.Request"}
    response = stack.http(
        stack.ingest, "POST", "/api/v1/write", key=stack.keys["acme-ingest"], body=b"x", headers=headers
    )
    assert response["statusCode"] == 415
    assert "io.prometheus.write.v2.Request" in response["body"]


def test_native_histograms_are_queried_as_classic_histograms(stack: Stack) -> None:
    # Given two pods' native histograms (schema 0, integer counts) a minute apart, written over 2.0:
    # (1,2] and (4,8] hold 10 each at first and 20 each a minute later; (2,4] stays empty
    t = int(time.time() * 1000)
    specs = [
        V2Spec(
            {"__name__": "request_seconds", "job": "api", "pod": pod},
            metric_type=pb.METRIC_TYPE_HISTOGRAM,
            native=[
                native_histogram(t - 60_000, {1: 10, 3: 10}, total=100.0),
                native_histogram(t, {1: 20, 3: 20}, total=200.0),
            ],
        )
        for pod in ("a", "b")
    ]
    # And a float counter with the same counts as each pod's _count, to compare rates with
    reference = V2Spec({"__name__": "reference_total", "job": "api"}, [(t - 60_000, 20.0), (t, 40.0)])
    # When written and consumed
    response = write_v2(stack, [*specs, reference])
    assert response["statusCode"] == 204, response["body"]
    assert (response["headers"][SAMPLES_WRITTEN], response["headers"][HISTOGRAMS_WRITTEN]) == ("2", "4")
    assert stack.consume(stack.stream_event()) == {"batchItemFailures": []}
    # Then histogram_quantile interpolates inside the populated buckets: of 20 new observations per
    # pod, the median (rank 10) ends (1,2] and the 0.75-quantile sits halfway through (4,8]
    rate = "sum by (le) (rate(request_seconds_bucket[5m]))"
    (median,) = query(stack, f"histogram_quantile(0.5, {rate})", t / 1000)
    assert float(median["value"][1]) == 2.0
    (upper,) = query(stack, f"histogram_quantile(0.75, {rate})", t / 1000)
    assert float(upper["value"][1]) == 6.0
    # And the _count series rate like the float counter, twice over for two pods
    (count_rate,) = query(stack, "sum(rate(request_seconds_count[5m]))", t / 1000)
    (reference_rate,) = query(stack, "sum(rate(reference_total[5m]))", t / 1000)
    assert float(count_rate["value"][1]) == 2 * float(reference_rate["value"][1]) > 0
    # And _sum / _count gives the mean observation of the last minute: 100 s over 20 observations
    (mean,) = query(
        stack,
        'sum(increase(request_seconds_sum{pod="a"}[5m])) / sum(increase(request_seconds_count{pod="a"}[5m]))',
        t / 1000,
    )
    assert float(mean["value"][1]) == pytest.approx(5.0)
