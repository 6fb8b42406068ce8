"""Silences in the Alertmanager v2 shape (``/api/v2/silences``), over the in-memory alerting store."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from novacron.alert.silences import format_time
from novacron.alert.silences_api import (
    MAX_SILENCES,
    expire_silence,
    get_silence,
    list_silences,
    post_silence,
)
from novacron.auth import Principal, Role
from tests.fakes import MemoryAlertingStore

NOW = 1_800_000_000.0
HOUR = 3600.0
ADMIN = Principal("acme", Role.ADMIN, "key-admin")


@pytest.fixture
def store() -> MemoryAlertingStore:
    return MemoryAlertingStore()


@pytest.fixture
def post(store: MemoryAlertingStore) -> Callable[..., tuple[int, Any]]:
    """POST a silence at NOW + ``at`` seconds; ids are sil-1, sil-2, ..."""
    ids = (f"sil-{n}" for n in itertools.count(1))

    def send(body: Any, at: float = 0.0, principal: Principal = ADMIN, **params: str) -> tuple[int, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        query = {k: [v] for k, v in params.items()}
        return post_silence(store, principal, query, raw, NOW + at, new_id=lambda: next(ids))

    return send


def silence(
    matchers: list[dict[str, Any]] | None = None, start: float = 0.0, end: float = HOUR, **extra: Any
) -> dict[str, Any]:
    """A PostableSilence from NOW + start to NOW + end."""
    return {
        "matchers": matchers or [{"name": "alertname", "value": "DbDown", "isRegex": False, "isEqual": True}],
        "startsAt": format_time(NOW + start),
        "endsAt": format_time(NOW + end),
        "comment": "db maintenance",
        **extra,
    }


def test_a_new_silence_gets_an_id_and_the_key_as_author(store: MemoryAlertingStore, post: Any) -> None:
    # When an admin posts a silence without createdBy
    status, body = post(silence())

    # Then it is stored under a new id, authored by the key, and reads back in the v2 shape
    assert (status, body) == (200, {"silenceID": "sil-1"})
    status, shown = get_silence(store, "acme", "sil-1", NOW)
    assert status == 200
    assert shown["createdBy"] == "key-admin"
    assert shown["status"] == {"state": "active"}
    assert shown["matchers"] == [{"name": "alertname", "value": "DbDown", "isRegex": False, "isEqual": True}]


def test_an_author_given_is_kept_and_a_past_start_becomes_now(store: MemoryAlertingStore, post: Any) -> None:
    # When a silence starting an hour ago is posted by a named author
    post(silence(start=-HOUR, createdBy="alice"))

    # Then it starts now (as Alertmanager does) and names alice
    shown = get_silence(store, "acme", "sil-1", NOW)[1]
    assert (shown["startsAt"], shown["createdBy"]) == (format_time(NOW), "alice")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{nope", "must be JSON"),
        ([1, 2], "must be a JSON object"),
        ({"startsAt": format_time(NOW), "endsAt": format_time(NOW + HOUR), "comment": "x"}, "matchers is required"),
        (silence(matchers=[{"name": "a", "value": "", "isRegex": False}]), "must not match the empty string"),
        (silence(matchers=[{"name": "a", "value": "(", "isRegex": True}]), "invalid label matcher 0"),
        (silence(start=2 * HOUR, end=HOUR), "end time must not be before start time"),
        (silence(start=-2 * HOUR, end=-HOUR), "end time can't be in the past"),
        (silence(comment=" "), "comment is required"),
        ({**silence(), "endsAt": "tomorrow"}, "endsAt 'tomorrow' is not an RFC 3339 time"),
        (silence(id="../etc"), "id: must be the id of an existing silence"),
        (silence(comment="x" * 5000), "comment: at most"),
    ],
)
def test_invalid_silences_are_400_naming_the_field(
    store: MemoryAlertingStore, post: Any, body: Any, message: str
) -> None:
    # When an invalid silence is posted, then it is a 400 whose message names what is wrong
    status, answer = post(body)
    assert status == 400
    assert message in answer
    assert store.silences("acme") == []


def test_an_update_keeping_matchers_is_made_in_place(store: MemoryAlertingStore, post: Any) -> None:
    # Given an active silence
    post(silence())

    # When its end is extended (same matchers, same start)
    status, body = post(silence(end=3 * HOUR, id="sil-1"), at=60)

    # Then the same silence now ends later
    assert (status, body) == (200, {"silenceID": "sil-1"})
    assert get_silence(store, "acme", "sil-1", NOW)[1]["endsAt"] == format_time(NOW + 3 * HOUR)
    assert len(store.silences("acme")) == 1


def test_an_update_changing_matchers_expires_the_old_silence(store: MemoryAlertingStore, post: Any) -> None:
    # Given an active silence
    post(silence())
    other = [{"name": "service", "value": "db", "isRegex": False, "isEqual": True}]

    # When its matchers change
    status, body = post(silence(matchers=other, id="sil-1"), at=60)

    # Then a new silence replaces it and the old one is expired (as Alertmanager does)
    assert (status, body) == (200, {"silenceID": "sil-2"})
    later = NOW + 120
    assert get_silence(store, "acme", "sil-1", later)[1]["status"] == {"state": "expired"}
    assert get_silence(store, "acme", "sil-2", later)[1]["status"] == {"state": "active"}


def test_updating_an_unknown_silence_is_404(post: Any) -> None:
    status, body = post(silence(id="does-not-exist"))
    assert status == 404
    assert "does-not-exist" in body


def test_the_number_of_live_silences_is_bounded(store: MemoryAlertingStore, post: Any) -> None:
    # Given as many active silences as allowed
    for _ in range(MAX_SILENCES):
        assert post(silence())[0] == 200

    # When one more is posted, then it is refused naming the limit
    status, body = post(silence())
    assert status == 400
    assert f"limit: {MAX_SILENCES}" in body


def test_listing_sorts_as_alertmanager_and_filters(store: MemoryAlertingStore, post: Any) -> None:
    # Given an active DbDown silence ending in 2h, an active db one ending in 1h, a pending one and an expired one
    db = [{"name": "service", "value": "db", "isRegex": False, "isEqual": True}]
    post(silence(end=2 * HOUR))
    post(silence(matchers=db))
    post(silence(start=HOUR, end=3 * HOUR))
    post(silence(end=HOUR))
    expire_silence(store, ADMIN, "sil-4", {}, NOW + 10)

    # When they are listed, then active ones come first (soonest ending), then pending, then expired
    status, listed = list_silences(store, "acme", {}, NOW + 20)
    assert status == 200
    assert [(s["id"], s["status"]["state"]) for s in listed] == [
        ("sil-2", "active"),
        ("sil-1", "active"),
        ("sil-3", "pending"),
        ("sil-4", "expired"),
    ]
    # And a filter keeps the silences with a matcher of that name whose value matches it
    filtered = list_silences(store, "acme", {"filter": ['service=~"d."']}, NOW + 20)[1]
    assert [s["id"] for s in filtered] == ["sil-2"]
    assert [s["id"] for s in list_silences(store, "acme", {"filter": ["{alertname=DbDown}"]}, NOW + 20)[1]] == [
        "sil-1",
        "sil-3",
        "sil-4",
    ]
    assert list_silences(store, "acme", {"filter": ["alertname=~("]}, NOW)[0] == 400


def test_expiring(store: MemoryAlertingStore, post: Any) -> None:
    # Given an active silence
    post(silence())

    # When it is expired, then it is expired; a second expiry is a conflict, an unknown id a 404
    assert expire_silence(store, ADMIN, "sil-1", {}, NOW + 60) == (200, {})
    assert get_silence(store, "acme", "sil-1", NOW + 61)[1]["status"] == {"state": "expired"}
    assert expire_silence(store, ADMIN, "sil-1", {}, NOW + 70)[0] == 409
    assert expire_silence(store, ADMIN, "nope", {}, NOW)[0] == 404


def test_silences_are_scoped_by_tenant(store: MemoryAlertingStore, post: Any) -> None:
    # Given acme's silence
    post(silence())
    globex = Principal("globex", Role.ADMIN, "key-globex")

    # Then globex neither sees nor expires it, nor can it post into acme
    assert list_silences(store, "globex", {}, NOW) == (200, [])
    assert get_silence(store, "globex", "sil-1", NOW)[0] == 404
    assert expire_silence(store, globex, "sil-1", {}, NOW)[0] == 404
    assert post(silence(), principal=globex, tenant="acme")[0] == 403
