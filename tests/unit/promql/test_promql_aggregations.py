"""Aggregation operators."""

from __future__ import annotations

import math

import pytest

S = 1000


@pytest.fixture
def nodes(reader):
    """cpu{job,instance}: j1/a=1, j1/b=2, j2/c=4."""
    for job, inst, value in (("j1", "a", 1.0), ("j1", "b", 2.0), ("j2", "c", 4.0)):
        reader.add({"__name__": "cpu", "job": job, "instance": inst}, [0], [value])
    return reader


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sum(cpu)", {(): 7.0}),
        ("sum by (job) (cpu)", {(("job", "j1"),): 3.0, (("job", "j2"),): 4.0}),
        ("sum without (instance) (cpu)", {(("job", "j1"),): 3.0, (("job", "j2"),): 4.0}),
        ("avg by (job) (cpu)", {(("job", "j1"),): 1.5, (("job", "j2"),): 4.0}),
        ("min(cpu)", {(): 1.0}),
        ("max(cpu)", {(): 4.0}),
        ("count by (job) (cpu)", {(("job", "j1"),): 2.0, (("job", "j2"),): 1.0}),
        ("group by (job) (cpu)", {(("job", "j1"),): 1.0, (("job", "j2"),): 1.0}),
        ("quantile(0.5, cpu)", {(): 2.0}),
        ("quantile(0.25, cpu)", {(): 1.5}),  # rank 0.5 between 1 and 2
        ("quantile(2, cpu)", {(): math.inf}),
        ("stdvar(cpu)", {(): 42 / 27}),  # mean 7/3; squared deviations 16/9 + 1/9 + 25/9, over 3
        ("sum by (nope) (cpu)", {(): 7.0}),
    ],
)
def test_aggregations(nodes, instant, query, expected):
    # Given three cpu series / When aggregating / Then the hand-computed values come out
    got = instant(query, 0)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-15)


def test_topk_and_bottomk_keep_full_labels(nodes, instant):
    # Given three series / When picking the top 2 and bottom 1
    top = instant("topk(2, cpu)", 0)
    bottom = instant("bottomk by (job) (1, cpu)", 0)
    # Then the chosen series keep their metric name and all labels
    assert sorted(top.values()) == [2.0, 4.0]
    assert all(("__name__", "cpu") in key for key in top)
    assert sorted(bottom.values()) == [1.0, 4.0]


def test_count_values_labels_by_formatted_value(reader, instant):
    # Given values 1, 1 and 2.5
    for i, v in enumerate((1.0, 1.0, 2.5)):
        reader.add({"__name__": "v", "i": str(i)}, [0], [v])
    # When counting values / Then the value is a Go-formatted label
    assert instant('count_values("value", v)', 0) == {(("value", "1"),): 2.0, (("value", "2.5"),): 1.0}


def test_max_ignores_nan_unless_all_nan(reader, instant):
    # Given one NaN and one number
    reader.add({"__name__": "v", "i": "1"}, [0], [float("nan")])
    reader.add({"__name__": "v", "i": "2"}, [0], [3.0])
    # When taking max / Then NaN does not win
    assert instant("max(v)", 0) == {(): 3.0}


def test_sum_uses_compensated_summation(reader, instant):
    # Given values whose naive float sum loses the small one
    for i, v in enumerate((1e100, 1.0, -1e100)):
        reader.add({"__name__": "v", "i": str(i)}, [0], [v])
    # When summing / Then Kahan-Neumaier keeps it, as Prometheus 3 does
    assert instant("sum(v)", 0) == {(): 1.0}


def test_aggregation_over_steps_handles_gaps(reader, engine):
    # Given one series present for the first minute only and another throughout
    reader.add({"__name__": "v", "i": "1"}, [0, 60 * S], [1.0, 1.0])
    reader.add({"__name__": "v", "i": "2"}, [0, 400 * S], [2.0, 2.0])
    # When summing over a range with a 1 m step
    result = engine.range("sum(v)", 0, 420 * S, 60 * S)
    # Then the sum follows each step's present series: i=2's 0 s sample expires at 300 s, i=1's
    # 60 s sample at 360 s (nothing at all then), and i=2 returns at 420 s
    [series] = result.series
    assert series.timestamps.tolist() == [0, 60 * S, 120 * S, 180 * S, 240 * S, 300 * S, 420 * S]
    assert series.values.tolist() == [3.0, 3.0, 3.0, 3.0, 3.0, 1.0, 2.0]
