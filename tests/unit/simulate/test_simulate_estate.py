"""The simulated estate: its graph, its series, its counters and its seasonality."""

from __future__ import annotations

import itertools
import math

import pytest

from novacron.ingest.validate import Limits, check_labels
from novacron.simulate.estate import (
    BUCKETS,
    Estate,
    EstateSimulator,
    Route,
    ServiceSpec,
    traffic_factor,
)
from novacron.simulate.faults import Fault, FaultKind, FaultSchedule
from tests.unit.simulate.support import HOUR, WEDNESDAY, by_series, select, total

COUNTER_SUFFIXES = ("_total", "_bucket", "_count", "_sum")
COUNTER_NAMES = ("pg_stat_database_xact_commit", "pg_stat_database_xact_rollback")


def is_counter(name: str) -> bool:
    return name.endswith(COUNTER_SUFFIXES) or name in COUNTER_NAMES


def test_estate_has_at_least_ten_services_and_an_acyclic_graph(estate):
    # Given the default online shop
    # When its graph is read
    edges = estate.edges()
    position = {name: i for i, name in enumerate(estate.order)}

    # Then it has enough services, a datastore, and every call goes "down" the topological order
    assert len(estate.services) >= 12
    assert {"redis-cart", "postgres"} <= set(estate.services)
    assert all(position[caller] < position[callee] for caller, callee in edges)
    assert ("frontend", "checkout") in edges
    assert ("checkout", "payment") in edges
    assert ("cart", "redis-cart") in edges
    assert ("recommendation", "product-catalog") in edges
    # and every service has a few instances
    assert all(len(instances) >= 2 for instances in estate.instances.values())


def test_upstream_follows_callers_transitively(estate):
    # Given the shop / When asking who depends on payment
    # Then checkout calls it directly and frontend through checkout; ad is unrelated
    assert estate.callers("payment") == {"checkout"}
    assert estate.upstream("payment") == {"checkout", "frontend"}
    assert "ad" not in estate.upstream("postgres")


def test_a_dependency_cycle_is_refused():
    # Given two services calling each other
    services = [
        ServiceSpec("a", routes=(Route("GET", "/", calls=(("b", 1),)),)),
        ServiceSpec("b", routes=(Route("GET", "/", calls=(("a", 1),)),)),
    ]
    # When an estate is built / Then the cycle is named
    with pytest.raises(ValueError, match="dependency cycle: a -> b -> a"):
        Estate(services)


def test_a_call_to_an_unknown_service_is_refused():
    # Given a service calling a service that does not exist / When built / Then it is named
    with pytest.raises(ValueError, match="unknown service 'nope'"):
        Estate([ServiceSpec("a", routes=(Route("GET", "/", calls=(("nope", 1),)),))])


def test_scaling_replicates_instances(estate):
    # Given the estate at scale 3 / Then each service has 3x the instances, and more series
    scaled = Estate(seed=7, scale=3)
    assert all(len(scaled.instances[n]) == 3 * len(estate.instances[n]) for n in estate.services)
    assert EstateSimulator(scaled).series_count == 3 * EstateSimulator(estate).series_count


def test_every_series_passes_the_servers_label_validation(scrape_run):
    # Given one scrape of the estate
    (scrape,) = scrape_run(WEDNESDAY + 15 * HOUR, 1)

    # When each label set is checked the way ingest checks it
    problems = {check_labels(list(labels), Limits()) for labels, _ in scrape.samples} - {None}

    # Then all are valid (sorted, named, no reserved names) and the expected families are present
    assert problems == set()
    names = {dict(labels)["__name__"] for labels, _ in scrape.samples}
    assert {
        "up",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "rpc_client_requests_total",
        "rpc_client_errors_total",
        "redis_commands_processed_total",
        "pg_stat_database_xact_commit",
    } <= names
    first = dict(select(scrape, name="http_requests_total", service="checkout")[0][0])
    assert {"job", "instance", "service", "namespace", "env", "pod", "code", "method", "route"} <= set(first)


def test_same_seed_and_times_give_the_same_samples(estate, scrape_run):
    # Given two runs over the same times / Then the samples are identical
    first = scrape_run(WEDNESDAY, 5)
    second = scrape_run(WEDNESDAY, 5)
    assert [s.samples for s in first] == [s.samples for s in second]
    # and another seed gives other numbers
    other = [EstateSimulator(Estate(seed=8)).scrape(WEDNESDAY)]
    assert other[0].samples != first[0].samples


def test_counters_never_decrease_except_when_the_instance_restarts(scrape_run):
    # Given two hours of scrapes across which one cart instance is stopped and comes back
    down = Fault(FaultKind.DOWN, "cart", 1.0, WEDNESDAY + 30 * 60, 10 * 60)
    scrapes = scrape_run(WEDNESDAY, 2 * 60 * 4, faults=[down])

    # When each counter's consecutive samples are compared
    restarts = {s.timestamp_ms: set(s.restarted) for s in scrapes}
    decreases, resets = [], []
    for labels, samples in by_series(scrapes).items():
        as_dict = dict(labels)
        if not is_counter(as_dict["__name__"]):
            continue
        for (_, before), (ts, after) in itertools.pairwise(samples):
            if after < before:
                (resets if as_dict["pod"] in restarts[ts] else decreases).append((as_dict, before, after))

    # Then nothing decreased except at the restart, where counters dropped
    assert decreases == []
    assert resets
    assert {r[0]["service"] for r in resets} == {"cart"}


