"""Typed errors, limits and Go float formatting."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from novacron.promql import BadData, Engine, ExecutionError, QueryTimeout, TooManySamples, format_float, format_sample
from novacron.promql.engine import current_function_names
from novacron.promql.format import format_go_value
from novacron.promql.pretty import pretty


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.1, "0.1"),
        (-2.5, "-2.5"),
        (1e21, "1000000000000000000000"),
        (1e-7, "0.0000001"),
        (123456789.123, "123456789.123"),
        (1 / 3, "0.3333333333333333"),
        (-0.0, "-0"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_format_float_matches_go(value, text):
    # Given a float / When formatted / Then as Go's FormatFloat(v, 'f', -1, 64)
    assert format_float(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-7, "1e-07"),
        (9.99e-7, "9.99e-07"),
        (-4.042198674546348e-16, "-4.042198674546348e-16"),
        (5e-324, "5e-324"),
        (-1e-6, "-0.000001"),
        (0.000123, "0.000123"),
        (1e21, "1e+21"),
        (-1.5e22, "-1.5e+22"),
        (9.9e20, "990000000000000000000"),
        (1.0, "1"),
        (0.0, "0"),
        (-0.0, "-0"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_format_sample_matches_prometheus_json(value, text):
    # Given a vector/matrix sample value / When formatted for the API / Then as Prometheus 2.42 writes it
    # (checked against the real server: an exponent below 1e-6 and from 1e21 on)
    assert format_sample(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.7e9, "1.7e+09"),
        (123456789.0, "1.23456789e+08"),
        (1234567.5, "1.2345675e+06"),
        (1e6, "1e+06"),
        (999999.0, "999999"),
        (100000.0, "100000"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-0.00012, "-0.00012"),
        (-2.5e-7, "-2.5e-07"),
        (1e21, "1e+21"),
        (5e-324, "5e-324"),
        (0.0, "0"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_format_go_value_matches_go_sprint(value, text):
    # Given a number literal's value / When printed / Then as Go's fmt.Sprint (%g, exponent from 1e6 and below 1e-4)
    assert format_go_value(value) == text


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("1700000000 + up", "1.7e+09 + up"),
        ("up + Inf", "up + +Inf"),
        ("up - -Inf", "up - -Inf"),
        ('up{a="1e21"} > 1e21', 'up{a="1e21"} > 1e+21'),
        ("rate(up[1h30m] @ 1700000000.5)", "rate(up[1h30m] @ 1700000000.500)"),
        ("holt_winters(up[5m], 0.5, 0.5)", "holt_winters(up[5m], 0.5, 0.5)"),
        ('up{a="holt_winters("}', 'up{a="holt_winters("}'),
    ],
)
def test_pretty_prints_like_prometheus_format_query(query, text):
    # Given a query / When pretty-printed / Then number literals are Go's, @ times and strings untouched
    assert pretty(query) == text


def test_holt_winters_is_double_exponential_smoothing(reader, engine):
    # Given a gauge, and Prometheus 2's and Prometheus 3's names of the same function
    ts = np.arange(0, 3_600_000, 15_000)
    reader.add({"__name__": "mem", "job": "a"}, ts, np.sin(ts / 600_000.0) * 100)
    old = engine.range("holt_winters(mem[10m], 0.3, 0.6)", 0, 3_600_000, 60_000)
    new = engine.range("double_exponential_smoothing(mem[10m], 0.3, 0.6)", 0, 3_600_000, 60_000)
    # When both are evaluated, then the answers are the same
    assert [s.labels for s in old.series] == [s.labels for s in new.series]
    assert [s.values.tolist() for s in old.series] == [s.values.tolist() for s in new.series]
    assert len(old.series) == 1
    assert len(old.series[0].values) > 50


def test_aliases_are_renamed_only_where_they_are_calls():
    # Given the old name inside strings, as part of longer names and as a call
    query = '`holt_winters(` + my_holt_winters(x) + ns:holt_winters + holt_winters (x[5m], 1, 1) + y{a="holt_winters("}'
    # When renamed, then only the call changes
    assert current_function_names(query) == (
        "`holt_winters(` + my_holt_winters(x) + ns:holt_winters + double_exponential_smoothing (x[5m], 1, 1)"
        ' + y{a="holt_winters("}'
    )


@pytest.mark.parametrize("query", ["sum(", "rate(x)", "x[5m] + 1", "", 'foo{a=~"("}'])
def test_parse_errors_are_bad_data(engine, query):
    # Given an invalid query / When evaluated / Then BadData (HTTP 400, bad_data)
    with pytest.raises(BadData) as info:
        engine.instant(query, 0)
    assert info.value.http_status == 400
    assert info.value.error_type == "bad_data"


def test_range_query_rejects_range_vectors_and_strings(engine):
    # Given a range query of a range vector / Then Prometheus's message
    with pytest.raises(BadData, match='invalid expression type "range vector" for range query'):
        engine.range("x[5m]", 0, 60_000, 15_000)
    with pytest.raises(BadData, match='invalid expression type "string"'):
        engine.range('"a"', 0, 60_000, 15_000)


def test_too_many_samples(reader):
    # Given 100 samples and an engine allowed 50
    reader.add({"__name__": "m"}, list(range(0, 100_000, 1000)), [1.0] * 100)
    engine = Engine(reader, max_samples=50)
    # When querying them all / Then an execution error with Prometheus's message
    with pytest.raises(TooManySamples, match="query processing would load too many samples into memory") as info:
        engine.instant("count_over_time(m[2m])", 100_000)
    assert isinstance(info.value, ExecutionError)
    assert info.value.http_status == 422


def test_timeout(reader):
    # Given a clock that jumps 10 s at every reading and a 1 s timeout
    reader.add({"__name__": "m"}, [0], [1.0])
    ticks = itertools.count(step=10.0)
    engine = Engine(reader, timeout_ms=1000, clock=lambda: next(ticks))
    # When evaluating / Then QueryTimeout (HTTP 503, errorType timeout)
    with pytest.raises(QueryTimeout) as info:
        engine.instant("m + m", 0)
    assert (info.value.error_type, info.value.http_status) == ("timeout", 503)


def test_range_query_matrix_of_a_scalar(engine):
    # Given a scalar expression in a range query / Then one series without labels, every step
    result = engine.range("time() * 2", 0, 30_000, 15_000)
    assert result.result_type == "matrix"
    [series] = result.series
    assert series.labels == ()
    assert series.values.tolist() == [0.0, 30.0, 60.0]
