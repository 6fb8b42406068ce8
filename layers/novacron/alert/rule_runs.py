"""One scheduled pass over a tenant's rule files: which group evaluations are due, running them, and
writing their output back as series.

- A group is evaluated at the times due since its last evaluation, on its interval's grid: at most
  ``max_catchup`` of them per pass (after an outage, the most recent ones); a group never evaluated
  before is evaluated once, at the aligned now.
- A stored file that no longer parses (it was validated on upload, so only a stricter parser refuses
  it) is skipped with a logged reason; its groups keep their last state.
- A rule whose query fails (PromQL error, timeout, a read too large for the store) records the error
  as its health, as in Prometheus; the other rules go on.
- Recording-rule samples and ``ALERTS``/``ALERTS_FOR_STATE`` travel the ingest path onto the metrics
  stream (``RuleSampleWriter``), so the writer stores them and PromQL sees them. Until then, the pass
  keeps what it wrote in memory (``RuleOutputOverlay``): a group whose recording rule is followed by
  other rules reads the store and that output together, so a later rule sees an earlier one's output
  of the same evaluation, as in Prometheus. (Those groups read raw samples: the store's rollups do not
  hold the fresh output. Other groups read through the engine as queries do.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from novacron.alert.evaluate import OutputSample, RuleEvaluator
from novacron.alert.rule_state import GroupState
from novacron.alert.rules import RecordingRule, RuleFileError, RuleGroup, parse_rule_file
from novacron.alert.state import StoredText
from novacron.promql import Engine, QueryResult
from novacron.promql.errors import ExecutionError
from novacron.protocols.remote_write_pb import Label, Sample, TimeSeries
from novacron.query.memory_reader import InMemorySeriesReader
from novacron.series import Labels, Matcher, SeriesReader, SeriesSamples
from novacron.storage.reader import QueryTooLarge, merge_series

log = logging.getLogger(__name__)


class SeriesIngest(Protocol):
    """The ingest path (``novacron.ingest.service.IngestService``): series encodings onto the metrics stream."""

    def ingest_encoded(
        self, contents: list[bytes], tenant: str, key_labels: Any = None, *, apply_policy: bool = True
    ) -> Any:
        """Validate, pack and put ``TimeSeries`` encodings; the result says what was rejected."""
        ...


@dataclass
class RuleRun:
    """What one pass over a tenant's rule files did and produced."""

    current: dict[str, GroupState] = field(default_factory=dict)  # every valid group's state, by <file>/<group>
    changed: dict[str, GroupState] = field(default_factory=dict)  # the states this pass moved on
    samples: list[OutputSample] = field(default_factory=list)
    skipped_files: int = 0
    groups_evaluated: int = 0
    rules_evaluated: int = 0


def due_times(last_ms: int | None, interval_ms: int, now_ms: int, max_catchup: int) -> list[int]:
    """The evaluation times of a group due by ``now_ms``: on the grid of its last evaluation, the latest
    ``max_catchup`` at most; the aligned now when it was never evaluated."""
    if last_ms is None:
        return [now_ms - now_ms % interval_ms]
    missed = (now_ms - last_ms) // interval_ms
    first = max(1, missed - max_catchup + 1)
    return [last_ms + k * interval_ms for k in range(first, missed + 1)]


def rule_query(engine: Engine) -> Callable[[str, int], QueryResult]:
    """The engine's instant query, where a read too large for the store fails the rule (health ``err``,
    like a timeout or any PromQL error) rather than the tenant's whole pass."""

    def query(expr: str, t_ms: int) -> QueryResult:
        try:
            return engine.instant(expr, t_ms)
        except QueryTooLarge as exc:
            raise ExecutionError(str(exc)) from exc

    return query


