"""The Isolation Forest: scores, determinism, serialisation, explanations."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.detect.forest import IsolationForest, average_path_length


def blob(rows: int = 1000, seed: int = 0) -> np.ndarray:
    """A 2-D standard normal blob."""
    return np.random.default_rng(seed).standard_normal((rows, 2))


@pytest.fixture(scope="module")
def forest() -> IsolationForest:
    """A forest fit on the blob."""
    return IsolationForest.fit(blob(), n_trees=50, seed=3)


def test_outliers_score_higher_than_inliers(forest: IsolationForest) -> None:
    # Given rows at the blob's center and far outside it
    inliers = np.array([[0.0, 0.0], [0.3, -0.2], [-0.1, 0.4]])
    outliers = np.array([[6.0, 6.0], [-5.0, 0.0], [0.0, 7.0]])
    # When they are scored
    inner, outer = forest.score(inliers), forest.score(outliers)
    # Then every outlier outscores every inlier, and scores are in (0, 1]
    assert outer.min() > inner.max()
    assert np.all((inner > 0) & (outer <= 1))
    assert inner.max() < 0.5 < outer.min()


def test_far_outliers_score_higher_than_near_ones(forest: IsolationForest) -> None:
    # Given points ever further out along one axis
    rows = np.array([[4.0, 0.0], [8.0, 0.0], [40.0, 0.0]])
    # When scored
    scores = forest.score(rows)
    # Then the score keeps growing beyond the training range
    assert scores[0] < scores[1] < scores[2]


def test_path_lengths_match_score_formula(forest: IsolationForest) -> None:
    # Given some rows
    rows = blob(20, seed=9)
    # When path lengths and scores are computed
    lengths, scores = forest.path_lengths(rows), forest.score(rows)
    # Then s = 2^(-E[h]/c(psi))
    np.testing.assert_allclose(scores, np.exp2(-lengths / average_path_length(256)))


def test_average_path_length_known_values() -> None:
    # Given sizes 1, 2 and 256 / When c(n) is computed / Then it follows Liu et al.
    values = average_path_length([1, 2, 256])
    assert values[0] == 0.0
    assert values[1] == 1.0
    assert values[2] == pytest.approx(2 * (np.log(255) + 0.5772156649) - 2 * 255 / 256)


def test_fit_is_deterministic_per_seed() -> None:
    # Given the same data
    data = blob()
    # When fit twice with one seed and once with another
    a, b = IsolationForest.fit(data, n_trees=20, seed=1), IsolationForest.fit(data, n_trees=20, seed=1)
    c = IsolationForest.fit(data, n_trees=20, seed=2)
    # Then the same seed gives the same scores and another seed different ones
    rows = blob(50, seed=5)
    np.testing.assert_array_equal(a.score(rows), b.score(rows))
    assert not np.array_equal(a.score(rows), c.score(rows))


def test_bytes_round_trip_gives_identical_scores(forest: IsolationForest) -> None:
    # Given a serialised forest
    data = forest.to_bytes()
    # When it is read back
    again = IsolationForest.from_bytes(data)
    # Then it scores exactly as the original, on training-like rows and on outliers
    rows = np.concatenate([blob(200, seed=7), [[9.0, -9.0], [0.0, 30.0]]])
    np.testing.assert_array_equal(forest.score(rows), again.score(rows))
    assert not data.startswith(b"\x80")  # not a pickle


def test_model_size_is_small() -> None:
    # Given a full-size forest on 12 features
    data = np.random.default_rng(0).standard_normal((5000, 12))
    # When it is serialised
    size = len(IsolationForest.fit(data).to_bytes())
    # Then it stays well under 300 KB
    assert size < 300_000


def test_from_bytes_rejects_other_data() -> None:
    # Given bytes that are not a forest / When read / Then a clear ValueError
    with pytest.raises(ValueError, match="not a serialised IsolationForest"):
        IsolationForest.from_bytes(b"hello world")


def test_contributions_name_the_feature_that_moved() -> None:
    # Given a forest over three features
    data = np.random.default_rng(1).standard_normal((2000, 3))
    forest = IsolationForest.fit(data, n_trees=50)
    # When a row moves far along the second feature only
    shares = forest.contributions(np.array([0.0, 7.0, 0.0]))
    # Then that feature carries most of the score, and the shares are a distribution
    assert int(np.argmax(shares)) == 1
    assert shares[1] > 0.8
    assert np.all(shares >= 0)
    assert shares.sum() == pytest.approx(1.0)


def test_fit_rejects_missing_values() -> None:
    # Given data with a NaN / When fit / Then a ValueError asks for imputation
    data = blob(10)
    data[3, 1] = np.nan
    with pytest.raises(ValueError, match="impute"):
        IsolationForest.fit(data)
