"""Freshness on the local stack: a remote-written sample → visible to a PromQL query, p50 and p95.

Each probe writes one new sample (value = probe number, timestamp = now) over remote write and polls
the query API until the value is returned. The path is the full one: gateway → ingest handler →
Kinesis (moto) → event-source-mapping poller → writer → DynamoDB (moto) → query handler.
The reference in the same run is the round trip of a query that reads nothing new (the floor of the
HTTP + handler path). Target (issue #2): p95 <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.parse
import urllib.request

from novacron.auth import generate_key, register_key
from novacron.local.resources import physical_name
from novacron.local.runtime import LocalRuntime, configure_logging
from novacron.simulate.remote_write import RemoteWriteClient
from novacron.wiring import KEYS_TABLE


def query(url: str, key: str, promql: str) -> list[dict]:  # type: ignore[type-arg]
    request = urllib.request.Request(
        f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}",
        headers={"Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]["result"]  # type: ignore[no-any-return]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--probes", type=int, default=40)
    args = parser.parse_args()
    configure_logging(40)
    with LocalRuntime() as runtime:
        ingest_key, read_key = generate_key(), generate_key()
        register_key(ingest_key, "bench", "ingest", physical_name(KEYS_TABLE))
        register_key(read_key, "bench", "read", physical_name(KEYS_TABLE))
        client = RemoteWriteClient(runtime.url, ingest_key)
        latencies, floors = [], []
        for probe in range(1, args.probes + 1):
            sent = time.perf_counter()
            client.write([({"__name__": "freshness_probe", "job": "bench"}, [(int(time.time() * 1000), probe)])])
            while True:
                result = query(runtime.url, read_key, "freshness_probe")
                if result and float(result[0]["value"][1]) == probe:
                    break
                if time.perf_counter() - sent > 30:
                    raise SystemExit(f"probe {probe} not visible after 30 s")
                time.sleep(0.01)
            latencies.append(time.perf_counter() - sent)
            start = time.perf_counter()
            query(runtime.url, read_key, "freshness_probe")
            floors.append(time.perf_counter() - start)
            time.sleep(0.05)
    p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
    print(f"freshness on the local stack ({args.probes} probes): remote write -> visible to a query")
    print(f"  p50 {p50 * 1000:.0f} ms   p95 {p95 * 1000:.0f} ms   max {max(latencies) * 1000:.0f} ms")
    print(
        f"  reference: a query round trip alone, p50 {statistics.median(floors) * 1000:.0f} ms "
        f"(freshness is {p50 / statistics.median(floors):.1f}x that)"
    )
    print(f"  target: p95 <= 1000 ms -> {'met' if p95 <= 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
