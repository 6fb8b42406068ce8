"""A local API Gateway HTTP API: HTTP requests in, payload-format-2.0 events to the handlers out.

It reproduces what handlers can observe of API Gateway: route selection (most specific first,
``{param}`` and greedy ``{proxy+}`` path variables, ``ANY``, ``$default``), the event's fields and
encoding rules (lower-cased headers, comma-joined duplicates, cookies split out, base64 bodies for
binary content), the response inference rules, and API Gateway's own error responses (404 no route,
413 over the 10 MB payload limit, 500 when the integration fails).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from novacron.local.handlers import LocalFunction
from novacron.local.moto_server import ACCOUNT_ID
from novacron.wiring import Route

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
MAX_LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invoke limit, both directions
API_ID = "local"
_MAX_DRAIN_BYTES = 64 * 1024 * 1024  # oversized bodies up to this size are read and dropped

NOT_FOUND = (404, {"message": "Not Found"})
TOO_LARGE = (413, {"message": "Request Entity Too Large"})
INTERNAL_ERROR = (500, {"message": "Internal Server Error"})
BAD_REQUEST = (400, {"message": "Bad Request"})

_TEXT_TYPES = {
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/graphql",
}
_HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "keep-alive"}


# --- routing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledRoute:
    """A route with its path turned into a matcher and a priority."""

    route: Route
    pattern: re.Pattern[str]
    params: tuple[str, ...]
    priority: tuple[int, int, int, int]

    @property
    def route_key(self) -> str:
        """API Gateway's ``routeKey``: ``"GET /api/v1/label/{name}/values"`` or ``"$default"``."""
        if self.route.path == "$default":
            return "$default"
        return f"{self.route.method.upper()} {self.route.path}"


def compile_route(route: Route) -> CompiledRoute:
    """Compile ``route.path``: ``{name}`` matches one segment, a final ``{name+}`` the rest."""
    if route.path == "$default":
        return CompiledRoute(route, re.compile(r".*"), (), (9, 0, 0, 0))
    segments = route.path.strip("/").split("/") if route.path != "/" else []
    parts: list[str] = []
    params: list[str] = []
    greedy = 0
    for i, segment in enumerate(segments):
        variable = re.fullmatch(r"\{([A-Za-z0-9_.-]+)(\+?)\}", segment)
        if variable is None:
            parts.append(re.escape(segment))
            continue
        name, plus = variable.groups()
        if plus and i != len(segments) - 1:
            raise ValueError(f"greedy path variable must be last: {route.path}")
        params.append(name)
        greedy = 1 if plus else greedy
        parts.append(f"(?P<p{len(params) - 1}>.+)" if plus else f"(?P<p{len(params) - 1}>[^/]+)")
    pattern = re.compile("/" + "/".join(parts))
    literal = len(segments) - len(params)
    # Most specific first: no greedy variable, then fewer variables, then more literal segments,
    # then a named method over ANY.
    priority = (greedy, len(params), -literal, int(route.method.upper() == "ANY"))
    return CompiledRoute(route, pattern, tuple(params), priority)


