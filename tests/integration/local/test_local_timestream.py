"""``novacron local --timestream``: the local runtime creates the sink's table in moto and the writer fills it."""

from __future__ import annotations

import os
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from moto.timestreamwrite.models import timestreamwrite_backends

from novacron.auth import generate_key, register_key
from novacron.local.resources import physical_name
from novacron.local.runtime import LocalRuntime
from novacron.wiring import KEYS_TABLE, TimestreamSink
from tests.builders import RW_HEADERS, timeseries, write_request
from tests.integration.local.support import FAST, make_wiring

SINK = TimestreamSink("consumer", database="ts", table="samples")


def test_the_flag_creates_the_table_and_names_it_to_the_functions(handler_root: Path) -> None:
    # Given a wiring declaring a Timestream sink
    wiring = replace(make_wiring(), timestream=SINK)

    # When a runtime runs with the flag
    with LocalRuntime(wiring, prefix="t", root=handler_root, poller_settings=FAST, timestream=True) as runtime:
        # Then the table exists in moto and the variables name it
        assert os.environ[SINK.database_env] == "t-ts"
        assert os.environ[SINK.table_env] == "t-samples"
        described = runtime.client("timestream-write").describe_table(DatabaseName="t-ts", TableName="t-samples")
        assert described["Table"]["MagneticStoreWriteProperties"]["EnableMagneticStoreWrites"] is True
    # and afterwards the variables are gone
    assert SINK.database_env not in os.environ


def test_without_the_flag_there_is_no_timestream(handler_root: Path) -> None:
    wiring = replace(make_wiring(), timestream=SINK)
    with LocalRuntime(wiring, prefix="t", root=handler_root, poller_settings=FAST) as runtime:
        assert SINK.database_env not in os.environ
        assert runtime.client("timestream-write").list_databases()["Databases"] == []


def test_remote_written_samples_reach_the_local_timestream_table() -> None:
    # Given the real platform running locally with the sink on, and an ingest key
    with LocalRuntime(port=0, prefix="tsl", timestream=True) as runtime:
        key = generate_key()
        register_key(key, "acme", "ingest", physical_name(KEYS_TABLE, "tsl"))
        t = int(time.time() * 1000)
        body = write_request([timeseries({"__name__": "local_up", "job": "j"}, [(t - 1000, 1.0), (t, 2.0)])])

        # When a remote write arrives and the writer has consumed the stream
        request = urllib.request.Request(
            f"{runtime.url}/api/v1/write", data=body, headers={**RW_HEADERS, "Authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 204
        assert runtime.wait_until_idle(30)

        # Then moto's table holds the two samples (moto keeps records as sent, without CommonAttributes)
        table = timestreamwrite_backends["123456789012"]["us-east-1"].databases["tsl-timestream"].tables["tsl-metrics"]
        stored = {(r["Time"], r["MeasureValues"][0]["Value"]) for r in table.records}
        assert {(str(t - 1000), "1.0"), (str(t), "2.0")} <= stored
