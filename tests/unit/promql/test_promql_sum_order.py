"""``sum``/``avg`` give the bits of a member-by-member Neumaier loop in input order."""

from __future__ import annotations

import math

import numpy as np
import pytest

from novacron.promql.aggregations import aggregate
from novacron.promql.values import Vector


def _reference_sums(values: np.ndarray, present: np.ndarray, groups: np.ndarray) -> dict[int, list[float]]:
    """Per group and step, the loop the engine used to run: ``kahanSumInc`` over members in input order."""
    out: dict[int, list[float]] = {}
    for gid in np.unique(groups).tolist():
        rows = np.nonzero(groups == gid)[0]
        sums = []
        for step in range(values.shape[1]):
            total, comp, seen = 0.0, 0.0, False
            for v in values[rows, step][present[rows, step]].tolist():
                if not seen:
                    total, comp, seen = v, 0.0, True
                    continue
                t = total + v
                corr = (total - t) + v if abs(total) >= abs(v) else (v - t) + total
                total, comp = t, 0.0 if math.isinf(t) else comp + corr
            sums.append(total if math.isinf(total) else total + comp)
        out[gid] = sums
    return out


def _random_vector(seed: int, rows: int, steps: int) -> tuple[Vector, np.ndarray]:
    """Values with cancellation, NaN, ±Inf and -0.0, absent cells, and groups of very uneven size."""
    rng = np.random.default_rng(seed)
    magnitude = 10.0 ** rng.integers(-8, 17, size=(rows, steps))
    values = rng.normal(size=(rows, steps)) * magnitude
    specials = np.array([math.nan, math.inf, -math.inf, -0.0, 0.0, 1e308, -1e308])
    special_cells = rng.random((rows, steps)) < 0.01
    values[special_cells] = rng.choice(specials, size=int(special_cells.sum()))
    present = rng.random((rows, steps)) > 0.2
    groups = np.minimum(rng.geometric(0.15, size=rows) - 1, 40)  # sizes from 1 to most rows
    labels = [(("g", str(g)), ("i", str(i))) for i, g in enumerate(groups.tolist())]
    return Vector(labels, values, present), groups


def _same_bits(got: float, want: float) -> bool:
    return (math.isnan(got) and math.isnan(want)) or np.float64(got).tobytes() == np.float64(want).tobytes()


@pytest.mark.parametrize("steps", [1, 3, 300])  # 300: rows wide enough for the row-by-row additions
@pytest.mark.parametrize("seed", range(4))
def test_sum_and_avg_match_the_member_by_member_loop(seed: int, steps: int) -> None:
    # Given random series in uneven groups, with NaN, ±Inf, -0.0, huge values and gaps
    vec, groups = _random_vector(seed, rows=400, steps=steps)
    want = _reference_sums(vec.values, vec.present, groups)
    counts = {g: vec.present[groups == g].sum(axis=0) for g in want}
    # When summing and averaging by group
    total = aggregate("sum", vec, ["g"], False, None)
    mean = aggregate("avg", vec, ["g"], False, None)
    # Then every present cell has exactly the loop's bits (sign of zero included), and avg = sum / count
    for result, is_avg in ((total, False), (mean, True)):
        for row, labels in enumerate(result.labels):
            gid = int(dict(labels)["g"])
            assert result.present[row].tolist() == (counts[gid] > 0).tolist()
            for step in np.nonzero(result.present[row])[0].tolist():
                expected = want[gid][step] / counts[gid][step] if is_avg else want[gid][step]
                assert _same_bits(float(result.values[row, step]), expected), (gid, step)


def test_counts_and_presence_follow_the_present_cells() -> None:
    # Given a group whose only series is absent at the second step
    vec = Vector(
        [(("g", "a"), ("i", "1")), (("g", "a"), ("i", "2")), (("g", "b"), ("i", "3"))],
        np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
        np.array([[True, True], [True, False], [True, False]]),
    )
    # When counting and summing by g
    count = aggregate("count", vec, ["g"], False, None)
    total = aggregate("sum", vec, ["g"], False, None)
    # Then absent cells neither count nor make a group present
    assert count.values.tolist() == [[2.0, 1.0], [1.0, 0.0]]
    assert total.present.tolist() == [[True, True], [True, False]]
    assert total.values[:, 0].tolist() == [4.0, 5.0]
    assert total.values[0, 1] == 2.0
