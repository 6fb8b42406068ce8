"""Parsing scraped Prometheus text and OpenMetrics into series, as a Prometheus scrape would."""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.agent.exposition import ExpositionError, parse_exposition
from novacron.ingest.validate import SeriesValidator
from novacron.protocols.remote_write_pb import Label, Sample, TimeSeries
from novacron.protocols.timeseries import encode_sample

SCRAPE_MS = 1_790_000_000_000
TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TARGET = {"job": "api", "instance": "10.0.0.7:9100"}

Parsed = dict[tuple[tuple[str, str], ...], list[tuple[float, int]]]

# What prometheus_client's generate_latest() writes (hand-written: prometheus_client is not installed
# here; the shape is checked by promtool in test_text_fixture_is_valid_for_promtool).
CLIENT_TEXT = """\
# HELP python_info Python platform information
# TYPE python_info gauge
python_info{implementation="CPython",major="3",minor="11",patchlevel="9",version="3.11.9"} 1.0
# HELP requests_total Requests handled
# TYPE requests_total counter
requests_total{method="get",path="/cart"} 3.0
requests_total{method="post",path="/cart"} 1.0
# HELP requests_created Requests handled
# TYPE requests_created gauge
requests_created{method="get",path="/cart"} 1.7899999e+09
requests_created{method="post",path="/cart"} 1.7899999e+09
# HELP queue_depth Jobs waiting
# TYPE queue_depth gauge
queue_depth 7.0
# HELP latency_seconds Request latency
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 1.0
latency_seconds_bucket{le="1.0"} 2.0
latency_seconds_bucket{le="+Inf"} 3.0
latency_seconds_count 3.0
latency_seconds_sum 4.25
# HELP latency_seconds_created Request latency
# TYPE latency_seconds_created gauge
latency_seconds_created 1.7899999e+09
# HELP rpc_seconds RPC time
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 0.2
rpc_seconds{quantile="0.99"} NaN
rpc_seconds_count 10.0
rpc_seconds_sum 2.5
"""

# The same registry as prometheus_client writes it in OpenMetrics (openmetrics.exposition).
CLIENT_OPENMETRICS = """\
# HELP python_info Python platform information
# TYPE python_info gauge
python_info{implementation="CPython",major="3",minor="11",patchlevel="9",version="3.11.9"} 1.0
# HELP requests Requests handled
# TYPE requests counter
requests_total{method="get",path="/cart"} 3.0 # {trace_id="abc123"} 1.0 1789999999.5
requests_created{method="get",path="/cart"} 1.7899999e+09
requests_total{method="post",path="/cart"} 1.0
requests_created{method="post",path="/cart"} 1.7899999e+09
# HELP queue_depth Jobs waiting
# TYPE queue_depth gauge
# UNIT queue_depth jobs
queue_depth 7.0 1789999990.250
# HELP latency_seconds Request latency
# TYPE latency_seconds histogram
# UNIT latency_seconds seconds
latency_seconds_bucket{le="0.1"} 1.0
latency_seconds_bucket{le="1.0"} 2.0
latency_seconds_bucket{le="+Inf"} 3.0
latency_seconds_count 3.0
latency_seconds_sum 4.25
latency_seconds_created 1.7899999e+09
# HELP build Build information
# TYPE build info
build_info{version="1.2.3"} 1.0
# EOF
"""


def parse(body: str | bytes, content_type: str = TEXT, target: dict[str, str] | None = None) -> Parsed:
    raw = body.encode() if isinstance(body, str) else body
    out: Parsed = {}
    for encoded in parse_exposition(raw, content_type, SCRAPE_MS, TARGET if target is None else target):
        ts = TimeSeries.FromString(encoded)
        key = tuple((label.name, label.value) for label in ts.labels)
        assert list(key) == sorted(key), "labels must be sorted by name"
        assert key not in out, f"two series with labels {key}"
        out[key] = [(s.value, s.timestamp) for s in ts.samples]
    return out


def series(name: str, **labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted([("__name__", name), *TARGET.items(), *labels.items()]))


def error_of(body: str | bytes, content_type: str = TEXT) -> ExpositionError:
    with pytest.raises(ExpositionError) as caught:
        parse(body, content_type)
    return caught.value


# --- the text format ------------------------------------------------------------------------------


