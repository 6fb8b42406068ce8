"""Create the declared resources in moto and derive the local environment from the wiring.

Local physical names are ``f"{prefix}-{name}"``: predictable, so a developer can inspect them with
the AWS CLI pointed at moto, and prefixed, so two runtimes could share one moto server.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from novacron.local.moto_server import ACCOUNT_ID, DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, REGION
from novacron.wiring import Function, Table, TimestreamSink, Wiring

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "novacron"


def physical_name(name: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The local physical name of the declared resource (or function) ``name``."""
    return f"{prefix}-{name}"


def topic_arn(name: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The ARN of the declared topic ``name`` in moto."""
    return f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{physical_name(name, prefix)}"


def function_environment(fn: Function, prefix: str = DEFAULT_PREFIX, topics: Collection[str] = ()) -> dict[str, str]:
    """``fn``'s declared environment with resource names replaced by local physical names (topics by ARN,
    as the CDK passes them)."""
    return {
        var: topic_arn(resource, prefix) if resource in topics else physical_name(resource, prefix)
        for var, resource in fn.environment.items()
    }


def wiring_environment(wiring: Wiring, prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """The union of every function's environment.

    All handlers share one process and so one ``os.environ``; that only works if no variable means
    two different things to two functions, which is checked here rather than discovered at runtime.
    """
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    topics = {t.name for t in wiring.topics}
    for fn in wiring.functions:
        for var, value in function_environment(fn, prefix, topics).items():
            if var in merged and merged[var] != value:
                raise ValueError(
                    f"environment variable {var} is {merged[var]!r} for {owner[var]!r} "
                    f"but {value!r} for {fn.name!r}; one process cannot serve both"
                )
            merged[var] = value
            owner[var] = fn.name
    return merged


def timestream_environment(sink: TimestreamSink, prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """The variables that turn the optional Timestream sink on, naming the local database and table."""
    return {sink.database_env: physical_name(sink.database, prefix), sink.table_env: physical_name(sink.table, prefix)}


def create_timestream(clients: Any, sink: TimestreamSink, prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """Create the optional Timestream database and table (moto's timestream-write); return their variables."""
    env = timestream_environment(sink, prefix)
    database, table = env[sink.database_env], env[sink.table_env]
    timestream = clients.client("timestream-write")
    timestream.create_database(DatabaseName=database)
    timestream.create_table(
        DatabaseName=database,
        TableName=table,
        MagneticStoreWriteProperties={"EnableMagneticStoreWrites": True},
    )
    log.info("created Timestream table %s.%s for the optional sink", database, table)
    return env


def runtime_environment(endpoint_url: str) -> dict[str, str]:
    """Process-wide settings that make handlers talk to moto and keep Powertools quiet."""
    return {
        # botocore (and everything built on it: boto3, pynamodb) sends every call here.
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
        # There is no X-Ray daemon locally.
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "NovaCron",
        # EMF blobs on stdout are CloudWatch's input format; locally they would only bury the log.
        "POWERTOOLS_METRICS_DISABLED": "true",
    }


@dataclass(frozen=True)
class LocalResources:
    """Physical names, ARNs and URLs of the resources created in moto."""

    prefix: str
    stream_arns: Mapping[str, str] = field(default_factory=dict)
    table_names: Mapping[str, str] = field(default_factory=dict)
    bucket_names: Mapping[str, str] = field(default_factory=dict)
    queue_urls: Mapping[str, str] = field(default_factory=dict)
    queue_arns: Mapping[str, str] = field(default_factory=dict)
    secret_names: Mapping[str, str] = field(default_factory=dict)
    bus_names: Mapping[str, str] = field(default_factory=dict)
    topic_arns: Mapping[str, str] = field(default_factory=dict)


def function_arn(fn_name: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The ARN a deployed function of that name would have locally."""
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{physical_name(fn_name, prefix)}"


def _table_spec(table: Table, name: str) -> dict[str, Any]:
    keys = [{"AttributeName": table.partition_key, "KeyType": "HASH"}]
    attributes = [{"AttributeName": table.partition_key, "AttributeType": "S"}]
    if table.sort_key is not None:
        keys.append({"AttributeName": table.sort_key, "KeyType": "RANGE"})
        attributes.append({"AttributeName": table.sort_key, "AttributeType": "S"})
    return {
        "TableName": name,
        "KeySchema": keys,
        "AttributeDefinitions": attributes,
        "BillingMode": "PAY_PER_REQUEST",
    }


def create_resources(clients: Any, wiring: Wiring, prefix: str = DEFAULT_PREFIX) -> LocalResources:
    """Create every declared stream, table, bucket, queue, secret, event bus and topic; return their local
    identities.

    ``clients`` is anything with ``client(service)`` (a :class:`MotoServer`).
    """
    kinesis = clients.client("kinesis")
    stream_arns: dict[str, str] = {}
    for stream in wiring.streams:
        name = physical_name(stream.name, prefix)
        kinesis.create_stream(StreamName=name, ShardCount=stream.shards)
        kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
        summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        stream_arns[stream.name] = summary["StreamARN"]
        log.debug("created stream %s (%d shards)", name, stream.shards)

    dynamodb = clients.client("dynamodb")
    table_names: dict[str, str] = {}
    for table in wiring.tables:
        name = physical_name(table.name, prefix)
        dynamodb.create_table(**_table_spec(table, name))
        if table.ttl_attribute is not None:
            # moto records TTL but never expires items; enabling it keeps the setup faithful anyway.
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )
        table_names[table.name] = name
        log.debug("created table %s", name)

    s3 = clients.client("s3")
    bucket_names: dict[str, str] = {}
    for bucket in wiring.buckets:
        name = physical_name(bucket.name, prefix)
        s3.create_bucket(Bucket=name)  # us-east-1 takes no LocationConstraint
        bucket_names[bucket.name] = name
        log.debug("created bucket %s", name)

    sqs = clients.client("sqs")
    queue_urls: dict[str, str] = {}
    queue_arns: dict[str, str] = {}
    for queue in wiring.queues:
        name = physical_name(queue.name, prefix)
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_urls[queue.name] = url
        queue_arns[queue.name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        log.debug("created queue %s", name)

    secretsmanager = clients.client("secretsmanager")
    secret_names: dict[str, str] = {}
    for secret in wiring.secrets:
        name = physical_name(secret.name, prefix)
        # A fresh random value per local stack, as CloudFormation generates one per deployment.
        secretsmanager.create_secret(Name=name, SecretString=secrets.token_urlsafe(48))
        secret_names[secret.name] = name
        log.debug("created secret %s", name)

    events = clients.client("events")
    bus_names: dict[str, str] = {}
    for bus in wiring.buses:
        name = physical_name(bus.name, prefix)
        events.create_event_bus(Name=name)
        bus_names[bus.name] = name
        log.debug("created event bus %s", name)

    sns = clients.client("sns")
    topic_arns: dict[str, str] = {}
    for topic in wiring.topics:
        topic_arns[topic.name] = sns.create_topic(Name=physical_name(topic.name, prefix))["TopicArn"]
        log.debug("created topic %s", topic_arns[topic.name])

    log.info(
        "created %d streams, %d tables, %d buckets, %d queues, %d secrets, %d event buses, %d topics (prefix %r)",
        len(stream_arns),
        len(table_names),
        len(bucket_names),
        len(queue_urls),
        len(secret_names),
        len(bus_names),
        len(topic_arns),
        prefix,
    )
    return LocalResources(
        prefix, stream_arns, table_names, bucket_names, queue_urls, queue_arns, secret_names, bus_names, topic_arns
    )
