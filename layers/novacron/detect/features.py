"""The features of a service's multivariate model: one PromQL expression per feature, one series each.

A service's features are derived from the metric names its series carry and the label names seen on
each metric (``service_features``). Every expression selects the service by one label (``service`` by
default; ``job`` works too) and aggregates across instances with ``sum``/``avg`` without ``by``, so it
returns exactly one series.

Rules, per metric name:

* ``*_bucket``, ``*_created``, ``*_info``, ``*_start_time_seconds``/``*_timestamp_seconds`` and metrics
  with a ``quantile`` label are never features (histogram buckets carry no more than their sum and
  count; timestamps jump on every restart); nor are ``ALERTS``/``ALERTS_FOR_STATE``, which the alert
  function writes back with the alert's labels, ``service`` included.
* ``X_sum`` + ``X_count`` -> ``latency mean (X)``: ``sum(rate(X_sum[5m])) / sum(rate(X_count[5m]))``
  (kind ``latency``; the ``X_count`` rate itself duplicates the request rate and is not a feature).
* ``process_cpu_seconds_total`` -> ``cpu``: cores busy, ``sum(rate(...[5m]))`` (kind ``resource``).
* ``*_errors_total`` beside a ``*_requests_total`` of the same prefix -> ``<prefix> error ratio``:
  ``sum(rate(errors)) / sum(rate(requests))`` (kind ``errors``; the raw error rate is not a feature).
* other counters (``*_total``, and a few well-known exporter counters without the suffix, e.g.
  PostgreSQL's ``pg_stat_database_xact_commit``) -> ``sum(rate(m[5m]))``: ``request rate`` for
  ``http_requests_total``, ``<name> rate`` otherwise (kind ``errors`` when the name says error, fail
  or rollback, ``requests`` otherwise). A counter with a ``code``, ``status`` or ``status_code`` label
  also gives its 5xx share, ``sum(rate(m{..,code=~"5.."}[5m])) / sum(rate(m{..}[5m]))``: ``error ratio``
  for ``http_requests_total``, ``<name> 5xx ratio`` otherwise (kind ``errors``).
* gauges -> ``avg(m)``: ``memory`` for ``process_resident_memory_bytes``, ``instances up`` for ``up``,
  the metric name otherwise (kind ``resource``).

Some features only matter upwards (:func:`high_only`): a process's resident memory (``memory``) drops
by a quarter on every restart -- random ones, an instance coming back after being down, an OOM kill --
and refills over the next 15-30 minutes as caches warm; a low value is the aftermath of a restart
(which ``instances up`` and the error features see when it hurts), while a fault shows as growth
(a leak, pressure). Service models count values below such a feature's usual level as usual.

A plain rate (``sum(rate(m{..}[5m]))``: request, CPU and other counter rates) is not a measurement over a
window in which an instance restarted: what that instance counted between its last scrape and the restart
is lost with its counter, so the sum dips by up to its share for the five minutes the window holds the
reset -- on every rate feature at once, which a model reads as a drop in traffic -- and for one step more
(a window whose first sample follows the reset is capped by Prometheus's rule of not extrapolating a
counter below zero). :func:`feature_matrix` therefore leaves such a feature missing (NaN) at the steps
where ``sum(resets(m{..}[6m]))`` is positive (:func:`reset_guard`); the model imputes it with its usual
value. Ratios (error ratio, latency mean)
lose counts in numerator and denominator alike and are kept.

At most ``max_features`` are kept. Candidates are ranked within their kind (the well-known ones above
first, then by name), and taken round-robin over the kinds in the order requests, errors, latency,
resource -- the first of each kind, then the second of each kind, and so on -- so that a service with
many counters still keeps its latency and resources. The result is sorted by kind (in that order),
then rank: the same metric set always gives the same features in the same order.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from novacron.promql import Engine, PromQLError

log = logging.getLogger(__name__)

Floats = npt.NDArray[np.float64]

KINDS = ("requests", "errors", "latency", "resource")
RATE_WINDOW = "5m"
CODE_LABELS = ("code", "status_code", "status")
SERVER_ERRORS = "5.."
# Exporter counters that do not follow the ``_total`` convention.
KNOWN_COUNTER_PREFIXES = ("pg_stat_database_xact_", "pg_stat_database_tup_", "pg_stat_database_blks_")
NEVER_SUFFIXES = ("_bucket", "_created", "_info", "_start_time_seconds", "_timestamp_seconds")
# The alert function's own output: alert state, not the service's behaviour (and a feature of it would feed
# alerts back into anomalies, which are alerts again).
NEVER_NAMES = frozenset({"ALERTS", "ALERTS_FOR_STATE"})
ERROR_WORDS = ("error", "fail", "rollback")
WELL_KNOWN_NAMES = ("request rate", "error ratio", "cpu", "memory", "instances up")
# Features for which only values above usual can be a fault sign (module docstring).
HIGH_ONLY_NAMES = frozenset({"memory"})
# ``sum(rate(<selector>[<range>]))`` alone (no parentheses inside: a ratio of two rates is no plain rate).
_PLAIN_RATE = re.compile(r"sum\(rate\((?P<selector>[^()]+)\[(?P<range>[^\]]+)\]\)\)")
# The reset guard's window: the rate window and a scrape more, since a rate whose first sample follows a
# reset is capped too (Prometheus does not extrapolate a counter below zero).
RESET_WINDOW = {RATE_WINDOW: "6m"}


@dataclass(frozen=True)
class ServiceFeature:
    """One column of a service model: a stable human-readable name, its kind and its PromQL."""

    name: str  # e.g. "request rate", "error ratio", "latency mean (http_request_duration_seconds)", "cpu"
    kind: str  # "requests" | "errors" | "latency" | "resource"
    expr: str  # PromQL returning one series for the service

    def to_json(self) -> dict[str, str]:
        """A JSON-ready dict."""
        return {"name": self.name, "kind": self.kind, "expr": self.expr}

    @classmethod
    def from_json(cls, data: Mapping[str, str]) -> ServiceFeature:
        """The inverse of :meth:`to_json`."""
        return cls(name=data["name"], kind=data["kind"], expr=data["expr"])


def high_only(feature: ServiceFeature) -> bool:
    """Whether only values above ``feature``'s usual level can be a fault sign (``memory``: see the module
    docstring); a model counts lower values as usual."""
    return feature.name in HIGH_ONLY_NAMES


def reset_guard(feature: ServiceFeature) -> str | None:
    """For a plain rate feature, the PromQL counting the counter resets in its window (a restart there makes
    the rate unknown, see the module docstring); None for other features."""
    match = _PLAIN_RATE.fullmatch(feature.expr)
    if match is None:
        return None
    return f"sum(resets({match['selector']}[{RESET_WINDOW.get(match['range'], match['range'])}]))"


def escape_label_value(value: str) -> str:
    """A label value as a PromQL double-quoted string body: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def service_selector(metric: str, service: str, label: str = "service", extra: str = "") -> str:
    """``metric{label="service"}`` with the value escaped, plus ``extra`` matchers (e.g. ``code=~"5.."``)."""
    matchers = f'{label}="{escape_label_value(service)}"'
    if extra:
        matchers += f",{extra}"
    return f"{metric}{{{matchers}}}"