def test_client_text_becomes_one_series_per_sample_line_with_target_labels():
    # Given a prometheus_client-style scrape in the text format
    # When parsed
    parsed = parse(CLIENT_TEXT)
    # Then every sample line is a series with the target's labels, stamped with the scrape time;
    # in the text format the client's _created gauges are ordinary series, as Prometheus keeps them
    assert len(parsed) == 16
    assert parsed[series("requests_total", method="get", path="/cart")] == [(3.0, SCRAPE_MS)]
    assert parsed[series("requests_created", method="post", path="/cart")] == [(1.7899999e09, SCRAPE_MS)]
    assert parsed[series("latency_seconds_bucket", le="+Inf")] == [(3.0, SCRAPE_MS)]
    assert parsed[series("rpc_seconds_sum")] == [(2.5, SCRAPE_MS)]
    assert math.isnan(parsed[series("rpc_seconds", quantile="0.99")][0][0])


def test_text_timestamps_are_milliseconds_and_special_values_parse():
    # Given samples with timestamps, special values and blank or comment lines
    body = "# a free comment\n\na 1 1789999999000\nb +Inf\nc -Inf -5\nd 1.5e3\n  e\t-0.25\t1789999999123  \n"
    # When parsed
    parsed = parse(body)
    # Then text timestamps are taken as ms, missing ones are the scrape time
    assert parsed[series("a")] == [(1.0, 1_789_999_999_000)]
    assert parsed[series("b")] == [(math.inf, SCRAPE_MS)]
    assert parsed[series("c")] == [(-math.inf, -5)]
    assert parsed[series("d")] == [(1500.0, SCRAPE_MS)]
    assert parsed[series("e")] == [(-0.25, 1_789_999_999_123)]


def test_label_values_are_unescaped_like_prometheus():
    # Given escapes \\, \" and \n, an unknown escape, blanks around labels and a trailing comma
    body = 'm{ a = "x\\\\y" , b="say \\"hi\\"",c="two\\nlines",d="tab\\t", } 1\n'
    # When parsed
    parsed = parse(body)
    # Then the three escapes are decoded and the unknown one is kept as written
    assert parsed == {
        series("m", a="x\\y", b='say "hi"', c="two\nlines", d="tab\\t"): [(1.0, SCRAPE_MS)],
    }


def test_empty_label_values_and_empty_braces_mean_no_label():
    parsed = parse('m{a=""} 1\nn{} 2\n')
    assert parsed == {series("m"): [(1.0, SCRAPE_MS)], series("n"): [(2.0, SCRAPE_MS)]}


def test_colliding_scraped_labels_are_renamed_exported():
    # Given a scraped series carrying job and instance labels, and even an exported_job of its own
    body = 'up{job="node",instance="self",exported_job="older",zone="a"} 1\n'
    # When parsed with the target's job and instance
    parsed = parse(body)
    # Then the target's labels win and the scraped ones move aside, without overwriting each other
    assert parsed == {
        series("up", exported_instance="self", exported_job="older", exported_exported_job="node", zone="a"): [
            (1.0, SCRAPE_MS)
        ]
    }


def test_without_target_labels_scraped_labels_stay():
    parsed = parse('up{job="node"} 1\n', target={})
    assert parsed == {(("__name__", "up"), ("job", "node")): [(1.0, SCRAPE_MS)]}


def test_repeated_series_keep_the_first_sample_per_timestamp_in_time_order():
    # Given one series repeated with the same timestamp and with earlier/later ones
    body = "m 1 2000\nm 2 2000\nm 3 1000\nm 4 3000\n"
    # When parsed
    parsed = parse(body)
    # Then one series holds one sample per timestamp (the first), in time order
    assert parsed == {series("m"): [(3.0, 1000), (1.0, 2000), (4.0, 3000)]}


def test_invalid_target_label_name_is_a_configuration_error():
    with pytest.raises(ValueError, match="invalid target label name"):
        parse_exposition(b"up 1\n", TEXT, SCRAPE_MS, {"__address__": "x"})


def test_text_fixture_is_valid_for_promtool(tmp_path):
    # Given Prometheus's own checker (Debian's prometheus package), when available
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    # When it checks the hand-written client text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=CLIENT_TEXT, capture_output=True, text=True, timeout=60, check=False
    )
    # Then it finds nothing wrong
    assert result.returncode == 0, result.stdout + result.stderr


# --- OpenMetrics ------------------------------------------------------------------------------------


