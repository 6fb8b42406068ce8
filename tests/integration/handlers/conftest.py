"""Handlers against moto: the declared resources exist, the environment is the wiring's."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from novacron.auth import Role, generate_key, register_key
from novacron.aws import reset_clients
from novacron.local.handlers import load_handler, make_context
from novacron.local.resources import LocalResources, create_resources, physical_name, wiring_environment
from novacron.wiring import ADMIN, INGEST, KEYS_TABLE, METRICS_STREAM, QUERY, WIRING, WRITER


class _Boto3Clients:
    def client(self, service: str) -> Any:
        return boto3.client(service, region_name="us-east-1")


@dataclass
class Stack:
    """The three functions, their resources and a few keys."""

    resources: LocalResources
    ingest: Any
    writer: Any
    query: Any
    admin: Any
    keys: dict[str, str]

    def http(
        self,
        fn: Any,
        method: str,
        path: str,
        *,
        key: str | None = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        query: str = "",
    ) -> dict[str, Any]:
        """Invoke an HTTP handler with an API Gateway HTTP API (v2) event."""
        all_headers = {k.lower(): v for k, v in (headers or {}).items()}
        if key is not None:
            all_headers["authorization"] = f"Bearer {key}"
        event = {
            "version": "2.0",
            "routeKey": f"{method} {path}",
            "rawPath": path,
            "rawQueryString": query,
            "headers": all_headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "domainName": "localhost",
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": "pytest",
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": f"{method} {path}",
                "stage": "$default",
                "time": "27/Nov/2026:12:00:00 +0000",
                "timeEpoch": 0,
            },
            "body": base64.b64encode(body).decode(),
            "isBase64Encoded": True,
        }
        return fn(event, make_context(WIRING.function(INGEST)))

    def consume(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the writer with a Kinesis event."""
        return self.writer(event, make_context(WIRING.function(WRITER)))  # type: ignore[no-any-return]

    def stream_event(self, stream: str = METRICS_STREAM) -> dict[str, Any]:
        """Everything in a stream (the metrics stream by default) so far, as a Lambda Kinesis event."""
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        name = physical_name(stream)
        records = []
        for shard in kinesis.list_shards(StreamName=name)["Shards"]:
            iterator = kinesis.get_shard_iterator(
                StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for r in kinesis.get_records(ShardIterator=iterator, Limit=10000)["Records"]:
                records.append(kinesis_record(r["Data"], r["SequenceNumber"], shard["ShardId"], r["PartitionKey"]))
        return {"Records": records}


def kinesis_record(data: bytes, sequence: str, shard: str = "shardId-000000000000", key: str = "k") -> dict[str, Any]:
    """One record of a Lambda Kinesis event."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": key,
            "sequenceNumber": sequence,
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": 1790000000.0,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/writer",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/novacron-metrics",
    }


def body_json(response: dict[str, Any]) -> Any:
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    env = {
        **wiring_environment(WIRING),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "NovaCron",
        "NOVACRON_KEY_CACHE_TTL_S": "0",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    reset_clients()
    with mock_aws():
        resources = create_resources(_Boto3Clients(), WIRING)
        table = physical_name(KEYS_TABLE)
        keys = {}
        for tenant in ("acme", "globex"):
            for role in Role:
                key = generate_key()
                register_key(key, tenant, role, table)
                keys[f"{tenant}-{role}"] = key
        yield Stack(
            resources,
            load_handler(WIRING.function(INGEST)),
            load_handler(WIRING.function(WRITER)),
            load_handler(WIRING.function(QUERY)),
            load_handler(WIRING.function(ADMIN)),
            keys,
        )
    reset_clients()
    os.environ.pop("AWS_ENDPOINT_URL", None)
