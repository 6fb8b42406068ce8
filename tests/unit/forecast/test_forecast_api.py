"""``/api/v1/forecast`` logic over an in-memory reader: the series limit, the default step, the origin."""

from __future__ import annotations

import numpy as np

from novacron.forecast.api import MAX_FORECAST_SERIES, forecast
from novacron.query.memory_reader import InMemorySeriesReader
from tests.unit.forecast.conftest import START_MS, STEP_MS, grid

NOW_MS = START_MS + 2 * 86_400_000


def reader_with(count: int) -> InMemorySeriesReader:
    """``count`` flat series of ``load`` over the two days before NOW_MS."""
    reader = InMemorySeriesReader()
    t = grid(2)
    for i in range(count):
        reader.add({"__name__": "load", "instance": f"i{i}"}, t.tolist(), np.full(t.size, float(i)).tolist())
    return reader


def test_more_series_than_allowed_is_422_saying_how_to_narrow() -> None:
    # Given one series more than a request may forecast
    reader = reader_with(MAX_FORECAST_SERIES + 1)
    # When all are asked for
    status, body = forecast(reader, {"query": "load", "horizon": "1h"}, NOW_MS)
    # Then 422, an execution error that says how many and what to do
    assert (status, body["errorType"]) == (422, "execution")
    assert f"{MAX_FORECAST_SERIES + 1} series" in body["error"]
    assert "aggregate" in body["error"]


def test_the_default_step_follows_history_and_horizon_and_the_origin_is_time() -> None:
    # Given two flat series; when forecast 12 h past the last sample with the default 14d history
    status, body = forecast(reader_with(2), {"query": "load", "horizon": "12h", "time": str(NOW_MS / 1000)}, 0)
    # Then 10-minute steps (14 days over ~2000 points) from the origin, and flat forecasts of each level
    assert status == 200
    rows = body["data"]["result"]
    assert [row["metric"]["instance"] for row in rows] == ["i0", "i1"]
    assert rows[1]["step"] == 600.0
    assert rows[1]["values"][0][0] == (NOW_MS + 600_000) / 1000
    assert len(rows[1]["values"]) == 72
    assert {float(v) for _, v in rows[1]["values"]} == {1.0}


def test_an_explicit_step_is_used() -> None:
    params = {"query": "load", "horizon": "1h", "step": "5m", "history": "1d", "time": str(NOW_MS / 1000)}
    status, body = forecast(reader_with(1), params, 0)
    assert status == 200
    assert body["data"]["result"][0]["step"] == STEP_MS / 1000
