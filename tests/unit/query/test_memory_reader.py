"""The in-memory SeriesReader."""

from __future__ import annotations

import numpy as np

from novacron.query.memory_reader import InMemorySeriesReader
from novacron.series import Matcher


def test_select_slices_inclusive_range_and_merges_adds():
    # Given a series added in two unordered batches with one overwritten timestamp
    r = InMemorySeriesReader()
    r.add({"__name__": "m", "a": "1"}, [30, 10], [3.0, 1.0])
    r.add({"__name__": "m", "a": "1"}, np.array([20, 30]), np.array([2.0, 33.0]))
    # When selecting [10, 30] / Then samples are sorted, the later write wins, ends inclusive
    [s] = r.select([Matcher("__name__", "=", "m")], 10, 30)
    assert s.timestamps.tolist() == [10, 20, 30]
    assert s.values.tolist() == [1.0, 2.0, 33.0]
    # And a range with no samples returns no series
    assert r.select([Matcher("a", "=", "1")], 31, 40) == []


def test_metadata_queries():
    # Given two series
    r = InMemorySeriesReader()
    r.add({"__name__": "m", "a": "1"}, [0], [0.0])
    r.add({"__name__": "n", "b": "2"}, [0], [0.0])
    # When asking for names and values with and without matchers
    assert r.label_names([]) == ["__name__", "a", "b"]
    assert r.label_names([[Matcher("__name__", "=", "n")]]) == ["__name__", "b"]
    assert r.label_values("__name__", []) == ["m", "n"]
    assert r.series([[Matcher("a", "=", "1")], [Matcher("b", "=~", "2")]]) == [
        (("__name__", "m"), ("a", "1")),
        (("__name__", "n"), ("b", "2")),
    ]
