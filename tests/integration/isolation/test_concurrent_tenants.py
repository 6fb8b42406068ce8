"""Concurrent requests of different tenants on the local stack never see each other's data."""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from novacron.auth import register_key
from novacron.local.resources import physical_name
from novacron.local.runtime import LocalRuntime
from novacron.wiring import KEYS_TABLE

KEYS = {"acme": "acme-admin-key-0001", "globex": "globex-admin-key-0002"}
VALUES = {"acme": 1.0, "globex": 2.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(url: str, key: str, path: str, body: bytes | None = None) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(url + path, data=body, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
        return json.loads(raw) if raw else {}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with LocalRuntime(port=free_port()) as runtime:
        for tenant, key in KEYS.items():
            register_key(key, tenant, "admin", physical_name(KEYS_TABLE))
            body = json.dumps(
                {"series": [{"labels": {"__name__": "whoami", "job": "t"}, "samples": [[None, VALUES[tenant]]]}]}
            ).encode()
            call(runtime.url, key, "/api/v1/ingest", body)
        assert runtime.wait_until_idle(30)
        yield runtime.url


def test_parallel_queries_stay_in_their_tenant(url: str) -> None:
    # Given both tenants' data is stored
    time.sleep(0.2)

    def ask(i: int) -> tuple[str, list[float]]:
        tenant = "acme" if i % 2 else "globex"
        query = urllib.parse.urlencode({"query": "whoami"})
        result = call(url, KEYS[tenant], f"/api/v1/query?{query}")["data"]["result"]
        return tenant, [float(r["value"][1]) for r in result]

    # When many queries of both tenants run at the same time, with threads switching as often as
    # possible so that any state shared between requests would be caught mid-request
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(ask, range(400)))
    finally:
        sys.setswitchinterval(interval)
    # Then every answer holds exactly its own tenant's value
    wrong = [(tenant, values) for tenant, values in answers if values != [VALUES[tenant]]]
    assert wrong == []
