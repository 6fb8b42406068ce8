"""The labelled corpus: deterministic, labels where the events are, benign events unlabelled."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.detect.corpus import ANOMALY_KINDS, BENIGN_KINDS, WARM_UP_DAYS, corpus, label_code, labelled_series


def test_a_seed_gives_the_same_series():
    # Given two series built from one seed, When compared, Then they are identical
    a, b = labelled_series("level_shift", 3), labelled_series("level_shift", 3)
    assert np.array_equal(a.timestamps_ms, b.timestamps_ms)
    assert np.array_equal(a.values, b.values)
    assert np.array_equal(a.labels, b.labels)
    assert a.events == b.events
    # ...and another seed gives another series
    assert not np.array_equal(a.values, labelled_series("level_shift", 4).values)


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_labels_line_up_with_the_anomalies(kind):
    # Given a series with anomalies of one kind
    series = labelled_series(kind, 21)
    anomalies = [e for e in series.events if not e.benign]

    # Then each anomaly's span, and nothing else, carries the kind's label, after the warm-up week
    assert 2 <= len(anomalies) <= 5
    expected = np.zeros(series.values.size, dtype=np.int8)
    for event in anomalies:
        assert event.kind == kind
        assert event.start <= event.end
        expected[event.start : event.end + 1] = label_code(kind)
    assert np.array_equal(series.labels, expected)
    first_day = (series.timestamps_ms[anomalies[0].start] - series.timestamps_ms[0]) / 86_400_000
    assert first_day >= WARM_UP_DAYS - 0.01


def test_timestamps_are_irregular_with_gaps_and_increasing():
    # Given a series
    series = labelled_series(None, 22)
    steps = np.diff(series.timestamps_ms)

    # Then the timestamps increase, jitter around 5 minutes, and have gaps of an hour or more
    assert (steps > 0).all()
    assert steps.std() > 10_000
    assert steps.max() >= 3_600_000


def test_a_normal_series_has_only_benign_events_and_no_labels():
    series = labelled_series(None, 23)
    assert not series.labels.any()
    assert {e.kind for e in series.events} == set(BENIGN_KINDS)
    assert all(e.benign for e in series.events)


def test_the_corpus_covers_every_kind():
    series = corpus(seed=1, per_kind=1, normal_series=1, days=10)
    assert [s.name.rsplit("-", 1)[0] for s in series] == [*ANOMALY_KINDS, "normal"]


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown anomaly kind"):
        labelled_series("meteor", 1)
