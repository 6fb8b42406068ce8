"""``novacron detect score`` end to end: CSV files in, scores out, clear errors on bad input."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from novacron import cli
from novacron.detect import cli as detect_cli
from tests.unit.detect.conftest import NOISE, daily_rate, seasonal_series


@pytest.fixture
def series() -> tuple[list[int], list[float]]:
    """Three days of the seasonal series with one spike near the end."""
    times, values = seasonal_series(3, seed=11)
    values[-10] = daily_rate(times[-10]) + 25 * NOISE
    return times, values


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def read_scores(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_epoch_seconds_in_scores_out(tmp_path, series, capsys):
    # Given a CSV of epoch-second timestamps (fractional) and values
    times, values = series
    source = write_csv(
        tmp_path / "in.csv", "timestamp,value", [f"{t / 1000:.3f},{v:.3f}" for t, v in zip(times, values, strict=False)]
    )
    target = tmp_path / "out.csv"

    # When it is scored through the novacron command
    code = cli.main(["detect", "score", "--input", str(source), "--output", str(target)])

    # Then every sample is written back with its timestamp as given, a 4-decimal score and 0/1, the spike flagged
    assert code == 0
    rows = read_scores(target)
    assert [r["timestamp"] for r in rows] == [f"{t / 1000:.3f}" for t in times]
    assert all(len(r["score"].split(".")[1]) == 4 and 0 <= float(r["score"]) <= 1 for r in rows)
    assert {r["anomaly"] for r in rows} <= {"0", "1"}
    assert rows[-10]["anomaly"] == "1"
    assert sum(r["anomaly"] == "1" for r in rows) <= 3
    assert f"{len(times):,} points" in capsys.readouterr().err


def test_iso_timestamps_to_stdout(tmp_path, series, capsys):
    # Given the same series with ISO 8601 timestamps, in and out of UTC
    times, values = series
    stamps = [datetime.fromtimestamp(t / 1000, UTC).isoformat().replace("+00:00", "Z") for t in times]
    source = write_csv(
        tmp_path / "in.csv", "timestamp,value", [f"{s},{v}" for s, v in zip(stamps, values, strict=False)]
    )

    # When it is scored without --output
    code = cli.main(["detect", "score", "--input", str(source)])

    # Then the scores go to standard output, the spike flagged
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == "timestamp,value,score,anomaly"
    assert out[-10].startswith(stamps[-10])
    assert out[-10].endswith(",1")


def test_progress_and_summary_on_stderr_for_long_inputs(tmp_path, series, capsys):
    # Given more than 5,000 samples (three days at 5 minutes is 864; use 20 days)
    times, values = seasonal_series(20, seed=12)
    source = write_csv(
        tmp_path / "in.csv", "timestamp,value", [f"{t // 1000},{v}" for t, v in zip(times, values, strict=False)]
    )

    # When it is scored
    code = cli.main(["detect", "score", "--input", str(source), "--output", str(tmp_path / "out.csv")])

    # Then progress is reported every 5,000 samples, then a summary
    err = capsys.readouterr().err
    assert code == 0
    assert "scored 5,000 of 5,760 points" in err
    assert "5,760 points" in err
    assert "anomalies" in err
    assert " s" in err


def test_unsorted_input_is_sorted_and_said_so(tmp_path, series, capsys):
    # Given a series whose rows are out of order
    times, values = series
    rows = [f"{t / 1000},{v}" for t, v in zip(times, values, strict=False)]
    rows[100], rows[101] = rows[101], rows[100]
    source = write_csv(tmp_path / "in.csv", "timestamp,value", rows)

    # When it is scored
    code = cli.main(["detect", "score", "--input", str(source), "--output", str(tmp_path / "out.csv")])

    # Then it says it sorted it, and the output is in time order
    assert code == 0
    assert "not in timestamp order" in capsys.readouterr().err
    out = [float(r["timestamp"]) for r in read_scores(tmp_path / "out.csv")]
    assert out == sorted(out)


def test_rows_without_a_value_are_skipped_and_counted(tmp_path, series, capsys):
    # Given a series with an empty and a NaN value, and columns in another order
    times, values = series
    rows = [f"{v},{t / 1000},web" for t, v in zip(times, values, strict=False)]
    rows[5] = f",{times[5] / 1000},web"
    rows[6] = f"NaN,{times[6] / 1000},web"
    source = write_csv(tmp_path / "in.csv", "value,timestamp,host", rows)

    # When it is scored
    code = cli.main(["detect", "score", "--input", str(source), "--output", str(tmp_path / "out.csv")])

    # Then both are left out and counted in the summary
    assert code == 0
    assert "2 rows without a value skipped" in capsys.readouterr().err
    assert len(read_scores(tmp_path / "out.csv")) == len(times) - 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("timestamp,value\n1767571200,1.0\nyesterday,2.0\n", "line 3: timestamp 'yesterday'"),
        ("timestamp,value\n1767571200,1.0\n1767571500,lots\n", "line 3: value 'lots' is not a number"),
        ("timestamp,value\n1767571200,inf\n", "line 2: value 'inf' is not finite"),
        ("time,value\n1767571200,1.0\n", "lacks the column(s) timestamp"),
        ("timestamp,value\n1767571200\n", "line 2: expected at least 2 columns"),
        ("", "the input is empty"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(tmp_path, capsys, content, message):
    # Given a malformed input file
    source = tmp_path / "in.csv"
    source.write_text(content, encoding="utf-8")

    # When it is scored
    code = cli.main(["detect", "score", "--input", str(source)])

    # Then the command exits 2 with the line and the reason, and no traceback
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_a_missing_file_exits_2(tmp_path, capsys):
    # When the input does not exist
    code = cli.main(["detect", "score", "--input", str(tmp_path / "nope.csv")])

    # Then the command says so and exits 2
    assert code == 2
    assert "cannot read" in capsys.readouterr().err


def test_a_sensitivity_outside_0_1_is_a_usage_error(tmp_path, capsys):
    # When the sensitivity is out of range, Then argparse refuses it (exit 2) naming it
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["detect", "score", "--input", "x.csv", "--sensitivity", "3"])
    assert exit_info.value.code == 2
    assert "sensitivity must be within [0, 1]" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        ("1767571200", 1_767_571_200_000),
        ("1767571200.25", 1_767_571_200_250),
        ("2026-01-05T00:00:00Z", 1_767_571_200_000),
        ("2026-01-05T01:00:00+01:00", 1_767_571_200_000),
        ("2026-01-05 00:00:00.5", 1_767_571_200_500),
    ],
)
def test_timestamps_are_iso_8601_or_epoch_seconds(text, expected_ms):
    assert detect_cli.parse_timestamp(text) == expected_ms
