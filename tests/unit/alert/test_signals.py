"""Alert sources as signals: rule alerts, anomaly episodes, and false-positive rates from incidents."""

from __future__ import annotations

from novacron.alert.incidents import FALSE_POSITIVE, AlertSignal, Correlator, Source
from novacron.alert.rule_state import Alert, GroupState, RuleState
from novacron.alert.signals import anomaly_signal, false_positive_rates, rule_signals
from novacron.alert.topology import Topology
from novacron.detect.events import Anomaly, Driver, Severity, Status

T0 = 1_800_000_000_000
MIN = 60_000


def rule_alert(state: str, fired: int | None, resolved: int | None = None, **labels: str) -> Alert:
    named = {"alertname": "HighErrors", "service": "payment", "severity": "critical", **labels}
    return Alert(named, {"summary": "5% fail"}, state, T0, 0.05, fired_at_ms=fired, resolved_at_ms=resolved)


def test_firing_and_resolved_rule_alerts_are_signals_and_pending_ones_are_not() -> None:
    # Given a rule's pending, firing and resolved alerts
    alerts = [
        rule_alert("pending", None, pod="a"),
        rule_alert("firing", T0 + MIN, pod="b"),
        rule_alert("inactive", T0 + MIN, T0 + 5 * MIN, pod="c"),
        rule_alert("inactive", None, T0 + 5 * MIN, pod="d"),  # resolved before it ever fired
    ]
    state = GroupState({"r": RuleState(alerts={a.fingerprint: a for a in alerts})})

    # When turned into signals
    signals = rule_signals([state])

    # Then the firing one starts at its fired time, the resolved one ends at its resolution
    by_pod = {dict(s.labels)["pod"]: s for s in signals}
    assert sorted(by_pod) == ["b", "c"]
    assert (by_pod["b"].firing, by_pod["b"].starts_at_ms, by_pod["b"].ends_at_ms) == (True, T0 + MIN, None)
    assert (by_pod["c"].firing, by_pod["c"].ends_at_ms) == (False, T0 + 5 * MIN)
    assert (by_pod["b"].name, by_pod["b"].severity, by_pod["b"].summary) == ("HighErrors", "critical", "5% fail")
    assert by_pod["b"].fingerprint == alerts[1].fingerprint


def test_a_service_anomaly_names_its_service_and_explains_its_drivers() -> None:
    # Given a resolved multivariate episode of a service (job label), with drivers
    anomaly = Anomaly(
        id="ep-1",
        tenant="acme",
        series_id="svc",
        labels=(("__name__", "novacron_service_anomaly_score"), ("job", "checkout")),
        metric="novacron_service_anomaly_score",
        status=Status.RESOLVED,
        start_ms=T0,
        end_ms=T0 + 3 * MIN,
        peak_ms=T0 + MIN,
        value=0.8,
        expected=None,
        lower=None,
        upper=None,
        score=0.8,
        methods=("isolation_forest",),
        confidence=1.0,
        warming_up=False,
        severity=Severity.WARNING,
        scored_as="value",
        detector_version="isolation-forest-v2",
        drivers=(Driver("p99_latency", 1.9, 0.3, 0.7), Driver("error_ratio", 0.02, 0.01, 0.3)),
    )

    # When turned into a signal
    signal = anomaly_signal(anomaly)

    # Then it is an ended Anomaly alert on checkout, identified by its episode, and explained
    assert (signal.name, signal.service, signal.source, signal.firing) == ("Anomaly", "checkout", Source.ANOMALY, False)
    assert (signal.starts_at_ms, signal.ends_at_ms) == (T0, T0 + 3 * MIN)
    assert dict(signal.labels)["source"] == "detector"
    assert "isolation_forest" in signal.summary
    assert "p99_latency 1.9 vs 0.3 (70%)" in signal.summary
    assert anomaly_signal(anomaly).fingerprint == signal.fingerprint


def test_false_positive_rates_count_incidents_resolved_as_noise_per_alert_name() -> None:
    # Given three incidents holding "Flappy", one of them resolved as a false positive
    correlator = Correlator("acme", Topology())
    incidents = []
    for i in range(3):
        at = T0 + i * 3_600_000
        signal = AlertSignal(f"fp{i}", "Flappy", (("service", f"s{i}"),), "warning", True, at)
        (incident,) = correlator.apply([], [signal], at).changed.values()
        incidents.append(incident)
    incidents[0].note(T0 + MIN, FALSE_POSITIVE, "marked a false positive", "key-1")

    # When rates are computed / Then a third of them were noise
    assert false_positive_rates(incidents) == {"Flappy": 1 / 3}
