"""The query API answers 4xx, never 5xx, for ranges and times the hot tier cannot serve."""

from __future__ import annotations

import pytest

from novacron.query import prom_api
from novacron.storage.reader import HotTierReader
from tests.fakes import MemoryBlockStore, MemoryIndexStore

NOW_S = 1_790_000_000.0


@pytest.fixture
def hot() -> HotTierReader:
    return HotTierReader("acme", MemoryBlockStore(), MemoryIndexStore(), clock_ms=lambda: int(NOW_S * 1000))


@pytest.mark.parametrize(
    ("endpoint", "params"),
    [
        ("series", {"match[]": ["up"], "start": ["0"]}),
        ("labels", {"start": ["0"]}),
        ("label_values", {"start": ["0"], "end": ["1e9"]}),
        ("query", {"query": ["up[100d]"]}),
        ("query", {"query": ["up"], "time": ["1e300"]}),
        ("query", {"query": ["time()"], "time": ["1e16"]}),
        ("query", {"query": ["up"], "time": ["9999-12-31T23:59:59-01:00"]}),
        ("query", {"query": ["up"], "time": ["0001-01-01T00:00:00+01:00"]}),
        ("query_range", {"query": ["up"], "start": ["1e15"], "end": ["1e15"], "step": ["1"]}),
        ("series", {"match[]": ["up"], "end": ["-1e15"]}),
        ("label_values", {"start": ["-1e14"], "end": ["-1e14"]}),
    ],
)
def test_out_of_range_requests_are_client_errors(hot: HotTierReader, endpoint: str, params: dict) -> None:
    # When a request asks for a range or time the hot tier cannot serve
    if endpoint == "label_values":
        status, body = prom_api.label_values(hot, "job", params, now=lambda: NOW_S)
    else:
        status, body = getattr(prom_api, endpoint)(hot, params, now=lambda: NOW_S)
    # Then the answer is a success (nothing stored there) or a 4xx in Prometheus's error shape
    assert status < 500, body
    if status >= 400:
        assert body["status"] == "error"
        assert body["errorType"] == "bad_data"


@pytest.mark.parametrize("name", ["job=a", "", "1abc", "a-b"])
def test_label_values_of_an_invalid_label_name_is_bad_data(hot: HotTierReader, name: str) -> None:
    status, body = prom_api.label_values(hot, name, {}, now=lambda: NOW_S)
    assert status == 400
    assert body["error"] == f'invalid label name: "{name}"'
