"""``novacron forecast``: offline from a CSV (table, JSON, CSV output), clear errors, and the API mode's request."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from novacron import cli
from novacron.forecast import cli as forecast_cli
from tests.unit.forecast.conftest import START_MS, grid


@pytest.fixture
def ramp_csv(tmp_path: Path, rng: np.random.Generator) -> Path:
    """Two days of disk usage (epoch seconds), 1 %/h from 10 %: it reaches 70 % at hour 60 (12 h ahead)."""
    t = grid(2)
    values = 10 + (t - START_MS) / 3_600_000 + rng.normal(0, 0.05, t.size)
    path = tmp_path / "disk.csv"
    rows = [f"{ms / 1000:.0f},{v:.4f}" for ms, v in zip(t.tolist(), values.tolist(), strict=True)]
    path.write_text("\n".join(["timestamp,value", *rows]) + "\n", encoding="utf-8")
    return path


def test_offline_table_with_threshold(ramp_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # When the ramp is forecast a day ahead with a threshold of 70
    code = cli.main(["forecast", "--input", str(ramp_csv), "--horizon", "1d", "--threshold", "70"])
    # Then a table with the model, now, the horizon's forecast and when 70 is reached (2026-01-03T12:00Z)
    out = capsys.readouterr().out
    assert code == 0
    assert "model      trend" in out or "model      daily+trend" in out
    assert "in 1d " in out
    assert "95% interval" in out
    assert re.search(r"reaches 70 \(above\): 2026-01-03T(11:5|12:0)\d:00Z \(in 1[12]\.\d h\)", out), out


def test_offline_json_and_csv_output(ramp_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "forecast.csv"
    # When forecast 6 hours ahead as JSON, with a CSV written too
    code = cli.main(["forecast", "--input", str(ramp_csv), "--horizon", "6h", "--json", "--output", str(target)])
    # Then the JSON is the API's row shape, and the CSV has one row per 5-minute step with ordered bands
    assert code == 0
    [row] = json.loads(capsys.readouterr().out)
    assert set(row) >= {"metric", "model", "values", "lower80", "upper80", "lower95", "upper95", "threshold"}
    assert len(row["values"]) == 72
    assert row["threshold"] is None
    with target.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 72
    assert rows[0]["timestamp"] == "2026-01-03T00:00:00Z"
    first = {k: float(v) for k, v in rows[0].items() if k != "timestamp"}
    assert first["lower95"] <= first["lower80"] <= first["forecast"] <= first["upper80"] <= first["upper95"]
    assert first["forecast"] == pytest.approx(58, abs=0.3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--horizon", "1h"], "give either --query"),
        (["--horizon", "soon", "--input", "IN"], "--horizon: cannot parse"),
        (["--horizon", "1h", "--input", "MISSING"], "cannot read"),
        (["--horizon", "1h", "--input", "SHORT"], "too little history"),
        (["--horizon", "1h", "--query", "up"], "give --url and --api-key"),
    ],
)
def test_bad_invocations_say_what_is_wrong(
    args: list[str],
    message: str,
    ramp_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given no URL or key in the environment, and a CSV of three rows
    monkeypatch.delenv("NOVACRON_URL", raising=False)
    monkeypatch.delenv("NOVACRON_API_KEY", raising=False)
    short = tmp_path / "short.csv"
    short.write_text("timestamp,value\n1,1\n2,2\n3,3\n", encoding="utf-8")
    paths = {"IN": str(ramp_csv), "MISSING": str(tmp_path / "nope.csv"), "SHORT": str(short)}
    # When run; then exit 1 with one line naming the problem
    assert cli.main(["forecast", *[paths.get(a, a) for a in args]]) == 1
    assert message in capsys.readouterr().err


def test_api_mode_sends_the_parameters_and_prints_each_series(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a server answering one forecast (the key and URL from the environment)
    monkeypatch.setenv("NOVACRON_URL", "http://novacron.test")
    monkeypatch.setenv("NOVACRON_API_KEY", "k")
    calls: list[tuple[str, str, dict[str, str]]] = []
    point = [1767225600, "50"]
    answer = {
        "resultType": "forecast",
        "result": [
            {
                "metric": {"__name__": "disk", "host": "a"},
                "model": "daily+trend",
                "step": 600.0,
                "current": point,
                "values": [[1767226200, "51"]],
                "lower80": [[1767226200, "50.5"]],
                "upper80": [[1767226200, "51.5"]],
                "lower95": [[1767226200, "50"]],
                "upper95": [[1767226200, "52"]],
                "threshold": {"value": 90, "direction": "above", "crosses_at": None, "earliest": None, "latest": None},
            }
        ],
    }

    def fake_api(args: Any, method: str, path: str, params: dict[str, str]) -> Any:
        calls.append((method, path, params))
        return answer

    monkeypatch.setattr(forecast_cli, "_api", fake_api)
    # When asked with a query, horizon, history and threshold
    code = cli.main(["forecast", "--query", "disk", "--horizon", "10m", "--history", "7d", "--threshold", "90"])
    # Then one GET with those parameters, and a table naming the series and the answer
    assert code == 0
    assert calls == [
        ("GET", "/api/v1/forecast", {"query": "disk", "horizon": "10m", "history": "7d", "threshold": "90.0"})
    ]
    out = capsys.readouterr().out
    assert 'disk{host="a"}' in out
    assert "daily+trend" in out
    assert "51  95% interval [50, 52]" in out
    assert "reaches 90 (above): not within the horizon" in out
