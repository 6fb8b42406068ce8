"""SQL over the Parquet archive: a Glue table with partition projection and an Athena workgroup.

The table is declared, not crawled: partition projection computes the partitions from the query's
``tenant`` and ``date`` predicates (``tenant`` is *injected*, so every query must name its tenant,
which keeps tenants apart and scans small; ``date`` is a date range), so no crawler and no
``MSCK REPAIR`` are ever needed. The workgroup enforces its configuration: results go to a
dedicated, KMS-encrypted bucket, and a query scanning more than the cutoff is cancelled.
"""

from __future__ import annotations

import re

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.storage import private_kms_bucket
from novacron.archive.keys import PARQUET_PREFIX

# The columns of novacron.archive.convert.SCHEMA, as Glue/Athena types.
COLUMNS = (
    ("metric", "string", "metric name (__name__)"),
    ("series_id", "string", "the series' 64-bit id, 16 hex digits"),
    ("labels", "string", 'every label of the series as compact JSON, e.g. {"__name__":"up","job":"api"}'),
    ("timestamp", "timestamp", "sample time (UTC, millisecond precision)"),
    ("value", "double", "sample value"),
)
PARTITION_KEYS = (
    ("tenant", "string", "tenant (injected: every query must say tenant = '...')"),
    ("date", "string", "UTC date of the samples, YYYY-MM-DD"),
)
TABLE_NAME = "samples"
RESULTS_PREFIX = "athena-results/"
# 10 GiB: ~$0.05 per query at $5 per TB scanned; raise it with -c novacron:athenaScanCutoffGb=...
DEFAULT_SCAN_CUTOFF_GB = 10
PROJECTION_START = "2024-01-01"


def glue_name(stack_name: str) -> str:
    """A Glue database name for a stack: lower case letters, digits and underscores."""
    return re.sub(r"[^a-z0-9_]", "_", stack_name.lower()) + "_archive"


class Analytics(Construct):
    """The Glue database and table over ``parquet/``, the Athena workgroup and its results bucket."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        archive_bucket: s3.IBucket,
        key: kms.IKey,
        access_logs: s3.IBucket | None,
        removal_policy: RemovalPolicy,
        scan_cutoff_gb: int = DEFAULT_SCAN_CUTOFF_GB,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.database_name = glue_name(stack.stack_name)
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name, description="NovaCron: the Parquet archive of raw samples"
            ),
        )
        location = f"s3://{archive_bucket.bucket_name}/{PARQUET_PREFIX}"
        self.table = glue.CfnTable(
            self,
            "SamplesTable",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=TABLE_NAME,
                description="Raw samples, one row each; partitioned by tenant and UTC date (docs/archive.md)",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "parquet",
                    "EXTERNAL": "TRUE",
                    "projection.enabled": "true",
                    "projection.tenant.type": "injected",
                    "projection.date.type": "date",
                    "projection.date.format": "yyyy-MM-dd",
                    "projection.date.range": f"{PROJECTION_START},NOW",
                    "projection.date.interval": "1",
                    "projection.date.interval.unit": "DAYS",
                    "storage.location.template": location + "tenant=${tenant}/date=${date}/",
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name=n, type=t, comment=c) for n, t, c in PARTITION_KEYS],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                        parameters={"serialization.format": "1"},
                    ),
                    columns=[glue.CfnTable.ColumnProperty(name=n, type=t, comment=c) for n, t, c in COLUMNS],
                ),
            ),
        )
        self.table.node.add_dependency(self.database)

        self.results_bucket = private_kms_bucket(
            self,
            "ResultsBucket",
            key,
            access_logs,
            "athena-results/",
            # Query results are re-creatable: keep them a month.
            lifecycle_rules=[
                s3.LifecycleRule(expiration=Duration.days(30), abort_incomplete_multipart_upload_after=Duration.days(1))
            ],
            removal_policy=removal_policy,
            auto_delete_objects=False,
        )
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=f"{stack.stack_name}-archive",
            description="NovaCron: SQL over the Parquet archive (enforced settings, scan cutoff)",
            state="ENABLED",
            recursive_delete_option=removal_policy == RemovalPolicy.DESTROY,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=scan_cutoff_gb * 1024**3,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.results_bucket.bucket_name}/{RESULTS_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=key.key_arn
                    ),
                ),
            ),
        )
