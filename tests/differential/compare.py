"""Comparing two Prometheus API response bodies: result type, series label sets, timestamps, values.

Values match when equal within 1e-9 relative (NaN equals NaN, ±Inf equal themselves); values that
are equal as floats must also be written identically, so number formatting is compared too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

REL_TOL = 1e-9

Point = tuple[float, str]


def _key(metric: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(metric.items()))


def _value_diff(expected: str, actual: str) -> str | None:
    a, b = float(expected), float(actual)
    if math.isnan(a) and math.isnan(b):
        return None
    if a == b:
        return None if expected == actual else f"same value written {expected!r} vs {actual!r}"
    if math.isinf(a) or math.isinf(b) or not math.isclose(a, b, rel_tol=REL_TOL):
        return f"value {expected} vs {actual}"
    return None


def _points_diff(expected: Sequence[Point], actual: Sequence[Point]) -> str | None:
    if [t for t, _ in expected] != [t for t, _ in actual]:
        shown = ([t for t, _ in expected][:5], [t for t, _ in actual][:5])
        return f"timestamps {shown[0]}… vs {shown[1]}… ({len(expected)} vs {len(actual)} points)"
    for (t, e), (_, a) in zip(expected, actual, strict=True):
        diff = _value_diff(e, a)
        if diff:
            return f"at {t}: {diff}"
    return None


def _series(result: list[dict[str, Any]], field: str) -> dict[tuple[tuple[str, str], ...], list[Point]]:
    out: dict[tuple[tuple[str, str], ...], list[Point]] = {}
    for item in result:
        key = _key(item["metric"])
        if key in out:
            raise AssertionError(f"duplicate series {dict(key)}")
        points = item["values"] if field == "values" else [item["value"]]
        out[key] = [(float(t), v) for t, v in points]
    return out


def diff(expected: dict[str, Any], actual: dict[str, Any], ordered: bool = False) -> str | None:
    """Why ``actual`` (NovaCron) differs from ``expected`` (Prometheus), or None when they agree.

    ``ordered``: the order of an instant vector matters (``sort``/``sort_desc``); compared by value
    so that ties may come in either order.
    """
    if expected["status"] != actual["status"]:
        why = (expected.get("error", ""), actual.get("error", ""))
        return f"status {expected['status']} ({why[0]}) vs {actual['status']} ({why[1]})"
    if expected["status"] == "error":
        if expected["errorType"] != actual["errorType"]:
            return f"errorType {expected['errorType']} vs {actual['errorType']}"
        return None
    e, a = expected["data"], actual["data"]
    if e["resultType"] != a["resultType"]:
        return f"resultType {e['resultType']} vs {a['resultType']}"
    if e["resultType"] in ("scalar", "string"):
        (te, ve), (ta, va) = e["result"], a["result"]
        if float(te) != float(ta):
            return f"timestamp {te} vs {ta}"
        return _value_diff(ve, va) if e["resultType"] == "scalar" else (None if ve == va else f"{ve!r} vs {va!r}")
    field = "values" if e["resultType"] == "matrix" else "value"
    es, as_ = _series(e["result"], field), _series(a["result"], field)
    if es.keys() != as_.keys():
        missing = [dict(k) for k in es.keys() - as_.keys()][:3]
        extra = [dict(k) for k in as_.keys() - es.keys()][:3]
        return f"series differ ({len(es)} vs {len(as_)}): missing {missing} extra {extra}"
    for key, points in es.items():
        problem = _points_diff(points, as_[key])
        if problem:
            return f"{dict(key)}: {problem}"
    if ordered:
        ev = [float(item["value"][1]) for item in e["result"]]
        av = [float(item["value"][1]) for item in a["result"]]
        if any(_value_diff(repr(x), repr(y)) for x, y in zip(ev, av, strict=True)):
            return f"order {ev[:5]}… vs {av[:5]}…"
    return None
