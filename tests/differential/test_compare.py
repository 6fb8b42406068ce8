"""The comparison the differential harness relies on: it must see every kind of disagreement."""

from __future__ import annotations

from typing import Any

import pytest

from tests.differential.compare import diff

pytestmark = pytest.mark.differential


def _vector(*items: tuple[dict[str, str], str]) -> dict[str, Any]:
    result = [{"metric": metric, "value": [1700000000.5, value]} for metric, value in items]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def test_equal_within_tolerance_and_nan_agree() -> None:
    # Given values equal within 1e-9 relative, and NaN on both sides / When compared / Then no difference
    expected = _vector(({"a": "1"}, "0.30000000000000004"), ({"a": "2"}, "NaN"))
    actual = _vector(({"a": "1"}, "0.3"), ({"a": "2"}, "NaN"))
    assert diff(expected, actual) is None


@pytest.mark.parametrize(
    ("actual", "what"),
    [
        (_vector(({"a": "1"}, "1.00001")), "value"),
        (_vector(({"a": "1"}, "+Inf")), "value"),
        (_vector(({"b": "1"}, "1")), "series differ"),
        (_vector(), "series differ"),
        (_vector(({"a": "1"}, "1.0")), "written"),
        ({"status": "error", "errorType": "bad_data", "error": "x"}, "status"),
        ({"status": "success", "data": {"resultType": "scalar", "result": [1700000000.5, "1"]}}, "resultType"),
    ],
)
def test_every_kind_of_disagreement_is_reported(actual: dict[str, Any], what: str) -> None:
    # Given Prometheus's answer and a different one / When compared / Then the difference is named
    problem = diff(_vector(({"a": "1"}, "1")), actual)
    assert problem is not None
    assert what in problem


def test_sorted_results_compare_order() -> None:
    # Given the same series in another order / When order matters / Then reported, else not
    expected = _vector(({"a": "1"}, "1"), ({"a": "2"}, "2"))
    actual = _vector(({"a": "2"}, "2"), ({"a": "1"}, "1"))
    assert diff(expected, actual) is None
    assert "order" in (diff(expected, actual, ordered=True) or "")
