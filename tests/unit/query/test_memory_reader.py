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


def _brute_force(r: InMemorySeriesReader, all_labels: list[dict[str, str]], matchers: list[Matcher]) -> list:
    from novacron.series import matches_all

    keys = {tuple(sorted((k, v) for k, v in lb.items() if v != "")) for lb in all_labels}
    return sorted(k for k in keys if matches_all(k, matchers))


def test_postings_select_exactly_the_series_a_full_scan_would():
    # Given series with overlapping, missing and empty-valued labels
    all_labels = [
        {"__name__": "m", "job": "a", "code": "200"},
        {"__name__": "m", "job": "b", "code": "500"},
        {"__name__": "m", "job": "b"},
        {"__name__": "n", "job": "a", "code": ""},
        {"__name__": "n", "env": "prod"},
    ]
    r = InMemorySeriesReader()
    for lb in all_labels:
        r.add(lb, [0], [1.0])
    cases = [
        [Matcher("__name__", "=", "m")],
        [Matcher("__name__", "=", "m"), Matcher("code", "=~", "5..")],
        [Matcher("job", "!=", "a")],  # matches series without a job label too
        [Matcher("code", "=", "")],  # only series lacking code
        [Matcher("code", "!~", "2.*"), Matcher("__name__", "=~", "m|n")],
        [Matcher("job", "=", "missing")],
        [Matcher("nolabel", "=~", ".+")],
        [Matcher("__name__", "=", "n"), Matcher("job", "=", "b")],
    ]
    for matchers in cases:
        # When selecting / Then the postings give what testing every label set gives
        got = [s.labels for s in r.select(matchers, 0, 0)]
        assert got == _brute_force(r, all_labels, matchers), matchers


def test_select_slices_every_series_of_many_with_uneven_lengths():
    # Given series of different lengths and offsets, one added after a first select
    rng = np.random.default_rng(7)
    r = InMemorySeriesReader()
    expected = {}
    for i in range(40):
        ts = np.sort(rng.choice(np.arange(0, 1000, 5), size=int(rng.integers(1, 60)), replace=False))
        r.add({"__name__": "m", "i": f"{i:02d}"}, ts, ts * 0.5)
        expected[f"{i:02d}"] = (ts, ts * 0.5)
    r.select([Matcher("__name__", "=", "m")], 0, 1000)
    r.add({"__name__": "m", "i": "late"}, [500], [1.0])
    expected["late"] = (np.array([500]), np.array([1.0]))
    # When selecting a middle range
    found = r.select([Matcher("__name__", "=", "m")], 200, 600)
    # Then each series holds exactly its own samples in [200, 600], in label order, and no empty series
    inside = {k: (ts >= 200) & (ts <= 600) for k, (ts, _) in expected.items()}
    assert [dict(s.labels)["i"] for s in found] == sorted(k for k, m in inside.items() if m.any())
    for s in found:
        ts, vs = expected[dict(s.labels)["i"]]
        m = inside[dict(s.labels)["i"]]
        assert s.timestamps.tolist() == ts[m].tolist()
        assert s.values.tolist() == vs[m].tolist()
