"""The differential test: every corpus query on a real Prometheus 2.42 and on NovaCron, compared.

Each query runs as an instant query at a few times and as range queries, on both. The test prints
the pass rate by construct (``pytest -s`` shows it; it is also written to ``differential.txt`` in
the test's tmp dir) and fails when a query outside ``KNOWN_DIFFERENCES`` mismatches.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from novacron.promql import Engine
from novacron.query import prom_api
from novacron.query.memory_reader import InMemorySeriesReader
from tests.differential.compare import diff
from tests.differential.corpus import FORMAT_ONLY, Case, corpus
from tests.differential.data import eval_time, generate
from tests.differential.prometheus import PrometheusServer, load_novacron, load_prometheus, running_prometheus
from tests.e2e.conftest import require_binary

pytestmark = pytest.mark.differential

# Instant times: mid-data; just after the first staleness markers; inside a gap longer than the
# lookback; just after the data ends (inside the lookback).
INSTANT_TIMES = (eval_time(1800), eval_time(3037), eval_time(4830), eval_time(7230))
# Range queries: the whole data at 1 m; and around the staleness markers at an odd step.
RANGES = ((eval_time(600), eval_time(7500), 60), (eval_time(2900), eval_time(3500), 7))

# Deliberate differences, by query, each with the reason (also in docs/promql.md "Known differences").
_RATE_EXTRAPOLATION = (
    "rate/increase over a window starting well before a counter's first sample (series start, restart "
    "after staleness, end of a gap): NovaCron caps the extrapolation at half the average sample interval "
    "and only then at the counter's zero point, as Prometheus does since prometheus/prometheus#13725; 2.42 "
    "takes the zero point first "
    "and may extrapolate up to 1.1 intervals further"
)
_ATAN2_NAME = (
    "atan2 between vectors: NovaCron drops the metric name as for every arithmetic operator; Prometheus 2.42 keeps it"
)
KNOWN_DIFFERENCES: dict[str, str] = {
    **dict.fromkeys(
        [
            "rate(http_requests_total[5m] offset 10m)",
            "sum(rate(http_requests_total[5m] offset 30m)) by (job)",
            "max_over_time(rate(http_requests_total[5m])[30m:1m])",
            "avg_over_time(sum by (job) (rate(http_requests_total[5m]))[20m:2m])",
            "rate(ephemeral_jobs_total[5m])",
            "rate(ephemeral_jobs_total[17m])",
            "increase(ephemeral_jobs_total[5m])",
            "increase(ephemeral_jobs_total[17m])",
            "histogram_quantile(0.9, sum by (le) (increase(http_request_duration_seconds_bucket[1h])))",
            "increase(http_requests_total[1h])",
            "rate(batch_queue_depth[1m])",
            "rate(batch_queue_depth[5m])",
            "increase(batch_queue_depth[1m])",
            "increase(batch_queue_depth[5m])",
        ],
        _RATE_EXTRAPOLATION,
    ),
    "node_temperature_celsius atan2 node_temperature_celsius offset 5m": _ATAN2_NAME,
}


@dataclass
class Engines:
    prometheus: PrometheusServer
    reader: InMemorySeriesReader
    engine: Engine


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    binary = require_binary("prometheus")  # skips loudly without it
    data = generate()
    with running_prometheus(binary, tmp_path_factory.mktemp("prometheus")) as server:
        load_prometheus(server, data)
        reader = load_novacron(data)
        yield Engines(server, reader, Engine(reader))


def _requests(query: str) -> list[tuple[str, dict[str, str]]]:
    out = [("/api/v1/query", {"query": query, "time": str(t)}) for t in INSTANT_TIMES]
    out += [
        ("/api/v1/query_range", {"query": query, "start": str(s), "end": str(e), "step": str(step)})
        for s, e, step in RANGES
    ]
    return out


def _has_data(body: dict[str, Any]) -> bool:
    return body.get("status") == "success" and (
        body["data"]["resultType"] in ("scalar", "string") or bool(body["data"]["result"])
    )


def _run_case(engines: Engines, case: Case, empty: list[str]) -> str | None:
    """Why NovaCron disagrees with Prometheus on ``case`` (first disagreement), or None.

    Queries on which Prometheus returns nothing at every evaluation are appended to ``empty``.
    """
    ordered = case.query.startswith("sort")
    answered = False
    for path, params in _requests(case.query):
        expected = engines.prometheus.get(path, params)
        answered = answered or _has_data(expected)
        api = prom_api.query if path.endswith("/query") else prom_api.query_range
        _, actual = api(engines.reader, params, engine=engines.engine)
        problem = diff(expected, actual, ordered=ordered and path.endswith("/query"))
        if problem:
            where = params.get("time") or f"{params['start']}..{params['end']} step {params['step']}"
            return f"{path} @ {where}: {problem}"
    if not answered:
        empty.append(case.query)
    return None


def _table(results: dict[str, list[str]]) -> str:
    """Per construct: queries that agree, differ as documented, differ unexpectedly; and the pass rate."""
    lines = [f"{'construct':<24} {'pass':>5} {'known':>5} {'fail':>5} {'total':>5}   rate"]
    rows = [*results.items(), ("ALL", [o for outcomes in results.values() for o in outcomes])]
    for construct, outcomes in rows:
        counts = [outcomes.count(kind) for kind in ("pass", "known", "fail")]
        rate = 100 * counts[0] / len(outcomes)
        lines.append(f"{construct:<24} {counts[0]:>5} {counts[1]:>5} {counts[2]:>5} {len(outcomes):>5} {rate:6.1f}%")
    return "\n".join(lines)


def test_corpus_matches_prometheus(engines: Engines, tmp_path: Path) -> None:
    # Given the same data in Prometheus 2.42 and in NovaCron, and the corpus
    cases = corpus()
    assert len(cases) >= 300
    results: dict[str, list[str]] = defaultdict(list)
    unexpected: list[str] = []
    known_seen: dict[str, list[str]] = defaultdict(list)
    empty: list[str] = []
    started = time.monotonic()

    # When every query runs on both, as instant and range queries
    for case in cases:
        problem = _run_case(engines, case, empty)
        if problem and case.query in KNOWN_DIFFERENCES:
            known_seen[KNOWN_DIFFERENCES[case.query]].append(case.query)
            results[case.construct].append("known")
        elif problem:
            unexpected.append(f"[{case.construct}] {case.query}\n    {problem}")
            results[case.construct].append("fail")
        else:
            results[case.construct].append("pass")

    # Then the pass rates are reported, and nothing but the documented differences mismatches
    elapsed = time.monotonic() - started
    seen = {q for queries in known_seen.values() for q in queries}
    now_agree = sorted(q for q in KNOWN_DIFFERENCES if q not in seen and q in {c.query for c in cases})
    report = "\n".join(
        [
            _table(results),
            f"{len(cases)} queries, {len(cases) * (len(INSTANT_TIMES) + len(RANGES))} evaluations per engine "
            f"in {elapsed:.1f}s; {len(empty)} agree on an empty result at every evaluation: {empty}",
            *(f"KNOWN ({len(qs)}) {reason}:\n    " + "\n    ".join(qs) for reason, qs in known_seen.items()),
            *(f"KNOWN DIFFERENCE NOW AGREES (remove it from the list): {q}" for q in now_agree),
            *(f"MISMATCH {u}" for u in unexpected),
        ]
    )
    print("\n" + report)
    (tmp_path / "differential.txt").write_text(report + "\n")
    assert not unexpected, report
    # and the list of known differences holds only queries that still differ
    assert not now_agree, report
    # and the corpus compares data, not mostly empty answers
    assert len(empty) <= len(cases) // 20, report


def test_format_query_matches_prometheus(engines: Engines) -> None:
    # Given every corpus query and queries with number literals and layouts the corpus lacks
    queries = [case.query for case in corpus()] + FORMAT_ONLY
    mismatches = []
    # When Prometheus and NovaCron format each
    for query in queries:
        expected = engines.prometheus.get("/api/v1/format_query", {"query": query})
        _, actual = prom_api.format_query({"query": query})
        # Then both print the same text, or both refuse it (parse error messages differ in wording)
        same = actual == expected if expected["status"] == "success" else actual["status"] == "error"
        if not same:
            mismatches.append(f"{query!r}\n    prometheus: {expected}\n    novacron:   {actual}")
    assert not mismatches, f"{len(mismatches)} of {len(queries)} differ:\n" + "\n".join(mismatches)
