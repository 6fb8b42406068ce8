"""The writer handler with the optional Timestream sink on, against moto's timestream-write."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from moto.timestreamwrite.models import timestreamwrite_backends

from novacron.local.handlers import load_handler, make_context
from novacron.local.resources import create_timestream
from novacron.records import encode_record
from novacron.wiring import WIRING, WRITER
from tests.builders import RW_HEADERS, timeseries, write_request
from tests.integration.handlers.conftest import Stack, kinesis_record

ACCOUNT, REGION = "123456789012", "us-east-1"


class _Clients:
    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)


@pytest.fixture
def sink_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The Timestream database and table in moto, and their variables set (the sink is on)."""
    assert WIRING.timestream is not None
    env = create_timestream(_Clients(), WIRING.timestream)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def writer(sink_env: dict[str, str]) -> Any:
    """The writer handler loaded with the sink on."""
    return load_handler(WIRING.function(WRITER))


def timestream_records(env: dict[str, str]) -> list[dict[str, Any]]:
    """The records moto's table holds (moto keeps each record as sent and drops ``CommonAttributes``)."""
    assert WIRING.timestream is not None
    database = timestreamwrite_backends[ACCOUNT][REGION].databases[env[WIRING.timestream.database_env]]
    return list(database.tables[env[WIRING.timestream.table_env]].records)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every WriteRecords request the sink makes (still passed on to moto)."""
    requests: list[dict[str, Any]] = []
    timestream = boto3.client("timestream-write", region_name=REGION)
    original = timestream.write_records

    def observed(**kwargs: Any) -> Any:
        requests.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(timestream, "write_records", observed)
    monkeypatch.setattr("novacron.adapters.timestream.client", lambda service: timestream)
    return requests


def merged(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each record as Timestream stores it: its request's common attributes merged in."""
    out = []
    for request in requests:
        common = request.get("CommonAttributes", {})
        for record in request["Records"]:
            dims = {d["Name"]: d["Value"] for d in [*common.get("Dimensions", []), *record.get("Dimensions", [])]}
            out.append({**common, **record, "Dimensions": dims})
    return out


def test_samples_written_by_the_writer_appear_in_timestream(
    stack: Stack, sink_env: dict[str, str], writer: Any, sent: list[dict[str, Any]]
) -> None:
    # Given 3 series of 2 samples remote-written by tenant acme
    t = int(time.time() * 1000)
    series = [
        timeseries({"__name__": "up", "job": "node", "instance": f"i{i}"}, [(t - 15000, 1.0), (t, i)]) for i in range(3)
    ]
    key = stack.keys["acme-ingest"]
    response = stack.http(
        stack.ingest, "POST", "/api/v1/write", key=key, body=write_request(series), headers=RW_HEADERS
    )
    assert response["statusCode"] == 204

    # When the writer consumes the stream
    assert writer(stack.stream_event(), make_context(WIRING.function(WRITER))) == {"batchItemFailures": []}

    # Then every sample is a record in moto's table, with the tenant and the labels as dimensions
    records = merged(sent)
    assert len(timestream_records(sink_env)) == len(records) > 0
    ups = sorted(
        (r["Dimensions"]["instance"], int(r["Time"]), float(r["MeasureValues"][0]["Value"]))
        for r in records
        if r["MeasureName"] == "up"
    )
    assert ups == sorted([(f"i{i}", t - 15000, 1.0) for i in range(3)] + [(f"i{i}", t, float(i)) for i in range(3)])
    assert {(r["Dimensions"]["__tenant"], r["Dimensions"]["job"]) for r in records if r["MeasureName"] == "up"} == {
        ("acme", "node")
    }


def test_a_retried_batch_writes_identical_records(
    stack: Stack, sink_env: dict[str, str], writer: Any, sent: list[dict[str, Any]]
) -> None:
    # Given one record, received by ingest at t, delivered twice (a retried Kinesis batch)
    t = int(time.time() * 1000)
    data = encode_record("acme", t, [timeseries({"__name__": "up", "job": "x"}, [(t - 5, 1.0)]).SerializeToString()])
    event = {"Records": [kinesis_record(data, "49000000000000000000000000000000000000000000000000000001")]}
    context = make_context(WIRING.function(WRITER))

    # When the writer handles it twice
    writer(event, context)
    writer(event, context)

    # Then both deliveries sent the very same record, versioned by the receive time: Timestream keeps one
    first, second = merged(sent)
    assert first == second
    assert (first["Time"], first["Version"], first["MeasureName"]) == (str(t - 5), t, "up")
    assert len(timestream_records(sink_env)) == 2  # moto appends; Timestream would upsert the identical record


def test_without_the_flag_the_writer_sends_nothing_to_timestream(stack: Stack) -> None:
    # Given the default stack (no Timestream variables) and a record
    t = int(time.time() * 1000)
    data = encode_record("acme", t, [timeseries({"__name__": "up"}, [(t, 1.0)]).SerializeToString()])

    # When the writer handles it
    result = stack.consume({"Records": [kinesis_record(data, "1")]})

    # Then it is stored, and no Timestream database even exists
    assert result == {"batchItemFailures": []}
    assert not timestreamwrite_backends[ACCOUNT][REGION].databases