class Router:
    """Selects the declared route for a method and raw path, as API Gateway does."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = sorted((compile_route(r) for r in routes), key=lambda c: c.priority)

    def match(self, method: str, raw_path: str) -> tuple[CompiledRoute, dict[str, str]] | None:
        """The matching route and its (URL-decoded) path parameters, or None."""
        for compiled in self.routes:
            declared = compiled.route.method.upper()
            if declared not in ("ANY", method.upper()):
                continue
            found = compiled.pattern.fullmatch(raw_path)
            if found is None:
                continue
            values = {name: unquote(found.group(f"p{i}")) for i, name in enumerate(compiled.params)}
            return compiled, values
        return None


# --- event building -----------------------------------------------------------------------------


def is_text(content_type: str | None, content_encoding: str | None) -> bool:
    """Whether API Gateway passes the body as text (else base64, ``isBase64Encoded: true``)."""
    if content_encoding and content_encoding.strip().lower() not in ("", "identity"):
        return False  # gzip'd JSON is bytes, not text
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith("+json") or media.endswith("+xml")


def join_multi(pairs: Iterable[tuple[str, str]], lower: bool = False) -> dict[str, str]:
    """Collapse repeated keys into one comma-joined value, in arrival order."""
    joined: dict[str, str] = {}
    for key, value in pairs:
        key = key.lower() if lower else key
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def http_api_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    route_key: str,
    path_parameters: Mapping[str, str],
    source_ip: str,
    protocol: str = "HTTP/1.1",
    request_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload-format-2.0 event."""
    pairs = list(headers)
    cookies = [c.strip() for name, value in pairs if name.lower() == "cookie" for c in value.split(";") if c.strip()]
    header_map = join_multi(((k, v) for k, v in pairs if k.lower() != "cookie"), lower=True)
    now = now or datetime.now(UTC)
    request_id = request_id or base64.b64encode(uuid.uuid4().bytes[:10]).decode()
    domain = header_map.get("host", "localhost")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": header_map,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": header_map.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        event["queryStringParameters"] = join_multi(parse_qsl(raw_query, keep_blank_values=True))
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        if is_text(header_map.get("content-type"), header_map.get("content-encoding")):
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode("ascii")
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


# --- response mapping ---------------------------------------------------------------------------


class MalformedResponseError(ValueError):
    """The handler's return value is not a valid HTTP API integration response."""


@dataclass(frozen=True)
class HttpResponse:
    """What goes back on the wire."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def json_response(status: int, payload: Any) -> HttpResponse:
    """A compact JSON response, byte for byte like API Gateway's own errors."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return HttpResponse(status, [("Content-Type", "application/json")], body)


def to_http_response(result: Any) -> HttpResponse:
    """Map a handler's return value to an HTTP response with API Gateway's rules.

    A dict with ``statusCode`` is taken as written; anything else that is valid JSON becomes a 200
    ``application/json`` response whose body is that JSON.
    """
    try:
        serialised = json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise MalformedResponseError(f"the handler's return value is not JSON: {exc}") from exc
    if len(serialised) > MAX_LAMBDA_PAYLOAD_BYTES:
        raise MalformedResponseError(f"response of {len(serialised)} bytes exceeds Lambda's 6 MB limit")
    if not (isinstance(result, dict) and "statusCode" in result):
        return HttpResponse(200, [("Content-Type", "application/json")], serialised.encode())
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError) as exc:
        raise MalformedResponseError(f"statusCode {result['statusCode']!r} is not a number") from exc
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((str(name), str(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(v)) for v in values)
    headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
    raw_body = result.get("body")
    if raw_body is None:
        body = b""
    elif not isinstance(raw_body, str):
        raise MalformedResponseError("body must be a string")
    elif result.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw_body, validate=True)
        except binascii.Error as exc:
            raise MalformedResponseError("isBase64Encoded but body is not base64") from exc
    else:
        body = raw_body.encode("utf-8")
    headers = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
    return HttpResponse(status, headers, body)


# --- the server ---------------------------------------------------------------------------------


class _BodyTooLargeError(Exception):
    pass


class _RequestHandler(BaseHTTPRequestHandler):
    """One HTTP connection; ``server`` is a :class:`_GatewayServer`."""

    protocol_version = "HTTP/1.1"  # keep-alive, as Prometheus and OTLP exporters expect
    timeout = 30  # idle keep-alive connections end eventually even if never shut down
    server: _GatewayServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("gateway: " + format, *args)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_OPTIONS(self) -> None:
        self._serve()

    def _serve(self) -> None:
        started = time.perf_counter()
        raw_path, _, raw_query = self.path.partition("?")
        try:
            body = self._read_body()
        except _BodyTooLargeError:
            response = json_response(*TOO_LARGE)
        except ValueError:
            # An unparsable Content-Length or chunk size: the stream position is unknown now.
            self.close_connection = True
            response = json_response(*BAD_REQUEST)
        else:
            response = self.server.gateway.handle(
                method=self.command,
                raw_path=raw_path,
                raw_query=raw_query,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
                protocol=self.request_version,
            )
        # Logged before writing, so that the line exists once the client has the response.
        log.info("%s %s %d %.1fms", self.command, raw_path, response.status, (time.perf_counter() - started) * 1000)
        self._write(response)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            # Read and drop a moderately oversized body so that the client, still sending, gets the
            # 413 instead of a broken pipe; beyond that, just hang up.
            if length <= _MAX_DRAIN_BYTES:
                self._discard(length)
            else:
                self.close_connection = True
            raise _BodyTooLargeError
        return self.rfile.read(length) if length > 0 else b""

    def _discard(self, length: int) -> None:
        while length > 0:
            got = len(self.rfile.read(min(length, 1 << 20)))
            if got == 0:
                break
            length -= got

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                break
            total += size
            if total > _MAX_DRAIN_BYTES:
                self.close_connection = True
                raise _BodyTooLargeError
            chunk = self.rfile.read(size)
            if total <= MAX_REQUEST_BYTES:
                chunks.append(chunk)
            self.rfile.readline(16)  # the CRLF after each chunk
        while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
            pass  # trailers: not passed on, as API Gateway does not either
        if total > MAX_REQUEST_BYTES:
            raise _BodyTooLargeError
        return b"".join(chunks)

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


