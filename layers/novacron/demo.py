"""``novacron demo``: the local stack, a simulated estate sending to it, and a live terminal summary.

Everything the summary shows is read back through the public query API with a read-only key, so the
demo exercises the same path a user's Grafana would.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, TextIO

DEFAULT_FAULTS = (
    # Visible as soon as the backfilled half hour has been sent, and again later in real time.
    "errors:product-catalog:15%@+22m/20m",
    "latency:payment:+400ms@+40m/10m",
)

ERROR_RATIO = (
    'topk(4, sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))'
    " / sum by (service) (rate(http_requests_total[5m])))"
)
P95_LATENCY = "topk(4, histogram_quantile(0.95, sum by (service, le) (rate(http_request_duration_seconds_bucket[5m]))))"
STATSD_JOBS = "sum(rate(batch_jobs_processed_total[1m]))"
SOURCES = 'count by (source) ({source!=""})'
REJECTED = 'sum(increase(novacron_ingest_series_total{outcome="rejected"}[5m])) or vector(0)'
# Every series the demo sends carries these (the ingest policy requires them): set on each sender's key.
SIMULATOR_LABELS = {"source": "simulator", "environment": "demo", "owner": "shop-team"}
AGENT_LABELS = {"source": "statsd", "environment": "demo", "owner": "batch-team"}
BATCH_QUEUES = ("orders", "emails", "invoices")
FRESHNESS = "time() - max(timestamp(up))"
ANOMALIES_READ = 200  # the newest episodes read per summary; the strongest few are shown
ANOMALIES_SHOWN = 4
INCIDENTS_SHOWN = 3
INBOX_SHOWN = 4
RULES_FILE = "shop"  # the shop's alerting rules (novacron.simulate.alerting), pushed at start
SERVICE_ANOMALIES_SHOWN = 2
REQUEST_RATE = "sum(rate(http_requests_total[5m]))"
# Minutes of history a per-service model may be trained on in the demo (the backfilled half hour).
DEMO_MIN_TRAINING_POINTS = 20


def register(commands: Any) -> None:
    """Add the ``demo`` subcommand."""
    demo = commands.add_parser(
        "demo",
        help="run the local stack with a simulated microservice estate and a live summary",
        description="Start the local stack, send it a simulated online-shop estate over remote write "
        "(30 minutes of history first, then live) plus a StatsD batch worker through the collection agent, "
        "and print a summary read back through PromQL.",
    )
    demo.add_argument("--port", type=int, default=9090, help="HTTP port of the local API (default 9090)")
    demo.add_argument("--api-key", help="bootstrap admin key of tenant 'default' (generated when omitted)")
    demo.add_argument("--backfill", default="30m", help="history to send first (default 30m)")
    demo.add_argument("--interval", type=float, default=15.0, help="scrape interval in seconds (default 15)")
    demo.add_argument(
        "--fault",
        action="append",
        help="fault to inject (repeatable; see `novacron simulate --help`); default: two demo faults",
    )
    demo.add_argument("--refresh", type=float, default=5.0, help="seconds between summaries (default 5)")
    demo.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    demo.set_defaults(run=run)


@dataclass
class Summary:
    """One refresh of the terminal summary."""

    series: int | None
    request_rate: float | None
    freshness_s: float | None
    error_ratio: list[tuple[str, float]]
    p95_latency: list[tuple[str, float]]
    statsd_jobs: float | None = None
    sources: list[tuple[str, float]] | None = None
    rejected: float | None = None
    anomalies: list[dict[str, Any]] | None = None  # the detector's episodes, newest first
    incidents: list[dict[str, Any]] | None = None  # correlated alerts, newest first
    inbox: list[dict[str, Any]] | None = None  # the local inbox's notifications, newest first


class QueryClient:
    """A minimal client of NovaCron's Prometheus API."""

    def __init__(self, url: str, api_key: str) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key

    def get(self, path: str, **params: str) -> Any:
        """GET ``path`` and return the ``data`` of the Prometheus envelope."""
        request = urllib.request.Request(  # noqa: S310 (always our own http:// URL)
            f"{self.url}{path}?{urllib.parse.urlencode(params)}",
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (our own local URL)
            return json.loads(response.read())["data"]

    def vector(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """An instant query's vector as (labels, value) pairs."""
        data = self.get("/api/v1/query", query=promql)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def summary(self) -> Summary:
        """Read everything the demo shows."""

        def first(promql: str) -> float | None:
            rows = self.vector(promql)
            return rows[0][1] if rows else None

        def by_service(promql: str) -> list[tuple[str, float]]:
            rows = [(labels.get("service", "?"), value) for labels, value in self.vector(promql)]
            return sorted((r for r in rows if r[1] == r[1]), key=lambda r: -r[1])

        start = str(time.time() - 300)
        series = len(self.get("/api/v1/series", **{"match[]": '{__name__=~".+"}', "start": start}))
        # The sources after the StatsD rate: a summary showing StatsD jobs also lists their source, even
        # when the agent's first flush lands between the two queries.
        statsd_jobs = first(STATSD_JOBS)
        sources = sorted(
            ((labels.get("source", "?"), value) for labels, value in self.vector(SOURCES)), key=lambda r: -r[1]
        )
        return Summary(
            series,
            first(REQUEST_RATE),
            first(FRESHNESS),
            by_service(ERROR_RATIO),
            by_service(P95_LATENCY),
            statsd_jobs,
            sources,
            first(REJECTED),
            self.get("/api/v1/anomalies", limit=str(ANOMALIES_READ)),
            self.get("/api/v1/incidents", limit=str(INCIDENTS_SHOWN))["incidents"],
            self.get("/api/v1/notifications", limit=str(INBOX_SHOWN))["notifications"],
        )


def render(summary: Summary, stats: Any, ingest_rate: float, url: str, read_key: str) -> str:
    """The summary as terminal text; ``stats`` are the simulator's, ``ingest_rate`` samples/s accepted."""
    faults = ", ".join(stats.active_faults) or "none active"

    def pairs(rows: list[tuple[str, float]], fmt: str) -> str:
        return " | ".join(f"{name} {fmt.format(value)}" for name, value in rows) or "(waiting for data)"

    def maybe(value: float | None, fmt: str) -> str:
        return fmt.format(value) if value is not None else "-"

    lines = [
        f"NovaCron demo  {time.strftime('%H:%M:%S')}  {url}",
        f"  ingest      {ingest_rate:,.0f} samples/s over remote write ({stats.samples_sent:,} in all; simulator "
        f"{stats.phase}, {stats.series:,} series per scrape, {stats.retries} retries, "
        f"{stats.failures} failed requests)",
        f"  stored      {maybe(summary.series and float(summary.series), '{:,.0f}')} series active in the last 5m; "
        f"newest sample {maybe(summary.freshness_s, '{:.1f}')}s old; "
        f"{maybe(summary.request_rate, '{:,.0f}')} simulated requests/s",
        f"  error ratio {pairs(summary.error_ratio, '{:.1%}')}",
        f"  p95 latency {pairs(summary.p95_latency, '{:.3f}s')}",
        f"  faults      {faults}",
        f"  statsd      {maybe(summary.statsd_jobs, '{:.1f}')} batch jobs/s from a StatsD service, through the "
        f"novacron agent (UDP → disk queue → remote write)",
        f"  sources     {pairs(summary.sources or [], '{:,.0f} series')} (labels the ingest policy requires; "
        f"{maybe(summary.rejected, '{:,.0f}')} series rejected in 5m)",
        *anomaly_lines(summary.anomalies or []),
        *incident_lines(summary.incidents or []),
        *inbox_summary(summary.inbox or []),
        "  try:",
        f"    curl -s -H 'Authorization: Bearer {read_key}' '{url}/api/v1/query' "
        f"--data-urlencode 'query={ERROR_RATIO}'",
        f"    promtool query instant http://demo:{read_key}@{url.removeprefix('http://')} 'sum by (service) (up)'",
    ]
    return "\n".join(lines)


# Labels every demo series has, or that the line shows already: left out of its selector.
_SUMMARY_LABELS = {
    "__name__",
    "service",
    "job",
    "instance",
    "env",
    "namespace",
    "pod",
    *SIMULATOR_LABELS,
    *AGENT_LABELS,
}


def _band_multiples(anomaly: dict[str, Any]) -> float:
    """How many half-bands the strongest sample lay from what was expected: the anomaly's size."""
    expected, upper = anomaly["expected"], anomaly["upper"]
    if expected is None or upper is None:
        return 0.0
    return float(abs(anomaly["value"] - expected) / max(upper - expected, 1e-12))


def anomaly_lines(anomalies: list[dict[str, Any]]) -> list[str]:
    """The detector's episodes of the last day: how many, and the strongest few with their explanation."""
    if not anomalies:
        return ["  anomalies   none detected yet (the detector scores every series as it arrives)"]
    open_now = sum(1 for a in anomalies if a["status"] == "open")
    lines = [f"  anomalies   {len(anomalies)} episodes in the last 24h, {open_now} open; the strongest:"]
    ranked = sorted(anomalies, key=lambda a: (-a["score"], -_band_multiples(a), -a["peak_ms"]))
    # Service-level (Isolation Forest) episodes have no band to rank by: the strongest two get their own lines.
    services = [a for a in ranked if a["scored_as"] == "service"][:SERVICE_ANOMALIES_SHOWN]
    strongest = services + [a for a in ranked if a not in services][: ANOMALIES_SHOWN - len(services)]
    for a in strongest:
        labels = a["labels"]
        # the pod where the series has one: two pods' episodes of one metric are two lines that differ there
        where = labels.get("pod") or labels.get("service") or labels.get("job") or labels.get("instance", "")
        detail = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k not in _SUMMARY_LABELS)
        what = f"{a['metric']}{{{detail[:60]}}}{' rate' if a['scored_as'] == 'rate' else ''}"
        band = (
            f"expected {a['expected']:.4g} (band {a['lower']:.4g} to {a['upper']:.4g})"
            if a["expected"] is not None
            else "no baseline yet"
        )
        if a.get("drivers"):  # a service-level (Isolation Forest) anomaly: the features that drove it
            what = "service anomaly score"
            band = "drivers " + ", ".join(
                f"{d['feature']} {d['value']:.4g} (usual {d['expected']:.4g}, {d['contribution']:.0%})"
                for d in a["drivers"][:3]
            )
        lines.append(
            f"    {time.strftime('%H:%M:%S', time.localtime(a['peak_ms'] / 1000))}  {where} {what}: "
            f"{a['value']:.4g}, {band}; {', '.join(a['methods']) or 'score'}; "
            f"{a['severity']}, score {a['score']:.2f}, confidence {a['confidence']:.2f}, {a['status']}"
        )
    return lines


def incident_lines(incidents: list[dict[str, Any]]) -> list[str]:
    """The newest incidents: correlated alerts with their suspected origin and priority."""
    if not incidents:
        return ["  incidents   none yet (the shop's alerting rules are evaluated every minute)"]
    lines = [f"  incidents   the newest {len(incidents)} (alerts correlated over the call graph):"]
    for i in incidents:
        opened = time.strftime("%H:%M:%S", time.localtime(i["opened_at_ms"] / 1000))
        lines.append(
            f"    {opened}  {i['priority_label']} {i['status']:12} {i['title']}  "
            f"[{i['alerts_firing']}/{i['alerts_total']} firing; origin {i['origin'] or '?'}: {i['origin_reason']}]"
        )
    return lines


def inbox_summary(entries: list[dict[str, Any]]) -> list[str]:
    """The local inbox: where notifications land when no Slack/PagerDuty/... endpoint is configured."""
    from novacron.notify.inbox_api import inbox_lines  # the query API's modules: only once the demo runs

    if not entries:
        return ["  inbox       no notifications yet (incidents notify the local inbox after a 30 s group wait)"]
    return ["  inbox       the newest notifications (no real endpoint configured):"] + [
        f"    {line}" for line in inbox_lines(entries)
    ]


def push_rules(url: str, admin_key: str) -> None:
    """Upload the shop's alerting rules (what a team would keep in git and push with ``novacron rules push``)."""
    from novacron.simulate.alerting import SHOP_RULES

    request = urllib.request.Request(  # noqa: S310 (always our own http:// URL)
        f"{url.rstrip('/')}/api/v1/rules/files/{RULES_FILE}",
        data=SHOP_RULES.encode(),
        method="PUT",
        headers={"Authorization": f"Bearer {admin_key}", "Content-Type": "application/yaml"},
    )
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310 (our own local URL)
        pass


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run the demo until Ctrl-C (or ``--duration``)."""
    from novacron.adapters.keys_table import DynamoKeyStore
    from novacron.auth import generate_key, issue_key, register_key
    from novacron.local.resources import physical_name
    from novacron.local.runtime import LocalRuntime, configure_logging
    from novacron.simulate.faults import parse_duration, parse_fault
    from novacron.simulate.runner import Simulation, SimulationConfig
    from novacron.wiring import KEYS_TABLE

    configure_logging(logging.WARNING)
    # The handlers' structured logs would bury the summary; warnings and errors still show.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    admin_key = args.api_key or generate_key()
    stop = threading.Event()
    # The local trainer's first run (wiring: soon after start) has only the backfilled history to learn
    # from: let it train per-service models on that much (a real deployment asks for 2 h at least).
    handler_env = {"NOVACRON_MIN_POINTS": str(DEMO_MIN_TRAINING_POINTS)}
    with LocalRuntime(port=args.port, environment=handler_env) as runtime:
        table = physical_name(KEYS_TABLE)
        register_key(admin_key, "default", "admin", table, "bootstrap admin (demo)")
        store = DynamoKeyStore(table)
        ingest_key, _ = issue_key(store, "default", "ingest", int(time.time()), "demo simulator", SIMULATOR_LABELS)
        agent_key, _ = issue_key(store, "default", "ingest", int(time.time()), "demo agent", AGENT_LABELS)
        read_key, _ = issue_key(store, "default", "read", int(time.time()), "demo summary")
        push_rules(runtime.url, admin_key)
        print(f"NovaCron local stack at {runtime.url}", file=out)
        print(f"  admin key (tenant 'default'): {admin_key}", file=out)
        print(f"  read key  (tenant 'default'): {read_key}", file=out)
        faults = tuple(parse_fault(spec) for spec in (args.fault or DEFAULT_FAULTS))
        config = SimulationConfig(
            target=runtime.url,
            api_key=ingest_key,
            interval_s=args.interval,
            backfill_s=parse_duration(args.backfill),
            faults=faults,
        )
        simulation = Simulation(config, quiet=True)
        simulation.start()
        queue_dir = tempfile.mkdtemp(prefix="novacron-demo-agent-")
        agent = start_agent(runtime.url, agent_key, queue_dir)
        batch_worker = threading.Thread(
            target=send_batch_statsd, args=(agent.statsd_address or "", stop), name="demo-batch-worker", daemon=True
        )
        batch_worker.start()
        print(
            f"Simulating {len(simulation.estate.services)} services; sending {args.backfill} of history first.",
            file=out,
        )
        client = QueryClient(runtime.url, read_key)
        deadline = time.monotonic() + args.duration if args.duration else None
        sent, since = 0, time.monotonic()
        try:
            while not stop.wait(args.refresh):
                stats, now = simulation.stats, time.monotonic()
                rate, sent, since = (stats.samples_sent - sent) / max(now - since, 1e-9), stats.samples_sent, now
                try:
                    text = render(client.summary(), stats, rate, runtime.url, read_key)
                    print("\n" + text, file=out, flush=True)
                except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
                    print(f"(summary unavailable: {exc})", file=out, flush=True)
                if deadline is not None and time.monotonic() >= deadline:
                    break
        except KeyboardInterrupt:
            print("\nstopping…", file=out)
        finally:
            stop.set()
            simulation.stop()
            agent.stop()
            shutil.rmtree(queue_dir, ignore_errors=True)
    return 0


def start_agent(url: str, api_key: str, queue_dir: str) -> Any:
    """The collection agent, in-process: StatsD on an ephemeral UDP port, forwarding to the local stack."""
    from novacron.agent.config import AgentConfig
    from novacron.agent.runtime import Agent

    config = AgentConfig.model_validate(
        {
            "endpoint": url,
            "labels": {},  # the key's labels (AGENT_LABELS) complete the series at ingest
            "statsd": {"listen": "127.0.0.1:0", "flush_interval_s": 5},
            "otlp": {"enabled": False},
            "queue": {"dir": queue_dir, "max_bytes": 256 * 1024**2, "segment_bytes": 4 * 1024**2},
            "health": {"interval_s": 15},
        }
    )
    return Agent(config, api_key).start()


def send_batch_statsd(address: str, stop: threading.Event) -> None:
    """A StatsD-instrumented batch worker: jobs done (counter), their duration (timer), queue depth (gauge)."""
    host, _, port = address.rpartition(":")
    rng = random.Random(7)
    depth = dict.fromkeys(BATCH_QUEUES, 50)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        while not stop.wait(0.25):
            lines = []
            for queue in BATCH_QUEUES:
                done = rng.randint(0, 3)
                depth[queue] = max(0, depth[queue] + rng.randint(-3, 3))
                lines.append(f"batch.jobs.processed:{done}|c|#queue:{queue}")
                lines.append(f"batch.job.duration:{rng.uniform(20, 400):.1f}|ms|#queue:{queue}")
                lines.append(f"batch.queue.depth:{depth[queue]}|g|#queue:{queue}")
            sock.sendto("\n".join(lines).encode(), (host, int(port)))
