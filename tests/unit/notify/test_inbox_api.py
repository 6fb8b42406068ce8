"""The inbox's API answer, its printed lines and ``novacron notifications list``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from novacron.cli import build_parser
from novacron.notify import inbox_cli
from novacron.notify.inbox import InboxEntry
from novacron.notify.inbox_api import inbox_lines, list_notifications

AT = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC


def entry(incident: str, sequence: int, tenant: str = "acme") -> InboxEntry:
    headline = f"[P1 critical] Opened: {incident} down"
    return InboxEntry(tenant, "inbox", incident, "opened", sequence, "critical", headline, f"{headline}\n\nmore", AT)


class ListInbox:
    """InboxReader over a list, newest last."""

    def __init__(self, entries: Sequence[InboxEntry]) -> None:
        self.entries = list(entries)

    def latest(self, tenant: str, limit: int, incident_id: str | None = None) -> list[InboxEntry]:
        found = [e for e in reversed(self.entries) if e.tenant == tenant and incident_id in (None, e.incident_id)]
        return found[:limit]


@pytest.fixture
def inbox() -> ListInbox:
    return ListInbox([entry("inc-1", 1), entry("inc-2", 1), entry("inc-1", 2), entry("inc-9", 1, "globex")])


def test_the_answer_is_the_tenants_inbox_newest_first_filtered_and_limited(inbox: ListInbox) -> None:
    status, body = list_notifications(inbox, "acme", {"incident": ["inc-1"], "limit": ["1"]})
    assert status == 200
    assert body["status"] == "success"
    assert body["data"]["notifications"] == [entry("inc-1", 2).to_dict()]
    assert len(list_notifications(inbox, "acme", {})[1]["data"]["notifications"]) == 3


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": ["501"]}, "at most 500 notifications"),
        ({"limit": ["ten"]}, '"limit"'),
        ({"incident": ["x" * 300]}, '"incident": at most 255 characters'),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(inbox: ListInbox, params: dict[str, list[str]], message: str) -> None:
    status, body = list_notifications(inbox, "acme", params)
    assert (status, body["errorType"]) == (400, "bad_data")
    assert message in body["error"]


def test_inbox_lines_show_time_incident_update_and_headline() -> None:
    assert inbox_lines([entry("inc-1", 2).to_dict()]) == [
        "2026-09-21 14:13:20Z  inc-1  #2   [P1 critical] Opened: inc-1 down"
    ]
    full = inbox_lines([entry("inc-1", 2).to_dict()], full=True)
    assert full[1:] == ["    [P1 critical] Opened: inc-1 down", "", "    more", ""]


def test_the_cli_lists_through_the_api(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an API answering with two entries
    calls: list[tuple[str, str, dict[str, str]]] = []

    def api(_args: Any, method: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        calls.append((method, path, params))
        return {"notifications": [entry("inc-1", 2).to_dict(), entry("inc-1", 1).to_dict()]}

    monkeypatch.setattr(inbox_cli, "_api", api)
    # When `novacron notifications list --incident inc-1` runs
    args = build_parser().parse_args(
        ["notifications", "list", "--url", "http://x", "--api-key", "k", "--incident", "inc-1"]
    )
    assert args.run(args) == 0
    # Then it asked for that incident and printed one line per notification
    assert calls == [("GET", "/api/v1/notifications", {"incident": "inc-1"})]
    assert capsys.readouterr().out.splitlines() == inbox_lines(
        [entry("inc-1", 2).to_dict(), entry("inc-1", 1).to_dict()]
    )