class _GatewayServer(ThreadingHTTPServer):
    """Tracks open connections so that :meth:`Gateway.stop` can end idle keep-alive ones."""

    daemon_threads = False  # server_close() then joins every connection thread
    block_on_close = True

    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        self.gateway = gateway
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def track(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-response (Ctrl-C on curl, a timeout) is not an error here."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("client %s went away before the response was written", client_address)
            return
        super().handle_error(request, client_address)

    def close_idle_connections(self) -> None:
        """Shut the read side of every open connection: idle ones see EOF and end."""
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):  # already closed by the peer
                    connection.shutdown(socket.SHUT_RD)


class Gateway:
    """The local HTTP API: routes from the wiring, functions by name."""

    def __init__(
        self,
        routes: Iterable[Route],
        functions: Mapping[str, LocalFunction],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.router = Router(routes)
        self.functions = dict(functions)
        missing = {c.route.function for c in self.router.routes} - self.functions.keys()
        if missing:
            raise ValueError(f"routes name functions that are not loaded: {sorted(missing)}")
        self._address = (host, port)
        self._server: _GatewayServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the running gateway."""
        if self._server is None:
            raise RuntimeError("gateway is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Bind and serve on a background thread."""
        self._server = _GatewayServer(self._address, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="gateway", daemon=True
        )
        self._thread.start()
        log.info("gateway listening on %s (%d routes)", self.url, len(self.router.routes))

    def stop(self) -> None:
        """Stop accepting, end idle connections, wait for in-flight requests, close the socket."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_idle_connections()
        server.server_close()  # joins the connection threads
        if self._thread is not None:
            self._thread.join()
        log.info("gateway stopped")

    def handle(
        self,
        *,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
        protocol: str = "HTTP/1.1",
    ) -> HttpResponse:
        """Route one request to its function and map the result (transport-independent)."""
        matched = self.router.match(method, raw_path)
        if matched is None:
            return json_response(*NOT_FOUND)
        compiled, path_parameters = matched
        # API Gateway adds these; handlers that log client addresses read them.
        present = {k.lower() for k, _ in headers}
        forwarded = {"x-forwarded-for": source_ip, "x-forwarded-proto": "http"}
        headers = headers + [(k, v) for k, v in forwarded.items() if k not in present]
        event = http_api_event(
            method=method,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            body=body,
            route_key=compiled.route_key,
            path_parameters=path_parameters,
            source_ip=source_ip,
            protocol=protocol,
        )
        if len(event.get("body", "")) > MAX_LAMBDA_PAYLOAD_BYTES:
            # API Gateway accepts it, but Lambda refuses an invoke payload over 6 MB.
            log.warning("%s %s: body exceeds Lambda's 6 MB invoke payload limit", method, raw_path)
            return json_response(*TOO_LARGE)
        function = self.functions[compiled.route.function]
        try:
            result = function.invoke(event)
            return to_http_response(result)
        except Exception:
            log.exception("%s %s: function %s failed", method, raw_path, function.fn.name)
            return json_response(*INTERNAL_ERROR)
