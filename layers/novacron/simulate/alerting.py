"""Alerting for the simulated shop: the rule file an SRE team would write for it, and its routing.

``SHOP_RULES`` is a Prometheus rule file over the metrics the estate exports (``estate.py``): request
errors and latency per service and route and per pod, failing dependency calls, targets down and
memory growth.
Latency is judged against the same route's ten minutes half an hour earlier, since the shop's routes
differ by two orders of magnitude in normal latency. ``make demo`` pushes these rules; ``bench/noise.py`` evaluates
them over fault scenarios.

``SHOP_ALERTMANAGER`` routes every alert to the local inbox, grouped by incident: an alert storm is
one notification per incident. ``baseline_alertmanager`` is the usual Alertmanager setup (group by
alert name and service, 5-minute group interval) that the noise benchmark compares against.
"""

from __future__ import annotations

from novacron.alert.amconfig import DEFAULT_CONFIG_TEXT

SHOP_RULES = """\
groups:
  - name: shop-requests
    interval: 30s
    rules:
      - alert: HighErrorRatio
        expr: |
          sum by (service, route) (rate(http_requests_total{code=~"5.."}[2m]))
            / sum by (service, route) (rate(http_requests_total[2m])) > 0.05
        for: 1m
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.service }} {{ $labels.route }}: {{ $value | humanizePercentage }} of requests fail"
      - alert: LatencyDegraded
        expr: |
          histogram_quantile(0.99, sum by (service, route, le) (rate(http_request_duration_seconds_bucket[2m])))
            > 3 * histogram_quantile(0.99,
                    sum by (service, route, le) (rate(http_request_duration_seconds_bucket[10m] offset 30m)))
        for: 1m
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.service }} {{ $labels.route }}: p99 latency {{ $value | humanizeDuration }}"
  - name: shop-pods
    interval: 30s
    rules:
      - alert: PodErrorRatio
        expr: |
          sum by (service, pod) (rate(http_requests_total{code=~"5.."}[2m]))
            / sum by (service, pod) (rate(http_requests_total[2m])) > 0.05
        for: 1m
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.pod }}: {{ $value | humanizePercentage }} of requests fail"
      - alert: PodLatencyDegraded
        expr: |
          histogram_quantile(0.99, sum by (service, pod, le) (rate(http_request_duration_seconds_bucket[2m])))
            > 3 * histogram_quantile(0.99,
                    sum by (service, pod, le) (rate(http_request_duration_seconds_bucket[10m] offset 30m)))
        for: 1m
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.pod }}: p99 latency {{ $value | humanizeDuration }}"
  - name: shop-dependencies
    interval: 30s
    rules:
      - alert: DependencyErrors
        expr: |
          sum by (service, target) (rate(rpc_client_errors_total[2m]))
            / sum by (service, target) (rate(rpc_client_requests_total[2m])) > 0.05
        for: 1m
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.service }} → {{ $labels.target }}: {{ $value | humanizePercentage }} of calls fail"
  - name: shop-resources
    interval: 30s
    rules:
      - alert: TargetDown
        expr: up == 0
        for: 30s
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.service }} {{ $labels.instance }} is down"
      - alert: MemoryGrowing
        expr: |
          process_resident_memory_bytes > 1.5 * (process_resident_memory_bytes offset 30m)
            and process_resident_memory_bytes > 256 * 1024 * 1024
        for: 2m
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.service }} {{ $labels.pod }}: {{ $value | humanize1024 }}B resident and growing"
"""

# The default routing (novacron.alert.amconfig): the local inbox, grouped by incident.
SHOP_ALERTMANAGER = DEFAULT_CONFIG_TEXT


def baseline_alertmanager(group_by: tuple[str, ...] = ("alertname", "service")) -> str:
    """The common Alertmanager setup: group by ``group_by``, 30 s wait, 5-minute interval."""
    return (
        "route:\n"
        "  receiver: team\n"
        f"  group_by: [{', '.join(group_by)}]\n"
        "  group_wait: 30s\n"
        "  group_interval: 5m\n"
        "  repeat_interval: 4h\n"
        "receivers:\n"
        "  - name: team\n"
        "    inbox_configs:\n"
        "      - send_resolved: true\n"
    )
