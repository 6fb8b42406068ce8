"""Fault specs, fault propagation along the dependency graph, and chaos."""

from __future__ import annotations

import pytest

from novacron.simulate.estate import Estate
from novacron.simulate.faults import (
    Chaos,
    Fault,
    FaultKind,
    FaultSchedule,
    FaultSpec,
    FaultSpecError,
    parse_duration,
    parse_fault,
)
from tests.unit.simulate.support import HOUR, WEDNESDAY, select, total

MIB = 1024**2


@pytest.fixture
def services(estate: Estate) -> set[str]:
    return set(estate.services)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("latency:payment:+300ms@+5m/10m", FaultSpec(FaultKind.LATENCY, "payment", 0.3, 300.0, 600.0)),
        ("errors:product-catalog:20%@+2m/5m", FaultSpec(FaultKind.ERRORS, "product-catalog", 0.2, 120.0, 300.0)),
        ("latency:cart:1.5s", FaultSpec(FaultKind.LATENCY, "cart", 1.5)),
        ("down:cart:1@10m/3m", FaultSpec(FaultKind.DOWN, "cart", 1.0, 600.0, 180.0)),
        ("down:postgres", FaultSpec(FaultKind.DOWN, "postgres", 0.0)),
        ("down:postgres:all/90", FaultSpec(FaultKind.DOWN, "postgres", 0.0, 0.0, 90.0)),
        ("cpu:currency:3x@+1h/15m", FaultSpec(FaultKind.CPU, "currency", 3.0, 3600.0, 900.0)),
        ("cpu:currency", FaultSpec(FaultKind.CPU, "currency", 2.0)),
        ("leak:recommendation:1GiB/30m", FaultSpec(FaultKind.LEAK, "recommendation", 1024.0 * MIB, 0.0, 1800.0)),
        ("LATENCY:ad:+50ms@1h30m", FaultSpec(FaultKind.LATENCY, "ad", 0.05, 5400.0)),
    ],
)
def test_valid_fault_specs_parse(spec, expected, services):
    # Given a spec in the documented grammar / When parsed / Then every part lands in base units
    parsed = parse_fault(spec, services)
    assert (parsed.kind, parsed.service, parsed.offset_s, parsed.duration_s) == (
        expected.kind,
        expected.service,
        expected.offset_s,
        expected.duration_s,
    )
    assert parsed.magnitude == pytest.approx(expected.magnitude)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty fault spec"),
        ("latency", "1 ':'-separated parts"),
        ("latency:payment:+300ms:extra", "4 ':'-separated parts"),
        ("latncy:payment:+300ms", "unknown fault kind 'latncy'.*did you mean 'latency'"),
        ("latency:paymnt:+300ms", "unknown service 'paymnt'.*did you mean 'payment'"),
        ("latency::+300ms", "names no service"),
        ("latency:payment", "needs the added time"),
        ("latency:payment:fast", "not a duration"),
        ("errors:cart:20", "must be a percentage"),
        ("errors:cart:0%", "above 0%"),
        ("errors:cart:150%", "at most 100%"),
        ("down:cart:two", "number of instances"),
        ("cpu:cart:0.5x", "factor above 1"),
        ("leak:cart:lots", "positive size"),
        ("latency:payment:+300ms@soon", "bad start offset.*invalid duration 'soon'"),
        ("latency:payment:+300ms@-5m", "cannot be negative"),
        ("latency:payment:+300ms/0s", "duration must be positive"),
        ("latency:payment:+300ms/5x", "bad duration"),
        ("latency:payment:+300ms@+1m@+2m", "more than one '@'"),
        ("latency: payment:+300ms", "whitespace"),
    ],
)
def test_invalid_fault_specs_say_what_is_wrong(spec, message, services):
    # Given a malformed spec / When parsed / Then the error explains the problem
    with pytest.raises(FaultSpecError, match=message):
        parse_fault(spec, services)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300ms", 0.3), ("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("2d", 172800.0), ("42", 42.0), ("1.5", 1.5)],
)
def test_durations_parse(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5 m", "m5", "5mm", "-3", "1h-2m"])
def test_bad_durations_are_refused(text):
    with pytest.raises(FaultSpecError):
        parse_duration(text)


def test_a_spec_is_placed_relative_to_the_simulation_start():
    # Given a spec starting 5 minutes in, for 10 minutes / When placed on a timeline
    fault = parse_fault("latency:payment:+300ms@+5m/10m").at(WEDNESDAY)
    # Then it is active exactly in that window and describes itself in the grammar
    assert not fault.active(WEDNESDAY + 299)
    assert fault.active(WEDNESDAY + 300)
    assert fault.active(WEDNESDAY + 899)
    assert not fault.active(WEDNESDAY + 900)
    assert fault.describe() == "latency:payment:+300ms"


AFTERNOON = WEDNESDAY + 15 * HOUR


def test_latency_fault_slows_the_service_and_its_callers_but_not_unrelated_services(estate):
    # Given a +300ms latency fault on payment
    fault = Fault(FaultKind.LATENCY, "payment", 0.3, AFTERNOON - 60, 600)

    # When the estate's load is computed with and without it
    calm = estate.load(AFTERNOON).services
    faulty = estate.load(AFTERNOON, [fault]).services

    # Then payment and checkout are ~300ms slower, frontend's checkout route too, the frontend on average
    assert faulty["payment"].latency_s - calm["payment"].latency_s == pytest.approx(0.3)
    assert faulty["checkout"].latency_s - calm["checkout"].latency_s == pytest.approx(0.3)
    checkout_route = [r.path for r in estate.services["frontend"].routes].index("/cart/checkout")
    assert faulty["frontend"].routes[checkout_route].latency_s - calm["frontend"].routes[checkout_route].latency_s == (
        pytest.approx(0.3)
    )
    assert faulty["frontend"].latency_s > calm["frontend"].latency_s
    # and services that do not depend on payment are untouched
    for name in set(estate.services) - {"payment", *estate.upstream("payment")}:
        assert faulty[name] == calm[name], name


def mean_latency(scrapes, service: str, route: str) -> float:
    """Mean latency over the scrapes from the emitted histogram (increase of _sum / increase of _count)."""
    first, last = scrapes[0], scrapes[-1]
    sums = [total(s, name="http_request_duration_seconds_sum", service=service, route=route) for s in (first, last)]
    counts = [total(s, name="http_request_duration_seconds_count", service=service, route=route) for s in (first, last)]
    return (sums[1] - sums[0]) / (counts[1] - counts[0])


def test_latency_fault_shows_in_the_emitted_histograms(scrape_run):
    # Given 10 minutes of scrapes, with and without a +300ms fault on payment
    fault = Fault(FaultKind.LATENCY, "payment", 0.3, AFTERNOON - 60, 3600)
    calm = scrape_run(AFTERNOON, 41)
    faulty = scrape_run(AFTERNOON, 41, faults=[fault])

    # When mean latencies are derived from _sum and _count as PromQL would
    # Then the caller's checkout route slowed down by about the fault, and the ad service did not
    slower = mean_latency(faulty, "frontend", "/cart/checkout") - mean_latency(calm, "frontend", "/cart/checkout")
    assert slower > 0.25
    assert mean_latency(faulty, "ad", "/ads") == pytest.approx(mean_latency(calm, "ad", "/ads"))


def test_error_fault_propagates_to_callers_through_rpc_errors(estate, scrape_run):
    # Given a 20% error fault on product-catalog
    fault = Fault(FaultKind.ERRORS, "product-catalog", 0.2, AFTERNOON - 60, 600)
    calm = estate.load(AFTERNOON).services
    faulty = estate.load(AFTERNOON, [fault]).services

    # Then it fails ~20% more, its callers fail more, unrelated services do not
    assert faulty["product-catalog"].error_ratio - calm["product-catalog"].error_ratio > 0.19
    for caller in ("recommendation", "frontend", "checkout"):
        assert faulty[caller].error_ratio > calm[caller].error_ratio + 0.05, caller
    assert faulty["payment"] == calm["payment"]

    # and callers' rpc client counters record the failed calls
    first, *_, last = scrape_run(AFTERNOON, 21, faults=[fault])
    errors = total(last, name="rpc_client_errors_total", target="product-catalog") - total(
        first, name="rpc_client_errors_total", target="product-catalog"
    )
    calls = total(last, name="rpc_client_requests_total", target="product-catalog") - total(
        first, name="rpc_client_requests_total", target="product-catalog"
    )
    assert errors / calls == pytest.approx(0.2, abs=0.02)
    five_hundreds = select(last, name="http_requests_total", service="recommendation", code="500")
    assert five_hundreds


def test_a_whole_service_down_fails_every_call_to_it(estate):
    # Given all of redis-cart down / Then calls to it all fail, cart answers errors, cart's callers see them
    fault = Fault(FaultKind.DOWN, "redis-cart", 0.0, AFTERNOON - 60, 600)
    load = estate.load(AFTERNOON, [fault]).services
    assert load["redis-cart"].call_error_ratio == 1.0
    assert load["cart"].error_ratio > 0.8
    assert load["frontend"].error_ratio > estate.load(AFTERNOON).services["frontend"].error_ratio


def test_cpu_saturation_raises_latency_and_cpu_time(estate):
    # Given a 3x CPU fault on currency / Then it is slower and busier
    fault = Fault(FaultKind.CPU, "currency", 3.0, AFTERNOON - 60, 600)
    calm, faulty = estate.load(AFTERNOON).services, estate.load(AFTERNOON, [fault]).services
    assert faulty["currency"].latency_s > 1.5 * calm["currency"].latency_s
    assert faulty["currency"].utilisation == pytest.approx(3 * calm["currency"].utilisation)


def test_chaos_is_deterministic_and_injects_faults_regularly(services):
    # Given chaos with a 10-minute mean interval
    chaos = Chaos(seed=3, services=sorted(services), mean_interval_s=600)

    # When a day's worth of faults is listed twice
    day = chaos.overlapping(WEDNESDAY, WEDNESDAY + 24 * HOUR)
    again = Chaos(seed=3, services=sorted(services), mean_interval_s=600).overlapping(WEDNESDAY, WEDNESDAY + 24 * HOUR)

    # Then they are the same, about one per interval, of several kinds, on real services
    assert day == again
    assert 140 <= len(day) <= 146
    assert len({f.kind for f in day}) >= 4
    assert {f.service for f in day} <= services
    assert all(f.source == "chaos" and f.duration is not None and 120 <= f.duration <= 600 for f in day)


def test_schedule_combines_explicit_faults_and_chaos(services):
    # Given an explicit fault and chaos / When asking what is active / Then both contribute
    explicit = Fault(FaultKind.LATENCY, "payment", 0.3, WEDNESDAY, 24 * HOUR)
    schedule = FaultSchedule([explicit], Chaos(seed=3, services=sorted(services), mean_interval_s=300))
    seen = [schedule.active(WEDNESDAY + m * 60) for m in range(0, 120, 5)]
    assert all(explicit in active for active in seen)
    assert any(f.source == "chaos" for active in seen for f in active)
