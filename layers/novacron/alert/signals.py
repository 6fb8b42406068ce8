"""Alert sources as the correlator sees them: rule alerts and anomaly episodes → ``AlertSignal``.

- A rule alert that fires is a firing signal from its fired time; a resolved one (kept 15 minutes by the
  evaluator) is an ended signal. Pending alerts are not signals yet (their ``for`` has not passed).
- An anomaly episode of the detector is an alert named ``Anomaly``: open → firing from its start,
  resolved → ended at its last anomalous sample. Episodes opened in a maintenance window (``suppressed``)
  are not signals. Its fingerprint is derived from the episode id (each episode is its own alert), its
  summary is the episode's explanation.

Also the historical false-positive rate of each alert name, from the incidents users resolved as noise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from novacron.alert.incidents import FALSE_POSITIVE, SERVICE_LABELS, AlertSignal, Incident, Source
from novacron.alert.rule_state import Alert, GroupState, fingerprint
from novacron.detect.events import Anomaly, Status
from novacron.series import METRIC_NAME

ANOMALY_ALERT = "Anomaly"
DEFAULT_SEVERITY = "warning"
MAX_DRIVERS = 3


def rule_signals(states: Iterable[GroupState]) -> list[AlertSignal]:
    """The firing and recently resolved alerts of the rule groups' states."""
    signals = []
    for state in states:
        for rule_state in state.rules.values():
            for alert in rule_state.alerts.values():
                signal = rule_signal(alert)
                if signal is not None:
                    signals.append(signal)
    return signals


def rule_signal(alert: Alert) -> AlertSignal | None:
    """The signal of one rule alert; None while it is pending (or never fired before it resolved)."""
    if alert.fired_at_ms is None:
        return None
    firing = alert.state == "firing"
    return AlertSignal(
        alert.fingerprint,
        alert.labels.get("alertname", ""),
        tuple(sorted(alert.labels.items())),
        alert.labels.get("severity", DEFAULT_SEVERITY),
        firing,
        alert.fired_at_ms,
        None if firing else alert.resolved_at_ms,
        Source.RULE,
        alert.annotations.get("summary", "") or alert.annotations.get("description", ""),
    )


def anomaly_signals(anomalies: Iterable[Anomaly]) -> list[AlertSignal]:
    """The signals of anomaly episodes (suppressed ones left out)."""
    return [anomaly_signal(a) for a in anomalies if not a.suppressed]


def anomaly_signal(anomaly: Anomaly) -> AlertSignal:
    """An episode as an ``Anomaly`` alert on its series' service."""
    named = dict(anomaly.labels)
    labels = {
        "alertname": ANOMALY_ALERT,
        "metric": anomaly.metric or named.get(METRIC_NAME, ""),
        "severity": str(anomaly.severity),
        "source": "detector",
    }
    service = next((named[label] for label in SERVICE_LABELS if named.get(label)), "")
    if service:
        labels["service"] = service
    # Identifying labels (instance, pod...) let the correlator relate it to alerts on the same target.
    for name in ("instance", "pod", "node", "host"):
        if named.get(name):
            labels[name] = named[name]
    resolved = anomaly.status is Status.RESOLVED
    return AlertSignal(
        fingerprint({"alertname": ANOMALY_ALERT, "episode": anomaly.id}),
        ANOMALY_ALERT,
        tuple(sorted((k, v) for k, v in labels.items() if v)),
        str(anomaly.severity),
        not resolved,
        anomaly.start_ms,
        (anomaly.end_ms or anomaly.peak_ms) if resolved else None,
        Source.ANOMALY,
        explain(anomaly),
    )


def explain(anomaly: Anomaly) -> str:
    """One line: what was seen, what was expected, the band, the methods, and the strongest drivers."""
    parts = [f"{anomaly.metric or 'series'} {_number(anomaly.value)}"]
    if anomaly.expected is not None:
        parts.append(f"expected {_number(anomaly.expected)}")
    if anomaly.lower is not None and anomaly.upper is not None:
        parts.append(f"band {_number(anomaly.lower)} to {_number(anomaly.upper)}")
    text = ", ".join(parts)
    if anomaly.scored_as == "rate":
        text += " (per second)"
    if anomaly.methods:
        text += f"; flagged by {', '.join(anomaly.methods)} (score {anomaly.score:.2f})"
    if anomaly.drivers:
        drivers = ", ".join(
            f"{d.feature} {_number(d.value)} vs {_number(d.expected)} ({d.contribution:.0%})"
            for d in anomaly.drivers[:MAX_DRIVERS]
        )
        text += f"; drivers: {drivers}"
    return text


def _number(value: float) -> str:
    return f"{value:.4g}"


def false_positive_rates(incidents: Iterable[Incident]) -> dict[str, float]:
    """Per alert name: the share of the incidents holding it that users resolved as false positives."""
    holding: Counter[str] = Counter()
    noise: Counter[str] = Counter()
    for incident in incidents:
        names = {a.name for a in incident.alerts.values()}
        marked = any(entry.kind == FALSE_POSITIVE for entry in incident.timeline)
        for name in names:
            holding[name] += 1
            noise[name] += marked
    return {name: noise[name] / holding[name] for name in holding}


def signal_labels(signal: AlertSignal, incident_id: str | None) -> Mapping[str, str]:
    """The labels the dispatcher routes a signal by: its own, plus ``incident`` once it belongs to one."""
    labels = dict(signal.labels)
    if incident_id is not None:
        labels["incident"] = incident_id
    return labels
