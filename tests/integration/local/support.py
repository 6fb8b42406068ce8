"""Helpers for the local runtime tests: a custom wiring, small handler files, a runtime.

The handlers write one JSON line per invocation to a log file, so tests observe exactly what each
invocation received and how it ended. Record data drives their behaviour:
``poison…`` always raises, ``fail-once…`` is reported in ``batchItemFailures`` the first time only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from novacron.local.poller import PollerSettings
from novacron.local.runtime import LocalRuntime
from novacron.wiring import Bucket, Function, Queue, Route, Schedule, Stream, StreamConsumer, Table, Wiring

CONSUMER_HANDLER = """
import base64, json, threading
_LOCK = threading.Lock()
_SEEN = set()

def lambda_handler(event, context):
    failures, outcome = [], "ok"
    try:
        for record in event["Records"]:
            data = base64.b64decode(record["kinesis"]["data"])
            seq = record["kinesis"]["sequenceNumber"]
            if data.startswith(b"poison"):
                outcome = "raised"
                raise ValueError("poison record " + seq)
            if data.startswith(b"fail-once") and seq not in _SEEN:
                _SEEN.add(seq)
                failures.append({"itemIdentifier": seq})
        if failures:
            outcome = "partial"
        return {"batchItemFailures": failures}
    finally:
        with _LOCK, open(LOG, "a") as out:
            out.write(json.dumps({"outcome": outcome, "event": event, "failures": failures,
                                  "function": context.function_name}) + "\\n")
"""

API_HANDLER = """
import base64, json, os

def lambda_handler(event, context):
    path = event["rawPath"]
    if path == "/boom":
        raise RuntimeError("boom")
    if path == "/plain":
        return "just a string"
    if path.startswith("/echo-binary/"):
        body = base64.b64decode(event["body"]) if event.get("isBase64Encoded") else event.get("body", "").encode()
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream",
                "x-item": event["pathParameters"]["item"]},
                "body": base64.b64encode(body[::-1]).decode(), "isBase64Encoded": True}
    event["env_table"] = os.environ.get("NOVACRON_TABLE")
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "cookies": ["c=1"],
            "body": json.dumps(event)}
"""

TICK_HANDLER = """
import json
def lambda_handler(event, context):
    with open(LOG, "a") as out:
        out.write(json.dumps(event) + "\\n")
"""


def write_handler(root: Path, folder: str, source: str, log: Path) -> None:
    """Write ``handler.py`` into ``root/folder`` with ``LOG`` pointing at ``log``."""
    target = root / folder
    target.mkdir(parents=True, exist_ok=True)
    (target / "handler.py").write_text(f"LOG = {str(log)!r}\n{source}")


def read_log(log: Path) -> list[dict[str, Any]]:
    """Every JSON line written so far."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def make_wiring(*, max_retry_attempts: int = 5, batch_size: int = 10, window_s: int = 0) -> Wiring:
    """A small wiring exercising each kind of declaration."""
    return Wiring(
        streams=(Stream("events", shards=1),),
        tables=(Table("things", partition_key="pk", sort_key="sk", ttl_attribute="expires"),),
        buckets=(Bucket("blobs"),),
        queues=(Queue("dlq"),),
        functions=(
            Function("consumer", code="fns/consumer", handler="handler.lambda_handler", timeout_s=5),
            Function(
                "api",
                code="fns/api",
                handler="handler.lambda_handler",
                environment={"NOVACRON_TABLE": "things"},
            ),
            Function("ticker", code="fns/ticker", handler="handler.lambda_handler"),
        ),
        consumers=(
            StreamConsumer(
                "consumer",
                "events",
                batch_size=batch_size,
                batching_window_s=window_s,
                max_retry_attempts=max_retry_attempts,
                on_failure="dlq",
            ),
        ),
        routes=(
            Route("GET", "/boom", "api"),
            Route("GET", "/plain", "api"),
            Route("POST", "/echo-binary/{item}", "api"),
            Route("ANY", "/echo/{proxy+}", "api"),
        ),
        schedules=(Schedule("tick", "ticker", every_s=1),),
    )


def write_handlers(root: Path) -> Path:
    """A repository-like root holding the three handler folders."""
    write_handler(root, "fns/consumer", CONSUMER_HANDLER, root / "consumer.jsonl")
    write_handler(root, "fns/api", API_HANDLER, root / "api.jsonl")
    write_handler(root, "fns/ticker", TICK_HANDLER, root / "ticks.jsonl")
    return root


FAST = PollerSettings(poll_interval_s=0.02, retry_base_delay_s=0.01, retry_max_delay_s=0.05)


@contextmanager
def running(root: Path, wiring: Wiring) -> Iterator[LocalRuntime]:
    """A started runtime with fast polling, retries and schedules; checks no thread outlives it."""
    before = set(threading.enumerate())
    with LocalRuntime(wiring, prefix="t", root=root, poller_settings=FAST, schedule_time_scale=0.05) as started:
        yield started
    leftover = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert leftover == [], f"threads still running after stop: {leftover}"


def put(kinesis: Any, *payloads: bytes) -> list[str]:
    """Put ``payloads`` into the test stream in one call; return their sequence numbers."""
    response = kinesis.put_records(StreamName="t-events", Records=[{"Data": p, "PartitionKey": "pk"} for p in payloads])
    assert response["FailedRecordCount"] == 0
    return [r["SequenceNumber"] for r in response["Records"]]
