"""The agent as a subprocess against the local stack: real StatsD/DogStatsD clients, kill -9, outages."""

from __future__ import annotations

import threading
import time
from collections import Counter

import statsd
from datadog.dogstatsd.base import DogStatsd

from tests.integration.agent.conftest import (
    AgentFiles,
    Proxy,
    SampleKey,
    Stack,
    queued_bodies,
    samples_of,
    wait_for,
)


def value_of(stack: Stack, promql: str) -> float | None:
    result = stack.query(promql)
    return float(result[0]["value"][1]) if len(result) == 1 else None


def test_statsd_and_dogstatsd_clients_end_up_in_promql(stack: Stack, agent_files: AgentFiles, start_agent) -> None:
    # Given a running agent
    agent = start_agent()
    # When the statsd package and Datadog's DogStatsD client send to it
    client = statsd.StatsClient("127.0.0.1", agent_files.statsd_port, prefix="shop")
    for _ in range(25):
        client.incr("orders")
    client.gauge("queue_size", 7)
    client.timing("checkout", 120)
    client.close()
    dog = DogStatsd(host="127.0.0.1", port=agent_files.statsd_port, disable_telemetry=True)
    for _ in range(10):
        dog.increment("dd.requests", tags=["route:/pay", "environment:staging"])
    dog.gauge("dd.temperature", 21.5, tags=["room:lab"])
    dog.flush()
    dog.close_socket()
    # Then PromQL returns what they sent, with the agent's default labels where tags did not set them
    # (each client call is its own datagram, so they may land in different flushes; and series of one
    # request travel in one stream record per partition bucket, so they may reach different shards)
    wait_for(lambda: value_of(stack, "shop_orders_total") == 25, 30, "the statsd counter")
    wait_for(lambda: value_of(stack, "shop_queue_size") == 7, 30, "the statsd gauge")
    wait_for(lambda: value_of(stack, "shop_checkout_seconds_count") == 1, 30, "the statsd timer")
    wait_for(lambda: value_of(stack, "shop_checkout_seconds_sum") == 0.12, 30, "the statsd timer's sum")
    wait_for(lambda: value_of(stack, 'dd_requests_total{route="/pay"}') == 10, 30, "the DogStatsD counter")
    wait_for(lambda: value_of(stack, 'dd_temperature{room="lab"}') == 21.5, 30, "the DogStatsD gauge")
    requests = stack.query("dd_requests_total")[0]["metric"]
    assert requests["environment"] == "staging"  # the client's tag wins over the default
    assert requests["source"] == "agent-test"  # the default fills what the client left out
    # And the agent's health metrics arrived through the same queue
    wait_for(lambda: (value_of(stack, "novacron_agent_sent_requests_total") or 0) > 0, 30, "health metrics")
    assert value_of(stack, 'novacron_agent_statsd_lines_total{result="accepted"}') >= 38
    # And SIGTERM stops it cleanly
    assert agent.terminate() == 0
    assert "agent stopped" in agent.output()


def test_kill_9_mid_burst_then_restart_stores_every_accepted_sample_exactly_once(
    stack: Stack, proxy: Proxy, agent_files: AgentFiles, start_agent
) -> None:
    # Given an agent receiving a burst of StatsD lines
    agent = start_agent()
    client = statsd.StatsClient("127.0.0.1", agent_files.statsd_port)
    sending = threading.Event()
    sending.set()

    def burst() -> None:
        i = 0
        while sending.is_set():
            client.incr("kill.burst")
            client.gauge("kill.seq", i)
            i += 1
            time.sleep(0.002)

    sender = threading.Thread(target=burst, daemon=True)
    sender.start()
    wait_for(lambda: len(proxy.delivered_bodies()) >= 3, 20, "some deliveries")
    # And one request that reaches storage but whose answer never reaches the agent
    proxy.stall(lambda body: bool(samples_of(body, "kill_")))
    wait_for(lambda: proxy.stalled, 10, "the stalled request")
    time.sleep(1.0)  # more flushes queue up on disk behind it
    # When the agent is killed with SIGKILL in the middle of the burst
    agent.kill9()
    sending.clear()
    sender.join()
    client.close()
    # Then what it had accepted is: what storage took from it, plus what is queued on disk
    on_disk = queued_bodies(agent_files.queue_dir)
    assert on_disk, "entries were waiting on disk at the kill"
    accepted: dict[SampleKey, float] = {}
    for body in proxy.delivered_bodies() + on_disk:
        accepted.update(samples_of(body, "kill_"))
    stalled = proxy.stalled[0]
    assert samples_of(stalled, "kill_"), "the stalled request held burst samples"
    # When the agent is restarted on the same queue
    proxy.release()
    restarted = start_agent()
    # Then the stalled request is delivered again (at-least-once) …
    wait_for(lambda: proxy.delivered_bodies().count(stalled) >= 2, 30, "the unacknowledged request to be resent")
    # … and storage holds every accepted sample exactly once, per series
    expected = Counter((name, labels) for name, labels, _ in accepted)

    def stored() -> dict[tuple[str, frozenset[tuple[str, str]]], int]:
        return {
            (name, labels): n for name in ("kill_burst_total", "kill_seq") for labels, n in stack.counts(name).items()
        }

    assert len(expected) == 2
    wait_for(lambda: stored() == expected, 30, f"storage to hold exactly the {len(accepted)} accepted samples")
    assert restarted.terminate() == 0


def test_outage_then_recovery_delivers_everything(
    stack: Stack, proxy: Proxy, agent_files: AgentFiles, start_agent
) -> None:
    # Given the endpoint is down while the agent takes data
    proxy.down()
    agent = start_agent()
    client = statsd.StatsClient("127.0.0.1", agent_files.statsd_port)
    for _ in range(40):
        client.incr("outage.hits")
    client.close()
    time.sleep(1.5)  # several failed sends with backoff
    assert value_of(stack, "outage_hits_total") is None
    # When the endpoint comes back
    proxy.up()
    # Then everything queued during the outage is delivered, and the retries were counted
    wait_for(lambda: value_of(stack, "outage_hits_total") == 40, 30, "the queued counter")
    wait_for(lambda: (value_of(stack, "max(novacron_agent_retries_total)") or 0) > 0, 30, "the retries metric")
    # And after a clean stop, storage holds one sample per flush the agent delivered: none lost, none twice
    assert agent.terminate() == 0
    flushes = {ts for body in proxy.delivered_bodies() for (_, _, ts) in samples_of(body, "outage_")}
    wait_for(lambda: sum(stack.counts("outage_hits_total").values()) == len(flushes), 30, f"{len(flushes)} samples")
