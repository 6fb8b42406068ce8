"""Cardinality through /api/v1/status/tsdb."""

from __future__ import annotations

from novacron.query.status import tsdb_status
from novacron.records import encode_record
from novacron.storage.reader import HotTierReader
from novacron.storage.writer import MetricsWriter
from tests.builders import timeseries
from tests.fakes import MemoryBlockStore, MemoryIndexStore

NOW = 1_790_000_000_000


def reader_with(series_labels: list[dict[str, str]], tenant: str = "acme") -> HotTierReader:
    blocks, index = MemoryBlockStore(), MemoryIndexStore()
    data = encode_record(tenant, NOW, [timeseries(lb, [(NOW, 1.0)]).SerializeToString() for lb in series_labels])
    MetricsWriter(blocks, index).write_record(data, "1")
    return HotTierReader(tenant, blocks, index, clock_ms=lambda: NOW)


def test_counts_by_metric_label_and_pair() -> None:
    # Given 3 series of one metric and 1 of another
    reader = reader_with(
        [{"__name__": "http_requests_total", "code": c, "job": "api"} for c in ("200", "500", "404")]
        + [{"__name__": "up", "job": "api"}]
    )
    # When the tsdb status is asked for
    status, body = tsdb_status(reader, {"limit": ["2"]}, NOW)
    # Then series are counted per metric, label and pair, top-N first
    data = body["data"]
    assert status == 200
    assert data["headStats"]["numSeries"] == 4
    assert data["seriesCountByMetricName"] == [
        {"name": "http_requests_total", "value": 3},
        {"name": "up", "value": 1},
    ]
    assert data["labelValueCountByLabelName"][0] == {"name": "code", "value": 3}
    assert data["seriesCountByLabelValuePair"][0] == {"name": "job=api", "value": 4}


def test_other_days_and_tenants_are_empty() -> None:
    reader = reader_with([{"__name__": "up"}])
    _, body = tsdb_status(reader, {"date": ["2020-01-01"]}, NOW)
    assert body["data"]["headStats"]["numSeries"] == 0


def test_bad_parameters_are_400() -> None:
    reader = reader_with([{"__name__": "up"}])
    assert tsdb_status(reader, {"limit": ["x"]}, NOW)[0] == 400
    assert tsdb_status(reader, {"limit": ["0"]}, NOW)[0] == 400
    status, body = tsdb_status(reader, {"date": ["yesterday"]}, NOW)
    assert status == 400
    assert "YYYY-MM-DD" in body["error"]