def test_openmetrics_drops_created_skips_exemplars_and_reads_seconds():
    # Given prometheus_client-style OpenMetrics with _created series, an exemplar and a timestamp
    # When parsed
    parsed = parse(CLIENT_OPENMETRICS, OPENMETRICS)
    # Then _created series of counters and histograms are dropped, as Prometheus's scrape does,
    # the exemplar is skipped, and the timestamp (seconds) becomes ms
    assert not [key for key in parsed if key[0][1].endswith("_created")]
    assert parsed[series("requests_total", method="get", path="/cart")] == [(3.0, SCRAPE_MS)]
    assert parsed[series("queue_depth")] == [(7.0, 1_789_999_990_250)]
    assert parsed[series("build_info", version="1.2.3")] == [(1.0, SCRAPE_MS)]
    assert len(parsed) == 10


def test_openmetrics_created_of_a_gauge_family_is_kept():
    body = "# TYPE boot_created gauge\nboot_created 5\n# EOF\n"
    assert parse(body, OPENMETRICS) == {series("boot_created"): [(5.0, SCRAPE_MS)]}


def test_openmetrics_eof_without_final_newline_is_accepted():
    assert parse("a 1\n# EOF", OPENMETRICS) == {series("a"): [(1.0, SCRAPE_MS)]}


def test_unknown_content_type_falls_back_to_text():
    assert parse("a 1 5\n", "") == {series("a"): [(1.0, 5)]}


# --- malformed input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("a 1\n9bad 1\n", 2, "expected a metric name"),
        ("a{b=1} 1\n", 1, "malformed label"),
        ('a{b="1" c="2"} 1\n', 1, "expected ',' or '}'"),
        ('a{b="1"', 1, "expected ',' or '}'"),
        ('a{b="1",b="2"} 1\n', 1, "duplicate label name"),
        ('a{__meta="x"} 1\n', 1, "reserved"),
        ("a\n", 1, "expected 'value [timestamp]'"),
        ("a 1 2 3\n", 1, "expected 'value [timestamp]'"),
        ("a one\n", 1, "invalid sample value"),
        ("a 1_000\n", 1, "invalid sample value"),
        ("a 1 1.5\n", 1, "invalid timestamp"),
        ("a-b 1\n", 1, "invalid character '-'"),
        ("# TYPE a nonsense\n", 1, "unknown metric type"),
        ("# TYPE a gauge\n# TYPE a counter\n", 2, "second TYPE line"),
        ("# HELP a x\n# HELP a y\n", 2, "second HELP line"),
        ("# TYPE 1a gauge\n", 1, "invalid metric name"),
        ("# TYPE h histogram\nh_bucket 1\n", 2, "no 'le' label"),
        ('# TYPE h histogram\nh_bucket{le="big"} 1\n', 2, "invalid sample value"),
        ("# TYPE s summary\ns 1\n", 2, "no 'quantile' label"),
        ("ok 1\na 1 99999999999999999999\n", 2, "out of range"),
        ("a 1 " + "9" * 5000 + "\n", 1, "out of range"),
        ("a{" + ",".join(f'l{i}="v"' for i in range(63)) + "} 1\n", 1, "more than 64"),
        ('a{l="' + "v" * 1100 + '"} 1\n', 1, "longer than 1024 bytes"),
    ],
)
def test_malformed_text_raises_with_line_and_reason(body, line, reason):
    # Given a malformed text exposition; when parsed; then the error names the line and the reason
    error = error_of(body)
    assert error.line == line
    assert reason in error.reason
    assert str(error).startswith(f"line {line}: ")


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("a 1\n", 1, "does not end with '# EOF'"),
        ("a 1\n# EOF\nb 1\n", 3, "content after '# EOF'"),
        ("a 1\n\n# EOF\n", 2, "empty line"),
        ("# random comment\n# EOF\n", 1, "invalid OpenMetrics comment"),
        ("a 1 soon\n# EOF\n", 1, "invalid sample value"),
        ("a 1 nan\n# EOF\n", 1, "invalid timestamp"),
        ("a 1 1e300\n# EOF\n", 1, "out of range"),
        ("a 1 -9.3e15\n# EOF\n", 1, "out of range"),
        ("# UNIT 1a s\n# EOF\n", 1, "invalid metric name"),
    ],
)
def test_malformed_openmetrics_raises_with_line_and_reason(body, line, reason):
    error = error_of(body, OPENMETRICS)
    assert error.line == line
    assert reason in error.reason


def test_invalid_utf8_names_its_line():
    error = error_of(b'a 1\nb 2\nc{x="\xff"} 3\n')
    assert error.line == 3
    assert "UTF-8" in error.reason


