"""The composed runtime: resources, environment, schedules, record age, and clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from novacron.local.moto_server import MotoServer
from novacron.local.resources import create_resources, physical_name
from novacron.local.runtime import LocalRuntime, run
from novacron.wiring import WIRING, Function, StreamConsumer, Wiring
from tests.integration.local.support import FAST, make_wiring, put, read_log


def test_declared_wiring_creates_every_resource_in_moto():
    # Given the real wiring and a bare moto server
    with MotoServer() as moto:
        # When its resources are created
        created = create_resources(moto, WIRING, prefix="w")

        # Then streams have their shard counts, tables their keys, billing mode and TTL
        kinesis, dynamodb = moto.client("kinesis"), moto.client("dynamodb")
        shards = kinesis.list_shards(StreamName="w-metrics")["Shards"]
        assert len(shards) == 2
        blocks = dynamodb.describe_table(TableName="w-blocks")["Table"]
        assert {k["AttributeName"]: k["KeyType"] for k in blocks["KeySchema"]} == {"pk": "HASH", "sk": "RANGE"}
        assert blocks["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        ttl = dynamodb.describe_time_to_live(TableName="w-blocks")["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
        for table in WIRING.tables:
            schema = dynamodb.describe_table(TableName=f"w-{table.name}")["Table"]["KeySchema"]
            assert schema[0] == {"AttributeName": table.partition_key, "KeyType": "HASH"}
        # and buckets and queues exist under their local names
        assert "w-archive" in {b["Name"] for b in moto.client("s3").list_buckets()["Buckets"]}
        assert created.queue_urls["metrics-writer-failures"].endswith("/w-metrics-writer-failures")
        assert created.stream_arns["metrics"].endswith(":stream/w-metrics")


def test_environment_is_set_while_running_and_restored_after(handler_root):
    # Given no endpoint override in the environment
    before = os.environ.get("AWS_ENDPOINT_URL")
    # When a runtime runs
    with LocalRuntime(make_wiring(), prefix="t", root=handler_root, poller_settings=FAST) as runtime:
        # Then handlers see moto, local resource names and quiet Powertools
        assert os.environ["AWS_ENDPOINT_URL"] == runtime.endpoint_url
        assert os.environ["MOTO_PORT"] == runtime.endpoint_url.rsplit(":", 1)[1]
        assert os.environ["NOVACRON_TABLE"] == "t-things"
        assert os.environ["POWERTOOLS_METRICS_DISABLED"] == "true"
    # and afterwards the environment is as it was
    assert os.environ.get("AWS_ENDPOINT_URL") == before
    assert "NOVACRON_TABLE" not in os.environ


def test_schedule_invokes_its_function_with_a_scheduled_event(runtime, handler_root):
    # Given a 1 s schedule sped up 20x / When a few periods pass
    deadline = time.monotonic() + 5
    while len(read_log(handler_root / "ticks.jsonl")) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    # Then the function ran repeatedly with a Scheduled Event naming the schedule
    ticks = read_log(handler_root / "ticks.jsonl")
    assert len(ticks) >= 2
    assert ticks[0]["detail-type"] == "Scheduled Event"
    assert ticks[0]["resources"][0].endswith(":schedule/default/t-tick")


def _age_limited_wiring() -> Wiring:
    base = make_wiring()
    consumer = StreamConsumer(
        "consumer",
        "events",
        batch_size=10,
        batching_window_s=0,
        max_retry_attempts=-1,
        max_record_age_s=1,
        on_failure="dlq",
    )
    return Wiring(base.streams, base.tables, base.buckets, base.queues, base.functions, (consumer,), base.routes)


@pytest.mark.parametrize("wiring", [_age_limited_wiring()])
def test_records_older_than_the_maximum_age_are_discarded(runtime, kinesis, wiring):
    # Given endless retries but a 1 s record age limit, and a record that always fails
    (sequence,) = put(kinesis, b"poison")
    # When the poller has retried for longer than the age limit
    assert runtime.wait_until_idle(timeout=10)
    # Then the record was discarded with condition RecordAgeExceeded
    sqs = runtime.client("sqs")
    messages = sqs.receive_message(QueueUrl=runtime.resources.queue_urls["dlq"]).get("Messages", [])
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert body["requestContext"]["condition"] == "RecordAgeExceeded"
    assert body["requestContext"]["approximateInvokeCount"] >= 1
    assert body["KinesisBatchInfo"]["startSequenceNumber"] == sequence


def test_missing_handlers_can_be_skipped(tmp_path):
    # Given a function whose handler file does not exist yet
    wiring = Wiring((), (), (), (), (Function("ghost", code="nope", handler="handler.h"),), (), ())
    # Then the runtime refuses by default and starts without it when allowed
    with pytest.raises(FileNotFoundError), LocalRuntime(wiring, root=tmp_path):
        pass
    with LocalRuntime(wiring, root=tmp_path, allow_missing_handlers=True) as runtime:
        assert runtime.functions == {}


def test_run_registers_the_admin_key_and_stops_cleanly_on_request(handler_root):
    # Given run() on a background thread with an injected key registration hook
    registered: list[tuple[str, dict[str, str]]] = []
    ready, stop = threading.Event(), threading.Event()

    def register(key: str, **kwargs: str) -> None:
        registered.append((key, kwargs))
        ready.set()

    before = set(threading.enumerate())
    worker = threading.Thread(
        target=run,
        args=(0, None),
        kwargs={
            "prefix": "cli",
            "wiring": make_wiring(),
            "register_key": register,
            "generate_key": lambda: "nck_generated",
            "stop_event": stop,
            "runtime_options": {"root": handler_root, "poller_settings": FAST},
        },
    )
    worker.start()
    assert ready.wait(15)

    # When stop is requested (what the Ctrl-C / SIGTERM handler does)
    stop.set()
    worker.join(15)

    # Then the generated key was registered as the default tenant's admin in the local keys table
    assert registered == [
        ("nck_generated", {"tenant": "default", "role": "admin", "table_name": physical_name("api-keys", "cli")})
    ]
    # and no thread of the runtime is left running
    assert not worker.is_alive()
    assert [t for t in set(threading.enumerate()) - before if t.is_alive()] == []


def test_ctrl_c_stops_the_cli_process_with_exit_code_0(tmp_path):
    # Given `run` in its own process (as `novacron local` runs it), with an empty wiring
    script = textwrap.dedent(
        """
        from novacron.local.runtime import run
        from novacron.wiring import Wiring
        run(0, "nck_given", wiring=Wiring((), (), (), (), (), (), ()),
            register_key=lambda key, **kw: print("registered", key, kw["table_name"], flush=True))
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        lines = []
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        # When it receives SIGINT
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    # Then it printed the URL and the key, and exited 0 after stopping everything
    assert process.returncode == 0, stderr
    assert "registered nck_given novacron-api-keys\n" in lines
    assert any(line.startswith("NovaCron is running at http://127.0.0.1:") for line in lines)
    assert "Admin API key (tenant 'default'): nck_given\n" in lines
    assert "local runtime stopped" in stderr
