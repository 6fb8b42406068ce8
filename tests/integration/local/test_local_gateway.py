"""The local gateway over real HTTP: payload v2 events, binary bodies, chunked bodies, errors."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import socket
from urllib.parse import urlsplit

import pytest

from novacron.local.gateway import MAX_REQUEST_BYTES


@pytest.fixture
def connect(shared_runtime):
    """Open HTTP/1.1 connections to the gateway; all closed at the end."""
    opened = []

    def _connect() -> http.client.HTTPConnection:
        parts = urlsplit(shared_runtime.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        opened.append(connection)
        return connection

    yield _connect
    for connection in opened:
        connection.close()


def _request(connect, method, path, body=None, headers=None):
    connection = connect()
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response, response.read()


def test_binary_body_round_trips_as_base64_with_path_parameters(connect):
    # Given a binary body that is not valid UTF-8
    payload = bytes(range(256)) * 4

    # When it is posted to a route with a path parameter
    response, body = _request(
        connect, "POST", "/echo-binary/abc%2Fdef", payload, {"Content-Type": "application/x-protobuf"}
    )

    # Then the handler received it base64-encoded and its base64 response is decoded on the wire
    assert response.status == 200
    assert body == payload[::-1]
    assert response.getheader("x-item") == "abc/def"
    assert response.getheader("content-type") == "application/octet-stream"


def test_event_reaches_the_handler_with_payload_v2_fields(connect):
    # Given a JSON request with a query string, a cookie and a greedy path
    response, body = _request(
        connect,
        "PUT",
        "/echo/a/b?x=1&x=2",
        b'{"k": "v"}',
        {"Content-Type": "application/json", "Cookie": "session=s1", "X-Test": "yes"},
    )

    # Then the handler saw the v2 event, and the environment points at local names
    assert response.status == 200
    assert response.getheader("set-cookie") == "c=1"
    event = json.loads(body)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /echo/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a/b"}
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["cookies"] == ["session=s1"]
    assert event["headers"]["x-test"] == "yes"
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert event["body"] == '{"k": "v"}'
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["method"] == "PUT"
    assert event["env_table"] == "t-things"


def test_chunked_request_body_is_decoded(connect):
    # Given a body sent with Transfer-Encoding: chunked (as the OTLP JS exporter does)
    chunks = [b'{"part": 1', b', "more": "', b"x" * 5000, b'"}']
    connection = connect()
    connection.request(
        "POST", "/echo/otlp", body=iter(chunks), headers={"Content-Type": "application/json"}, encode_chunked=True
    )
    response = connection.getresponse()

    # Then the handler received the reassembled body
    event = json.loads(response.read())
    assert response.status == 200
    assert event["headers"]["transfer-encoding"] == "chunked"
    assert json.loads(event["body"]) == {"part": 1, "more": "x" * 5000}


def test_gzip_body_is_passed_through_as_sent(connect):
    # Given a gzip-encoded JSON body
    raw = gzip.compress(b'{"a": 1}')
    response, body = _request(
        connect, "POST", "/echo/gz", raw, {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert response.status == 200
    # Then the handler gets the compressed bytes, base64-encoded, to decompress itself
    event = json.loads(body)
    assert event["isBase64Encoded"] is True
    assert gzip.decompress(base64.b64decode(event["body"])) == b'{"a": 1}'


def test_keep_alive_connection_serves_several_requests(connect):
    connection = connect()
    for _ in range(3):
        connection.request("GET", "/plain")
        response = connection.getresponse()
        assert response.status == 200
        assert response.read() == b'"just a string"'


def test_unknown_route_is_404_not_found(connect):
    response, body = _request(connect, "GET", "/nowhere")
    assert response.status == 404
    assert json.loads(body) == {"message": "Not Found"}


def test_error_bodies_match_api_gateway_byte_for_byte(connect):
    _, body = _request(connect, "GET", "/nowhere")
    assert body == b'{"message":"Not Found"}'


def test_malformed_chunked_body_is_400(shared_runtime):
    # Given a raw request whose chunk size is not hexadecimal
    parts = urlsplit(shared_runtime.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"POST /echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        reply = sock.recv(4096)
    # Then the gateway answers 400 instead of dropping the connection silently
    assert reply.startswith(b"HTTP/1.1 400 ")


def test_wrong_method_is_404_like_api_gateway(connect):
    response, _ = _request(connect, "DELETE", "/plain")
    assert response.status == 404


def test_body_over_10_mb_is_413(connect):
    # Given a body one byte over API Gateway's payload limit
    response, body = _request(
        connect, "POST", "/echo/big", b"x" * (MAX_REQUEST_BYTES + 1), {"Content-Type": "text/plain"}
    )
    # Then API Gateway's error comes back without the handler running
    assert response.status == 413
    assert json.loads(body) == {"message": "Request Entity Too Large"}


def test_chunked_body_over_10_mb_is_413(connect):
    connection = connect()
    chunk = b"y" * (1024 * 1024)
    connection.request("POST", "/echo/big", body=iter([chunk] * 11), encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413


def test_handler_exception_is_500_and_logged(connect, caplog):
    # Given a route whose handler raises
    response, body = _request(connect, "GET", "/boom")
    # Then the client gets API Gateway's 500 and the traceback is in the log
    assert response.status == 500
    assert json.loads(body) == {"message": "Internal Server Error"}
    assert any("boom" in (r.exc_text or "") for r in caplog.records)


def test_string_return_value_is_inferred_as_json(connect):
    response, body = _request(connect, "GET", "/plain")
    assert response.status == 200
    assert response.getheader("content-type") == "application/json"
    assert body == b'"just a string"'


def test_access_log_line_per_request(connect, caplog):
    caplog.set_level("INFO", logger="novacron.local.gateway")
    _request(connect, "GET", "/plain")
    assert any(r.getMessage().startswith("GET /plain 200 ") for r in caplog.records)


def test_a_client_that_goes_away_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    # A peer resetting the connection mid-response must not print a traceback (Ctrl-C on a client).
    import socket as socket_module

    from novacron.local.gateway import _GatewayServer

    server = _GatewayServer(("127.0.0.1", 0), gateway=None)  # type: ignore[arg-type]
    try:
        try:
            raise BrokenPipeError(32, "Broken pipe")
        except BrokenPipeError:
            with caplog.at_level("DEBUG"), socket_module.socket() as peer:
                server.handle_error(peer, ("127.0.0.1", 1))
    finally:
        server.server_close()
    assert "went away" in caplog.text
