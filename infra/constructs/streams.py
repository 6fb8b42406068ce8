"""Kinesis data streams, one per declared ``Stream``."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.constructs.naming import pascal
from infra.nag import acknowledge
from novacron.wiring import Stream


class Streams(Construct):
    """Provisioned, KMS-encrypted streams with the declared shard count and retention."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        streams: tuple[Stream, ...],
        key: kms.IKey,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.by_name: dict[str, kinesis.Stream] = {}
        for decl in streams:
            stream = kinesis.Stream(
                self,
                pascal(decl.name),
                shard_count=decl.shards,
                retention_period=Duration.hours(decl.retention_hours),
                stream_mode=kinesis.StreamMode.PROVISIONED,
                encryption=kinesis.StreamEncryption.KMS,
                encryption_key=key,
                removal_policy=removal_policy,
            )
            acknowledge(
                stream,
                "AwsSolutions-KDS3",
                "A customer managed key is deliberate: one key policy governs every copy of tenant metric "
                "data (stream, tables, archive, DLQ). Producers batch records (PutRecords of packed "
                "batches), which keeps the KMS request cost small.",
            )
            self.by_name[decl.name] = stream
