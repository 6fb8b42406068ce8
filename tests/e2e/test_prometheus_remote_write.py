"""A real Prometheus scrapes a target and remote-writes to the local stack; promtool reads it back."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LocalStack, PrometheusServer, ScrapeTarget, require_binary, wait_for

pytestmark = pytest.mark.e2e


def api(stack_url: str, key: str, path: str, **params: str) -> Any:
    request = urllib.request.Request(
        f"{stack_url}{path}?{urllib.parse.urlencode(params)}", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def promtool(*args: str) -> Any:
    binary = require_binary("promtool")
    done = subprocess.run([binary, "query", *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"promtool {' '.join(args)} failed: {done.stderr}"
    return json.loads(done.stdout)


def with_key(url: str, key: str) -> str:
    # promtool 2.42's instant query takes no headers; basic auth in the URL carries the key.
    parsed = urllib.parse.urlsplit(url)
    return parsed._replace(netloc=f"promtool:{urllib.parse.quote(key, safe='')}@{parsed.netloc}").geturl()


@pytest.fixture(scope="module")
def flowing(local_stack: LocalStack, prometheus: PrometheusServer, scrape_target: ScrapeTarget) -> None:
    """Wait until scraped samples have made it through remote write, Kinesis and the writer."""

    def arrived() -> bool:
        if prometheus.process.poll() is not None:
            raise AssertionError(f"prometheus exited: {prometheus.log.read_text()[-3000:]}")
        answer = api(local_stack.url, local_stack.read_key, "/api/v1/query", query="e2e_requests_total")
        return bool(answer["data"]["result"])

    wait_for(arrived, 60, "the first remote-written samples to be queryable")
    time.sleep(10)  # more scrapes, so that ranges ending SETTLED_S ago hold several points


# Samples younger than this may still be between Prometheus's WAL and the hot tier.
SETTLED_S = 6


def test_promtool_instant_query_returns_scraped_values(local_stack: LocalStack, flowing: None) -> None:
    # When promtool asks the local stack for the gauge
    result = promtool(
        "instant", "-o", "json", with_key(local_stack.url, local_stack.read_key), "e2e_temperature_celsius"
    )
    # Then it gets the scraped value with Prometheus's target labels
    assert len(result) == 1
    assert result[0]["metric"]["room"] == "lab"
    assert result[0]["metric"]["job"] == "e2e"
    assert result[0]["value"][1] == "21.5"


def test_promtool_range_query_matches_prometheus_itself(
    local_stack: LocalStack, prometheus: PrometheusServer, flowing: None
) -> None:
    # Given a window that has fully gone through remote write
    end = time.time() - SETTLED_S
    start = end - 5
    window = ["--start", f"{start:.3f}", "--end", f"{end:.3f}", "--step", "1s"]
    # When promtool runs the same range query against NovaCron and against Prometheus
    ours = promtool(
        "range",
        "-o",
        "json",
        "--header",
        f"Authorization: Bearer {local_stack.read_key}",
        *window,
        local_stack.url,
        "e2e_requests_total",
    )
    theirs = promtool("range", "-o", "json", *window, prometheus.url, "e2e_requests_total")
    # Then the series and every value are the same, NovaCron's series also carrying the labels its default
    # ingest policy adds (docs/ingest-policy.md): this Prometheus sends no source, environment or owner
    policy_labels = {"source": "unknown", "environment": "unknown", "owner": "unknown"}
    assert [s["metric"] for s in ours] == [{**s["metric"], **policy_labels} for s in theirs]
    assert ours[0]["values"] == theirs[0]["values"]
    assert len(ours[0]["values"]) >= 5
    # And the counter grows as the target served it (5 per scrape)
    values = [float(v) for _, v in ours[0]["values"]]
    assert all(b >= a for a, b in itertools.pairwise(values))


def test_every_scraped_sample_arrived(local_stack: LocalStack, prometheus: PrometheusServer, flowing: None) -> None:
    # Given a window that has fully gone through remote write
    at = f"{time.time() - SETTLED_S:.3f}"
    query = "e2e_temperature_celsius[2m]"
    # When both return the raw samples they hold
    ours = promtool("instant", "-o", "json", "--time", at, with_key(local_stack.url, local_stack.read_key), query)
    theirs = promtool("instant", "-o", "json", "--time", at, prometheus.url, query)
    # Then from the first sample remote write delivered (Prometheus may not send samples scraped
    # before its WAL watcher started), NovaCron holds exactly the samples Prometheus scraped
    first = ours[0]["values"][0][0]
    expected = [v for v in theirs[0]["values"] if v[0] >= first]
    assert ours[0]["values"] == expected
    assert len(expected) >= 3


def test_another_tenant_sees_none_of_it(local_stack: LocalStack, flowing: None) -> None:
    answer = api(local_stack.url, local_stack.other_read_key, "/api/v1/query", query="e2e_requests_total")
    assert answer["data"]["result"] == []
    names = api(local_stack.url, local_stack.other_read_key, "/api/v1/label/__name__/values")
    assert names["data"] == []


# What NovaCron adds to a tenant's data: the labels its default ingest policy fills in on every series
# (docs/ingest-policy.md), and its own novacron_ingest_* series, labelled by outcome and protocol.
ADDED_LABELS = frozenset({"source", "environment", "owner", "outcome", "protocol"})


def _without_additions(body: Any) -> Any:
    """A Prometheus API body without NovaCron's added labels (in label sets and name lists) and series."""
    if isinstance(body, dict):
        if "__name__" in body or "job" in body:  # a label set
            return {k: _without_additions(v) for k, v in body.items() if k not in ADDED_LABELS}
        return {k: _without_additions(v) for k, v in body.items()}
    if isinstance(body, list):
        added = [isinstance(v, str) and (v in ADDED_LABELS or v.startswith("novacron_")) for v in body]
        return [_without_additions(v) for v, skip in zip(body, added, strict=True) if not skip]
    return body


