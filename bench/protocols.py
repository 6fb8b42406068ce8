"""Every ingest protocol on one core: payload → decode → validate → Kinesis-ready records.

The workload is the same for every protocol: one scrape of the simulated estate (10,000 series, one
sample each), expressed as each protocol would carry it. Beside each figure is the raw parse rate of
the same payload — the least any receiver must do (decompress and parse the envelope and messages,
no mapping, no validation) — and the ratio. The ingest function is warm (series validated before).
StatsD is measured on the agent's aggregator (datagrams in, series out at flush).
"""

from __future__ import annotations

import argparse
import base64
import functools
import gzip
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cramjam
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics

from bench.workload import estate_series, remote_write_body, scrapes
from novacron.agent.statsd import StatsdAggregator
from novacron.ingest.firehose import FirehoseEndpoint
from novacron.ingest.otlp import OtlpReceiver, TraceService
from novacron.ingest.service import IngestService
from novacron.protocols import remote_write_v2_pb
from novacron.protocols.remote_write_pb import WriteRequest
from novacron.records import StreamRecord
from novacron.series import METRIC_NAME, Labels
from tests.builders_v2 import V2_HEADERS, V2Spec, v2_body
from tests.unit.firehose.sender import Point, delivery, json_record, otel_record

SERIES = 10_000
RW1_HEADERS = {
    "content-type": "application/x-protobuf",
    "content-encoding": "snappy",
    "x-prometheus-remote-write-version": "0.1.0",
}
FIREHOSE_POINTS_PER_RECORD = 100
STATSD_LINES_PER_DATAGRAM = 10


class NullSink:
    """Takes records and forgets them: the benchmark stops where Kinesis would start."""

    def __init__(self) -> None:
        self.records = 0

    def put(self, records: Sequence[StreamRecord]) -> None:
        self.records += len(records)


@dataclass
class Case:
    """One protocol: the NovaCron path, the raw-parse reference, and how many samples one call stores."""

    name: str
    ours: Callable[[], object]
    raw: Callable[[], object]
    samples: int
    payload_bytes: int


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Wall times of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _service(now_ms: int) -> IngestService:
    return IngestService(NullSink(), clock_ms=lambda: now_ms)


def remote_write_v1(scrape: list[tuple[Labels, float]], now_ms: int) -> Case:
    body, _series, samples = remote_write_body([scrape], now_ms)
    service = _service(now_ms)
    return Case(
        "remote write 1.0",
        lambda: service.remote_write(body, RW1_HEADERS, "bench"),
        lambda: WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body))),
        samples,
        len(body),
    )


def remote_write_v2(scrape: list[tuple[Labels, float]], now_ms: int) -> Case:
    body = v2_body(V2Spec(dict(labels), [(now_ms, value)]) for labels, value in scrape)
    service = _service(now_ms)
    return Case(
        "remote write 2.0",
        lambda: service.remote_write(body, V2_HEADERS, "bench"),
        lambda: remote_write_v2_pb.Request.FromString(bytes(cramjam.snappy.decompress_raw(body))),
        len(scrape),
        len(body),
    )


def otlp_request(scrape: list[tuple[Labels, float]], now_ms: int) -> ExportMetricsServiceRequest:
    """The scrape as OTLP gauges: one metric per name, one data point per series, one resource per job."""
    by_job: dict[str, dict[str, list[tuple[Labels, float]]]] = {}
    for labels, value in scrape:
        pairs = dict(labels)
        by_job.setdefault(pairs.get("job", ""), {}).setdefault(pairs[METRIC_NAME], []).append((labels, value))
    request = ExportMetricsServiceRequest()
    for job, metrics in by_job.items():
        resource = ResourceMetrics()
        resource.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=job)))
        scope = ScopeMetrics()
        for name, series in metrics.items():
            metric = Metric(name=name)
            for labels, value in series:
                point = NumberDataPoint(time_unix_nano=now_ms * 1_000_000, as_double=value)
                point.attributes.extend(
                    KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in labels if k not in (METRIC_NAME, "job")
                )
                metric.gauge.data_points.append(point)
            scope.metrics.append(metric)
        resource.scope_metrics.append(scope)
        request.resource_metrics.append(resource)
    return request


def otlp_cases(scrape: list[tuple[Labels, float]], now_ms: int) -> list[Case]:
    request = otlp_request(scrape, now_ms)
    receiver = OtlpReceiver(_service(now_ms), TraceService(NullSink()), 64 * 1024 * 1024)
    proto_body = request.SerializeToString()
    json_body = json_format.MessageToJson(request, indent=None).encode()
    proto_headers = {"content-type": "application/x-protobuf"}
    json_headers = {"content-type": "application/json"}
    return [
        Case(
            "OTLP/HTTP protobuf",
            lambda: receiver.export_metrics(proto_body, proto_headers, "bench"),
            lambda: ExportMetricsServiceRequest.FromString(proto_body),
            len(scrape),
            len(proto_body),
        ),
        Case(
            "OTLP/HTTP JSON",
            lambda: receiver.export_metrics(json_body, json_headers, "bench"),
            lambda: json.loads(json_body),
            len(scrape),
            len(json_body),
        ),
    ]


