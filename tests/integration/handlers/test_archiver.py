"""The Parquet archiver against moto: writer → raw objects → archiver → Parquet → ArchiveReader."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import boto3
import numpy as np

from novacron.adapters.dynamo_tier import DynamoBlockStore, DynamoIndexStore
from novacron.adapters.s3_archive import S3Archive
from novacron.archive.keys import HOUR_MS
from novacron.archive.reader import ArchiveReader
from novacron.local.handlers import load_handler, make_context
from novacron.local.resources import physical_name
from novacron.local.scheduler import scheduled_event
from novacron.records import encode_record
from novacron.series import Matcher
from novacron.storage.reader import HotTierReader
from novacron.wiring import ARCHIVE_BUCKET, ARCHIVER, BLOCKS_TABLE, INDEX_TABLE, WIRING
from tests.builders import timeseries
from tests.integration.handlers.conftest import body_json, kinesis_record

STEP = 15_000


def test_written_samples_come_back_from_the_parquet_archive_as_from_the_hot_tier(stack):
    # Given an hour of samples of two metrics, written through the metrics writer two hours ago
    now = int(time.time() * 1000)
    hour = now - now % HOUR_MS - 2 * HOUR_MS
    records = []
    for minute in range(0, 60, 5):
        received = hour + minute * 60_000
        series = [
            timeseries({"__name__": name, "job": job}, [(received + i * STEP, minute * 100.0 + i) for i in range(20)])
            for name in ("http_requests_total", "up")
            for job in ("api", "web")
        ]
        records.append(encode_record("acme", received, [s.SerializeToString() for s in series]))
    event = {"Records": [kinesis_record(data, str(100 + i)) for i, data in enumerate(records)]}
    assert stack.consume(event) == {"batchItemFailures": []}
    # And the same batch retried (a partial batch failure re-archives records under another key)
    retry = {"Records": [kinesis_record(data, str(100 + i)) for i, data in enumerate(records) if i >= 6]}
    assert stack.consume(retry) == {"batchItemFailures": []}
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = physical_name(ARCHIVE_BUCKET)
    assert len(s3.list_objects_v2(Bucket=bucket, Prefix="raw/")["Contents"]) == 2

    # When the scheduled archiver runs
    archiver = load_handler(WIRING.function(ARCHIVER))
    schedule = WIRING.schedules[0]
    assert schedule.function == ARCHIVER
    summary = archiver(scheduled_event(schedule), make_context(WIRING.function(ARCHIVER)))

    # Then Parquet files exist, raw objects are kept, and a second run converts nothing
    assert summary["parts"] >= 1
    assert summary["duplicate_records"] == 6
    parquet = s3.list_objects_v2(Bucket=bucket, Prefix="parquet/tenant=acme/")["Contents"]
    assert all(o["Key"].endswith(".parquet") for o in parquet)
    # each tagged with the tenant's archive retention class (the default policy: 400 days)
    tags = [s3.get_object_tagging(Bucket=bucket, Key=o["Key"])["TagSet"] for o in parquet]
    assert tags == [[{"Key": "novacron-retention", "Value": "400d"}]] * len(parquet)
    assert len(s3.list_objects_v2(Bucket=bucket, Prefix="raw/")["Contents"]) == 2
    assert archiver(scheduled_event(schedule), make_context(WIRING.function(ARCHIVER)))["parts"] == 0

    # And the archive answers a selection exactly as the hot tier does
    matchers = [Matcher("__name__", "=", "http_requests_total")]
    start, end = hour, hour + 2 * HOUR_MS
    from_archive = ArchiveReader("acme", S3Archive(bucket)).select(matchers, start, end)
    hot = HotTierReader(
        "acme", DynamoBlockStore(physical_name(BLOCKS_TABLE)), DynamoIndexStore(physical_name(INDEX_TABLE))
    ).select(matchers, start, end)
    assert [s.labels for s in from_archive] == [s.labels for s in hot]
    assert len(from_archive) == 2
    for a, h in zip(from_archive, hot, strict=True):
        assert np.array_equal(a.timestamps, h.timestamps)
        assert np.array_equal(a.values, h.values)
    assert sum(len(s.timestamps) for s in from_archive) == 2 * 12 * 20


def test_a_query_spanning_the_hot_tier_and_the_archive_gets_one_answer(stack):
    # Given acme keeps raw samples one day in the hot tier
    key = stack.keys["acme-admin"]
    change = json.dumps({"version": 0, "defaults": {"raw_days": 1}}).encode()
    headers = {"content-type": "application/json"}
    answer = stack.http(stack.admin, "PUT", "/api/v1/admin/retention", key=key, body=change, headers=headers)
    assert answer["statusCode"] == 200, body_json(answer)
    # And a sample of `up` every 10 minutes over the last 40 hours, written through the metrics writer
    now = int(time.time() * 1000)
    first = now - now % HOUR_MS - 40 * HOUR_MS
    stamps = list(range(first, now - 15 * 60_000, 10 * 60_000))
    records = [
        encode_record("acme", t, [timeseries({"__name__": "up", "job": "api"}, [(t, float(i))]).SerializeToString()])
        for i, t in enumerate(stamps)
    ]
    event = {"Records": [kinesis_record(data, str(1000 + i)) for i, data in enumerate(records)]}
    assert stack.consume(event) == {"batchItemFailures": []}
    query = urlencode({"query": "up[40h]", "time": now / 1000})

    def answered() -> list[tuple[int, float]]:
        answer = stack.http(stack.query, "GET", "/api/v1/query", key=stack.keys["acme-read"], query=query)
        assert answer["statusCode"] == 200, body_json(answer)
        (series,) = body_json(answer)["data"]["result"]
        return [(round(float(t) * 1000), float(v)) for t, v in series["values"]]

    # When queried before the archiver has run, only the last day comes back (the hot tier keeps no more)
    recent = answered()
    assert recent == [(t, float(i)) for i, t in enumerate(stamps) if t > now - 24 * HOUR_MS]
    # And when the archiver has turned the raw objects into Parquet (one run looking 48 hours back)
    archiver = load_handler(WIRING.function(ARCHIVER))
    summary = archiver({"lookback_hours": 48}, make_context(WIRING.function(ARCHIVER)))
    assert summary["parts"] >= 1
    # Then the same query answers the whole range, the older part from Parquet, each sample once
    whole = answered()
    assert whole == [(t, float(i)) for i, t in enumerate(stamps) if t > now - 40 * HOUR_MS]
    assert len(whole) > len(recent) + 90
