"""The alert function's work, every minute, per tenant: rules → alerts → incidents → notifications.

For each tenant:

1. **Rules.** The groups of the tenant's rule files that are due are evaluated through the query engine
   over the tenant's hot tier, and their output goes back through the metrics stream
   (``novacron.alert.rule_runs``).
2. **Signals.** Firing and recently resolved rule alerts, and the detector's recent anomaly episodes
   (``novacron.alert.signals``). Alerts silenced or inhibited (the dispatcher's ``muted_by``, over the
   current alerts) do not join incidents.
3. **Correlation** over the tenant's call graph (the topology its correlation document declares, plus its
   RPC client series of the last hour) into the active incidents, with the document's window, hops,
   identifying labels and business tiers (``novacron.alert.correlation``; the function's settings for
   what it leaves out, and for everything when it has none or it no longer parses), and each alert
   name's false-positive rate from the incidents users resolved as noise.
   Signals are the whole current picture on every run, so a run that changes nothing writes nothing.
   Changed incidents are saved with optimistic locking (a conflict is logged and skipped: the next run
   redoes it); the opened, reopened and resolved ones go on the event bus.
4. **Routing.** Every alert of an incident goes to the dispatcher (the tenant's Alertmanager-style
   configuration, or everything to the local ``inbox`` grouped by incident) with an ``incident`` label;
   an alert whose incident was resolved by hand goes as resolved. Each notification due becomes
   notification requests (``novacron.alert.notifications``) published on the notifications topic.
5. **State.** The dispatcher's state (and what each receiver was last told) and the groups' states are
   saved last: a run that fails on the way is redone by the next, and the notifier deduplicates
   requests it already delivered.

One tenant's failure is logged and does not stop the others. Everything outside is behind a protocol;
the alert function's handler wires the adapters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

from novacron.alert.amconfig import DEFAULT_CONFIG_TEXT, AlertmanagerConfig, ConfigError, parse_config
from novacron.alert.correlation import CorrelationConfig, CorrelationError, parse_correlation
from novacron.alert.grouping import NFLOG_RETENTION_S, Dispatcher
from novacron.alert.incidents import (
    AlertSignal,
    Correlation,
    CorrelationSettings,
    Correlator,
    Incident,
    IncidentConflict,
    IncidentEvent,
    IncidentStatus,
    Source,
    incident_events,
)
from novacron.alert.incidents import incident_id as opening_id
from novacron.alert.incidents_api import INCIDENT_TTL_DAYS
from novacron.alert.notifications import (
    NotifiedLog,
    dispatch_alert,
    incidents_of,
    notified_from_json,
    notified_to_json,
    requests_for,
)
from novacron.alert.rule_runs import RuleRun, RuleSampleWriter, evaluate_rule_files
from novacron.alert.signals import anomaly_signals, false_positive_rates, rule_signals
from novacron.alert.state import AlertingStore, NotificationRequest
from novacron.alert.topology import Topology
from novacron.detect.events import Anomaly
from novacron.series import METRIC_NAME, Matcher, SeriesReader

log = logging.getLogger(__name__)

CALL_METRIC = "rpc_client_requests_total"
NOTIFIED_KEY = "notified"  # beside the dispatcher's own state: what each receiver was last told


class IncidentRepository(Protocol):
    """The incidents table (``novacron.adapters.incidents.DynamoIncidentStore``)."""

    def incident(self, tenant: str, incident_id: str) -> Incident | None:
        """One incident, or None."""
        ...

    def list_incidents(
        self, tenant: str, start_ms: int, end_ms: int, limit: int = 100, newest_first: bool = True
    ) -> list[Incident]:
        """Incidents opened within [start_ms, end_ms]."""
        ...

    def active_incidents(self, tenant: str, since_ms: int, resolved_since_ms: int) -> list[Incident]:
        """Incidents opened since ``since_ms`` not resolved, or resolved after ``resolved_since_ms``."""
        ...

    def save(self, incident: Incident, expires_at: int) -> Incident:
        """Write the incident unless someone wrote it since it was read (IncidentConflict)."""
        ...


class AnomalySource(Protocol):
    """The detector's episodes (``novacron.adapters.anomalies.DynamoAnomalyStore``)."""

    def list_anomalies(
        self, tenant: str, start_ms: int, end_ms: int, limit: int = 100, newest_first: bool = False
    ) -> list[Anomaly]:
        """Episodes that started within [start_ms, end_ms]."""
        ...


