"""``GET /api/v1/anomalies``: the window, filters and limits, over an in-memory anomaly store."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from novacron.detect.api import DEFAULT_RANGE_MS, MAX_LIMIT, list_anomalies
from novacron.detect.events import Anomaly, Severity, Status
from tests.unit.detect.conftest import episode

NOW = 1_790_000_000_000
MINUTE = 60_000


@dataclass
class MemoryAnomalies:
    episodes: list[Anomaly] = field(default_factory=list)
    reads: list[int] = field(default_factory=list)  # the limits asked for

    def list_anomalies(
        self, tenant: str, start_ms: int, end_ms: int, limit: int = 100, newest_first: bool = False
    ) -> list[Anomaly]:
        self.reads.append(limit)
        found = sorted(
            (a for a in self.episodes if a.tenant == tenant and start_ms <= a.start_ms <= end_ms),
            key=lambda a: a.start_ms,
            reverse=newest_first,
        )
        return found[:limit]


@pytest.fixture
def store() -> MemoryAnomalies:
    return MemoryAnomalies(
        [
            episode(NOW - 30 * MINUTE),
            episode(NOW - 20 * MINUTE, status=Status.OPEN, severity=Severity.CRITICAL),
            episode(NOW - 10 * MINUTE, metric="errors_total"),
            episode(NOW - DEFAULT_RANGE_MS - MINUTE),  # older than the default window
            episode(NOW - 5 * MINUTE, tenant="globex"),
        ]
    )


def ids(response: tuple[int, dict]) -> list[str]:
    status, body = response
    assert status == 200, body
    return [a["id"] for a in body["data"]]


def test_the_last_day_of_the_tenant_comes_back_newest_first(store: MemoryAnomalies) -> None:
    assert ids(list_anomalies(store, "acme", {}, NOW)) == [f"e{NOW - m * MINUTE}" for m in (10, 20, 30)]


def test_filters_keep_what_they_name_and_read_enough_to_fill_a_page(store: MemoryAnomalies) -> None:
    # When open episodes are asked for, one at most
    got = ids(list_anomalies(store, "acme", {"status": ["open"], "limit": ["1"]}, NOW))
    # Then the open one comes back, found among more than one read (filters apply after the read)
    assert got == [f"e{NOW - 20 * MINUTE}"]
    assert store.reads[-1] > 1
    assert ids(list_anomalies(store, "acme", {"severity": ["critical"]}, NOW)) == [f"e{NOW - 20 * MINUTE}"]
    assert ids(list_anomalies(store, "acme", {"metric": ["errors_total"]}, NOW)) == [f"e{NOW - 10 * MINUTE}"]


def test_start_end_and_limit_bound_the_answer(store: MemoryAnomalies) -> None:
    params = {"start": [str((NOW - 2 * DEFAULT_RANGE_MS) / 1000)], "end": [str((NOW - 15 * MINUTE) / 1000)]}
    assert ids(list_anomalies(store, "acme", params, NOW)) == [
        f"e{NOW - 20 * MINUTE}",
        f"e{NOW - 30 * MINUTE}",
        f"e{NOW - DEFAULT_RANGE_MS - MINUTE}",
    ]
    assert len(ids(list_anomalies(store, "acme", {"limit": ["2"]}, NOW))) == 2


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"status": ["closed"]}, "status"),
        ({"severity": ["page"]}, "severity"),
        ({"limit": [str(MAX_LIMIT + 1)]}, "limit"),
        ({"limit": ["ten"]}, "limit"),
        ({"start": ["yesterday"]}, "start"),
        ({"start": [str(NOW / 1000)], "end": [str(NOW / 1000 - 60)]}, "end"),
    ],
)
def test_bad_parameters_are_a_400_naming_them(store: MemoryAnomalies, params: dict, named: str) -> None:
    status, body = list_anomalies(store, "acme", params, NOW)
    assert status == 400
    assert body["errorType"] == "bad_data"
    assert f'"{named}"' in body["error"]
