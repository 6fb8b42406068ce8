"""SQS queues, one per declared ``Queue`` (on-failure destinations of stream consumers)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.naming import pascal
from infra.nag import acknowledge
from novacron.wiring import Queue


class Queues(Construct):
    """KMS-encrypted, TLS-only queues that keep messages for the maximum 14 days."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        queues: tuple[Queue, ...],
        key: kms.IKey,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.by_name: dict[str, sqs.Queue] = {}
        for decl in queues:
            queue = sqs.Queue(
                self,
                pascal(decl.name) + "Queue",
                encryption=sqs.QueueEncryption.KMS,
                encryption_master_key=key,
                data_key_reuse=Duration.hours(1),
                enforce_ssl=True,
                retention_period=Duration.days(14),
                removal_policy=removal_policy,
            )
            acknowledge(
                queue,
                "AwsSolutions-SQS3",
                "This queue is itself a dead-letter queue: the on-failure destination of a Kinesis "
                "event source mapping. It is alarmed on visible messages instead of chaining another DLQ.",
            )
            self.by_name[decl.name] = queue
