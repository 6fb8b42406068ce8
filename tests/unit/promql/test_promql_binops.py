"""Binary operators: arithmetic, comparisons, vector matching and set operators."""

from __future__ import annotations

import pytest

from novacron.promql import ExecutionError


@pytest.fixture
def http(reader):
    """requests{code,job} and limits{job} at 0 s."""
    reader.add({"__name__": "req", "code": "200", "job": "api"}, [0], [10.0])
    reader.add({"__name__": "req", "code": "500", "job": "api"}, [0], [2.0])
    reader.add({"__name__": "req", "code": "200", "job": "web"}, [0], [4.0])
    reader.add({"__name__": "limit", "job": "api"}, [0], [8.0])
    reader.add({"__name__": "limit", "job": "web"}, [0], [8.0])
    return reader


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("1 + 2 * 3", 7.0),
        ("2 ^ 3 ^ 2", 512.0),  # right-associative
        ("7 % 3", 1.0),
        ("-7 % 3", -1.0),  # Go's math.Mod keeps the dividend's sign
        ("1 / 0", float("inf")),
        ("2 > bool 1", 1.0),
        ("-(1 - 3)", 2.0),
    ],
)
def test_scalar_arithmetic(engine, query, expected):
    # Given a scalar expression / When evaluated / Then the result is a scalar with that value
    result = engine.instant(query, 0)
    assert result.result_type == "scalar"
    assert result.scalar == (0, expected)


def test_vector_scalar_arithmetic_drops_name(http, instant, lb):
    # Given req / When multiplied by a scalar / Then values scale and __name__ is dropped
    assert instant('req{job="web"} * 2', 0) == {lb(code="200", job="web"): 8.0}
    assert instant('10 - req{job="web"}', 0) == {lb(code="200", job="web"): 6.0}


def test_comparison_filters_and_keeps_vector_value(http, instant, lb):
    # Given req / When filtering with the scalar on either side / Then the vector's value survives
    assert instant("req > 3", 0) == {
        lb(name="req", code="200", job="api"): 10.0,
        lb(name="req", code="200", job="web"): 4.0,
    }
    assert instant("3 < req", 0) == instant("req > 3", 0)
    # And with bool every sample stays, as 0/1, without its name
    assert instant('req{job="api"} > bool 3', 0) == {lb(code="200", job="api"): 1.0, lb(code="500", job="api"): 0.0}


def test_one_to_one_with_on_and_ignoring(http, instant, lb):
    # Given req and limit / When dividing with on(job) / Then only the matching labels remain
    got = instant('req{code="200"} / on(job) limit', 0)
    assert got == {lb(job="api"): 1.25, lb(job="web"): 0.5}
    # When ignoring(code) / Then the left side's labels minus code remain
    got = instant('req{code="500"} - ignoring(code) limit', 0)
    assert got == {lb(job="api"): -6.0}


def test_group_left_many_to_one(http, instant, lb):
    # Given many req per job and one limit per job
    # When dividing with group_left / Then every req series gets a result with its own labels
    got = instant("req / on(job) group_left limit", 0)
    assert got == {
        lb(code="200", job="api"): 1.25,
        lb(code="500", job="api"): 0.25,
        lb(code="200", job="web"): 0.5,
    }


def test_group_left_copies_labels_from_one_side(reader, instant, lb):
    # Given an info metric with a version label
    reader.add({"__name__": "up", "job": "api"}, [0], [1.0])
    reader.add({"__name__": "info", "job": "api", "version": "1.2"}, [0], [1.0])
    # When joining with group_left(version) / Then version is copied onto the result
    assert instant("up * on(job) group_left(version) info", 0) == {lb(job="api", version="1.2"): 1.0}


def test_one_to_one_without_group_modifier_is_an_error(http, engine):
    # Given two req series per job / When matched one-to-one on job / Then Prometheus's error
    with pytest.raises(ExecutionError, match="many-to-one matching must be explicit"):
        engine.instant("req / on(job) limit", 0)
    # And duplicates on the "one" side are rejected too
    with pytest.raises(ExecutionError, match="found duplicate series for the match group"):
        engine.instant("limit / on(job) group_left req", 0)


def test_set_operators(http, instant, lb):
    # Given req and limit
    api = lb(name="req", code="200", job="api")
    # When using and/unless on job / Then req is filtered by the presence of limit
    assert len(instant("req and on(job) limit", 0)) == 3
    assert instant("req unless on(job) limit", 0) == {}
    assert instant('req unless on(job) limit{job="web"}', 0) == {api: 10.0, lb(name="req", code="500", job="api"): 2.0}
    # When using or / Then the right side fills in signatures missing on the left
    got = instant('req{job="web"} or on(job) limit', 0)
    assert got == {lb(name="req", code="200", job="web"): 4.0, lb(name="limit", job="api"): 8.0}


@pytest.mark.parametrize("op", ["and", "unless", "or"])
def test_set_operators_with_an_empty_left_hand_side(http, instant, lb, op):
    # Given a left-hand side that selects nothing (a comparison no sample passes)
    # When combined with a set operator / Then the answer is the empty set ("or": the right-hand side)
    expected = {lb(name="limit", job="api"): 8.0, lb(name="limit", job="web"): 8.0} if op == "or" else {}
    assert instant(f"req > 100 {op} limit", 0) == expected


def test_same_labelset_after_dropping_name_is_an_error(http, engine):
    # Given two metrics with equal labels apart from the name
    http.add({"__name__": "other", "job": "api"}, [0], [1.0])
    # When arithmetic drops the name from both / Then Prometheus's duplicate error
    with pytest.raises(ExecutionError, match="vector cannot contain metrics with the same labelset"):
        engine.instant('{__name__=~"limit|other", job="api"} * 2', 0)
