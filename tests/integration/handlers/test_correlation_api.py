"""``/api/v1/admin/correlation`` through the real admin handler against moto (the alerting table)."""

from __future__ import annotations

import json
from typing import Any

from novacron.auth import key_id_of
from tests.integration.handlers.conftest import Stack, body_json
from tests.unit.alert.test_correlation import DOCUMENT

PATH = "/api/v1/admin/correlation"
YAML = {"content-type": "text/yaml"}


def call(stack: Stack, method: str, key: str, body: bytes = b"", **kw: Any) -> tuple[int, Any]:
    answer = stack.http(stack.admin, method, PATH, key=key, body=body, **kw)
    # A refusal by the authentication middleware is plain text.
    return answer["statusCode"], body_json(answer) if answer["statusCode"] != 403 else None


def test_an_admin_stores_the_correlation_document_and_reads_it_back(stack: Stack) -> None:
    admin = stack.keys["acme-admin"]
    # Given no document: the default, version 0
    status, body = call(stack, "GET", admin)
    assert (status, body["data"]["version"], body["data"]["default"]) == (200, 0, True)

    # When acme's admin stores the documented example
    status, body = call(stack, "PUT", admin, DOCUMENT.encode(), headers=YAML)
    assert (status, body["data"]["version"], body["data"]["calls"]) == (200, 1, 3), body

    # Then it reads back as uploaded, with who stored it; a stale version is a conflict
    status, body = call(stack, "GET", admin)
    assert (status, body["data"]["config"], body["data"]["updated_by"]) == (200, DOCUMENT, key_id_of(admin))
    stale = call(stack, "PUT", admin, DOCUMENT.encode(), headers=YAML, query="version=0")
    assert stale[0] == 409
    # And globex still has the default
    assert call(stack, "GET", stack.keys["globex-admin"])[1]["data"]["default"] is True


def test_a_json_document_with_a_bad_tier_is_a_400_naming_it(stack: Stack) -> None:
    body = json.dumps({"tiers": {"payment": 5}}).encode()
    status, answer = call(stack, "PUT", stack.keys["acme-admin"], body, headers={"content-type": "application/json"})
    assert status == 400
    assert answer["details"] == ["line 1: tiers.payment: a tier is 1 (the most important), 2 or 3, not 5"]


def test_a_read_key_cannot_see_nor_change_it(stack: Stack) -> None:
    reader = stack.keys["acme-read"]
    assert call(stack, "GET", reader)[0] == 403
    assert call(stack, "PUT", reader, DOCUMENT.encode(), headers=YAML)[0] == 403
