"""Functions: *_over_time, histogram_quantile, label functions, absent, time helpers, subqueries."""

from __future__ import annotations

import math

import pytest

S = 1000


@pytest.fixture
def gauge(reader):
    """g: 1, 4, 2, 8 at 15 s, 30 s, 45 s, 60 s."""
    reader.add({"__name__": "g", "job": "x"}, [15 * S, 30 * S, 45 * S, 60 * S], [1.0, 4.0, 2.0, 8.0])
    return reader


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sum_over_time(g[1m])", 15.0),
        ("avg_over_time(g[1m])", 3.75),
        ("min_over_time(g[1m])", 1.0),
        ("max_over_time(g[1m])", 8.0),
        ("count_over_time(g[1m])", 4.0),
        ("last_over_time(g[1m])", 8.0),
        ("first_over_time(g[1m])", 1.0),
        ("present_over_time(g[1m])", 1.0),
        ("quantile_over_time(0.5, g[1m])", 3.0),  # sorted 1 2 4 8, rank 1.5
        ("stdvar_over_time(g[1m])", 7.1875),  # mean 3.75; (7.5625 + .0625 + 3.0625 + 18.0625) / 4
        ("changes(g[1m])", 3.0),
        ("resets(g[1m])", 1.0),
        # Least squares over x = 0, 15, 30, 45 s: cov 142.5 / var 1125.
        ("deriv(g[1m])", 142.5 / 1125),
        # The fit at 60 s is mean 3.75 + slope * (60 - 37.5); 15 s later adds slope * 15: 8.5.
        ("predict_linear(g[1m], 15)", 3.75 + 142.5 / 1125 * 37.5),
    ],
)
def test_over_time_functions(gauge, instant, query, expected):
    # Given four gauge samples in (0, 60 s] / When applying the function at 60 s / Then hand values
    [value] = instant(query, 60 * S).values()
    assert value == pytest.approx(expected, rel=1e-12)


def test_last_over_time_keeps_the_name(gauge, instant, lb):
    # Given a gauge / When last_over_time and max_over_time are applied
    # Then only last_over_time keeps __name__
    assert list(instant("last_over_time(g[1m])", 60 * S)) == [lb(name="g", job="x")]
    assert list(instant("max_over_time(g[1m])", 60 * S)) == [lb(job="x")]


def test_histogram_quantile_interpolates_in_bucket(reader, instant, lb):
    # Given cumulative buckets le=1:10, le=2:30, le=+Inf:40
    for le, count in (("1", 10.0), ("2", 30.0), ("+Inf", 40.0)):
        reader.add({"__name__": "lat_bucket", "job": "x", "le": le}, [0], [count])
    # When asking for the median: rank 20 falls in (1, 2] holding 20 -> 1 + 1 * (10 / 20)
    assert instant("histogram_quantile(0.5, lat_bucket)", 0) == {lb(job="x"): 1.5}
    # When asking above the last finite bucket / Then its upper bound
    assert instant("histogram_quantile(0.99, lat_bucket)", 0) == {lb(job="x"): 2.0}
    # When q is out of range / Then +-Inf
    assert instant("histogram_quantile(1.5, lat_bucket)", 0) == {lb(job="x"): math.inf}


def test_label_replace_and_join(gauge, instant, lb):
    # Given g{job="x"} / When rewriting labels with Go-style templates / Then the labels change
    got = instant('label_replace(g, "svc", "$1-svc", "job", "(.*)")', 60 * S)
    assert got == {lb(name="g", job="x", svc="x-svc"): 8.0}
    # A non-matching regex leaves the series untouched
    assert instant('label_replace(g, "svc", "$1", "job", "y")', 60 * S) == {lb(name="g", job="x"): 8.0}
    # $1x is the (unknown) group "1x" in Go, so it expands to nothing and the label is dropped
    assert instant('label_replace(g, "job", "$1x", "job", "(.*)")', 60 * S) == {lb(name="g"): 8.0}
    got = instant('label_join(g, "both", "/", "__name__", "job")', 60 * S)
    assert got == {lb(name="g", job="x", both="g/x"): 8.0}


def test_absent(gauge, instant, lb):
    # Given g exists / When asking absent(g) / Then nothing; for a missing metric, 1 with its labels
    assert instant("absent(g)", 60 * S) == {}
    assert instant('absent(nope{job="x", env=~"p.*"})', 60 * S) == {lb(job="x"): 1.0}
    assert instant('absent_over_time(nope{job="y"}[1m])', 60 * S) == {lb(job="y"): 1.0}


def test_time_vector_scalar(gauge, engine, instant):
    # Given any data / When using time(), vector() and scalar()
    assert engine.instant("time()", 90 * S).scalar == (90 * S, 90.0)
    assert instant("vector(3)", 0) == {(): 3.0}
    assert engine.instant("scalar(g)", 60 * S).scalar == (60 * S, 8.0)
    # scalar() of anything but exactly one sample is NaN
    assert math.isnan(engine.instant("scalar(nope)", 60 * S).scalar[1])


def test_math_and_clamp(gauge, instant, lb):
    # Given g=8 at 60 s / When applying math functions / Then values and no name
    assert instant("sqrt(g)", 60 * S) == {lb(job="x"): math.sqrt(8)}
    assert instant("clamp(g, 0, 5)", 60 * S) == {lb(job="x"): 5.0}
    assert instant("clamp_min(g, 10)", 60 * S) == {lb(job="x"): 10.0}
    assert instant("round(g / 3, 0.5)", 60 * S) == {lb(job="x"): 2.5}


def test_timestamp_and_dates(gauge, instant, lb):
    # Given the latest sample at 60 s / When asking its timestamp at 100 s / Then 60, not 100
    assert instant("timestamp(g)", 100 * S) == {lb(job="x"): 60.0}
    # 2024-02-29T13:45:00Z is a Thursday in a leap-year February
    t = 1709214300
    for fn, expected in (
        ("year", 2024),
        ("month", 2),
        ("day_of_month", 29),
        ("day_of_week", 4),
        ("day_of_year", 60),
        ("days_in_month", 29),
        ("hour", 13),
        ("minute", 45),
    ):
        assert instant(f"{fn}(vector({t}))", 0) == {(): float(expected)}, fn


def test_subquery_feeds_range_functions(gauge, instant, lb):
    # Given g / When taking max over a 1 m subquery with a 15 s step at 60 s
    # Then inner steps at 15, 30, 45, 60 s see 1, 4, 2, 8
    assert instant("max_over_time(g[1m:15s])", 60 * S) == {lb(job="x"): 8.0}
    assert instant("sum_over_time(g[1m:15s])", 60 * S) == {lb(job="x"): 15.0}


def test_sort_orders_instant_results(reader, engine):
    # Given three series / When sorted descending / Then the result keeps that order
    for i, v in enumerate((2.0, 9.0, 5.0)):
        reader.add({"__name__": "v", "i": str(i)}, [0], [v])
    result = engine.instant("sort_desc(v)", 0)
    assert [float(s.values[0]) for s in result.series] == [9.0, 5.0, 2.0]
