"""``require_role`` with a credential taken from another header and a protocol's own refusal body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from novacron.auth import AuthError, Role, generate_key, new_key_record
from novacron.http import json_response, principal_of, require_role
from novacron.ingest import firehose
from tests.fakes import MemoryKeyStore

NOW = 1_790_000_000_000


@pytest.fixture
def keys() -> dict[str, str]:
    return {"ingest": generate_key(), "read": generate_key()}


@pytest.fixture
def store(keys: dict[str, str]) -> MemoryKeyStore:
    store = MemoryKeyStore()
    for role, key in keys.items():
        store.put(new_key_record(key, "acme", Role(role), created_at=0))
    return store


def refuse(headers: Mapping[str, str], exc: AuthError) -> Response[str]:
    return json_response(exc.status, firehose.response_body(firehose.request_id_of(headers), NOW, exc.message))


def app_with(store: MemoryKeyStore, **options: Any) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver()
    app.use([require_role(store, lambda _m, _p: Role.INGEST, **options)])

    @app.post("/aws/firehose")
    def deliver() -> Response[str]:
        return json_response(200, {"tenant": principal_of(app).tenant})

    return app


def call(app: APIGatewayHttpResolver, headers: dict[str, str]) -> dict[str, Any]:
    event = {
        "version": "2.0",
        "routeKey": "POST /aws/firehose",
        "rawPath": "/aws/firehose",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": "/aws/firehose"}, "stage": "$default"},
        "body": "",
        "isBase64Encoded": False,
    }
    return app.resolve(event, None)  # type: ignore[arg-type]


def test_the_firehose_access_key_authenticates(store: MemoryKeyStore, keys: dict[str, str]) -> None:
    # Given the Firehose route's middleware
    app = app_with(store, credential_of=firehose.credential_of, refuse=refuse)
    # When Firehose sends an ingest key in its header
    response = call(app, {"x-amz-firehose-access-key": keys["ingest"], "x-amz-firehose-request-id": "r-1"})
    # Then the request reaches the route as the key's tenant
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"tenant": "acme"}


@pytest.mark.parametrize(
    ("key", "status", "fragment"),
    [
        (None, 401, "missing X-Amz-Firehose-Access-Key"),
        ("nck_000000000000_wrongwrongwrongwrongwrong", 401, "invalid API key"),
        ("read", 403, "needs role 'ingest'"),
    ],
)
def test_refusals_have_the_contract_shape_and_echo_the_request_id(
    store: MemoryKeyStore, keys: dict[str, str], key: str | None, status: int, fragment: str
) -> None:
    # Given the Firehose route's middleware
    app = app_with(store, credential_of=firehose.credential_of, refuse=refuse)
    headers = {"x-amz-firehose-request-id": "r-42"}
    if key is not None:
        headers["x-amz-firehose-access-key"] = keys.get(key, key)
    # When the key is missing, unknown or of the wrong role
    response = call(app, headers)
    # Then the answer is the contract's JSON with the same request id, and never the key
    assert response["statusCode"] == status
    body = json.loads(response["body"])
    assert body["requestId"] == "r-42"
    assert body["timestamp"] == NOW
    assert fragment in body["errorMessage"]
    assert keys["read"] not in response["body"]


def test_other_routes_keep_the_authorization_header_and_plain_text_errors(
    store: MemoryKeyStore, keys: dict[str, str]
) -> None:
    # Given the default middleware (every other route)
    app = app_with(store)
    # When the key comes in the Firehose header only, Then it is not looked at
    refused = call(app, {"x-amz-firehose-access-key": keys["ingest"]})
    assert refused["statusCode"] == 401
    assert refused["body"].startswith("missing Authorization header")
    assert refused["headers"]["WWW-Authenticate"] == 'Bearer realm="novacron"'
    # And a bearer token still works
    assert call(app, {"authorization": f"Bearer {keys['ingest']}"})["statusCode"] == 200