def _rate(metric: str, service: str, label: str, extra: str = "") -> str:
    return f"sum(rate({service_selector(metric, service, label, extra)}[{RATE_WINDOW}]))"


def _is_counter(name: str) -> bool:
    return name.endswith("_total") or name.startswith(KNOWN_COUNTER_PREFIXES)


def _counter_kind(name: str) -> str:
    return "errors" if any(word in name for word in ERROR_WORDS) else "requests"


def _candidates(service: str, metrics: Mapping[str, frozenset[str]], label: str) -> list[ServiceFeature]:
    found: list[ServiceFeature] = []
    names = set(metrics)
    for name in sorted(names):
        labels = metrics[name]
        if name.endswith(NEVER_SUFFIXES) or name in NEVER_NAMES or "quantile" in labels:
            continue
        if name.endswith("_sum") and name[: -len("_sum")] + "_count" in names:
            base = name[: -len("_sum")]
            expr = f"{_rate(name, service, label)} / {_rate(base + '_count', service, label)}"
            found.append(ServiceFeature(f"latency mean ({base})", "latency", expr))
            continue
        if (name.endswith("_count") and name[: -len("_count")] + "_sum" in names) or (
            name.endswith("_sum") and name[: -len("_sum")] + "_count" not in names
        ):
            continue
        if name == "process_cpu_seconds_total":
            found.append(ServiceFeature("cpu", "resource", _rate(name, service, label)))
        elif name.endswith("_errors_total") and name[: -len("_errors_total")] + "_requests_total" in names:
            prefix = name[: -len("_errors_total")]
            expr = f"{_rate(name, service, label)} / {_rate(prefix + '_requests_total', service, label)}"
            found.append(ServiceFeature(f"{prefix} error ratio", "errors", expr))
        elif _is_counter(name):
            short = name.removesuffix("_total")
            rate_name = "request rate" if name == "http_requests_total" else f"{short} rate"
            found.append(ServiceFeature(rate_name, _counter_kind(name), _rate(name, service, label)))
            code = next((c for c in CODE_LABELS if c in labels), None)
            if code is not None:
                share = "error ratio" if name == "http_requests_total" else f"{short} 5xx ratio"
                errors = _rate(name, service, label, f'{code}=~"{SERVER_ERRORS}"')
                found.append(ServiceFeature(share, "errors", f"{errors} / {_rate(name, service, label)}"))
        else:
            gauge_name = {"process_resident_memory_bytes": "memory", "up": "instances up"}.get(name, name)
            found.append(ServiceFeature(gauge_name, "resource", f"avg({service_selector(name, service, label)})"))
    return found


