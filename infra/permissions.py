"""Least-privilege IAM derived from the wiring's ``Grant``s.

Each (resource kind, ``Access``) pair maps to an explicit list of actions, with no wildcards, scoped
to the one declared resource; KMS actions on the stack's key are added for exactly what the data-plane
calls need. Nothing else is granted to a function (apart from its log group and X-Ray).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from novacron.wiring import Access, Grant, Wiring


class Kind(StrEnum):
    """The kinds of resource a grant can name."""

    STREAM = "stream"
    TABLE = "table"
    BUCKET = "bucket"
    QUEUE = "queue"
    SECRET = "secret"  # noqa: S105 (a resource kind, not a secret value)
    BUS = "bus"
    TOPIC = "topic"


_R, _W = Access.READ, Access.WRITE

# Actions per kind and access; READ_WRITE is the union of READ and WRITE.
ACTIONS: dict[Kind, dict[Access, tuple[str, ...]]] = {
    Kind.STREAM: {
        _R: (
            "kinesis:DescribeStream",
            "kinesis:DescribeStreamSummary",
            "kinesis:GetRecords",
            "kinesis:GetShardIterator",
            "kinesis:ListShards",
            "kinesis:SubscribeToShard",
        ),
        _W: ("kinesis:DescribeStreamSummary", "kinesis:ListShards", "kinesis:PutRecord", "kinesis:PutRecords"),
    },
    Kind.TABLE: {
        _R: (
            "dynamodb:BatchGetItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:Scan",
        ),
        _W: (
            "dynamodb:BatchWriteItem",
            "dynamodb:ConditionCheckItem",
            "dynamodb:DeleteItem",
            "dynamodb:DescribeTable",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        ),
    },
    # Bucket actions apply to objects (``arn/*``) except ListBucket, which applies to the bucket.
    Kind.BUCKET: {
        _R: ("s3:GetObject", "s3:ListBucket"),
        # Objects are written with their retention-class tag (docs/retention.md): a tagged PutObject
        # needs s3:PutObjectTagging as well.
        _W: ("s3:AbortMultipartUpload", "s3:PutObject", "s3:PutObjectTagging"),
    },
    Kind.QUEUE: {
        _R: (
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
            "sqs:ReceiveMessage",
        ),
        _W: ("sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"),
    },
    # Secrets are generated at deployment; functions read them and nothing in the data plane writes them.
    Kind.SECRET: {
        _R: ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"),
        _W: (),
    },
    # Event buses are written to (PutEvents); consumers read them through rules, not through grants.
    Kind.BUS: {
        _R: (),
        _W: ("events:PutEvents",),
    },
    # Topics are published to; subscribers are invoked by SNS, not through grants.
    Kind.TOPIC: {
        _R: (),
        _W: ("sns:Publish",),
    },
}

# KMS actions on the stack key that the data-plane calls above need (SSE with a customer managed key).
KEY_ACTIONS: dict[Kind, dict[Access, tuple[str, ...]]] = {
    Kind.STREAM: {_R: ("kms:Decrypt",), _W: ("kms:GenerateDataKey",)},
    Kind.TABLE: {
        _R: ("kms:Decrypt", "kms:DescribeKey"),
        _W: ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"),
    },
    Kind.BUCKET: {_R: ("kms:Decrypt",), _W: ("kms:Decrypt", "kms:GenerateDataKey")},
    Kind.QUEUE: {_R: ("kms:Decrypt",), _W: ("kms:Decrypt", "kms:GenerateDataKey")},
    Kind.SECRET: {_R: ("kms:Decrypt",), _W: ()},
    # EventBridge itself uses the bus's key (the key policy allows it); the caller of PutEvents needs none.
    Kind.BUS: {_R: (), _W: ()},
    # Publishing to a topic encrypted with a customer managed key needs a data key from it.
    Kind.TOPIC: {_R: (), _W: ("kms:Decrypt", "kms:GenerateDataKey")},
}

BUCKET_LEVEL_ACTIONS = frozenset({"s3:ListBucket"})


def _accesses(access: Access) -> tuple[Access, ...]:
    return (_R, _W) if access is Access.READ_WRITE else (access,)


def actions_for(kind: Kind, access: Access) -> list[str]:
    """Sorted resource actions for ``access`` on a resource of ``kind``."""
    return sorted({a for acc in _accesses(access) for a in ACTIONS[kind][acc]})


def key_actions_for(kind: Kind, access: Access) -> list[str]:
    """Sorted KMS actions for ``access`` on a resource of ``kind``."""
    return sorted({a for acc in _accesses(access) for a in KEY_ACTIONS[kind][acc]})


@dataclass(frozen=True)
class ResourceCatalog:
    """The deployed resources, by their wiring name, and how to grant on them."""

    key: kms.IKey
    streams: dict[str, kinesis.Stream]
    tables: dict[str, dynamodb.Table]
    buckets: dict[str, s3.Bucket]
    queues: dict[str, sqs.Queue]
    secrets: dict[str, secretsmanager.Secret] = field(default_factory=dict)
    buses: dict[str, events.EventBus] = field(default_factory=dict)
    topics: dict[str, sns.Topic] = field(default_factory=dict)

    def kind(self, name: str) -> Kind:
        """What kind of resource ``name`` is; a clear error if the wiring names an unknown one."""
        for kind, group in (
            (Kind.STREAM, self.streams),
            (Kind.TABLE, self.tables),
            (Kind.BUCKET, self.buckets),
            (Kind.QUEUE, self.queues),
            (Kind.SECRET, self.secrets),
            (Kind.BUS, self.buses),
            (Kind.TOPIC, self.topics),
        ):
            if name in group:
                return kind
        raise ValueError(f"wiring names resource {name!r}, which is not declared")

    def physical_name(self, name: str) -> str:
        """The deployed name of ``name`` (a token resolved by CloudFormation)."""
        kind = self.kind(name)
        if kind is Kind.STREAM:
            return self.streams[name].stream_name
        if kind is Kind.TABLE:
            return self.tables[name].table_name
        if kind is Kind.BUCKET:
            return self.buckets[name].bucket_name
        if kind is Kind.SECRET:
            # Functions take the ARN: GetSecretValue accepts it, and generated names carry a suffix.
            return self.secrets[name].secret_arn
        if kind is Kind.BUS:
            return self.buses[name].event_bus_name
        if kind is Kind.TOPIC:
            # Functions take the ARN: Publish needs it.
            return self.topics[name].topic_arn
        return self.queues[name].queue_name

    def arn(self, name: str) -> str:
        """The ARN of ``name``."""
        kind = self.kind(name)
        if kind is Kind.STREAM:
            return self.streams[name].stream_arn
        if kind is Kind.TABLE:
            return self.tables[name].table_arn
        if kind is Kind.BUCKET:
            return self.buckets[name].bucket_arn
        if kind is Kind.SECRET:
            return self.secrets[name].secret_arn
        if kind is Kind.BUS:
            return self.buses[name].event_bus_arn
        if kind is Kind.TOPIC:
            return self.topics[name].topic_arn
        return self.queues[name].queue_arn

    def statements(self, grants: tuple[Grant, ...]) -> list[iam.PolicyStatement]:
        """The IAM statements granting exactly ``grants`` (one per resource, plus one for KMS)."""
        result: list[iam.PolicyStatement] = []
        key_actions: set[str] = set()
        for grant in grants:
            kind = self.kind(grant.resource)
            actions = actions_for(kind, grant.access)
            if not actions:
                raise ValueError(f"{kind} {grant.resource!r} can only be granted {Access.READ}, not {grant.access}")
            key_actions.update(key_actions_for(kind, grant.access))
            arn = self.arn(grant.resource)
            if kind is Kind.BUCKET:
                object_actions = [a for a in actions if a not in BUCKET_LEVEL_ACTIONS]
                bucket_actions = [a for a in actions if a in BUCKET_LEVEL_ACTIONS]
                # A grant limited to key prefixes: objects under them, and listing only under them.
                patterns = [f"{p}*" for p in grant.prefixes] or ["*"]
                if bucket_actions:
                    conditions = {"StringLike": {"s3:prefix": patterns}} if grant.prefixes else None
                    result.append(iam.PolicyStatement(actions=bucket_actions, resources=[arn], conditions=conditions))
                if object_actions:
                    result.append(
                        iam.PolicyStatement(actions=object_actions, resources=[f"{arn}/{p}" for p in patterns])
                    )
            else:
                result.append(iam.PolicyStatement(actions=actions, resources=[arn]))
        if key_actions:
            result.append(iam.PolicyStatement(actions=sorted(key_actions), resources=[self.key.key_arn]))
        return result


def check_wiring(wiring: Wiring) -> None:
    """Fail synth early, with a clear message, on a wiring the CDK cannot derive."""
    declared = wiring.resource_names()
    functions = {fn.name for fn in wiring.functions}
    for fn in wiring.functions:
        for grant in fn.grants:
            if grant.resource not in declared:
                raise ValueError(f"function {fn.name!r}: grant on undeclared resource {grant.resource!r}")
        for var, resource in fn.environment.items():
            if resource not in declared:
                raise ValueError(f"function {fn.name!r}: {var} names undeclared resource {resource!r}")
    for consumer in wiring.consumers:
        fn = wiring.function(consumer.function)
        access = {g.resource: g.access for g in fn.grants}
        if access.get(consumer.stream) not in (Access.READ, Access.READ_WRITE):
            raise ValueError(
                f"consumer {consumer.function!r} reads stream {consumer.stream!r} but the function has no "
                "READ grant on it (the event source mapping runs with the function's role)"
            )
        if consumer.on_failure is not None and access.get(consumer.on_failure) not in (
            Access.WRITE,
            Access.READ_WRITE,
        ):
            raise ValueError(
                f"consumer {consumer.function!r} sends failures to {consumer.on_failure!r} but the function "
                "has no WRITE grant on it (the event source mapping runs with the function's role)"
            )
    for route in wiring.routes:
        if route.function not in functions:
            raise ValueError(f"route {route.method} {route.path}: undeclared function {route.function!r}")
    for schedule in wiring.schedules:
        if schedule.function not in functions:
            raise ValueError(f"schedule {schedule.name!r}: undeclared function {schedule.function!r}")
    topics = {t.name for t in wiring.topics}
    for sub in wiring.subscriptions:
        if sub.function not in functions:
            raise ValueError(f"subscription to {sub.topic!r}: undeclared function {sub.function!r}")
        if sub.topic not in topics:
            raise ValueError(f"subscription of {sub.function!r}: undeclared topic {sub.topic!r}")
        access = {g.resource: g.access for g in wiring.function(sub.function).grants}
        if sub.on_failure is not None and access.get(sub.on_failure) not in (Access.WRITE, Access.READ_WRITE):
            raise ValueError(
                f"subscription of {sub.function!r} sends failures to {sub.on_failure!r} but the function has no "
                "WRITE grant on it (Lambda's on-failure destination runs with the function's role)"
            )