class RuleOutputOverlay:
    """A SeriesReader: the store's series, and over them the rule output this pass wrote (not yet stored)."""

    def __init__(self, base: SeriesReader) -> None:
        self.base = base
        self.written = InMemorySeriesReader()

    def add(self, samples: Sequence[OutputSample]) -> None:
        """Hold rule output (the evaluator's ``write``)."""
        for sample in samples:
            self.written.add(dict(sample.labels), [sample.t_ms], [sample.value])

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesSamples]:
        """Both sides' samples; at a timestamp in both, the output written here."""
        return merge_series(
            self.written.select(matchers, start_ms, end_ms), self.base.select(matchers, start_ms, end_ms)
        )

    def series(
        self, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int | None = None, end_ms: int | None = None
    ) -> list[Labels]:
        """Label sets of either side."""
        both = {*self.written.series(matcher_sets, start_ms, end_ms), *self.base.series(matcher_sets, start_ms, end_ms)}
        return sorted(both)

    def label_names(
        self, matcher_sets: Sequence[Sequence[Matcher]], start_ms: int | None = None, end_ms: int | None = None
    ) -> list[str]:
        """Label names of either side."""
        written = self.written.label_names(matcher_sets, start_ms, end_ms)
        return sorted({*written, *self.base.label_names(matcher_sets, start_ms, end_ms)})

    def label_values(
        self,
        name: str,
        matcher_sets: Sequence[Sequence[Matcher]],
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> list[str]:
        """Values of a label on either side."""
        written = self.written.label_values(name, matcher_sets, start_ms, end_ms)
        return sorted({*written, *self.base.label_values(name, matcher_sets, start_ms, end_ms)})


def chained(group: RuleGroup) -> bool:
    """Whether a recording rule of the group is followed by other rules (which may read its output)."""
    kinds = [isinstance(rule, RecordingRule) for rule in group.rules]
    return any(kinds[:-1])


def evaluate_rule_files(
    tenant: str,
    files: Mapping[str, StoredText],
    previous: Mapping[str, GroupState],
    reader: SeriesReader,
    now_ms: int,
    default_interval_ms: int,
    max_catchup: int,
    timeout_ms: int,
) -> RuleRun:
    """Evaluate every group of ``files`` at its due times, from its ``previous`` state (by ``<file>/<group>``)."""
    overlay = RuleOutputOverlay(reader)
    direct = RuleEvaluator(rule_query(Engine(reader, timeout_ms=timeout_ms)), write=overlay.add)
    layered = RuleEvaluator(rule_query(Engine(overlay, timeout_ms=timeout_ms)), write=overlay.add)
    run = RuleRun()
    for name, stored in sorted(files.items()):
        try:
            rule_file = parse_rule_file(stored.text, name)
        except RuleFileError as exc:
            run.skipped_files += 1
            log.warning("rule file %s of %s skipped: it no longer parses: %s", name, tenant, exc)
            continue
        for group in rule_file.groups:
            evaluator = layered if chained(group) else direct
            key = f"{name}/{group.name}"
            state = previous.get(key)
            last = state.last_evaluation_ms if state else None
            for t_ms in due_times(last, group.effective_interval_ms(default_interval_ms), now_ms, max_catchup):
                evaluation = evaluator.evaluate_group(group, t_ms, state)
                state = run.changed[key] = evaluation.state
                run.samples += evaluation.samples
                run.groups_evaluated += 1
                run.rules_evaluated += len(group.rules)
            if state is not None:
                run.current[key] = state
                _log_rule_errors(tenant, key, state)
    return run


def _log_rule_errors(tenant: str, key: str, state: GroupState) -> None:
    failing = [f"{k}: {s.last_error}" for k, s in state.rules.items() if s.health == "err"]
    if failing:
        log.warning("rule group %s of %s: %d failing rules: %s", key, tenant, len(failing), "; ".join(failing[:5]))


class RuleSampleWriter:
    """Rule output onto the metrics stream through the ingest path (no ingest policy: these are the
    tenant's own rules' series)."""

    def __init__(self, ingest: SeriesIngest) -> None:
        self.ingest = ingest

    def write(self, tenant: str, samples: Sequence[OutputSample]) -> int:
        """Write the samples (one series per label set, in time order); the number accepted."""
        by_series: dict[Labels, list[OutputSample]] = {}
        for sample in samples:
            by_series.setdefault(sample.labels, []).append(sample)
        contents = []
        for labels, points in by_series.items():
            series = TimeSeries(labels=[Label(name=n, value=v) for n, v in labels])
            for point in sorted(points, key=lambda p: p.t_ms):
                series.samples.append(Sample(timestamp=point.t_ms, value=point.value))
            contents.append(series.SerializeToString())
        if not contents:
            return 0
        result = self.ingest.ingest_encoded(contents, tenant, apply_policy=False)
        if result.rejected:
            log.warning("rule output of %s partly rejected: %s", tenant, result.rejection_message())
        return int(result.samples_accepted)
