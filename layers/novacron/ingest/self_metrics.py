"""NovaCron's own ingest metrics, written into each tenant's data so that PromQL sees its rejections.

Every ingest-type function keeps cumulative counters per tenant, like a Prometheus target: one
*instance* per warm Lambda (a random id made at cold start), counters that only grow while it lives.
So ``sum(rate(novacron_ingest_series_total{outcome="rejected"}[5m])) by (reason)`` is right across
instances, as it is across scraped targets. After a request, when due, the counters are sent as series
through the same ingest path as the tenant's data (``IngestService.ingest_encoded``).

Series (one set per tenant and instance):

- ``novacron_ingest_series_total{protocol, outcome="accepted"|"rejected", reason, instance}``: series
  (one series in one request counts once); ``reason`` only on rejected ones (a ``RejectReason`` value).
- ``novacron_ingest_samples_total{protocol, outcome="accepted", instance}``: samples stored.
- ``novacron_ingest_requests_refused_total{protocol, status, instance}``: whole requests refused with a
  4xx/5xx status (a corrupt body, an unsupported content type, a throttled stream).

A counter's first sample is preceded by a ``0`` just before it was created, so that ``rate()`` and
``increase()`` see its first increments (the same reason remote write 2.0 carries created timestamps).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from novacron.ingest.service import IngestResult, IngestService
from novacron.protocols.remote_write_pb import Label, Sample, TimeSeries

SERIES_METRIC = "novacron_ingest_series_total"
SAMPLES_METRIC = "novacron_ingest_samples_total"
REFUSED_METRIC = "novacron_ingest_requests_refused_total"
ACCEPTED = "accepted"
REJECTED = "rejected"
_REJECTED_PREFIX = "SeriesRejected_"
# A counter's starting zero is only sent while it is well inside the ingest window (2 hours by default).
_MAX_ZERO_AGE_MS = 3_600_000

log = logging.getLogger(__name__)

# A counter's identity within a tenant: its labels other than the instance, sorted by name.
_CounterKey = tuple[tuple[str, str], ...]


def new_instance_id() -> str:
    """A random id for this warm function instance (made once, at cold start)."""
    return secrets.token_hex(6)


@dataclass
class _Counter:
    created_ms: int
    value: int = 0
    zero_sent: bool = False


class IngestCounters:
    """Cumulative per-tenant counters of one function instance, drained as TimeSeries encodings."""

    def __init__(self, instance: str, clock_ms: Callable[[], int], flush_every_s: float = 15.0) -> None:
        self.instance = instance
        self.clock_ms = clock_ms
        self.flush_every_ms = flush_every_s * 1000
        self._tenants: dict[str, dict[_CounterKey, _Counter]] = {}
        self._last_drain_ms = clock_ms()
        # A counter not yet sent makes a drain due at once, so that its starting zero is recent.
        self._unsent = False
        # Per tenant: the counters whose starting zero went out with the last drain.
        self._zeros_drained: dict[str, list[_Counter]] = {}

    def add(self, tenant: str, protocol: str, outcome: str, reason: str, n: int) -> None:
        """Count ``n`` series of ``tenant`` with this outcome (``reason`` empty for accepted ones)."""
        labels = (("__name__", SERIES_METRIC), ("outcome", outcome), ("protocol", protocol), ("reason", reason))
        self._add(tenant, labels, n)

    def add_samples(self, tenant: str, protocol: str, outcome: str, n: int) -> None:
        """Count ``n`` samples of ``tenant`` with this outcome."""
        self._add(tenant, (("__name__", SAMPLES_METRIC), ("outcome", outcome), ("protocol", protocol)), n)

    def add_refused(self, tenant: str, protocol: str, status: int) -> None:
        """Count one request of ``tenant`` refused as a whole with ``status``."""
        self._add(tenant, (("__name__", REFUSED_METRIC), ("protocol", protocol), ("status", str(status))), 1)

    def record(self, tenant: str, protocol: str, result: IngestResult) -> None:
        """Count what one request's result says: accepted series and samples, rejected series by reason."""
        self.add(tenant, protocol, ACCEPTED, "", result.series_accepted)
        self.add_samples(tenant, protocol, ACCEPTED, result.samples_accepted)
        # metric_counts is the one place that classifies rejections (unclassified ones included).
        for name, n in result.metric_counts().items():
            if name.startswith(_REJECTED_PREFIX):
                self.add(tenant, protocol, REJECTED, name[len(_REJECTED_PREFIX) :], int(n))

    def due(self) -> bool:
        """Whether to send now: a counter was never sent, or ``flush_every_s`` passed since the last drain."""
        if not self._tenants:
            return False
        return self._unsent or self.clock_ms() - self._last_drain_ms >= self.flush_every_ms

    def drain(self) -> dict[str, list[bytes]]:
        """Every counter's current value, per tenant, as ``TimeSeries`` encodings.

        The counters keep their values (they are cumulative); a drain only marks them as sent. A
        tenant whose series could not be sent is reported with ``unsent``.
        """
        now = self.clock_ms()
        self._last_drain_ms = now
        self._unsent = False
        self._zeros_drained = {}
        out = {}
        for tenant, counters in self._tenants.items():
            series = []
            for key, counter in counters.items():
                labels = sorted([*key, ("instance", self.instance)])
                ts = TimeSeries(labels=[Label(name=name, value=value) for name, value in labels])
                if not counter.zero_sent and now - counter.created_ms < _MAX_ZERO_AGE_MS:
                    ts.samples.append(Sample(timestamp=counter.created_ms - 1, value=0.0))
                    self._zeros_drained.setdefault(tenant, []).append(counter)
                counter.zero_sent = True
                ts.samples.append(Sample(timestamp=now, value=float(counter.value)))
                series.append(ts.SerializeToString())
            out[tenant] = series
        return out

    def unsent(self, tenant: str) -> None:
        """Say that a tenant's last drained series were not sent: their starting zeros go with the next drain.

        The values need nothing: they are cumulative, and the next drain sends them again.
        """
        for counter in self._zeros_drained.pop(tenant, []):
            counter.zero_sent = False

    def _add(self, tenant: str, labels: _CounterKey, n: int) -> None:
        if n <= 0:
            return
        # An empty label value is an absent label (as in Prometheus).
        key = tuple((name, value) for name, value in labels if value)
        counters = self._tenants.setdefault(tenant, {})
        counter = counters.get(key)
        if counter is None:
            counter = counters[key] = _Counter(self.clock_ms())
            self._unsent = True
        counter.value += n


def send_self_metrics(counters: IngestCounters, service: IngestService) -> None:
    """If due, ingest each tenant's counters as that tenant's series. Never raises.

    Called by ingest-type handlers after each request: a failure here must not fail the user's
    request, so it is logged and the counters stay for the next attempt.
    """
    if not counters.due():
        return
    for tenant, series in counters.drain().items():
        try:
            result = service.ingest_encoded(series, tenant, apply_policy=False)
        except Exception as exc:
            log.warning("could not send NovaCron's ingest metrics for %s: %s", tenant, exc)
            counters.unsent(tenant)
            continue
        if result.rejected:
            # A tenant policy (a required label set to reject, a cardinality limit) can refuse them.
            log.warning("NovaCron's ingest metrics for %s were rejected: %s", tenant, result.rejection_message())
