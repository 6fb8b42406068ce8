"""The labelled corpus: deterministic, labels where the events are, benign events unlabelled."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.detect.corpus import ANOMALY_KINDS, BENIGN_KINDS, WARM_UP_DAYS, corpus, label_code, labelled_series
from novacron.detect.sim_corpus import RESTART_KIND, RESTART_WINDOW_S, simulator_corpus


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


def test_a_trend_change_records_when_its_ramp_reaches_the_band():
    # Given a series with trend changes
    series = labelled_series("trend_change", 5)
    ramps = [e for e in series.events if not e.benign]

    # Then each one's onset lies inside it, 7 to 14 samples in (0.4-0.8 noise deviations per sample to 5.5)
    assert ramps
    for event in ramps:
        assert event.onset is not None
        assert 6 <= event.onset - event.start <= 13
        assert event.onset <= event.end
    # ...and a spike's onset is its start
    assert all(e.onset is None for e in labelled_series("spike", 5).events)


def test_a_variance_change_records_its_first_sample_as_wide_as_the_band():
    for seed in (5, 6):
        # Given series with variance changes, and the same series without anomalies (same seed: the
        # anomalies are drawn last, so the difference is the added noise)
        series = labelled_series("variance_change", seed)
        added = series.values - labelled_series(None, seed).values
        events = [e for e in series.events if not e.benign]

        # Then each onset is inside its event, and the added noise there is wider than at every sample
        # of the event before it (those stay within the band, the onset reaches it)
        assert events
        for event in events:
            onset = event.start if event.onset is None else event.onset
            assert event.start <= onset <= event.end
            assert np.all(np.abs(added[event.start : onset]) < abs(added[onset]))
        # ...and some events widen visibly only a few samples in
        assert any(e.onset is not None and e.onset > e.start for e in events)


@pytest.fixture(scope="module")
def simulated():
    # a short run: half a day scraped every 5 minutes, two faults after two hours
    return simulator_corpus(seed=3, days=0.5, step_s=300.0, faults=2, warm_up_days=0.1)


def test_the_simulator_corpus_labels_a_fault_on_the_series_it_changes(simulated):
    # Given a simulated run with a latency fault and an errors fault
    kinds = {fault.kind.value: fault for fault in simulated.faults}
    assert set(kinds) == {"latency", "errors"}
    by_name = {s.name: s for s in simulated.series}

    # Then the latency fault's service has a latency event inside the fault's window
    latency = kinds["latency"]
    series = by_name[f"{latency.service}/latency"]
    seconds = series.timestamps_ms / 1000
    events = [e for e in series.events if e.kind == "latency"]
    assert events
    for event in events:
        assert latency.start < seconds[event.start] <= seconds[event.end] <= latency.end + simulated.step_s
    # ...and the errors fault's service an error-rate event
    errors = kinds["errors"]
    assert any(e.kind == "errors" for e in by_name[f"{errors.service}/error_rate"].events)


def test_the_simulator_corpus_labels_nothing_outside_the_fault_windows(simulated):
    # Given every series of the run
    for series in simulated.series:
        seconds = series.timestamps_ms / 1000
        inside = np.zeros(seconds.size, dtype=bool)
        for fault in simulated.faults:
            inside |= (seconds > fault.start) & (seconds <= fault.end + simulated.step_s)
        # Then labels lie only inside a fault's window, and the anomaly events cover exactly the labels
        assert not (series.labels.astype(bool) & ~inside).any(), series.name
        covered = np.zeros(seconds.size, dtype=bool)
        for event in series.events:
            if not event.benign:
                covered[event.start : event.end + 1] = True
        assert np.array_equal(covered, series.labels.astype(bool)), series.name
    # ...and a datastore nothing calls into for these faults is untouched
    assert not any(s.labels.any() for s in simulated.series if s.name.startswith("postgres/memory"))


@pytest.fixture(scope="module")
def restarting():
    # a day and a half without faults: random restarts (about one per instance per five days) happen
    return simulator_corpus(seed=7, days=1.5, step_s=300.0, faults=0)


def test_the_simulator_corpus_leaves_out_counter_rates_across_a_restart_and_marks_memory_refills(restarting):
    # Given a fault-free run, its series by name, and the restarts' benign events on memory
    by_name = {s.name: s for s in restarting.series}
    restarts = {
        name.split("/")[0]: [e for e in s.events if e.kind == RESTART_KIND]
        for name, s in by_name.items()
        if name.endswith("/memory")
    }
    restarted = [service for service, events in restarts.items() if events]
    assert restarted
    full = max(s.timestamps_ms.size for s in restarting.series)
    for service in restarted:
        memory = by_name[f"{service}/memory"]
        # Then memory keeps every sample, with its restarts benign, unlabelled, at most 45 minutes each
        assert memory.timestamps_ms.size == full
        assert not memory.labels.any()
        for event in restarts[service]:
            assert event.benign
            assert event.end - event.start + 1 <= RESTART_WINDOW_S // 300 + 2
        # ...and the counters' rates (cpu) miss one sample per restart, at the restart
        cpu = by_name[f"{service}/cpu"]
        assert cpu.timestamps_ms.size == full - len(restarts[service])
        missing = np.setdiff1d(memory.timestamps_ms, cpu.timestamps_ms)
        assert set(missing.tolist()) == {int(memory.timestamps_ms[e.start]) for e in restarts[service]}
    # ...and a service without restarts keeps every sample of every metric
    quiet = [name for name, s in by_name.items() if name.split("/")[0] not in restarted]
    assert all(by_name[name].timestamps_ms.size == full for name in quiet)
