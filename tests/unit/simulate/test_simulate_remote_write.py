"""The remote write client against a tiny local HTTP server."""

from __future__ import annotations

import logging

import pytest

from novacron import __version__
from novacron.simulate.remote_write import RemoteWriteClient, parse_retry_after

SERIES = [
    (
        {"__name__": "up", "job": "cart", "instance": "10.0.0.1:8080"},
        [(1_700_000_015_000, 1.0), (1_700_000_000_000, 0.0)],
    ),
    (
        [("route", "/cart"), ("__name__", "http_requests_total"), ("code", "200"), ("job", "cart")],
        [(1_700_000_000_000, 42.0)],
    ),
]


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(write_server, sleeps):
    c = RemoteWriteClient(write_server.url, "secret-key", timeout=5, sleep=sleeps.append)
    yield c
    c.close()


def test_body_decodes_back_to_the_same_series_with_sorted_labels(client, write_server):
    # Given two series with unsorted labels and samples / When written
    assert client.write(SERIES)

    # Then the server got one request whose snappy-block protobuf body holds them, labels sorted by name
    (request,) = write_server.received
    assert request.path == "/api/v1/write"
    decoded = request.decode()
    assert decoded == [
        (
            (("__name__", "up"), ("instance", "10.0.0.1:8080"), ("job", "cart")),
            [(1_700_000_000_000, 0.0), (1_700_000_015_000, 1.0)],
        ),
        (
            (("__name__", "http_requests_total"), ("code", "200"), ("job", "cart"), ("route", "/cart")),
            [(1_700_000_000_000, 42.0)],
        ),
    ]
    stats = client.stats
    assert (stats.requests, stats.samples_sent, stats.series_sent, stats.retries, stats.failures) == (1, 3, 2, 0, 0)


def test_sends_the_remote_write_headers(client, write_server):
    # Given a client with an API key / When it writes / Then the protocol's headers are on the request
    client.write(SERIES)
    headers = write_server.received[0].headers
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["content-encoding"] == "snappy"
    assert headers["x-prometheus-remote-write-version"] == "0.1.0"
    assert headers["user-agent"] == f"novacron-simulate/{__version__}"
    assert headers["authorization"] == "Bearer secret-key"


def test_retries_a_503_after_retry_after_then_succeeds(client, write_server, sleeps):
    # Given a server that is unavailable once and asks for 7 seconds
    write_server.script.append((503, {"Retry-After": "7"}, "stream busy, retry later"))

    # When the client writes
    ok = client.write(SERIES)

    # Then it waited exactly as asked, resent the same body, and succeeded
    assert ok
    assert sleeps == [7.0]
    assert len(write_server.received) == 2
    assert write_server.received[0].body == write_server.received[1].body
    stats = client.stats
    assert (stats.requests, stats.retries, stats.failures, stats.samples_sent) == (2, 1, 0, 3)


def test_retries_429_and_5xx_with_exponential_backoff(client, write_server, sleeps):
    # Given throttling and server errors without Retry-After
    write_server.script += [(429, {}, "slow down"), (500, {}, "oops"), (502, {}, "bad gateway")]
    # When the client writes / Then it backs off longer each time (with jitter) and gets through
    assert client.write(SERIES)
    assert len(sleeps) == 3
    assert 0.4 <= sleeps[0] <= 0.6
    assert 0.8 <= sleeps[1] <= 1.2
    assert 1.6 <= sleeps[2] <= 2.4


def test_does_not_retry_a_400_and_logs_the_servers_message(client, write_server, sleeps, caplog):
    # Given a server that refuses the data
    write_server.script.append((400, {}, "1 series rejected: labels are not sorted by name"))

    # When the client writes
    with caplog.at_level(logging.ERROR, logger="novacron.simulate"):
        ok = client.write(SERIES)

    # Then it gave up at once, counted the failure and logged why
    assert not ok
    assert len(write_server.received) == 1
    assert sleeps == []
    stats = client.stats
    assert (stats.failures, stats.retries, stats.samples_dropped, stats.samples_sent) == (1, 0, 3, 0)
    assert "labels are not sorted by name" in caplog.text
    assert "labels are not sorted by name" in stats.last_error


def test_gives_up_after_the_retry_budget(write_server, sleeps):
    # Given a server that is always down and a client allowed two retries
    write_server.script += [(503, {}, "down")] * 5
    client = RemoteWriteClient(write_server.url, "k", max_retries=2, sleep=sleeps.append)
    # When it writes / Then it tried three times and dropped the data
    assert not client.write(SERIES)
    assert len(write_server.received) == 3
    assert client.stats.failures == 1
    assert client.stats.retries == 2


def test_connection_errors_are_retried_then_given_up():
    # Given nothing listening / When written with one retry allowed / Then one retry, one failure
    sleeps: list[float] = []
    client = RemoteWriteClient("http://127.0.0.1:9", "k", timeout=1, max_retries=1, sleep=sleeps.append)
    assert not client.write(SERIES)
    assert len(sleeps) == 1
    assert client.stats.failures == 1
    assert "connection error" in client.stats.last_error


def test_large_payloads_are_split_into_requests_of_at_most_2000_series(client, write_server):
    # Given 4,500 series / When written / Then three requests, none over 2,000 series, nothing lost
    many = [({"__name__": "m", "i": str(i)}, [(1_700_000_000_000, float(i))]) for i in range(4500)]
    assert client.write(many)
    sizes = [len(r.decode()) for r in write_server.received]
    assert sizes == [2000, 2000, 500]
    assert client.stats.series_sent == 4500


def test_url_gets_the_write_path_once():
    # Given base URLs with and without the path / Then the endpoint is always <base>/api/v1/write
    assert RemoteWriteClient("http://x:1/", "k").url == "http://x:1/api/v1/write"
    assert RemoteWriteClient("http://x:1/api/v1/write", "k").url == "http://x:1/api/v1/write"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("5", 5.0), ("0", 0.0), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_parses_seconds_and_dates(header, expected):
    assert parse_retry_after(header) == expected
