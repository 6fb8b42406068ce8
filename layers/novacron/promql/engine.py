"""The PromQL engine: parse with ``promql_parser``, evaluate every step at once with numpy.

Each node of the syntax tree evaluates to a value holding *all* evaluation steps (see
``values.py``), so a selector is fetched once with one ``SeriesReader.select`` for the whole
time span it needs, and functions/operators work on (series x steps) arrays.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import promql_parser

from novacron.promql.aggregations import aggregate
from novacron.promql.binops import Matching, scalar_scalar, vector_scalar, vector_vector
from novacron.promql.errors import BadData, ExecutionError, QueryTimeout, TooManySamples
from novacron.promql.functions import INSTANT_FUNCTIONS, ORDERING_FUNCTIONS
from novacron.promql.labels import merge_same_labels
from novacron.promql.resolution import choose_resolution
from novacron.promql.values import (
    F64,
    I64,
    Mask,
    QueryResult,
    RangeVector,
    Scalar,
    String,
    Value,
    Vector,
    drop_name,
    is_stale,
)
from novacron.promql.windows import RANGE_FUNCTIONS, bounds, rollup_extrapolated
from novacron.promql.windows import evaluate as evaluate_range_function
from novacron.series import METRIC_NAME, Matcher, RollupReader, SeriesReader, SeriesSamples
from novacron.storage.rollups import VIEW_OF_FUNCTION

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_MATCH_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}
_CARD = {
    "VectorMatchCardinality.OneToOne": "one-to-one",
    "VectorMatchCardinality.ManyToOne": "many-to-one",
    "VectorMatchCardinality.OneToMany": "one-to-many",
    "VectorMatchCardinality.ManyToMany": "many-to-many",
}
# Native-histogram functions: NovaCron stores floats only, on which these return nothing.
_NATIVE_HISTOGRAM_FUNCTIONS = frozenset(
    {"histogram_count", "histogram_sum", "histogram_avg", "histogram_fraction", "histogram_stddev", "histogram_stdvar"}
)


def parse(query: str) -> Any:
    """Parse a PromQL expression, raising ``BadData`` with the parser's message."""
    if query.strip() == "":
        raise BadData("1:1: parse error: no expression found in input")
    try:
        return promql_parser.parse(current_function_names(query))
    except (ValueError, TypeError) as exc:
        raise BadData(f"parse error: {exc}") from exc


# Functions Prometheus 2 calls by a name the parser (which follows Prometheus 3) does not know.
FUNCTION_ALIASES = {"holt_winters": "double_exponential_smoothing"}
_ALIAS_CALL = re.compile(r"(?<![\w:])(" + "|".join(FUNCTION_ALIASES) + r")(?=\s*\()")
# String literals, left untouched: double- and single-quoted with escapes, and raw backquoted.
STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


def current_function_names(query: str) -> str:
    """``query`` with Prometheus 2 function names (``holt_winters``) renamed to their Prometheus 3 names."""
    if not any(name in query for name in FUNCTION_ALIASES):
        return query
    out, pos = [], 0
    for literal in STRING_LITERAL.finditer(query):
        out.append(_ALIAS_CALL.sub(lambda m: FUNCTION_ALIASES[m.group(1)], query[pos : literal.start()]))
        out.append(literal.group())
        pos = literal.end()
    out.append(_ALIAS_CALL.sub(lambda m: FUNCTION_ALIASES[m.group(1)], query[pos:]))
    return "".join(out)