def firehose_cases(scrape: list[tuple[Labels, float]], now_ms: int) -> list[Case]:
    """CloudWatch data points (namespace = job, dimensions = the other labels), 100 per Firehose record."""
    points = [
        Point(
            namespace=f"Bench/{dict(labels).get('job', 'none')}",
            metric=dict(labels)[METRIC_NAME],
            timestamp_ms=now_ms - 60_000,
            dimensions={k: v for k, v in labels if k not in (METRIC_NAME, "job")},
            sum=value,
            count=1.0,
            min=value,
            max=value,
        )
        for labels, value in scrape
    ]
    chunks = [points[i : i + FIREHOSE_POINTS_PER_RECORD] for i in range(0, len(points), FIREHOSE_POINTS_PER_RECORD)]
    endpoint = FirehoseEndpoint(_service(now_ms), 64 * 1024 * 1024)
    cases = []
    for name, encode, parse in (
        ("Firehose JSON", json_record, _parse_json_lines),
        ("Firehose OpenTelemetry 1.0", otel_record, _parse_length_delimited),
    ):
        sent = delivery([encode(chunk) for chunk in chunks], key="unused")

        def raw(body: bytes = sent.body, parse_record: Callable[[bytes], object] = parse) -> None:
            for record in json.loads(gzip.decompress(body))["records"]:
                parse_record(base64.b64decode(record["data"]))

        cases.append(
            Case(
                name,
                functools.partial(endpoint.deliver, sent.body, sent.headers, "bench"),
                raw,
                4 * len(points),  # sum, count, min and max: each statistic is its own series
                len(sent.body),
            )
        )
    return cases


def _parse_json_lines(data: bytes) -> None:
    for line in data.splitlines():
        json.loads(line)


def _parse_length_delimited(data: bytes) -> None:
    position = 0
    while position < len(data):
        length, shift = 0, 0
        while True:
            byte = data[position]
            position += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        ExportMetricsServiceRequest.FromString(data[position : position + length])
        position += length


def statsd_case(scrape: list[tuple[Labels, float]], now_ms: int) -> Case:
    """The scrape as DogStatsD gauges with tags, 10 lines per datagram; one flush per call."""
    lines = [
        f"{dict(labels)[METRIC_NAME]}:{value:g}|g|#" + ",".join(f"{k}:{v}" for k, v in labels if k != METRIC_NAME)
        for labels, value in scrape
    ]
    datagrams = [
        "\n".join(lines[i : i + STATSD_LINES_PER_DATAGRAM]).encode()
        for i in range(0, len(lines), STATSD_LINES_PER_DATAGRAM)
    ]
    aggregator = StatsdAggregator()

    def ours() -> None:
        for datagram in datagrams:
            aggregator.ingest(datagram)
        aggregator.flush(now_ms)

    def raw() -> None:
        for datagram in datagrams:
            for line in datagram.split(b"\n"):
                name_value, _type, _tags = line.split(b"|", 2)
                float(name_value.rpartition(b":")[2])

    return Case(
        f"StatsD ({STATSD_LINES_PER_DATAGRAM} lines/datagram)",
        ours,
        raw,
        len(lines),
        sum(map(len, datagrams)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    now = int(time.time() * 1000)
    scrape = scrapes(estate_series(SERIES), 1, now)[0][:SERIES]
    cases = [
        remote_write_v1(scrape, now),
        remote_write_v2(scrape, now),
        *otlp_cases(scrape, now),
        *firehose_cases(scrape, now),
        statsd_case(scrape, now),
    ]
    print(f"protocol benchmark: one scrape of the simulated estate ({len(scrape):,} series), one core, warm")
    print(
        f"{'protocol':<30} {'payload KB':>10} {'samples':>8} {'NovaCron Msamples/s':>20}"
        f" {'raw parse Msamples/s':>21} {'ratio':>6} {'p50 ms':>7} {'p95 ms':>7}"
    )
    for case in cases:
        ours = timed(case.ours, args.repeats)
        raw = timed(case.raw, args.repeats)
        ours_rate = case.samples / statistics.median(ours) / 1e6
        raw_rate = case.samples / statistics.median(raw) / 1e6
        p95 = statistics.quantiles(ours, n=20)[18] * 1000
        print(
            f"{case.name:<30} {case.payload_bytes / 1024:>10.0f} {case.samples:>8,} {ours_rate:>20.2f}"
            f" {raw_rate:>21.2f} {ours_rate / raw_rate:>6.2f} {statistics.median(ours) * 1000:>7.2f} {p95:>7.2f}"
        )
    print("raw parse: decompress + parse the envelope and messages, no mapping and no validation")


if __name__ == "__main__":
    main()