class EventSink(Protocol):
    """The event bus (``novacron.adapters.event_bus.EventBridgeSink``)."""

    def put_events(self, events: Sequence[IncidentEvent]) -> None:
        """Put the events on the bus (raises when some cannot be put)."""
        ...


class NotificationPublisher(Protocol):
    """The notifications topic (``novacron.adapters.notification_topic.NotificationTopic``)."""

    def publish(self, requests: Sequence[NotificationRequest]) -> None:
        """Publish every request (raises when some cannot be published)."""
        ...


@dataclass(frozen=True)
class AlertSettings:
    """The alert function's tuning; AlertConfig has these fields by name."""

    evaluation_interval_s: int = 60  # a rule group's interval when its file gives none
    max_catchup: int = 3  # evaluations of one group per run, at most
    query_timeout_s: int = 10  # one rule's query
    anomaly_window_s: int = 24 * 3600  # episodes that started this recently are alert sources
    max_anomalies: int = 1_000
    incident_lookback_s: int = 7 * 86_400  # incidents opened this recently may still be active
    false_positive_days: int = 30
    false_positive_refresh_s: int = 900
    call_graph_window_s: int = 3600
    # The correlation defaults: a tenant's correlation document may set each of these its own way.
    correlation_window_s: int = 600
    max_hops: int = 3
    reopen_window_s: int = 1800
    external_url: str = ""  # the console's base URL: notifications link to <external_url>/incidents/<id>

    @classmethod
    def names(cls) -> set[str]:
        """The field names (a config model dumps these)."""
        return {f.name for f in fields(cls)}


@dataclass
class TenantReport:
    """What one tenant's run did."""

    tenant: str
    rule_files: int = 0
    rule_files_skipped: int = 0
    groups_evaluated: int = 0
    rules_evaluated: int = 0
    samples_written: int = 0
    alerts_firing: int = 0
    anomaly_alerts: int = 0
    alerts_muted: int = 0
    incidents_changed: int = 0
    incidents_opened: int = 0
    incidents_resolved: int = 0
    incidents_reopened: int = 0
    incident_conflicts: int = 0
    notifications_published: int = 0


@dataclass
class RunReport:
    """What a run did, over every tenant."""

    tenants: list[TenantReport] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: int = 0  # tenants left for the next run (out of time)

    def counts(self) -> dict[str, float]:
        """Totals for the function's metrics."""

        def total(name: str) -> float:
            return float(sum(getattr(r, name) for r in self.tenants))

        return {
            "TenantsEvaluated": float(len(self.tenants)),
            "TenantsFailed": float(len(self.failed)),
            "RulesEvaluated": total("rules_evaluated"),
            "RuleFilesSkipped": total("rule_files_skipped"),
            "RuleSamplesWritten": total("samples_written"),
            "AlertsFiring": total("alerts_firing"),
            "AnomalyAlerts": total("anomaly_alerts"),
            "AlertsMuted": total("alerts_muted"),
            "IncidentsOpened": total("incidents_opened"),
            "IncidentsResolved": total("incidents_resolved"),
            "IncidentsReopened": total("incidents_reopened"),
            "IncidentConflicts": total("incident_conflicts"),
            "NotificationsPublished": total("notifications_published"),
        }


