"""The differential corpus: PromQL queries, each tagged with the construct it exercises.

Hand-written queries cover every construct; generated ones combine functions, ranges and
aggregations over the metrics of ``data.py``. Times written into queries (``@``) end in ``.5`` like
every evaluation time, so no window edge falls on a sample or a subquery point.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.differential.data import eval_time


@dataclass(frozen=True)
class Case:
    """One corpus query and the construct it is filed under in the pass-rate table."""

    construct: str
    query: str


REQ = "http_requests_total"
BUCKET = "http_request_duration_seconds_bucket"
COUNT = "http_request_duration_seconds_count"
MEM = "node_memory_used_bytes"
TEMP = "node_temperature_celsius"
GAPPY = "batch_queue_depth"
STALE_COUNTER = "ephemeral_jobs_total"
STALE_GAUGE = "ephemeral_load"
AT = eval_time(3600)  # an @ time inside the data

_HAND: dict[str, list[str]] = {
    "selector": [
        REQ,
        MEM,
        "up",
        BUCKET,
        "http_request_duration_seconds_sum",
        "{__name__=~'node_.*'}",
        "{job='api', __name__='up'}",
        "no_such_metric",
    ],
    "matchers": [
        f"{REQ}{{code='200'}}",
        f"{REQ}{{code!='200', method='get'}}",
        f"{REQ}{{code=~'5..'}}",
        f"{REQ}{{code!~'2..|4..'}}",
        f"{REQ}{{instance=~'10\\\\.0\\\\.0\\\\.[12]:9100', job='worker'}}",
        f"{MEM}{{job=~'api|worker', instance!='10.0.0.1:9100'}}",
        f"{REQ}{{code=~''}}",
        f"{REQ}{{nonexistent=''}}",
        f"{REQ}{{method=~'GET|post'}}",
        f"{BUCKET}{{le='+Inf'}}",
        f"{BUCKET}{{le=~'0\\\\..*'}}",
    ],
    "offset": [
        f"{MEM} offset 5m",
        f"{MEM} offset 1h",
        f"rate({REQ}[5m] offset 10m)",
        f"{TEMP} offset -5m",
        f"sum(rate({REQ}[5m] offset 30m)) by (job)",
        f"{MEM} - {MEM} offset 1m",
    ],
    "at": [
        f"{MEM} @ {AT}",
        f"rate({REQ}[5m] @ {AT})",
        f"{MEM} @ start()",
        f"{MEM} @ end()",
        f"sum(rate({REQ}[5m] @ end())) by (code)",
        f"{MEM} @ {AT} offset 10m",
        f"{TEMP} - {TEMP} @ start()",
    ],
    "subquery": [
        f"max_over_time(rate({REQ}[5m])[30m:1m])",
        f"avg_over_time(sum by (job) (rate({REQ}[5m]))[20m:2m])",
        f"min_over_time({TEMP}[10m:30s])",
        f"rate({REQ}[5m:1m])",
        f"max_over_time(deriv({TEMP}[10m])[15m:])",
        f"sum_over_time({MEM}[5m:1m] offset 5m)",
        f"count_over_time({GAPPY}[30m:1m])",
        f"max_over_time(max_over_time({TEMP}[5m])[10m:1m])",
    ],
    "lookback": [
        GAPPY,
        f"{GAPPY} offset 3m",
        f"count({GAPPY})",
        f"{GAPPY} > 0",
        f"timestamp({GAPPY})",
        f"last_over_time({GAPPY}[10m])",
    ],
    "staleness": [
        STALE_COUNTER,
        STALE_GAUGE,
        f"count({STALE_COUNTER})",
        f"rate({STALE_COUNTER}[5m])",
        f"count_over_time({STALE_COUNTER}[10m])",
        f"last_over_time({STALE_GAUGE}[10m])",
        f"timestamp({STALE_GAUGE})",
        f"sum({STALE_GAUGE}) by (instance)",
        f"changes({STALE_GAUGE}[15m])",
        f"resets({STALE_COUNTER}[1h])",
    ],
    "histogram_quantile": [
        f"histogram_quantile(0.9, rate({BUCKET}[5m]))",
        f"histogram_quantile(0.5, sum by (le) (rate({BUCKET}[5m])))",
        f"histogram_quantile(0.99, sum by (job, le) (rate({BUCKET}[10m])))",
        f"histogram_quantile(0, sum by (le) (rate({BUCKET}[5m])))",
        f"histogram_quantile(1, sum by (le) (rate({BUCKET}[5m])))",
        f"histogram_quantile(1.5, sum by (le) (rate({BUCKET}[5m])))",
        f"histogram_quantile(-1, sum by (le) (rate({BUCKET}[5m])))",
        f"histogram_quantile(0.75, {BUCKET})",
        f"histogram_quantile(0.9, sum by (le) (increase({BUCKET}[1h])))",
        f"histogram_quantile(0.5, sum by (le, instance) (rate({BUCKET}{{le!='0.1'}}[5m])))",
    ],
    "binop_arith": [
        f"{MEM} / 1024 / 1024",
        f"{MEM} * 2 + 1",
        f"{TEMP} % 3",
        f"{TEMP} ^ 2",
        "2 ^ 3 ^ 2",
        f"-{TEMP}",
        f"1 - {TEMP} / 100",
        f"{MEM} / {MEM} offset 10m",
        f"{TEMP} / 0",
        f"-{TEMP} / 0",
        f"0 / 0 * {TEMP}",
        "1 + 2 * 3 - 4 / 2",
        "(1 + 2) * 3",
        "-2 ^ 2",
        f"{TEMP} atan2 {TEMP} offset 5m",
    ],
    "binop_compare": [
        f"{TEMP} > 20",
        f"{TEMP} >= bool 20",
        f"{TEMP} < 19",
        f"{TEMP} != 20",
        "up == 0",
        "up == bool 1",
        f"20 < {TEMP}",
        "1 < bool 2",
        f"{TEMP} > {TEMP} offset 5m",
        f"{TEMP} > bool {TEMP} offset 5m",
    ],
    "binop_matching": [
        f"sum by (job, instance) (rate({REQ}[5m])) / on (job, instance) {MEM}",
        f"rate({REQ}{{code='500'}}[5m]) / ignoring (code) rate({REQ}{{code='200'}}[5m])",
        f"rate({REQ}[5m]) / ignoring (code) group_left sum without (code) (rate({REQ}[5m]))",
        f"sum without (code) (rate({REQ}[5m])) / ignoring (code) group_right rate({REQ}[5m])",
        f"rate({REQ}[5m]) * on (job, instance) group_left (le) {MEM}",
        f"{MEM} * on (instance, job) group_left up",
        f"{MEM} + on (instance) group_left {TEMP}",
        f"{TEMP} - {MEM}",
        f"rate({BUCKET}[5m]) / ignoring (le) group_left rate(http_request_duration_seconds_count[5m])",
        f"{TEMP} > on (job, instance) group_left {TEMP} offset 5m",
    ],
    "binop_set": [
        f"{TEMP} and {TEMP} > 20",
        f"{TEMP} or {MEM}",
        f"{TEMP} unless {TEMP} > 20",
        f"{MEM} and on (instance) up == 1",
        f"{MEM} unless on (job, instance) up == 0",
        f"{GAPPY} or {TEMP}",
        f"{TEMP} and ignoring (job) {TEMP} < 20",
        f"sum by (job) ({MEM}) or on (job) {TEMP}",
        f"vector(1) or {TEMP}",
        f"({TEMP} > 20) or ({TEMP} < 18) unless {TEMP} > 25",
    ],
    "precedence": [
        f"{TEMP} + {TEMP} * 2 > 30 and up == 1",
        f"{TEMP} > 20 or {TEMP} < 15 and {TEMP} > 0",
        # avg is a running mean in Prometheus, so ``sum / count - avg`` would compare rounding noise
        f"sum({MEM}) / count({MEM}) + avg({MEM}) * 2",
        "2 * 3 ^ 2 % 5",
    ],
    "aggr_sum": [f"sum({REQ})", f"sum by (code) (rate({REQ}[5m]))", f"sum without (instance, method) ({REQ})"],
    "aggr_avg": [f"avg({TEMP})", f"avg by (job) ({MEM})", f"avg without (code) (rate({REQ}[5m]))"],
    "aggr_min_max": [f"min({TEMP})", f"max by (job) ({TEMP})", f"min without (instance) (rate({REQ}[5m]))"],
    "aggr_count": [f"count({REQ})", f"count by (code) ({REQ} > 1000)", "count without (instance) (up)"],
    "aggr_group": [f"group({REQ})", f"group by (code, method) ({REQ})"],
    "aggr_stddev_stdvar": [f"stddev({TEMP})", f"stdvar by (job) ({TEMP})", f"stddev by (job) (rate({REQ}[5m]))"],
    "aggr_topk_bottomk": [
        f"topk(3, {TEMP})",
        f"bottomk(2, {TEMP})",
        f"topk by (job) (1, {MEM})",
        f"bottomk without (instance) (1, rate({REQ}[5m]))",
        f"topk(100, {TEMP})",
        f"topk(0, {TEMP})",
    ],
    "aggr_quantile": [
        f"quantile(0.5, {TEMP})",
        f"quantile by (job) (0.9, {TEMP})",
        f"quantile without (instance) (0.25, rate({REQ}[5m]))",
        f"quantile(0, {TEMP})",
        f"quantile(1.5, {TEMP})",
    ],
    "aggr_count_values": [
        "count_values('value', up)",
        "count_values by (job) ('state', up)",
        f"count_values('le_count', {BUCKET}{{le='+Inf'}} > 0 < 0)",
        f"count_values('rounded', round({TEMP}))",
    ],
    "fn_rate_family": [
        f"rate({REQ}[5m])",
        f"irate({REQ}[5m])",
        f"increase({REQ}[1h])",
        f"rate({REQ}{{code='500'}}[30m])",
        f"increase({REQ}{{code='500'}}[2h])",
        f"rate({REQ}[30s])",
        f"irate({REQ}[1m])",
        f"rate({GAPPY}[5m])",
        f"delta({TEMP}[10m])",
        f"idelta({TEMP}[5m])",
        f"deriv({TEMP}[10m])",
        f"deriv({MEM}[30m])",
        f"predict_linear({TEMP}[30m], 600)",
        f"predict_linear({MEM}[1h], 3600)",
        f"resets({REQ}[1h])",
        "changes(up[30m])",
    ],
    "fn_over_time": [
        f"avg_over_time({TEMP}[10m])",
        f"sum_over_time({TEMP}[10m])",
        f"count_over_time({TEMP}[10m])",
        f"min_over_time({TEMP}[10m])",
        f"max_over_time({TEMP}[10m])",
        f"last_over_time({TEMP}[10m])",
        f"present_over_time({GAPPY}[5m])",
        f"stddev_over_time({TEMP}[10m])",
        f"stdvar_over_time({TEMP}[10m])",
        f"quantile_over_time(0.9, {TEMP}[10m])",
        f"quantile_over_time(0, {TEMP}[10m])",
        f"quantile_over_time(2, {TEMP}[10m])",
        f"absent_over_time({GAPPY}[1m])",
        "absent_over_time(nonexistent[5m])",
    ],
    "fn_absent": [
        "absent(nonexistent)",
        "absent(nonexistent{job='api', code=~'5..'})",
        f"absent({TEMP})",
        "absent(sum(nonexistent))",
        f"absent({GAPPY}{{instance='10.0.0.1:9100'}})",
    ],
    "fn_math": [
        f"abs({TEMP} - 20)",
        f"ceil({TEMP})",
        f"floor({TEMP})",
        f"round({TEMP})",
        f"round({TEMP}, 0.5)",
        f"round({TEMP}, 5)",
        f"exp({TEMP} / 10)",
        f"sqrt({MEM})",
        f"ln({MEM})",
        f"log2({MEM})",
        f"log10({MEM})",
        f"sgn({TEMP} - 20)",
        f"sqrt({TEMP} - 20)",
        f"ln({TEMP} - 20)",
    ],
    "fn_trig": [
        f"sin({TEMP})",
        f"cos({TEMP})",
        f"tan({TEMP})",
        f"asin({TEMP} / 100)",
        f"acos({TEMP} / 100)",
        f"atan({TEMP})",
        f"sinh({TEMP} / 10)",
        f"cosh({TEMP} / 10)",
        f"tanh({TEMP})",
        f"asinh({TEMP})",
        f"acosh({TEMP})",
        f"atanh({TEMP} / 100)",
        f"deg({TEMP})",
        f"rad({TEMP})",
        "pi()",
    ],
    "fn_clamp": [
        f"clamp({TEMP}, 18, 22)",
        f"clamp_min({TEMP}, 20)",
        f"clamp_max({TEMP}, 20)",
        f"clamp({TEMP}, 22, 18)",
    ],
    "fn_labels": [
        f"label_replace({TEMP}, 'host', '$1', 'instance', '(.*):.*')",
        f"label_replace({TEMP}, 'job', '', 'job', '.*')",
        f"label_replace({TEMP}, 'x', '$1-$2', 'instance', '10\\\\.0\\\\.(\\\\d)\\\\.(\\\\d):.*')",
        f"label_replace({TEMP}, 'x', 'y', 'nonexistent', '(.*)')",
        f"label_join({TEMP}, 'both', '/', 'job', 'instance')",
        f"label_join({TEMP}, 'empty', ',')",
        f"label_join({TEMP}, 'job', '-', 'job', 'job')",
    ],
    "fn_sort": [
        f"sort({TEMP})",
        f"sort_desc({TEMP})",
        f"sort(sum by (code) (rate({REQ}[5m])))",
    ],
    "fn_time": [
        "time()",
        f"timestamp({TEMP})",
        f"time() - timestamp({TEMP})",
        "vector(time())",
        "scalar(sum(up))",
        f"scalar({TEMP})",
        "vector(1)",
        f"{TEMP} * scalar(up{{instance='10.0.0.1:9100', job='api'}})",
    ],
    "fn_date": [
        "year()",
        "month()",
        "day_of_month()",
        "day_of_year()",
        "day_of_week()",
        "days_in_month()",
        "hour()",
        "minute()",
        f"hour(timestamp({TEMP}))",
        f"minute(timestamp({TEMP}))",
        "year(vector(1700000000))",
        "days_in_month(vector(1709251200))",
    ],
    "scalar_literals": ["1", "-1.5", "1e3", "NaN", "Inf", "-Inf", "0x10", "+5"],
    "at_subquery_offset": [
        f"max_over_time({TEMP}[10m:1m] @ {AT})",
        f"max_over_time({TEMP}[10m:1m] offset 20m)",
        f"rate({REQ}{{code='404'}}[5m] @ {AT} offset 5m)",
        f"sum_over_time(sum({MEM})[30m:5m] @ end())",
        f"min_over_time(rate({REQ}{{code='200'}}[2m])[10m:15s])",
        f"{TEMP} @ {AT} > {TEMP}",
    ],
    "misc": [
        "nonexistent or vector(0)",
        "sum(nonexistent) or vector(0)",
        "scalar(nonexistent)",
        f"-sum by (job) ({TEMP})",
        "1 == bool 1",
        "2 > bool 1 + 1",
        f"timestamp({TEMP} offset 10m)",
        f"sgn(deriv({TEMP}[5m]))",
        f"absent_over_time({STALE_GAUGE}{{instance='10.0.0.2:9100'}}[5m])",
        f"quantile_over_time(0.5, {STALE_GAUGE}[20m])",
        f"changes({GAPPY}[20m])",
        f"count_values('code', {REQ}{{method='get', instance='10.0.0.1:9100', job='api'}} * 0 + 200)",
        f"sum by (le) (rate({BUCKET}[5m])) / ignoring (le) group_left sum(rate({COUNT}[5m]))",
        f"histogram_quantile(0.5, sum by (le) (rate({BUCKET}{{le!='+Inf'}}[5m])))",
        f"topk(1, {TEMP}) by (job)",
        "group_left_unused{job='x'} or on () vector(1)",
        f"predict_linear({REQ}{{code='500'}}[10m], 300)",
    ],
}

_RANGE_FUNCTIONS = (
    "rate",
    "increase",
    "irate",
    "delta",
    "idelta",
    "deriv",
    "resets",
    "changes",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "count_over_time",
    "last_over_time",
    "stddev_over_time",
)
_RANGES = ("1m", "5m", "17m")
_METRICS_FOR_FUNCTIONS = (f"{REQ}{{code='500'}}", TEMP, STALE_COUNTER, GAPPY)
_AGGREGATIONS = ("sum", "avg", "max", "min", "count", "stddev")
_GROUPINGS = ("", " by (job)", " without (instance)")


def _generated() -> list[Case]:
    out = []
    for fn in _RANGE_FUNCTIONS:
        for rng in _RANGES:
            for metric in _METRICS_FOR_FUNCTIONS:
                out.append(Case(f"gen_{fn}", f"{fn}({metric}[{rng}])"))
    for agg in _AGGREGATIONS:
        for grouping in _GROUPINGS:
            for fn in ("rate", "increase", "max_over_time"):
                out.append(Case(f"gen_aggr_{agg}", f"{agg}{grouping} ({fn}({REQ}[5m]))"))
    for op in ("+", "-", "*", "/", ">", "<=", "==", "and", "or", "unless"):
        out.append(Case("gen_binop_vector", f"rate({REQ}[5m]) {op} rate({REQ}[5m] offset 5m)"))
        out.append(
            Case("gen_binop_scalar", f"{TEMP} {op} 20" if op not in ("and", "or", "unless") else f"{TEMP} {op} up")
        )
    # 2.42's holt_winters is Prometheus 3's double_exponential_smoothing: NovaCron knows both names
    for args in ("0.5, 0.5", "0.1, 0.9", "0.9, 0.1"):
        for metric, rng in ((TEMP, "10m"), (MEM, "30m"), (GAPPY, "5m")):
            out.append(Case("fn_holt_winters", f"holt_winters({metric}[{rng}], {args})"))
    return out


# format_query beyond the corpus: number literals as Go prints them, and layouts the corpus lacks.
FORMAT_ONLY = [
    "1700000000 + up",
    "up > 1e21",
    "up * 0.000001",
    "1e-5 < up",
    "up > 123456789",
    "up > 1234567.5",
    "up > 100000",
    "up > 1000000",
    "up + Inf",
    "up - Inf",
    "up - -Inf",
    "NaN",
    "0x10 + up",
    "-5",
    "-up",
    "up * -0.5",
    "(1 + 2) * 3",
    'up{a="1e21"} + 1e21',
    "up @ 1700000000",
    "holt_winters(up[5m], 0.5, 0.5) + `holt_winters(`",
    "sum by (Inf) (up)",
    'sum by (job) (rate(http_requests_total{code=~"5..",job!="batch"}[5m])) / ignoring (code) group_left sum by (job) '
    "(rate(http_requests_total[5m])) > 0.01 and on (job) up == 1",
]


def corpus() -> list[Case]:
    """Every query of the corpus, hand-written first."""
    hand = [Case(construct, query) for construct, queries in _HAND.items() for query in queries]
    unique: dict[str, Case] = {}
    for case in hand + _generated():
        unique.setdefault(case.query, case)  # a query generated again keeps its hand-written tag
    return list(unique.values())
