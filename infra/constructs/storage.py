"""DynamoDB tables and S3 buckets, one per declared ``Table`` / ``Bucket``, plus an access-log bucket.

A bucket declared with ``retention_classes`` gets one expiration rule per archive retention class
(objects tagged ``novacron-retention=<days>d``, see novacron.retention.archive and docs/retention.md),
with a transition to Glacier Instant Retrieval for classes long enough to pay for it.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.naming import pascal
from novacron.retention.archive import ARCHIVE_CLASSES, RETENTION_TAG, class_tag_value
from novacron.wiring import Bucket, Table

# Glacier Instant Retrieval bills at least 90 days of storage per object: an object leaving earlier
# would cost more there than in Standard.
GLACIER_IR_MINIMUM_DAYS = 90


def private_kms_bucket(
    scope: Construct, construct_id: str, key: kms.IKey, access_logs: s3.IBucket | None, log_prefix: str, **props: Any
) -> s3.Bucket:
    """A bucket encrypted with the stack key, private, TLS-only, logging its access; ``props`` add to it."""
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=log_prefix,
        **props,
    )


class Storage(Construct):
    """On-demand tables (PITR, CMK, TTL) and versioned, CMK-encrypted, private, TLS-only buckets."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tables: tuple[Table, ...],
        buckets: tuple[Bucket, ...],
        key: kms.IKey,
        removal_policy: RemovalPolicy,
        glacier_after_days: int = 90,
    ) -> None:
        super().__init__(scope, construct_id)
        retain = removal_policy == RemovalPolicy.RETAIN
        self.tables: dict[str, dynamodb.Table] = {}
        for decl in tables:
            self.tables[decl.name] = dynamodb.Table(
                self,
                pascal(decl.name) + "Table",
                partition_key=dynamodb.Attribute(name=decl.partition_key, type=dynamodb.AttributeType.STRING),
                sort_key=(
                    dynamodb.Attribute(name=decl.sort_key, type=dynamodb.AttributeType.STRING)
                    if decl.sort_key
                    else None
                ),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
                encryption_key=key,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                time_to_live_attribute=decl.ttl_attribute,
                deletion_protection=retain,
                removal_policy=removal_policy,
            )

        self.buckets: dict[str, s3.Bucket] = {}
        # Only created when there is a bucket to log (an unused log bucket would itself be flagged).
        self.access_logs: s3.Bucket | None = self._access_log_bucket(removal_policy) if buckets else None
        for bucket_decl in buckets:
            self.buckets[bucket_decl.name] = private_kms_bucket(
                self,
                pascal(bucket_decl.name) + "Bucket",
                key,
                self.access_logs,
                f"{bucket_decl.name}/",
                versioned=True,
                lifecycle_rules=[
                    s3.LifecycleRule(
                        id="noncurrent-and-incomplete",
                        noncurrent_version_expiration=Duration.days(30),
                        abort_incomplete_multipart_upload_after=Duration.days(7),
                        # Delete markers left once expired objects' old versions are gone.
                        expired_object_delete_marker=True,
                    ),
                    *(retention_class_rules(glacier_after_days) if bucket_decl.retention_classes else []),
                ],
                removal_policy=removal_policy,
            )

    def _access_log_bucket(self, removal_policy: RemovalPolicy) -> s3.Bucket:
        """The server access log bucket of the stack's buckets."""
        return s3.Bucket(
            self,
            "AccessLogsBucket",
            # S3 server access logging can only deliver to SSE-S3 buckets, not SSE-KMS ones. cdk-nag
            # recognises a bucket that is a logging target, so it does not ask for S1 here.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(expiration=Duration.days(365), noncurrent_version_expiration=Duration.days(30))
            ],
            removal_policy=removal_policy,
        )


def retention_class_rules(glacier_after_days: int) -> list[s3.LifecycleRule]:
    """One rule per archive retention class: expire tagged objects when their class ends.

    Classes outliving ``glacier_after_days`` by at least Glacier IR's 90-day minimum move there
    after ``glacier_after_days`` (0: never); "forever" objects only move.
    """
    rules = []
    for days in (*ARCHIVE_CLASSES, 0):
        stays_long_enough = days == 0 or days - glacier_after_days >= GLACIER_IR_MINIMUM_DAYS
        transitions = (
            [
                s3.Transition(
                    storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                    transition_after=Duration.days(glacier_after_days),
                )
            ]
            if glacier_after_days > 0 and stays_long_enough
            else None
        )
        if not days and not transitions:
            continue  # kept forever, in Standard: nothing to do
        rules.append(
            s3.LifecycleRule(
                id=f"retention-{class_tag_value(days)}",
                tag_filters={RETENTION_TAG: class_tag_value(days)},
                expiration=Duration.days(days) if days else None,
                transitions=transitions,
            )
        )
    return rules