def test_a_stopped_instance_reports_only_up_zero(scrape_run):
    # Given a cart instance stopped by a fault
    down = Fault(FaultKind.DOWN, "cart", 1.0, WEDNESDAY, 600)
    (scrape,) = scrape_run(WEDNESDAY + 60, 1, faults=[down])

    # When its series are selected
    ups = sorted(value for _, value in select(scrape, name="up", service="cart"))

    # Then exactly one target is down and it exposes nothing else
    assert ups == [0.0, 1.0, 1.0]
    (stopped,) = [labels["pod"] for labels, value in select(scrape, name="up", service="cart") if value == 0]
    assert [labels["__name__"] for labels, _ in select(scrape, pod=stopped)] == ["up"]


def test_histogram_buckets_are_cumulative_and_inf_equals_count(scrape_run):
    # Given scrapes at several times
    for scrape in scrape_run(WEDNESDAY + 14 * HOUR, 3, step=600.0):
        # When each route's histogram is assembled
        histograms: dict[tuple[str, str, str], dict[str, float]] = {}
        counts = {}
        for labels, value in select(scrape, name="http_request_duration_seconds_bucket"):
            histograms.setdefault((labels["pod"], labels["method"], labels["route"]), {})[labels["le"]] = value
        for labels, value in select(scrape, name="http_request_duration_seconds_count"):
            counts[(labels["pod"], labels["method"], labels["route"])] = value

        # Then every bucket is there, counts never shrink as le grows, and +Inf is _count
        assert histograms
        for key, buckets in histograms.items():
            assert len(buckets) == len(BUCKETS) + 1
            ordered = [buckets[f"{le:g}"] for le in BUCKETS] + [buckets["+Inf"]]
            assert ordered == sorted(ordered), key
            assert buckets["+Inf"] == counts[key]


def requests_in(scrape_run, start: float, minutes: int = 10) -> float:
    """Frontend requests served in ``minutes`` after ``start`` (from the emitted counters)."""
    first, *_, last = scrape_run(start, minutes * 4 + 1)
    return total(last, name="http_requests_total", service="frontend") - total(
        first, name="http_requests_total", service="frontend"
    )


def test_afternoon_traffic_exceeds_night_traffic(scrape_run):
    # Given a Wednesday / When requests are counted at 15:00 and at 03:00
    afternoon = requests_in(scrape_run, WEDNESDAY + 15 * HOUR)
    night = requests_in(scrape_run, WEDNESDAY + 3 * HOUR)

    # Then the afternoon is several times busier, and the curve agrees
    assert afternoon > 3 * night
    assert traffic_factor(WEDNESDAY + 15 * HOUR) > 3 * traffic_factor(WEDNESDAY + 3 * HOUR)


def test_weekday_traffic_exceeds_weekend_traffic(scrape_run):
    # Given the same afternoon hour on Wednesday and on the following Sunday
    sunday = WEDNESDAY + 4 * 24 * HOUR
    # When requests are counted / Then the weekday is clearly busier
    assert requests_in(scrape_run, WEDNESDAY + 15 * HOUR) > 1.2 * requests_in(scrape_run, sunday + 15 * HOUR)


def test_the_daily_curve_peaks_in_the_afternoon_and_has_no_steps():
    # Given the curve sampled every minute over a week
    values = [traffic_factor(WEDNESDAY + m * 60) for m in range(7 * 24 * 60)]
    # Then its daily maximum is in the afternoon, and neighbours never differ by more than 1%
    peak_minute = max(range(24 * 60), key=lambda m: values[m])
    assert 13 * 60 <= peak_minute <= 17 * 60
    assert max(abs(b - a) for a, b in itertools.pairwise(values)) < 0.01


def test_memory_leak_grows_memory_and_ends_in_an_oom_restart(scrape_run):
    # Given a 1 GiB leak on recommendation over 20 minutes
    leak = Fault(FaultKind.LEAK, "recommendation", 1024**3, WEDNESDAY + 5 * 60, 20 * 60)
    scrapes = scrape_run(WEDNESDAY, 30 * 4, faults=[leak])

    # When memory is read before, near the end of, and after the leak
    def memory(i: int) -> float:
        return total(scrapes[i], name="process_resident_memory_bytes", service="recommendation")

    # Then it grew by about the leak on each instance, and every instance restarted at the end
    instances = 2
    assert memory(24 * 4) - memory(4 * 4) > 0.8 * 1024**3 * instances
    restarted = {pod for s in scrapes for pod in s.restarted}
    assert len([p for p in restarted if p.startswith("recommendation-")]) == instances
    assert memory(29 * 4) < memory(24 * 4)


def test_scrape_times_must_increase(estate):
    # Given a simulator that scraped at t / When asked for t again / Then it refuses
    simulator = EstateSimulator(estate, FaultSchedule())
    simulator.scrape(WEDNESDAY)
    with pytest.raises(ValueError, match="increase"):
        simulator.scrape(WEDNESDAY)


def test_postgres_activity_follows_littles_law(scrape_run):
    # Given the afternoon / Then postgres reports at least one active connection per instance
    (scrape,) = scrape_run(WEDNESDAY + 15 * HOUR, 1)
    values = [v for _, v in select(scrape, name="pg_stat_activity_count")]
    assert len(values) == 2
    assert all(v >= 1 and math.isfinite(v) for v in values)