def test_promtool_series_and_labels_match_prometheus_itself(
    local_stack: LocalStack, prometheus: PrometheusServer, flowing: None
) -> None:
    # When promtool lists the scraped job's series and the job label's values on both
    ours_url = with_key(local_stack.url, local_stack.read_key)
    ours = promtool("series", "-o", "json", "--match", '{job="e2e"}', ours_url)
    theirs = promtool("series", "-o", "json", "--match", '{job="e2e"}', prometheus.url)
    # Then the same series come back (NovaCron's added labels aside), and the same label values
    assert sorted(map(str, _without_additions(ours))) == sorted(map(str, theirs))
    assert promtool("labels", "-o", "json", ours_url, "job") == promtool("labels", "-o", "json", prometheus.url, "job")


def _grafana_calls(now: float) -> list[tuple[str, str, dict[str, Any]]]:
    """What Grafana's Prometheus data source sends: health check, metrics browser, panels, exemplars."""
    end = int(now - SETTLED_S)
    window = {"start": str(end - 30), "end": str(end)}
    form = "application/x-www-form-urlencoded"
    return [
        ("GET", "/api/v1/status/buildinfo", {}),
        (form, "/api/v1/query", {"query": "1+1", "time": str(end)}),  # "Save & test"
        ("GET", "/api/v1/labels", window),
        ("GET", "/api/v1/label/__name__/values", window),
        ("GET", "/api/v1/label/job/values", {**window, "match[]": "e2e_requests_total"}),
        ("GET", "/api/v1/series", {**window, "match[]": '{job="e2e"}'}),
        ("GET", "/api/v1/metadata", {"metric": "e2e_requests_total"}),
        (form, "/api/v1/query_range", {"query": "e2e_temperature_celsius", "step": "1", **window, "timeout": "30s"}),
        (form, "/api/v1/query", {"query": 'sum by (job) (e2e_temperature_celsius{job="e2e"})', "time": str(end)}),
        (form, "/api/v1/query_exemplars", {"query": "e2e_requests_total", **window}),
    ]


def test_grafana_data_source_calls_are_answered_as_prometheus_answers_them(
    local_stack: LocalStack, prometheus: PrometheusServer, flowing: None
) -> None:
    # Given the requests Grafana's Prometheus data source makes (GET, or POST forms as it sends queries)
    mismatches = []
    for method, path, params in _grafana_calls(time.time()):
        sent = []
        for url, headers in (
            (local_stack.url, {"Authorization": f"Bearer {local_stack.read_key}"}),
            (prometheus.url, {}),
        ):
            if method == "GET":
                response = requests.get(f"{url}{path}", params=params, headers=headers, timeout=10)
            else:
                response = requests.post(
                    f"{url}{path}", data=params, headers={**headers, "Content-Type": method}, timeout=10
                )
            sent.append((response.status_code, response.json()))
        (status, ours), (their_status, theirs) = sent
        # When both answer, then the status and envelope are Prometheus's and the data the same, except:
        # buildinfo (another product's version) and metadata (NovaCron stores no metric types yet), whose
        # shape alone must match
        if path.endswith(("buildinfo", "metadata")):
            same = status == their_status and set(ours["data"]) >= set(theirs["data"]) - {"e2e_requests_total"}
            if path.endswith("metadata"):
                same = same and all(set(e) == {"type", "help", "unit"} for es in ours["data"].values() for e in es)
        elif path.endswith(("labels", "values", "series")):
            normalise = (lambda d: sorted(map(str, d))) if isinstance(theirs["data"], list) else (lambda d: d)
            same = (status, normalise(_without_additions(ours["data"]))) == (their_status, normalise(theirs["data"]))
        else:
            same = (status, _without_additions(ours)) == (their_status, theirs)
        if not same:
            mismatches.append(
                f"{method} {path} {params}\n    novacron {status}: {ours}\n    prometheus {their_status}: {theirs}"
            )
    assert not mismatches, "\n".join(mismatches)
