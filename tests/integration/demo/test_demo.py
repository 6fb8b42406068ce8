"""`novacron demo`: the local stack, the simulator and the summary, in one process."""

from __future__ import annotations

import argparse
import io
import re
import socket

from novacron.demo import run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_shows_data_read_back_through_promql() -> None:
    # Given a short demo: five minutes of history with an error fault, then two and a half minutes live
    args = argparse.Namespace(
        port=free_port(),
        api_key="demo-admin-key-for-tests",
        backfill="5m",
        interval=15.0,
        fault=["errors:product-catalog:60%@+3m/10m"],
        refresh=4.0,
        duration=150.0,
    )
    out = io.StringIO()
    # When it runs
    assert run(args, out=out) == 0
    text = out.getvalue()
    # Then it printed the keys and a summary whose figures came back through the query API
    assert "admin key (tenant 'default'): demo-admin-key-for-tests" in text
    assert re.search(r"ingest\s+[\d,]+ samples/s over remote write", text)
    stored = [int(n.replace(",", "")) for n in re.findall(r"stored\s+([\d,]+) series active", text)]
    assert stored
    assert max(stored) > 1000
    # And the injected fault is visible: product-catalog has the highest error ratio
    ratios = re.findall(r"error ratio (\S+) ([\d.]+)%", text)
    assert ratios
    assert ratios[-1][0] == "product-catalog"
    assert float(ratios[-1][1]) > 20
    # And the StatsD batch worker's jobs arrived through the agent, with the labels its key carries
    jobs = [float(n) for n in re.findall(r"statsd\s+([\d.]+) batch jobs/s", text)]
    assert jobs
    assert max(jobs) > 0
    sources = re.findall(r"sources\s+(.*)", text)
    assert any("simulator" in line and "statsd" in line for line in sources), sources
    # And the streaming detector's episodes are listed, each explained against what was expected
    assert re.search(r"anomalies\s+\d+ episodes in the last 24h", text)
    explained = re.findall(r"^    \d\d:\d\d:\d\d  \S+ .*expected .* \(band .*\); \w+.*$", text, re.MULTILINE)
    assert explained
    # ... the strongest of them at the injected fault: product-catalog's errors, or its callers' errors calling it
    assert any("product-catalog" in line for line in explained[-4:]), explained[-4:]
    # And the shop's alerting rules fired on the fault: an incident at product-catalog (its callers' alerts
    # correlated into it), notified to the local inbox
    incidents = re.findall(r"^    \d\d:\d\d:\d\d  P\d (open|acknowledged|resolved)\s+(.*)$", text, re.MULTILINE)
    assert incidents, text[-3000:]
    assert any("product-catalog" in title for _, title in incidents), incidents
    notified = re.findall(r"^    \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  \S+  #\d+\s+(.*)$", text, re.MULTILINE)
    assert notified, text[-3000:]