class AlertingService:
    """Runs the alerting of every tenant (``run``) or one (``run_tenant``)."""

    def __init__(
        self,
        store: AlertingStore,
        incidents: IncidentRepository,
        anomalies: AnomalySource,
        events: EventSink,
        publisher: NotificationPublisher,
        writer: RuleSampleWriter,
        reader_for: Callable[[str], SeriesReader],
        settings: AlertSettings | None = None,
    ) -> None:
        self.store = store
        self.incidents = incidents
        self.anomalies = anomalies
        self.events = events
        self.publisher = publisher
        self.writer = writer
        self.reader_for = reader_for
        self.settings = settings or AlertSettings()
        # Per tenant: when the false-positive rates were read, and the rates (a month of incidents changes slowly).
        self._rates: dict[str, tuple[int, dict[str, float]]] = {}

    def run(self, tenants: Iterable[str], now_ms: int, out_of_time: Callable[[], bool] = lambda: False) -> RunReport:
        """Every tenant in turn; a failing tenant is logged and the others go on."""
        report = RunReport()
        pending = list(tenants)
        for i, tenant in enumerate(pending):
            if out_of_time():
                report.skipped = len(pending) - i
                log.warning("alerting run out of time: %d tenants left for the next run", report.skipped)
                break
            try:
                tenant_report = self.run_tenant(tenant, now_ms)
            except Exception:
                log.exception("alerting of tenant %s failed; the next run tries again", tenant)
                report.failed.append(tenant)
                continue
            report.tenants.append(tenant_report)
            log.info("alerting of tenant %s done: %s", tenant, vars(tenant_report))
        return report

    def run_tenant(self, tenant: str, now_ms: int) -> TenantReport:
        """One tenant's rules, signals, incidents and notifications at ``now_ms``."""
        report = TenantReport(tenant)
        reader = self.reader_for(tenant)
        rules = self._evaluate_rules(tenant, reader, now_ms, report)
        config = self._alertmanager_config(tenant)
        saved_state = self.store.dispatcher_state(tenant) or {}
        silences = self.store.silences(tenant)

        signals = rule_signals(rules.current.values())
        signals += anomaly_signals(
            self.anomalies.list_anomalies(
                tenant,
                now_ms - self.settings.anomaly_window_s * 1000,
                now_ms,
                limit=self.settings.max_anomalies,
                newest_first=True,  # past the limit, the oldest episodes are the ones left out
            )
        )
        report.alerts_firing = sum(s.firing for s in signals)
        report.anomaly_alerts = sum(s.firing and s.source is Source.ANOMALY for s in signals)
        muted = self._muted(config, silences, signals, now_ms)
        report.alerts_muted = len(muted)

        known = self._correlate(tenant, reader, [s for s in signals if s.fingerprint not in muted], now_ms, report)
        dispatcher = (
            Dispatcher.from_dict(config, saved_state, silences) if saved_state else Dispatcher(config, silences)
        )
        notified = notified_from_json(saved_state.get(NOTIFIED_KEY))
        requests = self._dispatch(tenant, dispatcher, signals, known, notified, now_ms)
        if requests:
            self.publisher.publish(requests)
        report.notifications_published = len(requests)

        state = dispatcher.to_dict()
        state[NOTIFIED_KEY] = notified_to_json(_pruned(notified, known, now_ms))
        if saved_state or any(state[part] for part in ("alerts", "groups", "log", "outbox", NOTIFIED_KEY)):
            self.store.put_dispatcher_state(tenant, state)  # a tenant that never alerted writes nothing
        if rules.changed:
            self.store.put_group_states(tenant, rules.changed)
        return report

    # --- 1. rules ---

    def _evaluate_rules(self, tenant: str, reader: SeriesReader, now_ms: int, report: TenantReport) -> RuleRun:
        """Evaluate the tenant's rule groups that are due, and write their output."""
        files = self.store.rule_files(tenant)
        if not files:
            return RuleRun()
        s = self.settings
        run = evaluate_rule_files(
            tenant,
            files,
            self.store.group_states(tenant),
            reader,
            now_ms,
            s.evaluation_interval_s * 1000,
            s.max_catchup,
            s.query_timeout_s * 1000,
        )
        report.rule_files, report.rule_files_skipped = len(files), run.skipped_files
        report.groups_evaluated, report.rules_evaluated = run.groups_evaluated, run.rules_evaluated
        report.samples_written = self.writer.write(tenant, run.samples)
        return run

    # --- 2. signals ---

    @staticmethod
    def _muted(
        config: AlertmanagerConfig, silences: Sequence[Any], signals: Sequence[AlertSignal], now_ms: int
    ) -> set[str]:
        """Fingerprints of the firing signals a silence or an inhibit rule mutes now (over the current
        alerts: a scratch dispatcher holds exactly them)."""
        firing = [dispatch_alert(s, None) for s in signals if s.firing]
        if not firing:
            return set()
        scratch = Dispatcher(config, silences)
        scratch.receive(firing, now_ms / 1000)
        return {a.fingerprint for a in firing if scratch.muted_by(a, now_ms / 1000)}

    # --- 3. correlation ---

    def _correlate(
        self, tenant: str, reader: SeriesReader, signals: Sequence[AlertSignal], now_ms: int, report: TenantReport
    ) -> dict[str, Incident]:
        """Fold the signals into the tenant's incidents; every incident known after it, by id."""
        s = self.settings
        correlation = self._correlation_config(tenant)
        active = self.incidents.active_incidents(
            tenant, now_ms - s.incident_lookback_s * 1000, now_ms - correlation.settings.reopen_window_s * 1000
        )
        active += self._resolved_owners(tenant, active, signals)
        known = {i.id: i for i in active}
        if not signals:
            return known
        calls = reader.series([[Matcher(METRIC_NAME, "=", CALL_METRIC)]], now_ms - s.call_graph_window_s * 1000, now_ms)
        correlator = Correlator(
            tenant,
            correlation.topology.merged(Topology.from_call_series(calls)),
            correlation.settings,
            self._false_positive_rates(tenant, now_ms),
        )
        result = correlator.apply(active, signals, now_ms)
        saved = Correlation()
        expires_at = now_ms // 1000 + INCIDENT_TTL_DAYS * 86_400
        for incident_id, incident in result.changed.items():
            try:
                saved.changed[incident_id] = known[incident_id] = self.incidents.save(incident, expires_at)
            except IncidentConflict as exc:
                report.incident_conflicts += 1
                log.info("incident %s of %s not saved (%s); the next run redoes it", incident_id, tenant, exc)
                stored = self.incidents.incident(tenant, incident_id)
                if stored is not None:
                    known[incident_id] = stored
                else:
                    known.pop(incident_id, None)
        saved.opened = [i for i in result.opened if i in saved.changed]
        saved.resolved = [i for i in result.resolved if i in saved.changed]
        saved.reopened = [i for i in result.reopened if i in saved.changed]
        events = incident_events(saved)
        if events:
            self.events.put_events(events)
        report.incidents_changed = len(saved.changed)
        report.incidents_opened, report.incidents_resolved = len(saved.opened), len(saved.resolved)
        report.incidents_reopened = len(saved.reopened)
        return known

    def _resolved_owners(
        self, tenant: str, loaded: Sequence[Incident], signals: Sequence[AlertSignal]
    ) -> list[Incident]:
        """The incidents, older than those loaded, that firing alerts held by none of them opened: resolved by
        hand while the alert fires on (the correlator leaves them resolved; without them, it would open the
        same incident again, on the same id, every run)."""
        held = {fp for incident in loaded for fp in incident.alerts}
        found = []
        for signal in signals:
            if signal.firing and signal.fingerprint not in held:
                stored = self.incidents.incident(tenant, opening_id(tenant, signal.fingerprint, signal.starts_at_ms))
                if stored is not None:
                    found.append(stored)
        return found

    def _correlation_config(self, tenant: str) -> CorrelationConfig:
        """The tenant's correlation document over the function's defaults (just those without one)."""
        s = self.settings
        defaults = CorrelationSettings(
            window_s=s.correlation_window_s, max_hops=s.max_hops, reopen_window_s=s.reopen_window_s
        )
        stored = self.store.correlation_config(tenant)
        if stored is not None:
            try:
                return parse_correlation(stored.text, defaults)
            except CorrelationError as exc:  # validated on upload: only a newer, stricter parser can refuse it
                problems = "; ".join(str(p) for p in exc.problems[:3])
                log.warning(
                    "correlation settings of %s (version %d) do not parse (%s); the defaults are used",
                    tenant,
                    stored.version,
                    problems,
                )
        return CorrelationConfig(defaults)

    def _false_positive_rates(self, tenant: str, now_ms: int) -> dict[str, float]:
        """Each alert name's false-positive rate over the last ``false_positive_days``, read again every
        ``false_positive_refresh_s`` by a warm function."""
        cached = self._rates.get(tenant)
        if cached is not None and now_ms - cached[0] < self.settings.false_positive_refresh_s * 1000:
            return cached[1]
        start = now_ms - self.settings.false_positive_days * 86_400_000
        history = self.incidents.list_incidents(tenant, start, now_ms, limit=10_000, newest_first=True)
        rates = false_positive_rates(history)
        self._rates[tenant] = (now_ms, rates)
        return rates

    # --- 4. routing ---

    def _alertmanager_config(self, tenant: str) -> AlertmanagerConfig:
        stored = self.store.alertmanager_config(tenant)
        if stored is not None:
            try:
                return parse_config(stored.text)
            except ConfigError as exc:  # validated on upload: only a newer parser can refuse it
                log.warning("Alertmanager configuration of %s does not parse (%s); default routing used", tenant, exc)
        return parse_config(DEFAULT_CONFIG_TEXT)  # every alert to the inbox, grouped by incident

    def _dispatch(
        self,
        tenant: str,
        dispatcher: Dispatcher,
        signals: Sequence[AlertSignal],
        known: dict[str, Incident],
        notified: NotifiedLog,
        now_ms: int,
    ) -> list[NotificationRequest]:
        """Give the dispatcher every alert of an incident; the requests of the notifications due now."""
        # An alert that fires again belongs to the newest incident holding it.
        owner = {
            fp: incident for incident in sorted(known.values(), key=lambda i: i.opened_at_ms) for fp in incident.alerts
        }
        alerts = []
        for signal in signals:
            incident = owner.get(signal.fingerprint)
            if incident is None:
                continue  # muted before it joined an incident, or the end of an alert no incident holds
            alert = dispatch_alert(signal, incident.id)
            if signal.firing and incident.status is IncidentStatus.RESOLVED:
                # Resolved by hand while the alert still fires: its group must stop paging.
                ended = max(incident.resolved_at_ms or now_ms, signal.starts_at_ms) / 1000
                alert = replace(alert, ends_at=ended)
            alerts.append(alert)
        dispatcher.receive(alerts, now_ms / 1000)
        requests: list[NotificationRequest] = []
        for notification in dispatcher.flush(now_ms / 1000):
            for incident_id in incidents_of(notification):
                if incident_id not in known:
                    found = self.incidents.incident(tenant, incident_id)
                    if found is not None:
                        known[incident_id] = found
            requests += requests_for(notification, known, notified, now_ms, self._url)
        return requests

    def _url(self, incident_id: str) -> str:
        base = self.settings.external_url.rstrip("/")
        return f"{base}/incidents/{incident_id}" if base else ""


def _pruned(notified: NotifiedLog, known: Mapping[str, Incident], now_ms: int) -> NotifiedLog:
    """The log without incidents no longer active and not notified within the dispatcher's log retention."""
    horizon = now_ms - NFLOG_RETENTION_S * 1000
    return {
        incident_id: told
        for incident_id, told in notified.items()
        if incident_id in known or any(n.at_ms >= horizon for n in told.values())
    }
