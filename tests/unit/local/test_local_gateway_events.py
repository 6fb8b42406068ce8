"""Route selection, HTTP API v2 event building and response mapping of the local gateway."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from novacron.local.gateway import (
    MalformedResponseError,
    Router,
    compile_route,
    http_api_event,
    is_text,
    to_http_response,
)
from novacron.wiring import WIRING, Route


@pytest.fixture
def router() -> Router:
    return Router(
        [
            Route("GET", "/items/{proxy+}", "greedy"),
            Route("GET", "/items/{id}", "one"),
            Route("GET", "/items/special", "exact"),
            Route("ANY", "/items/{id}/tags", "any-method"),
            Route("DELETE", "/items/{id}/tags", "delete-method"),
            Route("GET", "/files/{bucket}/{key+}", "files"),
        ]
    )


def _event(**overrides):
    fields = {
        "method": "POST",
        "raw_path": "/api/v1/write",
        "raw_query": "",
        "headers": [("Host", "localhost:8080"), ("User-Agent", "curl/8")],
        "body": b"",
        "route_key": "POST /api/v1/write",
        "path_parameters": {},
        "source_ip": "127.0.0.1",
        "request_id": "req-1",
        "now": datetime(2026, 3, 12, 19, 3, 58, tzinfo=UTC),
    }
    fields.update(overrides)
    return http_api_event(**fields)


@pytest.mark.parametrize(
    ("method", "path", "function", "params"),
    [
        ("GET", "/items/special", "exact", {}),
        ("GET", "/items/42", "one", {}),
        ("GET", "/items/a/b/c", "greedy", {"proxy": "a/b/c"}),
        ("POST", "/items/42/tags", "any-method", {"id": "42"}),
        ("DELETE", "/items/42/tags", "delete-method", {"id": "42"}),
        ("GET", "/files/logs/2026/01/x.gz", "files", {"bucket": "logs", "key": "2026/01/x.gz"}),
        ("GET", "/items/hello%20world", "one", {"id": "hello world"}),
    ],
)
def test_most_specific_route_wins(router, method, path, function, params):
    # Given overlapping routes / When a request path is matched
    matched = router.match(method, path)
    # Then the most specific route is chosen and path parameters are decoded
    assert matched is not None
    compiled, values = matched
    assert compiled.route.function == function
    if params:
        assert values == params
    if function == "one":
        assert set(values) == {"id"}


@pytest.mark.parametrize(("method", "path"), [("POST", "/items/42"), ("GET", "/nope"), ("GET", "/items")])
def test_no_route_for_unknown_path_or_method(router, method, path):
    # Given the routes / When nothing matches path and method / Then there is no route (404 upstream)
    assert router.match(method, path) is None


def test_route_key_and_default_route():
    # Given a parametrised route and the $default route
    # Then their route keys are what API Gateway reports
    assert compile_route(Route("get", "/api/v1/label/{name}/values", "q")).route_key == (
        "GET /api/v1/label/{name}/values"
    )
    default = Router([Route("ANY", "$default", "fallback"), Route("GET", "/x", "x")])
    matched = default.match("PUT", "/anything/at/all")
    assert matched is not None
    assert matched[0].route_key == "$default"
    assert default.match("GET", "/x")[0].route.function == "x"  # type: ignore[index]


def test_greedy_variable_must_be_last():
    with pytest.raises(ValueError, match="greedy"):
        compile_route(Route("GET", "/a/{rest+}/b", "f"))


def test_declared_wiring_routes_all_compile():
    # Given the real wiring / Then every route compiles and its label route extracts the name
    router = Router(WIRING.routes)
    matched = router.match("GET", "/api/v1/label/job/values")
    assert matched is not None
    assert matched[1] == {"name": "job"}


def test_event_has_payload_v2_shape():
    # Given a request with duplicate headers, cookies and a repeated query parameter
    event = _event(
        method="GET",
        raw_path="/api/v1/query",
        raw_query="query=up&match%5B%5D=a&match%5B%5D=b&empty=",
        headers=[
            ("Host", "localhost:8080"),
            ("User-Agent", "curl/8"),
            ("X-Multi", "1"),
            ("x-multi", "2"),
            ("Cookie", "a=1; b=2"),
        ],
        route_key="GET /api/v1/query",
    )
    # Then headers are lower-cased and comma-joined, cookies are split out, the query is decoded
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /api/v1/query"
    assert event["rawQueryString"] == "query=up&match%5B%5D=a&match%5B%5D=b&empty="
    assert event["headers"] == {"host": "localhost:8080", "user-agent": "curl/8", "x-multi": "1,2"}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["queryStringParameters"] == {"query": "up", "match[]": "a,b", "empty": ""}
    assert "pathParameters" not in event
    assert "body" not in event
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"] == {
        "method": "GET",
        "path": "/api/v1/query",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "curl/8",
    }
    assert context["stage"] == "$default"
    assert context["requestId"] == "req-1"
    assert context["domainName"] == "localhost:8080"
    assert context["time"] == "12/Mar/2026:19:03:58 +0000"
    assert context["timeEpoch"] == 1773342238000
    assert context["accountId"] == "123456789012"


@pytest.mark.parametrize(
    ("content_type", "encoding", "text"),
    [
        ("application/json", None, True),
        ("application/json; charset=utf-8", None, True),
        ("text/plain", None, True),
        ("application/vnd.api+json", None, True),
        ("application/x-www-form-urlencoded", None, True),
        ("application/x-protobuf", None, False),
        ("application/octet-stream", None, False),
        ("application/json", "gzip", False),
        ("application/json", "identity", True),
        (None, None, False),
    ],
)
def test_text_or_binary_body(content_type, encoding, text):
    assert is_text(content_type, encoding) is text


def test_binary_body_is_base64_and_json_body_is_text():
    # Given a protobuf body and a JSON body
    binary = _event(headers=[("Content-Type", "application/x-protobuf")], body=b"\x00\xff\x10")
    textual = _event(headers=[("Content-Type", "application/json")], body=b'{"a": 1}')
    # Then the binary one is base64 with the flag set and the JSON one is passed as text
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\x00\xff\x10"
    assert textual["isBase64Encoded"] is False
    assert textual["body"] == '{"a": 1}'


def test_text_content_type_with_invalid_utf8_falls_back_to_base64():
    event = _event(headers=[("Content-Type", "text/plain")], body=b"\xff\xfe")
    assert event["isBase64Encoded"] is True


def test_handler_response_with_status_code_is_taken_as_written():
    # Given a full integration response with headers, multi-value headers, cookies and base64 body
    response = to_http_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/octet-stream", "Content-Length": "999"},
            "multiValueHeaders": {"X-A": ["1", "2"]},
            "cookies": ["s=1; HttpOnly"],
            "body": base64.b64encode(b"\x01\x02").decode(),
            "isBase64Encoded": True,
        }
    )
    # Then status, headers (minus hop-by-hop ones) and the decoded body go on the wire
    assert response.status == 201
    assert ("Content-Type", "application/octet-stream") in response.headers
    assert ("X-A", "1") in response.headers
    assert ("X-A", "2") in response.headers
    assert ("Set-Cookie", "s=1; HttpOnly") in response.headers
    assert all(name.lower() != "content-length" for name, _ in response.headers)
    assert response.body == b"\x01\x02"


@pytest.mark.parametrize("result", [{"hello": "world"}, "a string", 42, ["a", 1], None, {"body": "no status"}])
def test_response_without_status_code_is_inferred_as_json_200(result):
    # Given a return value that is not a full integration response
    response = to_http_response(result)
    # Then API Gateway's inference applies: 200, application/json, the value serialised as the body
    assert response.status == 200
    assert response.headers == [("Content-Type", "application/json")]
    assert json.loads(response.body) == result


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": "abc"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "!!!", "isBase64Encoded": True},
        {"statusCode": 200, "body": object()},
    ],
)
def test_malformed_response_is_rejected(result):
    with pytest.raises(MalformedResponseError):
        to_http_response(result)
