"""Alert noise: how many pages an alert storm becomes, NovaCron's incidents beside Alertmanager's grouping.

Each scenario runs the simulated shop (novacron.simulate) for ``--minutes`` of simulated time with its
faults, scraping every 15 s into an in-memory reader. The shop's rule file (``SHOP_RULES``) is
evaluated every 30 s by NovaCron's rule evaluator (the same code the alert function runs), and every
alert that fires goes two ways, computed in the same run:

- **NovaCron**: correlated into incidents (novacron.alert.incidents, over the shop's call graph as its
  RPC client series describe it), then dispatched grouped by incident (``SHOP_ALERTMANAGER``);
- **baseline**: dispatched the usual Alertmanager way, grouped by alert name and service, 30 s group
  wait, 5-minute group interval (``baseline_alertmanager``).

Ground truth: an alert belongs to every fault that was active (or ended less than ``TAIL_S`` before)
when it fired and whose service is the alert's service or one of the services that call it, directly
or not (who feels the fault); an alert of the scenario's noisy rule belongs to that rule; an alert with
no fault to explain it is *unexplained*.

Reported per scenario and way: alerts raised (firing episodes), notifications sent, groups (incidents
for NovaCron), compression = 1 - groups/alerts, grouping purity (alerts agreeing with their group's
majority fault; an alert several faults explain agrees with any of them), merges (groups holding
alerts that only different faults explain: unrelated faults merged), and the time from the first
alert to the first notification. Targets: compression >= 90 % with purity >= 0.95, and no merges.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from novacron.alert.amconfig import parse_config
from novacron.alert.evaluate import RuleEvaluator
from novacron.alert.grouping import Dispatcher, Notification
from novacron.alert.incidents import AlertSignal, Correlator, Incident, Source
from novacron.alert.notifications import dispatch_alert
from novacron.alert.rule_state import Alert as RuleAlert
from novacron.alert.rule_state import GroupState
from novacron.alert.rules import RuleFile, parse_rule_file
from novacron.alert.topology import Topology
from novacron.promql import Engine
from novacron.query.memory_reader import InMemorySeriesReader
from novacron.series import Matcher
from novacron.simulate.alerting import SHOP_ALERTMANAGER, SHOP_RULES, baseline_alertmanager
from novacron.simulate.estate import Estate, EstateSimulator
from novacron.simulate.faults import Fault, FaultKind, FaultSchedule

SCRAPE_S = 15
EVAL_S = 30
WARM_UP_S = 40 * 60  # rules compare with half an hour earlier: faults start after this
TAIL_S = 5 * 60
T0 = 1_800_000_000.0  # a fixed start keeps runs comparable
NOISY = "noisy rule"


@dataclass(frozen=True)
class Scenario:
    """A named run of the shop: its faults and, optionally, an extra (noisy) rule group."""

    name: str
    faults: tuple[Fault, ...]
    extra_rules: str = ""


def scenarios(minutes: float) -> list[Scenario]:
    """The storms: a slow database, a service down, a flapping rule, and two unrelated faults at once."""
    start = T0 + WARM_UP_S
    span = (minutes * 60 - WARM_UP_S) * 0.6
    flapping = """\
  - name: noisy
    interval: 30s
    rules:
      - alert: FrontendBusy
        expr: sum by (service) (rate(http_requests_total{service="frontend"}[30s])) > {threshold}
        labels:
          severity: warning
          noisy: "true"
        annotations:
          summary: "frontend busy: {{ $value | humanize }} req/s"
"""
    return [
        Scenario("database slowdown", (Fault(FaultKind.LATENCY, "postgres", 1.5, start, span),)),
        Scenario("catalog outage", (Fault(FaultKind.DOWN, "product-catalog", 0.0, start, span / 2),)),
        Scenario("flapping rule", (), extra_rules=flapping),
        Scenario(
            "two unrelated faults",
            (
                Fault(FaultKind.ERRORS, "payment", 0.25, start, span),
                Fault(FaultKind.LATENCY, "recommendation", 0.5, start + 120, span),
            ),
        ),
    ]


@dataclass
class Raised:
    """One firing episode of one alert (``episode``: its fingerprint and ordinal), or its end."""

    episode: str
    signal: AlertSignal
    truth: frozenset[str]


@dataclass
class Outcome:
    """One way of handling one scenario's alerts."""

    groups: dict[str, list[str]] = field(default_factory=dict)  # group → the alert episodes it holds
    notifications: list[Notification] = field(default_factory=list)