def test_protobuf_exposition_is_refused_clearly():
    error = error_of(b"\x00\x01", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily")
    assert "protobuf" in str(error)


# --- output ---------------------------------------------------------------------------------------


def test_output_is_canonical_protobuf_and_passes_validation():
    # Given both client expositions
    validator = SeriesValidator()
    for body, content_type in ((CLIENT_TEXT, TEXT), (CLIENT_OPENMETRICS, OPENMETRICS)):
        for encoded in parse_exposition(body.encode(), content_type, SCRAPE_MS, TARGET):
            ts = TimeSeries.FromString(encoded)
            # Then each encoding is what protobuf writes for the same message
            rebuilt = TimeSeries(
                labels=[Label(name=x.name, value=x.value) for x in ts.labels],
                samples=[Sample(value=s.value, timestamp=s.timestamp) for s in ts.samples],
            )
            assert rebuilt.SerializeToString() == encoded
            # And NovaCron's ingest accepts its label set
            verdict = validator.check(TimeSeries(labels=ts.labels).SerializeToString())
            assert verdict.valid, verdict.error


@pytest.mark.parametrize(
    ("value", "timestamp"), [(0.0, 0), (-0.0, 5), (1.5, -1), (math.nan, 1), (math.inf, 2**62), (-1e308, 2**63 - 1)]
)
def test_encode_sample_matches_protobuf(value, timestamp):
    expected = TimeSeries(samples=[Sample(value=value, timestamp=timestamp)]).SerializeToString()
    assert encode_sample(value, timestamp) == expected


# --- fuzzing --------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([TEXT, OPENMETRICS]))
def test_random_bytes_raise_only_exposition_errors(body, content_type):
    # Given any bytes; when parsed; then the outcome is series or an ExpositionError naming a line
    line = 0
    try:
        parse_exposition(body, content_type, SCRAPE_MS, TARGET)
    except ExpositionError as error:
        line = error.line
    assert 0 <= line <= body.count(b"\n") + 1


_PIECES = st.sampled_from(
    [
        "a",
        "b_total",
        "_created",
        "{",
        "}",
        '"',
        "=",
        ",",
        " ",
        "\t",
        "\\",
        "1",
        "-2.5",
        "NaN",
        "+Inf",
        "#",
        "# TYPE",
        "# HELP",
        "# EOF",
        " counter",
        " histogram",
        " summary",
        "le",
        "quantile",
        "job",
        "\n",
        "\xff",
        "é",
        "1e300",
        "99999999999999999999999",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join), st.sampled_from([TEXT, OPENMETRICS]))
def test_exposition_shaped_noise_yields_valid_series_or_an_error(body, content_type):
    # Given text assembled from exposition syntax pieces
    try:
        encodings = parse_exposition(body.encode(), content_type, SCRAPE_MS, TARGET)
    except ExpositionError:
        return
    # Then whatever parses is a valid, unique label set
    validator = SeriesValidator()
    seen = set()
    for encoded in encodings:
        labels = TimeSeries(labels=TimeSeries.FromString(encoded).labels).SerializeToString()
        assert labels not in seen
        seen.add(labels)
        verdict = validator.check(labels)
        assert verdict.valid, verdict.error


# --- a real exposition: Prometheus's own /metrics (client_golang) -------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus_metrics_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus server on loopback (Debian's package), for the /metrics it exposes about itself."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus)")
    home: Path = tmp_path_factory.mktemp("prometheus")
    (home / "prometheus.yml").write_text("global:\n  scrape_interval: 1h\n")
    port = _free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("Prometheus did not become ready within 30 s")
            time.sleep(0.2)
        yield f"{url}/metrics"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_prometheus_servers_own_metrics_parse(prometheus_metrics_url):
    # Given the /metrics page of a real Prometheus server (client_golang; Prometheus 2.42 serves its own
    # metrics in the text format only, even when OpenMetrics is asked for)
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    request = urllib.request.Request(prometheus_metrics_url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        body, content_type = response.read(), response.headers["Content-Type"]
    # When parsed
    encodings = parse_exposition(body, content_type, SCRAPE_MS, TARGET)
    # Then every sample line is a valid series, including histograms and the build info
    names = {
        label.value for encoded in encodings for label in TimeSeries.FromString(encoded).labels
        if label.name == "__name__"
    }  # fmt: skip
    assert "prometheus_build_info" in names
    assert "prometheus_http_request_duration_seconds_bucket" in names
    assert "go_gc_duration_seconds" in names  # a summary
    assert not [name for name in names if name.endswith("_created")]
    validator = SeriesValidator()
    for encoded in encodings:
        verdict = validator.check(TimeSeries(labels=TimeSeries.FromString(encoded).labels).SerializeToString())
        assert verdict.valid, verdict.error
