"""``/api/v1/admin/correlation``: the correlation settings document, over the in-memory alerting store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from novacron.alert.correlation import DEFAULT_TEXT, MAX_DOCUMENT_BYTES, parse_correlation
from novacron.alert.correlation_api import get_correlation, put_correlation
from novacron.alert.state import StoredText
from novacron.auth import Principal, Role
from novacron.query.admin_routes import AdminRequest, admin_endpoints
from novacron.wiring import ADMIN as ADMIN_FUNCTION
from novacron.wiring import WIRING
from tests.fakes import MemoryAlertingStore
from tests.unit.alert.test_correlation import DOCUMENT

NOW = 1_800_000_000
ADMIN = Principal("acme", Role.ADMIN, "key-admin")


@pytest.fixture
def store() -> MemoryAlertingStore:
    return MemoryAlertingStore()


def put(store: MemoryAlertingStore, text: str, content_type: str = "text/yaml", **params: str) -> tuple[int, Any]:
    return put_correlation(store, ADMIN, {k: [v] for k, v in params.items()}, text.encode(), content_type, NOW)


def test_the_default_is_shown_until_one_is_stored(store: MemoryAlertingStore) -> None:
    # When a tenant without a document reads it
    status, body = get_correlation(store, ADMIN, {})

    # Then it gets the default document, version 0, and the settings it makes
    assert status == 200
    data = body["data"]
    assert (data["config"], data["version"], data["default"], data["updated_by"]) == (DEFAULT_TEXT, 0, True, None)
    assert data["settings"] == {
        "window": "10m",
        "max_hops": 3,
        "identifying_labels": ["instance", "pod", "node", "host"],
        "reopen_window": "30m",
        "topology": {},
        "tiers": {},
    }


def test_a_stored_document_reads_back_as_uploaded_with_its_settings(store: MemoryAlertingStore) -> None:
    # When the documented example is stored
    status, body = put(store, DOCUMENT)

    # Then it is version 1, and the answer says what it declares
    assert status == 200
    assert {k: body["data"][k] for k in ("version", "services", "calls", "tiers")} == {
        "version": 1,
        "services": 4,
        "calls": 3,
        "tiers": 2,
    }
    # And it reads back byte for byte (comments kept), with its provenance and settings
    shown = get_correlation(store, ADMIN, {})[1]["data"]
    assert (shown["config"], shown["version"], shown["default"]) == (DOCUMENT, 1, False)
    assert (shown["updated_at"], shown["updated_by"]) == (NOW, "key-admin")
    assert shown["settings"]["tiers"] == {"checkout": 1, "payment": 1}
    assert shown["settings"]["topology"]["frontend"] == ["checkout", "product-catalog"]


def test_a_json_document_is_accepted(store: MemoryAlertingStore) -> None:
    # Given the settings of a GET, edited and sent back as JSON
    settings = get_correlation(store, ADMIN, {})[1]["data"]["settings"]
    settings["tiers"] = {"payment": 1}

    # When they are stored
    status, _ = put(store, json.dumps(settings, indent="\t"), "application/json")

    # Then the tenant's tiers are those
    assert status == 200
    stored = store.correlation_config("acme")
    assert stored is not None
    assert parse_correlation(stored.text).settings.tiers == {"payment": 1}


def test_every_problem_is_a_400_naming_its_line_and_nothing_is_stored(store: MemoryAlertingStore) -> None:
    # Given a document with an unknown key (line 2) and a tier out of range (line 4)
    text = "window: 5m\nwindws: 5m\ntiers:\n  checkout: 4\n"

    # When it is uploaded
    status, body = put(store, text)

    # Then it is a 400 whose message names the first problem, and the details list both
    assert (status, body["errorType"]) == (400, "bad_data")
    assert body["error"].startswith("invalid correlation settings: line 2: windws: unknown field")
    assert body["error"].endswith("(and 1 more problem)")
    assert [d.split(":")[0] for d in body["details"]] == ["line 2", "line 4"]
    assert "tiers.checkout" in body["details"][1]
    assert store.correlation_config("acme") is None


def test_versions_guard_concurrent_edits(store: MemoryAlertingStore) -> None:
    # Given version 1 stored
    put(store, DEFAULT_TEXT)

    # When a change is made against version 0, then against version 1
    stale = put(store, DOCUMENT, version="0")
    fresh = put(store, DOCUMENT, version="1")

    # Then the stale change is a conflict and the fresh one is version 2
    assert (stale[0], stale[1]["errorType"]) == (409, "conflict")
    assert (fresh[0], fresh[1]["data"]["version"]) == (200, 2)


def test_a_lost_race_is_a_conflict(store: MemoryAlertingStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given another write landing between the read and this one
    monkeypatch.setattr(store, "put_correlation_config", lambda *_args: False)

    # Then the write is a 409
    assert put(store, DOCUMENT)[0] == 409


@pytest.mark.parametrize(
    ("body", "content_type", "params", "expected"),
    [
        (DOCUMENT, "application/xml", {}, (415, "Content-Type")),
        ("# pad\n" * (MAX_DOCUMENT_BYTES // 6 + 1), "text/yaml", {}, (413, f"at most {MAX_DOCUMENT_BYTES}")),
        ("", "text/yaml", {}, (400, "empty")),
        ("tiers: [", "text/yaml", {}, (400, "invalid YAML")),
        (DOCUMENT, "text/yaml", {"version": "one"}, (400, "version")),
        (DOCUMENT, "text/yaml", {"tenant": "globex"}, (403, "cannot manage tenant")),
    ],
)
def test_bad_uploads_are_4xx(
    store: MemoryAlertingStore, body: str, content_type: str, params: dict[str, str], expected: tuple[int, str]
) -> None:
    status, answer = put(store, body, content_type, **params)
    assert status == expected[0]
    assert expected[1] in answer["error"]
    assert store.correlation_config("acme") is None


def test_the_operator_manages_another_tenant(store: MemoryAlertingStore) -> None:
    # Given the operator's admin key; when it sets globex's document, then globex has it, not acme
    operator = Principal("default", Role.ADMIN, "key-operator")
    assert put_correlation(store, operator, {"tenant": ["globex"]}, DOCUMENT.encode(), "text/yaml", NOW)[0] == 200
    assert store.correlation_config("globex") is not None
    assert get_correlation(store, ADMIN, {})[1]["data"]["default"] is True


def test_a_stored_document_a_newer_parser_refuses_still_reads_back(store: MemoryAlertingStore) -> None:
    # Given a stored document that no longer validates
    store.correlations["acme"] = StoredText("tiers: {db: 4}\n", 1, NOW, "key-admin")

    # When it is read, then its text is shown with the reason in place of the settings
    shown = get_correlation(store, ADMIN, {})[1]["data"]
    assert shown["config"] == "tiers: {db: 4}\n"
    assert "tiers.db" in shown["settings"]["error"]


def test_the_wiring_routes_reach_the_endpoints(store: MemoryAlertingStore) -> None:
    # Given the admin function's route table
    none: Any = None
    endpoints = admin_endpoints(none, none, none, none, none, store, none, none)
    wired = {(r.method, r.path) for r in WIRING.routes if r.function == ADMIN_FUNCTION}

    # Then both routes are wired to the admin function and answered
    for method in ("GET", "PUT"):
        assert (method, "/api/v1/admin/correlation") in wired
    request = AdminRequest(ADMIN, {}, DOCUMENT.encode(), "text/yaml", {}, NOW)
    assert endpoints[("PUT", "/api/v1/admin/correlation")](request)[0] == 200
    answer = endpoints[("GET", "/api/v1/admin/correlation")](request)
    assert answer[1]["data"]["version"] == 1
