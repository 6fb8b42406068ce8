"""A real Prometheus (2.42, native histograms on) scrapes a native histogram over protobuf and remote-writes it.

Prometheus 2.42 reads native histograms only from the protobuf exposition format, and sends them
over remote write 1.0 only with ``send_native_histograms: true``. The target here serves one
histogram family in that format (``io.prometheus.client.MetricFamily``, length-delimited), declared
in code like NovaCron's own protobuf messages.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from novacron.protocols.descriptors import F, field, message, message_classes
from novacron.protocols.remote_write_v2 import uvarint
from tests.e2e.conftest import LocalStack, PrometheusServer, free_port, query, running_prometheus, wait_for

pytestmark = pytest.mark.e2e

_PACKAGE = "io.prometheus.client"
_field = functools.partial(field, _PACKAGE)
_cls = message_classes(
    "e2e/client_metrics.proto",
    _PACKAGE,
    [
        message("LabelPair", _field("name", 1, F.TYPE_STRING), _field("value", 2, F.TYPE_STRING)),
        message("BucketSpan", _field("offset", 1, F.TYPE_SINT32), _field("length", 2, F.TYPE_UINT32)),
        message(
            "Histogram",
            _field("sample_count", 1, F.TYPE_UINT64),
            _field("sample_sum", 2, F.TYPE_DOUBLE),
            _field("schema", 5, F.TYPE_SINT32),
            _field("zero_threshold", 6, F.TYPE_DOUBLE),
            _field("zero_count", 7, F.TYPE_UINT64),
            _field("positive_span", 12, F.TYPE_MESSAGE, repeated=True, type_name="BucketSpan"),
            _field("positive_delta", 13, F.TYPE_SINT64, repeated=True),
        ),
        message(
            "Metric",
            _field("label", 1, F.TYPE_MESSAGE, repeated=True, type_name="LabelPair"),
            _field("histogram", 7, F.TYPE_MESSAGE, type_name="Histogram"),
        ),
        message(
            "MetricFamily",
            _field("name", 1, F.TYPE_STRING),
            _field("help", 2, F.TYPE_STRING),
            _field("type", 3, F.TYPE_INT32),
            _field("metric", 4, F.TYPE_MESSAGE, repeated=True, type_name="Metric"),
        ),
    ],
)
_HISTOGRAM_TYPE = 4  # MetricType.HISTOGRAM
_PROTOBUF = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"


def exposition(scrape: int) -> bytes:
    """Scrape ``n`` of a schema-0 histogram: (1,2] and (4,8] hold 10·n each, (2,4] stays empty."""
    histogram = _cls("Histogram")(
        sample_count=20 * scrape,
        sample_sum=100.0 * scrape,
        schema=0,
        zero_threshold=2.0**-128,  # what client_golang sends; it also marks the histogram as native
        positive_span=[_cls("BucketSpan")(offset=1, length=1), _cls("BucketSpan")(offset=1, length=1)],
        positive_delta=[10 * scrape, 0],
    )
    family = _cls("MetricFamily")(
        name="e2e_latency_seconds",
        help="Request latency.",
        type=_HISTOGRAM_TYPE,
        metric=[_cls("Metric")(label=[_cls("LabelPair")(name="route", value="/checkout")], histogram=histogram)],
    )
    data = family.SerializeToString()
    return uvarint(len(data)) + data


@pytest.fixture(scope="module")
def histogram_target() -> Iterator[str]:
    scrapes = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            scrapes[0] += 1
            body = exposition(scrapes[0])
            self.send_response(200)
            self.send_header("Content-Type", _PROTOBUF)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def native_prometheus(local_stack: LocalStack, histogram_target: str, tmp_path_factory) -> Iterator[PrometheusServer]:
    # Prometheus 2.42 scrapes native histograms over protobuf only with the feature flag, and
    # remote-writes them only when told to.
    with running_prometheus(
        tmp_path_factory.mktemp("prometheus-native"),
        local_stack,
        histogram_target,
        "e2e-native",
        remote_write_extra="\n    send_native_histograms: true",
        flags=("--enable-feature=native-histograms",),
    ) as server:
        yield server


def test_scraped_native_histograms_are_queryable_as_classic_ones(
    local_stack: LocalStack, native_prometheus: PrometheusServer
) -> None:
    process, log = native_prometheus.process, native_prometheus.log

    # Given Prometheus scraping the native histogram every second and remote-writing it
    def several_scrapes_arrived() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited: {log.read_text()[-3000:]}")
        counts = query(local_stack, "count_over_time(e2e_latency_seconds_count[1m])")
        return bool(counts) and float(counts[0]["value"][1]) >= 5

    wait_for(several_scrapes_arrived, 90, "five remote-written native histogram samples to be queryable")
    # Then the classic series are there: lower edges and bounds of the populated buckets, and +Inf
    buckets = query(local_stack, "e2e_latency_seconds_bucket")
    assert {b["metric"]["le"] for b in buckets} == {"1", "2", "4", "8", "+Inf"}
    assert {b["metric"]["job"] for b in buckets} == {"e2e-native"}
    # And histogram_quantile over their rates interpolates inside (4,8]: rank 0.75 is halfway through it
    rates = "sum by (le) (rate(e2e_latency_seconds_bucket[30s]))"
    (upper,) = query(local_stack, f"histogram_quantile(0.75, {rates})")
    assert float(upper["value"][1]) == pytest.approx(6.0, rel=1e-6)
    # And the mean observation from _sum and _count is the target's 5 s
    (mean,) = query(local_stack, "rate(e2e_latency_seconds_sum[30s]) / rate(e2e_latency_seconds_count[30s])")
    assert float(mean["value"][1]) == pytest.approx(5.0, rel=1e-6)
