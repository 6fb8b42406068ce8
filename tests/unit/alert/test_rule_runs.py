"""A pass over a tenant's rule files: due times, and rule output written back as series."""

from __future__ import annotations

import pytest

from novacron.alert.evaluate import OutputSample
from novacron.alert.rule_runs import RuleOutputOverlay, RuleSampleWriter, due_times, evaluate_rule_files
from novacron.alert.state import StoredText
from novacron.ingest.service import IngestService
from novacron.query.memory_reader import InMemorySeriesReader
from novacron.records import decode_record
from novacron.series import STALE_NAN, Matcher
from tests.fakes import ListSink

S = 1000
MIN = 60 * S
T0 = 1_800_000_000_000  # a multiple of a minute


@pytest.mark.parametrize(
    ("last", "now", "expected"),
    [
        (None, T0 + 25 * S, [T0]),  # first run: once, at the aligned now
        (T0, T0 + 59 * S, []),  # not due yet
        (T0, T0 + MIN, [T0 + MIN]),
        (T0, T0 + 2 * MIN + 1, [T0 + MIN, T0 + 2 * MIN]),
        (T0, T0 + 10 * MIN, [T0 + 8 * MIN, T0 + 9 * MIN, T0 + 10 * MIN]),  # the latest three
    ],
)
def test_due_times(last: int | None, now: int, expected: list[int]) -> None:
    # Given a group's last evaluation / When asked what is due / Then the grid times, at most three
    assert due_times(last, MIN, now, 3) == expected


def test_rule_output_is_one_series_per_label_set_in_time_order_staleness_markers_included() -> None:
    # Given two evaluations' output of one recording rule, the second a staleness marker, and an ALERTS sample
    sink = ListSink()
    writer = RuleSampleWriter(IngestService(sink, clock_ms=lambda: T0 + MIN))
    recorded = (("__name__", "job:up:sum"), ("service", "payment"))
    alerts = (("__name__", "ALERTS"), ("alertname", "TargetDown"), ("alertstate", "firing"))
    samples = [
        OutputSample(recorded, T0 + MIN, STALE_NAN),
        OutputSample(alerts, T0 + MIN, 1.0),
        OutputSample(recorded, T0, 3.0),
    ]

    # When written for acme
    accepted = writer.write("acme", samples)

    # Then every sample went onto the stream as acme's, each series in time order
    assert accepted == 3
    assert {decode_record(r.data).tenant for r in sink.records} == {"acme"}
    stored = sink.stored_samples()
    assert stored[alerts] == [(T0 + MIN, 1.0)]
    (first, marker) = stored[recorded]
    assert first == (T0, 3.0)
    assert marker[0] == T0 + MIN
    assert marker[1] != marker[1]  # NaN: the staleness marker


def test_nothing_to_write_puts_nothing() -> None:
    # Given a writer / When there is no output / Then no record is put
    sink = ListSink()
    assert RuleSampleWriter(IngestService(sink)).write("acme", []) == 0
    assert sink.records == []


CHAINED = """\
groups:
  - name: availability
    rules:
      - record: service:up:sum
        expr: sum by (service) (up)
      - alert: ServiceDown
        expr: service:up:sum == 0
"""


def test_a_rule_sees_an_earlier_recording_rules_output_of_the_same_evaluation() -> None:
    # Given a recording rule and an alert on its output, and a store where only the raw series exists
    reader = InMemorySeriesReader()
    reader.add({"__name__": "up", "service": "payment", "instance": "a"}, [T0 - 30 * S, T0], [0.0, 0.0])
    files = {"availability.yml": StoredText(CHAINED, 1, 0, "key-1")}

    # When the group is evaluated for the first time
    run = evaluate_rule_files("acme", files, {}, reader, T0, MIN, 3, 10_000)

    # Then the alert already sees the recorded series (nothing of it is stored yet)
    state = run.current["availability.yml/availability"]
    (alert,) = [a for rule in state.rules.values() for a in rule.alerts.values()]
    assert (alert.labels["alertname"], alert.state) == ("ServiceDown", "firing")
    recorded = [s for s in run.samples if dict(s.labels)["__name__"] == "service:up:sum"]
    assert [(s.t_ms, s.value) for s in recorded] == [(T0, 0.0)]


def test_the_overlay_reads_the_store_and_the_output_written_the_output_first() -> None:
    # Given a stored series and output written over one of its timestamps and past it
    base = InMemorySeriesReader()
    labels = {"__name__": "service:up:sum", "service": "payment"}
    base.add(labels, [T0 - MIN, T0], [1.0, 1.0])
    overlay = RuleOutputOverlay(base)
    key = tuple(sorted(labels.items()))
    overlay.add([OutputSample(key, T0, 0.0), OutputSample(key, T0 + MIN, 0.0)])

    # When read / Then one series, the written values winning, with both sides' labels
    (series,) = overlay.select([Matcher("service", "=", "payment")], T0 - MIN, T0 + MIN)
    assert series.timestamps.tolist() == [T0 - MIN, T0, T0 + MIN]
    assert series.values.tolist() == [1.0, 0.0, 0.0]
    assert overlay.label_values("service", [], None, None) == ["payment"]
