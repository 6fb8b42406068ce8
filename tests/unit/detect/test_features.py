"""Service features: which PromQL expressions a service's metric set gives."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.detect.features import ServiceFeature, feature_matrix, high_only, reset_guard, service_features
from novacron.promql import Engine, parse
from novacron.query.memory_reader import InMemorySeriesReader
from novacron.series import METRIC_NAME
from novacron.simulate import Estate, EstateSimulator

START_S = 1_767_571_200


def simulated_metrics(service: str) -> dict[str, frozenset[str]]:
    """The metric names -> label names of one service of the simulated shop (one scrape)."""
    scrape = EstateSimulator(Estate(seed=0)).scrape(float(START_S))
    found: dict[str, set[str]] = {}
    for labels, _ in scrape.samples:
        as_dict = dict(labels)
        if as_dict["service"] == service:
            found.setdefault(as_dict[METRIC_NAME], set()).update(n for n in as_dict if n != METRIC_NAME)
    return {name: frozenset(names) for name, names in found.items()}


def test_simulated_app_service_gives_the_expected_features() -> None:
    # Given the metric set of the simulated checkout service
    metrics = simulated_metrics("checkout")
    # When its features are derived
    features = service_features("checkout", metrics)
    # Then they are, in kind order, exactly these
    assert [(f.name, f.kind) for f in features] == [
        ("request rate", "requests"),
        ("rpc_client_requests rate", "requests"),
        ("error ratio", "errors"),
        ("rpc_client error ratio", "errors"),
        ("latency mean (http_request_duration_seconds)", "latency"),
        ("cpu", "resource"),
        ("instances up", "resource"),
        ("memory", "resource"),
    ]
    assert features[2].expr == (
        'sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m])) / '
        'sum(rate(http_requests_total{service="checkout"}[5m]))'
    )


@pytest.mark.parametrize("service", ["frontend", "redis-cart", "postgres", "payment"])
def test_every_expression_parses_and_never_uses_buckets(service: str) -> None:
    # Given a simulated service's metrics, histogram buckets included
    metrics = simulated_metrics(service)
    # When its features are derived
    features = service_features(service, metrics)
    # Then each is valid PromQL, aggregated to one series, with unique names and no _bucket
    assert features
    for feature in features:
        parse(feature.expr)
        assert "_bucket" not in feature.expr
        assert feature.expr.startswith(("sum(", "avg("))
    assert len({f.name for f in features}) == len(features)


def test_the_alert_functions_output_is_never_a_feature() -> None:
    # Given a service's metrics plus the ALERTS series the alert function writes back with its labels
    metrics = simulated_metrics("email") | {
        "ALERTS": frozenset({"service", "alertname", "alertstate"}),
        "ALERTS_FOR_STATE": frozenset({"service", "alertname"}),
    }
    # When its features are derived
    names = [f.name for f in service_features("email", metrics)]
    # Then neither is one: alert state is not the service's behaviour
    assert names == [f.name for f in service_features("email", simulated_metrics("email"))]
    assert not {"ALERTS", "ALERTS_FOR_STATE"} & set(names)


def test_label_values_are_escaped_and_the_label_is_configurable() -> None:
    # Given a service whose name holds a quote and a backslash, selected by job
    name = 'we"ird\\svc'
    # When its features are derived
    features = service_features(name, {"up": frozenset({"job"})}, label="job")
    # Then the selector escapes the value and parses
    assert features[0].expr == 'avg(up{job="we\\"ird\\\\svc"})'
    parse(features[0].expr)


def test_the_cap_keeps_every_kind() -> None:
    # Given a service with many counters, one latency histogram and a gauge
    metrics = {f"thing{i}_total": frozenset() for i in range(20)}
    metrics |= {"rpc_seconds_sum": frozenset(), "rpc_seconds_count": frozenset(), "queue_depth": frozenset()}
    # When at most 4 features are kept
    features = service_features("svc", metrics, max_features=4)
    # Then the cap holds and latency and the gauge survive beside the counters
    assert len(features) == 4
    assert [f.kind for f in features] == ["requests", "requests", "latency", "resource"]
    assert features[2].name == "latency mean (rpc_seconds)"


def test_zero_cap_is_refused() -> None:
    # Given a cap of 0 / When features are derived / Then a ValueError
    with pytest.raises(ValueError, match="max_features"):
        service_features("svc", {"up": frozenset()}, max_features=0)


def test_feature_round_trips_through_json() -> None:
    # Given a feature / When it goes to JSON and back / Then nothing changes
    feature = ServiceFeature("cpu", "resource", 'sum(rate(process_cpu_seconds_total{service="a"}[5m]))')
    assert ServiceFeature.from_json(feature.to_json()) == feature


def test_feature_matrix_evaluates_each_expression_per_step() -> None:
    # Given two instances of a service with a gauge, and a step without data
    reader = InMemorySeriesReader()
    times = np.arange(0, 600_000, 60_000, dtype=np.int64)
    for pod, value in (("a", 1.0), ("b", 3.0)):
        reader.add({METRIC_NAME: "queue_depth", "service": "svc", "pod": pod}, times, np.full(times.size, value))
    features = service_features("svc", {"queue_depth": frozenset({"pod"})})
    # When the matrix is evaluated at a 60 s step past the data's end plus the lookback
    steps, matrix = feature_matrix(Engine(reader), features, 0, 960_000, 60_000)
    # Then the average is there while data is, NaN after
    assert matrix.shape == (17, 1)
    assert steps[1] == 60_000
    assert matrix[0, 0] == 2.0
    assert np.isnan(matrix[-1, 0])


def test_only_memory_is_high_only() -> None:
    # Given the features of the simulated checkout service
    features = service_features("checkout", simulated_metrics("checkout"))
    # When each is asked whether only its high values matter
    flagged = [f.name for f in features if high_only(f)]
    # Then memory alone is (it drops after every restart; only growth is a fault sign)
    assert flagged == ["memory"]


def test_a_plain_rate_has_a_reset_guard_and_ratios_and_gauges_none() -> None:
    # Given a plain rate, a ratio of rates and a gauge
    rate = ServiceFeature("request rate", "requests", 'sum(rate(http_requests_total{service="a"}[5m]))')
    ratio = ServiceFeature("error ratio", "errors", 'sum(rate(e{service="a"}[5m])) / sum(rate(r{service="a"}[5m]))')
    gauge = ServiceFeature("instances up", "resource", 'avg(up{service="a"})')
    # When asked for their reset guards / Then only the rate has one, over the rate window and a scrape more
    assert reset_guard(rate) == 'sum(resets(http_requests_total{service="a"}[6m]))'
    assert reset_guard(ratio) is None
    assert reset_guard(gauge) is None


def test_a_rate_whose_window_holds_a_restart_is_missing() -> None:
    # Given two pods counting 60 requests a minute, one of which restarts at minute 20 (its counter from 0)
    reader = InMemorySeriesReader()
    times = np.arange(0, 40 * 60_000, 60_000, dtype=np.int64)
    steady = 60.0 * np.arange(times.size)
    restarted = np.where(np.arange(times.size) < 20, steady + 5000, 60.0 * (np.arange(times.size) - 20) + 10)
    for pod, values in (("a", steady), ("b", restarted)):
        reader.add({METRIC_NAME: "http_requests_total", "service": "svc", "pod": pod}, times, values)
    features = service_features("svc", {"http_requests_total": frozenset({"pod"})})
    # When the request rate is evaluated per minute
    steps, matrix = feature_matrix(Engine(reader), features, 10 * 60_000, 35 * 60_000, 60_000)
    rate = matrix[:, 0]
    # Then the minutes whose window holds the reset, or starts on its first sample, are missing; the rest 2/s
    missing = steps[np.isnan(rate)] // 60_000
    assert list(missing) == [20, 21, 22, 23, 24]
    assert rate[~np.isnan(rate)] == pytest.approx(2.0, rel=0.05)