def _ms(delta: timedelta | None) -> int:
    return 0 if delta is None else int(delta // _MS)


def selector_matchers(vs: Any) -> list[Matcher]:
    """The label matchers of a parsed vector selector, the metric name included."""
    if vs.matchers.or_matchers:
        raise BadData("'or' inside a label selector is not PromQL")
    out = [Matcher(METRIC_NAME, "=", vs.name)] if vs.name else []
    try:
        out += [Matcher(m.name, _MATCH_OPS[str(m.op)], m.value) for m in vs.matchers.matchers]
    except Exception as exc:  # re.error from a regex Python's engine rejects
        raise BadData(f"invalid matcher: {exc}") from exc
    return out


def parse_selector(text: str) -> list[Matcher]:
    """Parse a series selector such as a ``match[]`` parameter into matchers."""
    node = parse(text)
    if type(node).__name__ != "VectorSelector":
        raise BadData(f"1:1: parse error: expected vector selector, got {type(node).__name__}")
    return selector_matchers(node)


@dataclass
class _Query:
    """State of one evaluation: deadline, sample budget and the query's own start/end."""

    reader: SeriesReader
    lookback_ms: int
    max_samples: int
    subquery_step_ms: int
    start_ms: int
    end_ms: int
    deadline: float
    clock: Callable[[], float]
    rollups: bool = True  # answer range functions from rollups where the reader has them
    samples: int = 0

    def check(self) -> None:
        if self.clock() > self.deadline:
            raise QueryTimeout()

    def account(self, count: int) -> None:
        self.samples += count
        if self.samples > self.max_samples:
            raise TooManySamples()

    # --- dispatch ---------------------------------------------------------------------------

    def eval(self, node: Any, steps: I64) -> Value:
        self.check()
        kind = type(node).__name__
        handler = getattr(self, f"_eval_{kind.lower()}", None)
        if handler is None:
            raise ExecutionError(f"unsupported expression {kind}")
        result: Value = handler(node, steps)
        return result

    def _eval_parenexpr(self, node: Any, steps: I64) -> Value:
        return self.eval(node.expr, steps)

    def _eval_numberliteral(self, node: Any, steps: I64) -> Value:
        return Scalar(np.full(len(steps), float(node.val)))

    def _eval_stringliteral(self, node: Any, steps: I64) -> Value:
        return String(str(node.val))

    def _eval_unaryexpr(self, node: Any, steps: I64) -> Value:
        # The parser only produces UnaryExpr for negation (unary plus is dropped).
        inner = self.eval(node.expr, steps)
        if isinstance(inner, Scalar):
            return Scalar(-inner.values)
        if isinstance(inner, Vector):
            labels = [drop_name(lb) for lb in inner.labels]
            return merge_same_labels(Vector(labels, -inner.values, inner.present))
        raise ExecutionError("unary minus needs a scalar or an instant vector")

    # --- selectors ----------------------------------------------------------------------------

    def _times(self, at: Any, offset: timedelta | None, steps: I64) -> I64:
        """Per step, the time a selector looks at: the step (or its ``@`` time) minus the offset."""
        if at is None:
            base = steps
        else:
            kind = str(at.type)
            if kind.endswith("Start"):
                fixed = self.start_ms
            elif kind.endswith("End"):
                fixed = self.end_ms
            else:
                fixed = int((at.at - _EPOCH) // _MS)
            base = np.full(len(steps), fixed, dtype=np.int64)
        return (base - _ms(offset)).astype(np.int64)

    def _select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int) -> list[SeriesSamples]:
        series = self.reader.select(matchers, start_ms, end_ms)
        self.account(sum(len(s.timestamps) for s in series))
        return sorted(series, key=lambda s: s.labels)

    def _eval_vectorselector(self, node: Any, steps: I64) -> Value:
        times = self._times(node.at, node.offset, steps)
        if len(times) == 0:
            return Vector.empty(0)
        # Prometheus 3's lookback window is (t - lookback, t].
        found = self._select(selector_matchers(node), int(times.min()) - self.lookback_ms + 1, int(times.max()))
        found = [s for s in found if len(s.timestamps)]
        if not found:
            return Vector.empty(len(steps))
        self.check()
        picked_ts, picked, ok = latest_samples(found, times, self.lookback_ms)
        ok &= ~is_stale(picked)
        rows = np.nonzero(ok.any(axis=1))[0]
        if len(rows) == 0:
            return Vector.empty(len(steps))
        if len(rows) != len(found):
            found = [found[i] for i in rows]
            picked_ts, picked, ok = picked_ts[rows], picked[rows], ok[rows]
        return Vector([s.labels for s in found], picked, ok, picked_ts)

    def _eval_matrixselector(self, node: Any, steps: I64) -> Value:
        vs = node.vector_selector
        times = self._times(vs.at, vs.offset, steps)
        range_ms = _ms(node.range)
        found = self._select(selector_matchers(vs), int(times.min()) - range_ms + 1, int(times.max()))
        series = found
        # Range vectors never contain staleness markers; one check over all samples finds any.
        if found and is_stale(np.concatenate([s.values for s in found])).any():
            series = []
            for s in found:
                keep = ~is_stale(s.values)
                series.append(s if keep.all() else SeriesSamples(s.labels, s.timestamps[keep], s.values[keep]))
        own = tuple((m.name, m.value) for m in selector_matchers(vs) if m.op == "=")
        return RangeVector(series, times, range_ms, own)

    def _eval_subqueryexpr(self, node: Any, steps: I64) -> Value:
        times = self._times(node.at, node.offset, steps)
        range_ms = _ms(node.range)
        step = _ms(node.step) or self.subquery_step_ms
        # Inner steps are multiples of the subquery step, the first one after the earliest window start.
        lowest = int(times.min()) - range_ms
        first = int(lowest / step) * step  # Go truncates toward zero
        if first <= lowest:
            first += step
        inner_steps = np.arange(first, int(times.max()) + 1, step, dtype=np.int64)
        inner = self.eval(node.expr, inner_steps)
        if not isinstance(inner, Vector):
            raise ExecutionError("subqueries need an instant vector expression")
        series = [
            SeriesSamples(lb, inner_steps[inner.present[i]], inner.values[i][inner.present[i]])
            for i, lb in enumerate(inner.labels)
        ]
        return RangeVector(series, times, range_ms)

    # --- functions ----------------------------------------------------------------------------

    def _eval_call(self, node: Any, steps: I64) -> Value:
        name = str(node.func.name)
        if name in ("absent", "absent_over_time"):
            return self._absent(node, steps)
        if self.rollups and name in VIEW_OF_FUNCTION and isinstance(self.reader, RollupReader):
            over_rollups = self._over_rollups(self.reader, node, name, steps)
            if over_rollups is not None:
                return over_rollups
        args = [self.eval(a, steps) for a in node.args]
        if name in RANGE_FUNCTIONS:
            rv = next(a for a in args if isinstance(a, RangeVector))
            scalars = [a.values for a in args if isinstance(a, Scalar)]
            values, present = evaluate_range_function(name, rv.series, rv.window_end, rv.range_ms, scalars)
            return self._range_result(name, rv.series, values, present, steps)
        if name in _NATIVE_HISTOGRAM_FUNCTIONS:
            return Vector.empty(len(steps))
        if name not in INSTANT_FUNCTIONS:
            raise ExecutionError(f"function {name}() is not supported yet")
        if name == "round" and len(args) == 1:
            args.append(Scalar(np.ones(len(steps))))
        result = INSTANT_FUNCTIONS[name](args, steps)
        if isinstance(result, Vector) and name not in ORDERING_FUNCTIONS:
            result = merge_same_labels(result)
        return result

    def _range_result(
        self, name: str, series: Sequence[SeriesSamples], values: F64, present: Mask, steps: I64
    ) -> Value:
        """A range function's per-series results as an instant vector (series with no value dropped)."""
        self.check()
        rows = np.nonzero(present.any(axis=1))[0]
        if len(rows) == 0:
            return Vector.empty(len(steps))
        labels = [series[i].labels for i in rows]
        if not RANGE_FUNCTIONS[name][1]:
            labels = [drop_name(lb) for lb in labels]
        return merge_same_labels(Vector(labels, values[rows], present[rows]), whole_range=True)

    def _over_rollups(self, reader: RollupReader, node: Any, name: str, steps: I64) -> Value | None:
        """``name(selector[range])`` answered from rollups when a resolution keeps it right, else None."""
        arg = node.args[0]
        if type(arg).__name__ != "MatrixSelector":
            return None
        vs = arg.vector_selector
        times = self._times(vs.at, vs.offset, steps)
        range_ms = _ms(arg.range)
        resolution = choose_resolution(name, times, range_ms)
        if resolution is None:
            return None
        # avg is the sum of sums over the sum of counts; count the sum of counts; rate and increase need
        # the raw sample count of each window (their extrapolation depends on it).
        view = VIEW_OF_FUNCTION[name]
        views = (view, "count") if name in ("avg_over_time", "rate", "increase") else (view,)
        start, end = int(times.min()) - range_ms + 1, int(times.max())
        found = reader.select_views(selector_matchers(vs), start, end, resolution, views)
        self.account(sum(len(s.timestamps) for series in found.values() for s in series))
        main = found[view]
        if name in ("rate", "increase"):
            values, present = rollup_extrapolated(name, main, found["count"], times, range_ms)
            return self._range_result(name, main, values, present, steps)
        summed = "sum_over_time" if name in ("count_over_time", "avg_over_time") else name
        values, present = evaluate_range_function(summed, main, times, range_ms, [])
        if name == "avg_over_time":
            counts, _ = evaluate_range_function("sum_over_time", found["count"], times, range_ms, [])
            values = values / counts
        return self._range_result(name, main, values, present, steps)

    def _absent(self, node: Any, steps: I64) -> Value:
        arg = node.args[0]
        while type(arg).__name__ == "ParenExpr":
            arg = arg.expr
        value = self.eval(arg, steps)
        if isinstance(value, RangeVector):
            any_present: Mask = np.zeros(len(steps), dtype=bool)
            for s in value.series:
                lo, hi = bounds(s.timestamps, value.window_end, value.range_ms)
                any_present = any_present | (hi > lo)
        elif isinstance(value, Vector):
            any_present = np.asarray(value.present.any(axis=0), dtype=bool)
        else:
            raise ExecutionError("absent() needs an instant vector")
        selector = arg.vector_selector if type(arg).__name__ == "MatrixSelector" else arg
        labels: dict[str, str] = {}
        if type(selector).__name__ == "VectorSelector":
            # Prometheus's rule: a label survives only if its one matcher is an equality.
            for m in selector_matchers(selector):
                if m.name == METRIC_NAME:
                    continue
                if m.op == "=" and m.name not in labels:
                    labels[m.name] = m.value
                else:
                    labels.pop(m.name, None)
        row = tuple(sorted((k, v) for k, v in labels.items() if v != ""))
        return Vector([row], np.ones((1, len(steps))), (~any_present)[None, :])

    # --- operators ----------------------------------------------------------------------------

    def _eval_aggregateexpr(self, node: Any, steps: I64) -> Value:
        op = str(node.op)
        param = None if node.param is None else self.eval(node.param, steps)
        inner = self.eval(node.expr, steps)
        if not isinstance(inner, Vector):
            raise ExecutionError(f"{op}() needs an instant vector")
        mod = node.modifier
        names = [] if mod is None else [str(n) for n in mod.labels]
        without = mod is not None and str(mod.type).endswith("Without")
        return aggregate(op, inner, names, without, param)

    def _eval_binaryexpr(self, node: Any, steps: I64) -> Value:
        op = str(node.op)
        lhs, rhs = self.eval(node.lhs, steps), self.eval(node.rhs, steps)
        mod = node.modifier
        return_bool = bool(mod is not None and mod.return_bool)
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            return scalar_scalar(op, lhs, rhs)
        if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
            return vector_scalar(op, lhs, rhs, scalar_left=False, return_bool=return_bool)
        if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
            return vector_scalar(op, rhs, lhs, scalar_left=True, return_bool=return_bool)
        if isinstance(lhs, Vector) and isinstance(rhs, Vector):
            matching = Matching()
            if mod is not None:
                on = mod.matching is not None and str(mod.matching.type).endswith("Include")
                names = () if mod.matching is None else tuple(str(n) for n in mod.matching.labels)
                card = _CARD.get(str(mod.card), "one-to-one")
                matching = Matching(card, on, names, tuple(str(n) for n in (mod.group_labels or ())))
            if op in ("and", "or", "unless"):
                matching = Matching("many-to-many", matching.on, matching.labels)
            return vector_vector(op, lhs, rhs, matching, return_bool)
        raise ExecutionError(f"operator {op} not allowed between these operand types")


@dataclass
class Engine:
    """Evaluates PromQL over a ``SeriesReader``.

    ``lookback_ms`` is Prometheus's ``--query.lookback-delta``; ``max_samples`` bounds the samples a
    query may load; ``timeout_ms`` is the default evaluation deadline; ``subquery_step_ms`` is the
    step of subqueries written without one (Prometheus uses the global evaluation interval);
    ``rollups`` False makes a reader's rollups go unused (raw samples only, e.g. to compare answers).
    """

    reader: SeriesReader
    lookback_ms: int = 300_000
    max_samples: int = 50_000_000
    timeout_ms: int = 120_000
    subquery_step_ms: int = 60_000
    clock: Callable[[], float] = time.monotonic
    rollups: bool = True

    def _query(self, start_ms: int, end_ms: int, timeout_ms: int | None) -> _Query:
        budget = self.timeout_ms if timeout_ms is None else min(timeout_ms, self.timeout_ms)
        deadline = self.clock() + budget / 1000
        return _Query(
            self.reader,
            self.lookback_ms,
            self.max_samples,
            self.subquery_step_ms,
            start_ms,
            end_ms,
            deadline,
            self.clock,
            self.rollups,
        )

    def instant(self, query: str, time_ms: int, timeout_ms: int | None = None) -> QueryResult:
        """Evaluate ``query`` at one time; the result is a vector, matrix, scalar or string."""
        node = parse(query)
        q = self._query(time_ms, time_ms, timeout_ms)
        steps = np.array([time_ms], dtype=np.int64)
        with np.errstate(all="ignore"):
            value = q.eval(node, steps)
        if isinstance(value, Scalar):
            return QueryResult("scalar", scalar=(time_ms, float(value.values[0])))
        if isinstance(value, String):
            return QueryResult("string", scalar=(time_ms, value.value))
        if isinstance(value, RangeVector):
            out = []
            for s in value.series:
                lo, hi = bounds(s.timestamps, value.window_end, value.range_ms)
                if hi[0] > lo[0]:
                    out.append(SeriesSamples(s.labels, s.timestamps[lo[0] : hi[0]], s.values[lo[0] : hi[0]]))
            return QueryResult("matrix", series=sorted(out, key=lambda s: s.labels))
        at_time = value.values[:, :1].copy()
        rows = [SeriesSamples(value.labels[i], steps.copy(), at_time[i]) for i in np.nonzero(value.present[:, 0])[0]]
        if not _is_ordering(node):
            rows.sort(key=lambda s: s.labels)
        return QueryResult("vector", series=rows)

    def range(self, query: str, start_ms: int, end_ms: int, step_ms: int, timeout_ms: int | None = None) -> QueryResult:
        """Evaluate ``query`` at ``start_ms, start_ms + step_ms, … <= end_ms``; always a matrix."""
        if step_ms <= 0:
            raise BadData("zero or negative query resolution step widths are not accepted. Try a positive integer")
        if end_ms < start_ms:
            raise BadData("end timestamp must not be before start time")
        node = parse(query)
        q = self._query(start_ms, end_ms, timeout_ms)
        steps = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
        with np.errstate(all="ignore"):
            value = q.eval(node, steps)
        if isinstance(value, Scalar):
            return QueryResult("matrix", series=[SeriesSamples((), steps, value.values)])
        if not isinstance(value, Vector):
            kind = "range vector" if isinstance(value, RangeVector) else "string"
            raise BadData(f'invalid expression type "{kind}" for range query, must be Scalar or instant Vector')
        q.account(int(value.present.sum()))
        out = [
            SeriesSamples(lb, steps[value.present[i]], value.values[i][value.present[i]])
            for i, lb in enumerate(value.labels)
            if value.present[i].any()
        ]
        return QueryResult("matrix", series=sorted(out, key=lambda s: s.labels))


def latest_samples(series: Sequence[SeriesSamples], times: I64, lookback_ms: int) -> tuple[I64, F64, Mask]:
    """Per series and time, the last sample at or before the time: its timestamp, value, and
    whether it lies within ``(t - lookback_ms, t]``; arrays of shape (series, times).

    The series (each non-empty) are laid end to end, each shifted past the previous one's
    samples and times, so one ``searchsorted`` answers every series and time at once instead of
    one numpy call per series.
    """
    if len(series) > 1 and _span(series, times) * len(series) >= 2**62:  # shifted keys would overflow
        half = len(series) // 2
        parts = [latest_samples(series[:half], times, lookback_ms), latest_samples(series[half:], times, lookback_ms)]
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )
    sizes = np.fromiter((len(s.timestamps) for s in series), dtype=np.int64, count=len(series))
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    ts = np.concatenate([s.timestamps for s in series]).astype(np.int64, copy=False)
    vs = np.concatenate([s.values for s in series])
    earliest = min(int(ts.min()), int(times.min()))
    span = max(int(ts.max()), int(times.max())) - earliest + 1
    shifts = span * np.arange(len(series), dtype=np.int64)
    keys = (ts - earliest) + np.repeat(shifts, sizes)
    wanted = shifts[:, None] + (times - earliest)[None, :]
    idx = np.searchsorted(keys, wanted, side="right") - 1
    found = idx >= starts[:, None]  # else the search landed in the previous series
    safe = np.maximum(idx, starts[:, None])
    picked_ts = ts[safe]
    ok = found & (picked_ts > times[None, :] - lookback_ms)
    return picked_ts, vs[safe], ok


def _span(series: Sequence[SeriesSamples], times: I64) -> int:
    first = min(int(times.min()), *(int(s.timestamps[0]) for s in series))
    last = max(int(times.max()), *(int(s.timestamps[-1]) for s in series))
    return last - first + 1


def _is_ordering(node: Any) -> bool:
    while type(node).__name__ == "ParenExpr":
        node = node.expr
    return type(node).__name__ == "Call" and str(node.func.name) in ORDERING_FUNCTIONS