def _rank(feature: ServiceFeature) -> tuple[int, int, str]:
    """Well-known features first (HTTP before the rest), then by name."""
    known = feature.name in WELL_KNOWN_NAMES or feature.name.startswith("latency mean (http_")
    return (0 if known else 1, 0 if "http_" in feature.expr else 1, feature.name)


def service_features(
    service: str, metrics: Mapping[str, frozenset[str]], label: str = "service", max_features: int = 12
) -> tuple[ServiceFeature, ...]:
    """The features of ``service`` from its metric names -> label names (see the module docstring).

    Returns at most ``max_features`` features with unique names, grouped by kind in the order
    requests, errors, latency, resource; empty when no metric qualifies.
    """
    if max_features < 1:
        raise ValueError(f"max_features must be at least 1, got {max_features}")
    by_kind: dict[str, list[ServiceFeature]] = {kind: [] for kind in KINDS}
    seen: set[str] = set()
    for feature in sorted(_candidates(service, metrics, label), key=_rank):
        if feature.name not in seen:
            seen.add(feature.name)
            by_kind[feature.kind].append(feature)
    chosen: list[tuple[int, int, ServiceFeature]] = []
    depth = 0
    while len(chosen) < max_features and any(depth < len(fs) for fs in by_kind.values()):
        for k, kind in enumerate(KINDS):
            if depth < len(by_kind[kind]) and len(chosen) < max_features:
                chosen.append((k, depth, by_kind[kind][depth]))
        depth += 1
    return tuple(feature for _, _, feature in sorted(chosen, key=lambda item: (item[0], item[1])))


def feature_names(features: tuple[ServiceFeature, ...]) -> tuple[str, ...]:
    """The names of ``features``, in order (the column names of a feature matrix)."""
    return tuple(f.name for f in features)


def feature_matrix(
    engine: Engine,
    features: Sequence[ServiceFeature],
    start_ms: int,
    end_ms: int,
    step_ms: int,
    cache: dict[str, npt.NDArray[np.float64]] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Evaluation times ``start_ms, start_ms + step_ms, … <= end_ms`` and one column per feature (NaN where
    the expression has no value, or is not finite: a 0/0 ratio at an idle minute; and where a plain rate's
    window holds a counter reset, see :func:`reset_guard`).

    A feature whose expression fails or returns more than one series is all NaN (logged). ``cache`` (by
    expression) lets several matrices over the same range share the queries.
    """
    times = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
    matrix = np.full((times.size, len(features)), np.nan)
    cache = {} if cache is None else cache
    for j, feature in enumerate(features):
        if feature.expr not in cache:
            column = _evaluate(engine, feature.name, feature.expr, start_ms, end_ms, step_ms)
            guard = reset_guard(feature)
            if guard is not None:
                resets = _evaluate(engine, f"{feature.name} resets", guard, start_ms, end_ms, step_ms)
                column[resets > 0] = np.nan  # a restart in the window: the rate is not known
            cache[feature.expr] = column
        matrix[:, j] = cache[feature.expr]
    return times, matrix


def _evaluate(engine: Engine, name: str, expr: str, start_ms: int, end_ms: int, step_ms: int) -> Floats:
    """One expression's single series at the steps (NaN where it has no finite value; all NaN, logged, when
    it fails or returns more than one series)."""
    column = np.full((end_ms - start_ms) // step_ms + 1, np.nan)
    try:
        result = engine.range(expr, start_ms, end_ms, step_ms)
    except PromQLError as exc:
        log.warning("feature %r not evaluated: %s", name, exc)
        return column
    if len(result.series) > 1:
        log.warning("feature %r returns %d series, not one: left out", name, len(result.series))
    elif result.series:
        series = result.series[0]
        column[(series.timestamps - start_ms) // step_ms] = series.values
    column[~np.isfinite(column)] = np.nan
    return column