def simulate(scenario: Scenario, minutes: float, seed: int) -> tuple[Estate, InMemorySeriesReader]:
    """The shop's scrapes over the scenario, in a reader."""
    estate = Estate(seed=seed)
    simulator = EstateSimulator(estate, FaultSchedule(scenario.faults))
    samples: dict[tuple[tuple[str, str], ...], tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for i in range(int(minutes * 60 / SCRAPE_S)):
        scrape = simulator.scrape(T0 + i * SCRAPE_S)
        for labels, value in scrape.samples:
            times, values = samples[labels]
            times.append(scrape.timestamp_ms)
            values.append(value)
    reader = InMemorySeriesReader()
    for labels, (times, values) in samples.items():
        reader.add(dict(labels), np.asarray(times, dtype=np.int64), np.asarray(values))
    return estate, reader


def noisy_threshold(reader: InMemorySeriesReader) -> float:
    """The frontend's median request rate: a rule at that threshold flaps all day."""
    engine = Engine(reader)
    result = engine.range(
        'sum(rate(http_requests_total{service="frontend"}[30s]))',
        int(T0 * 1000) + 600_000,
        int(T0 * 1000) + WARM_UP_S * 1000,
        30_000,
    )
    return float(np.median(result.series[0].values))


def raise_alerts(scenario: Scenario, estate: Estate, reader: InMemorySeriesReader, minutes: float) -> list[Raised]:
    """Evaluate the rules every 30 s; every alert that fires, with its ground truth."""
    text = SHOP_RULES
    if scenario.extra_rules:
        text += scenario.extra_rules.replace("{threshold}", f"{noisy_threshold(reader):.3f}")
    rules: RuleFile = parse_rule_file(text, scenario.name)
    evaluator = RuleEvaluator(Engine(reader).instant)
    states: dict[str, GroupState | None] = {g.name: None for g in rules.groups}
    raised: dict[str, Raised] = {}
    episodes: Counter[str] = Counter()
    open_key: dict[str, str] = {}
    for t in range(int(T0 + 10 * 60), int(T0 + minutes * 60), EVAL_S):
        for group in rules.groups:
            evaluation = evaluator.evaluate_group(group, t * 1000, states[group.name])
            states[group.name] = evaluation.state
            for rule_state in evaluation.state.rules.values():
                for alert in rule_state.alerts.values():
                    _track(alert, scenario, estate, t, raised, episodes, open_key)
    return list(raised.values())


def _track(
    alert: RuleAlert,
    scenario: Scenario,
    estate: Estate,
    t: int,
    raised: dict[str, Raised],
    episodes: Counter[str],
    open_key: dict[str, str],
) -> None:
    fp = alert.fingerprint
    if alert.state == "firing" and fp not in open_key:
        episodes[fp] += 1
        key = f"{fp}#{episodes[fp]}"
        open_key[fp] = key
        labels = tuple(sorted(alert.labels.items()))
        signal = AlertSignal(
            fp,
            alert.labels["alertname"],
            labels,
            alert.labels.get("severity", "warning"),
            True,
            t * 1000,
            summary=alert.annotations.get("summary", ""),
            source=Source.RULE,
        )
        raised[key] = Raised(key, signal, _truth(alert.labels, scenario, estate, t))
    elif alert.state != "firing" and fp in open_key:
        key = open_key.pop(fp)
        start = raised[key].signal
        raised[key + "/end"] = Raised(
            key,
            AlertSignal(fp, start.name, start.labels, start.severity, False, start.starts_at_ms, t * 1000),
            raised[key].truth,
        )


def _truth(labels: dict[str, str], scenario: Scenario, estate: Estate, t: float) -> frozenset[str]:
    if labels.get("noisy") == "true":
        return frozenset({NOISY})
    service = labels.get("service", "")
    return frozenset(
        fault.describe()
        for fault in scenario.faults
        if fault.start <= t <= fault.end + TAIL_S
        and (service == fault.service or service in estate.upstream(fault.service))
    )


def novacron_way(estate: Estate, reader: InMemorySeriesReader, raised: Sequence[Raised]) -> Outcome:
    """Correlate into incidents, then dispatch grouped by incident."""
    calls = [Matcher("__name__", "=", "rpc_client_requests_total")]
    call_series = [s.labels for s in reader.select(calls, int(T0 * 1000), _end(raised) + 1)]
    correlator = Correlator("bench", Topology.from_call_series(call_series))
    dispatcher = Dispatcher(parse_config(SHOP_ALERTMANAGER))
    incidents: dict[str, Incident] = {}
    outcome = Outcome()
    for at, batch in _by_time(raised):
        result = correlator.apply(list(incidents.values()), [r.signal for r in batch], at)
        incidents.update(result.changed)
        # An alert that fires again belongs to the newest incident holding it (reopened, or a new one).
        owner = {fp: i.id for i in sorted(incidents.values(), key=lambda i: i.opened_at_ms) for fp in i.alerts}
        alerts = [dispatch_alert(r.signal, owner[r.signal.fingerprint]) for r in batch]
        for r in batch:
            if r.signal.firing:
                outcome.groups.setdefault(owner[r.signal.fingerprint], []).append(r.episode)
        dispatcher.receive(alerts, at / 1000)
        outcome.notifications += dispatcher.flush(at / 1000)
    outcome.notifications += dispatcher.flush(_end(raised) / 1000 + 3600)
    return outcome


def baseline_way(raised: Sequence[Raised]) -> Outcome:
    """Alertmanager's usual grouping by alert name and service."""
    dispatcher = Dispatcher(parse_config(baseline_alertmanager()))
    outcome = Outcome()
    for at, batch in _by_time(raised):
        dispatcher.receive([dispatch_alert(r.signal, None) for r in batch], at / 1000)
        outcome.notifications += dispatcher.flush(at / 1000)
    outcome.notifications += dispatcher.flush(_end(raised) / 1000 + 3600)
    for r in raised:
        if r.signal.firing:
            key = f"{r.signal.name}/{dict(r.signal.labels).get('service', '')}"
            outcome.groups.setdefault(key, []).append(r.episode)
    return outcome


def _by_time(raised: Sequence[Raised]) -> list[tuple[int, list[Raised]]]:
    moments: dict[int, list[Raised]] = defaultdict(list)
    for r in raised:
        at = r.signal.starts_at_ms if r.signal.firing else int(r.signal.ends_at_ms or r.signal.starts_at_ms)
        moments[at].append(r)
    return sorted(moments.items())


def _end(raised: Sequence[Raised]) -> int:
    return max((r.signal.ends_at_ms or r.signal.starts_at_ms) for r in raised) if raised else 0


@dataclass(frozen=True)
class Figures:
    """One way's figures on one scenario."""

    alerts: int
    notifications: int
    groups: int
    compression: float
    purity: float
    merges: int
    first_notification_s: float | None


def figures(raised: Sequence[Raised], outcome: Outcome) -> Figures:
    """Compression, purity, merges and latency of one way."""
    truth = {r.episode: r.truth for r in raised if r.signal.firing}
    agreeing, merges = 0, 0
    for members in outcome.groups.values():
        labelled = [truth[m] for m in members if m in truth]
        votes = Counter(label for t in labelled for label in t)
        majority = votes.most_common(1)[0][0] if votes else None
        agreeing += sum(1 for t in labelled if not t or majority in t)
        exclusive = {next(iter(t)) for t in labelled if len(t) == 1}
        merges += len(exclusive) > 1
    alerts = len(truth)
    firsts = [r.signal.starts_at_ms for r in raised if r.signal.firing]
    first_sent = min((n.at for n in outcome.notifications), default=None)
    return Figures(
        alerts=alerts,
        notifications=len(outcome.notifications),
        groups=len(outcome.groups),
        compression=1 - len(outcome.groups) / alerts if alerts else 0.0,
        purity=agreeing / alerts if alerts else 1.0,
        merges=merges,
        first_notification_s=None if first_sent is None or not firsts else first_sent - min(firsts) / 1000,
    )


def _row(name: str, way: str, f: Figures) -> str:
    latency = "-" if f.first_notification_s is None else f"{f.first_notification_s:.0f}"
    return (
        f"{name:22} {way:9} {f.alerts:6} {f.notifications:7} {f.groups:6} {f.compression:11.1%} "
        f"{f.purity:7.3f} {f.merges:6} {latency:>9}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=100.0, help="simulated minutes per scenario (default 100)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(
        f"{'scenario':22} {'way':9} {'alerts':>6} {'notices':>7} {'groups':>6} {'compression':>11} "
        f"{'purity':>7} {'merges':>6} {'first (s)':>9}"
    )
    totals: dict[str, list[Figures]] = defaultdict(list)
    for scenario in scenarios(args.minutes):
        began = time.perf_counter()
        estate, reader = simulate(scenario, args.minutes, args.seed)
        raised = raise_alerts(scenario, estate, reader, args.minutes)
        for way, outcome in (("novacron", novacron_way(estate, reader, raised)), ("baseline", baseline_way(raised))):
            f = figures(raised, outcome)
            totals[way].append(f)
            print(_row(scenario.name, way, f))
        print(f"{'':22} ({time.perf_counter() - began:.1f} s)")
    for way, rows in totals.items():
        alerts = sum(f.alerts for f in rows)
        groups = sum(f.groups for f in rows)
        purity = sum(f.purity * f.alerts for f in rows) / alerts if alerts else 1.0
        merged = sum(f.merges for f in rows)
        notices = sum(f.notifications for f in rows)
        print(
            f"{'all scenarios':22} {way:9} {alerts:6} {notices:7} {groups:6} "
            f"{1 - groups / alerts if alerts else 0:11.1%} {purity:7.3f} {merged:6}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
