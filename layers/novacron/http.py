"""What the HTTP-facing handlers share: authentication, request bodies and parameters, errors."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from novacron.auth import AuthError, KeyStore, Principal, Role, authenticate, authorize

PRINCIPAL = "principal"


def _authorization_header(headers: Mapping[str, str]) -> str | None:
    return headers.get("authorization")


def require_role(
    store: KeyStore,
    role_for: Callable[[str, str], Role],
    credential_of: Callable[[Mapping[str, str]], str | None] = _authorization_header,
    refuse: Callable[[Mapping[str, str], AuthError], Response[str]] | None = None,
) -> Callable[..., Response[str]]:
    """A resolver middleware: authenticate every request and check the role its route needs.

    By default the key is read from ``Authorization`` and a refusal is a plain-text error. A protocol
    that carries the key elsewhere (Firehose's ``X-Amz-Firehose-Access-Key``) passes ``credential_of``,
    turning the request headers into an Authorization value (it may raise AuthError), and one that
    prescribes its error bodies passes ``refuse``.
    """

    def middleware(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
        event = app.current_event
        try:
            principal = authenticate(credential_of(event.headers), store)
            authorize(principal, role_for(event.http_method, event.path))
        except AuthError as exc:
            if refuse is not None:
                return refuse(event.headers, exc)
            headers = {"WWW-Authenticate": 'Bearer realm="novacron"'} if exc.status == 401 else {}
            return error_response(exc.status, exc.message, headers)
        # Powertools leaves append_context unannotated; there is no typed way to set routing context.
        app.append_context(**{PRINCIPAL: principal})  # type: ignore[no-untyped-call]
        return next_middleware(app)

    return middleware


def principal_of(app: APIGatewayHttpResolver) -> Principal:
    """The caller authenticated by ``require_role``."""
    principal = app.context.get(PRINCIPAL)
    if not isinstance(principal, Principal):
        raise RuntimeError("route reached without authentication middleware")
    return principal


def body_bytes(app: APIGatewayHttpResolver) -> bytes:
    """The raw request body (HTTP APIs base64-encode binary bodies)."""
    event = app.current_event
    body = event.body or ""
    if event.is_base64_encoded:
        return base64.b64decode(body)
    # A text body that is not valid Unicode (lone surrogates) reaches the parsers as replacement
    # characters, which they reject with a 400, rather than failing here with a 500.
    return body.encode(errors="replace")


def request_params(app: APIGatewayHttpResolver) -> dict[str, list[str]]:
    """Query-string and form parameters, multi-valued, as Prometheus's API reads them.

    The raw query string is parsed here because API Gateway joins repeated parameters with commas,
    which would corrupt ``match[]`` selectors that contain commas themselves.
    """
    params = parse_qs(app.current_event.raw_query_string or "", keep_blank_values=True)
    content_type = (app.current_event.headers.get("content-type") or "").split(";")[0].strip().lower()
    if app.current_event.http_method == "POST" and content_type == "application/x-www-form-urlencoded":
        for key, values in parse_qs(body_bytes(app).decode(errors="replace"), keep_blank_values=True).items():
            params.setdefault(key, []).extend(values)
    return params


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response[str]:
    """A plain-text error, the form remote-write clients log verbatim."""
    return Response(status, content_types.TEXT_PLAIN, message + "\n", headers=headers or {})


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    """A JSON response."""
    return Response(status, content_types.APPLICATION_JSON, json.dumps(body, separators=(",", ":")), headers=headers)
