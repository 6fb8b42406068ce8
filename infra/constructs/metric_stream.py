"""CloudWatch metric stream → Kinesis Data Firehose (HTTP endpoint) → NovaCron's ``/aws/firehose`` route.

Off by default: a metric stream is billed per metric update streamed, and Firehose per GB, so an
operator turns it on knowingly (docs/cloudwatch.md). Context flags (``cdk deploy -c key=value``):

- ``novacron:metricStream`` (bool, default false)
- ``novacron:metricStreamFormat``: ``json`` (default) or ``opentelemetry1.0``
- ``novacron:metricStreamNamespaces``: comma-separated namespaces to include (default: all)
- ``novacron:metricStreamStatistics``: extra statistics, e.g. ``p90,p99`` (default none)
- ``novacron:metricStreamStatisticsMetrics``: the ``Namespace:MetricName`` pairs they apply to
- ``novacron:metricStreamBufferSeconds`` (default 60) and ``novacron:metricStreamRetrySeconds`` (default 3600)

The Firehose access key is a NovaCron API key with the ingest role, kept in a Secrets Manager secret
that this construct creates with a random placeholder: the operator stores a real key in it
(``{"api_key": "nck_..."}``). Until then deliveries are refused (401), retried and, after the retry
duration, written to the archive bucket's ``firehose-failed/`` prefix, like every failed delivery.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import ArnFormat, Aws, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct, Node

from infra.nag import acknowledge
from infra.settings import PREFIX, _as_bool
from novacron.wiring import ARCHIVE_BUCKET, Route

FORMATS = ("json", "opentelemetry1.0")
FAILED_PREFIX = "firehose-failed/"
ROUTE_PATH = "/aws/firehose"
# Firehose's body limit for HTTP endpoints is 64 MiB, but the body travels through API Gateway into a
# Lambda invocation (6 MB, base64-encoded there): 1 MiB of records stays far below both, gzip or not.
BUFFER_MIB = 1
_PERCENTILE = re.compile(r"^p\d{1,2}(\.\d+)?$")


def _listed(value: Any) -> tuple[str, ...]:
    """A list from ``cdk.json`` or a comma-separated string from ``-c``."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


@dataclass(frozen=True)
class MetricStreamSettings:
    """The metric stream's context flags, validated."""

    enabled: bool = False
    output_format: str = "json"
    namespaces: tuple[str, ...] = ()
    statistics: tuple[str, ...] = ()
    statistics_metrics: tuple[str, ...] = ()  # "Namespace:MetricName"
    buffer_seconds: int = 60
    retry_seconds: int = 3600

    def __post_init__(self) -> None:
        if self.output_format not in FORMATS:
            raise ValueError(f"{PREFIX}metricStreamFormat={self.output_format!r}: use one of {', '.join(FORMATS)}")
        if bool(self.statistics) != bool(self.statistics_metrics):
            raise ValueError(
                f"{PREFIX}metricStreamStatistics and {PREFIX}metricStreamStatisticsMetrics go together: CloudWatch "
                "streams extra statistics only for the Namespace:MetricName pairs listed"
            )
        bad_pairs = [m for m in self.statistics_metrics if ":" not in m.strip(":")]
        if bad_pairs:
            raise ValueError(f"{PREFIX}metricStreamStatisticsMetrics: {bad_pairs} are not Namespace:MetricName")
        if self.output_format != "json" and not all(_PERCENTILE.match(s) for s in self.statistics):
            raise ValueError(
                f"{PREFIX}metricStreamStatistics={','.join(self.statistics)}: the OpenTelemetry format streams only "
                "percentiles (p90, p99.9, ...)"
            )
        if not 0 <= self.buffer_seconds <= 900:
            raise ValueError(f"{PREFIX}metricStreamBufferSeconds must be 0-900, got {self.buffer_seconds}")
        if not 0 <= self.retry_seconds <= 7200:
            raise ValueError(f"{PREFIX}metricStreamRetrySeconds must be 0-7200, got {self.retry_seconds}")

    @classmethod
    def from_context(cls, node: Node) -> MetricStreamSettings:
        """Read the ``novacron:metricStream*`` context values."""
        defaults = cls()

        def get(key: str, default: Any) -> Any:
            value = node.try_get_context(PREFIX + key)
            return default if value is None else value

        return cls(
            enabled=_as_bool(get("metricStream", defaults.enabled)),
            output_format=str(get("metricStreamFormat", defaults.output_format)),
            namespaces=_listed(get("metricStreamNamespaces", None)),
            statistics=_listed(get("metricStreamStatistics", None)),
            statistics_metrics=_listed(get("metricStreamStatisticsMetrics", None)),
            buffer_seconds=int(get("metricStreamBufferSeconds", defaults.buffer_seconds)),
            retry_seconds=int(get("metricStreamRetrySeconds", defaults.retry_seconds)),
        )


def add_metric_stream(
    scope: Construct,
    *,
    routes: Sequence[Route],
    api: apigwv2.HttpApi | None,
    buckets: Mapping[str, s3.IBucket],
    key: kms.IKey,
    log_retention: logs.RetentionDays,
) -> MetricStream | None:
    """The metric stream when ``novacron:metricStream`` is on (None otherwise), delivering to ``api``."""
    settings = MetricStreamSettings.from_context(scope.node)
    if not settings.enabled:
        return None
    if api is None or not any(r.method == "POST" and r.path == ROUTE_PATH for r in routes):
        raise ValueError(f"{PREFIX}metricStream=true needs the wiring's POST {ROUTE_PATH} route on the HTTP API")
    if ARCHIVE_BUCKET not in buckets:
        raise ValueError(
            f"{PREFIX}metricStream=true needs the wiring's {ARCHIVE_BUCKET!r} bucket for failed deliveries"
        )
    return MetricStream(
        scope,
        "MetricStream",
        settings=settings,
        api_endpoint=api.api_endpoint,
        bucket=buckets[ARCHIVE_BUCKET],
        key=key,
        log_retention=log_retention,
    )


class MetricStream(Construct):
    """Secret, delivery stream (HTTP endpoint, failed data to S3) and metric stream, each with its own role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: MetricStreamSettings,
        api_endpoint: str,
        bucket: s3.IBucket,
        key: kms.IKey,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.secret = secretsmanager.Secret(
            self,
            "AccessKey",
            description="NovaCron API key (ingest role) that Firehose sends to /aws/firehose: store "
            '{"api_key": "<key>"} here',
            encryption_key=key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({}), generate_string_key="api_key", exclude_punctuation=True
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.log_group = logs.LogGroup(
            self, "DeliveryLogs", retention=log_retention, encryption_key=key, removal_policy=RemovalPolicy.DESTROY
        )
        log_stream = logs.LogStream(self, "DeliveryLogStream", log_group=self.log_group, log_stream_name="http")
        self.delivery_role = self._delivery_role(bucket, key, log_stream.log_stream_name)
        self.delivery_stream = firehose.CfnDeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="CUSTOMER_MANAGED_CMK", key_arn=key.key_arn
            ),
            http_endpoint_destination_configuration=self._destination(
                settings, api_endpoint, bucket, key, log_stream.log_stream_name
            ),
        )
        self.delivery_stream.node.add_dependency(self.delivery_role)
        self.stream_role = iam.Role(
            self,
            "MetricStreamRole",
            assumed_by=iam.ServicePrincipal(
                "streams.metrics.cloudwatch.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
            description="NovaCron metric stream: put records into its delivery stream only",
        )
        self.stream_role.add_to_policy(
            iam.PolicyStatement(
                actions=["firehose:PutRecord", "firehose:PutRecordBatch"],
                resources=[self.delivery_stream.attr_arn],
            )
        )
        self.metric_stream = cloudwatch.CfnMetricStream(
            self,
            "Stream",
            firehose_arn=self.delivery_stream.attr_arn,
            role_arn=self.stream_role.role_arn,
            output_format=settings.output_format,
            include_filters=[
                cloudwatch.CfnMetricStream.MetricStreamFilterProperty(namespace=ns) for ns in settings.namespaces
            ]
            or None,
            statistics_configurations=_statistics(settings),
        )
        self.metric_stream.node.add_dependency(self.stream_role)
        acknowledge(
            self.secret,
            "AwsSolutions-SMG4",
            "The secret holds a NovaCron API key, which Secrets Manager cannot rotate: operators rotate it by "
            "issuing a new ingest key (POST /api/v1/admin/keys), storing it here and revoking the old one.",
        )
        bucket_id = stack.resolve(stack.get_logical_id(bucket.node.default_child))  # type: ignore[arg-type]
        acknowledge(
            self.delivery_role,
            f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/{FAILED_PREFIX}*]",
            "Firehose writes failed deliveries under the archive bucket's firehose-failed/ prefix; the object "
            "names are chosen by Firehose at delivery time.",
        )
        CfnOutput(
            self, "AccessKeySecret", value=self.secret.secret_arn, description="Store the Firehose ingest key here"
        )

    def _delivery_role(self, bucket: s3.IBucket, key: kms.IKey, log_stream: str) -> iam.Role:
        """Firehose's role: the failed-data prefix, the key, its own log stream and the access-key secret."""
        role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"sts:ExternalId": Aws.ACCOUNT_ID}}
            ),
            description="NovaCron metric stream delivery: back up failed data, log, read the access key",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[bucket.bucket_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects(FAILED_PREFIX + "*")],
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key.key_arn]))
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:PutLogEvents"],
                resources=[
                    Stack.of(self).format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"{self.log_group.log_group_name}:log-stream:{log_stream}",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[self.secret.secret_arn],
            )
        )
        return role

    def _destination(
        self, settings: MetricStreamSettings, api_endpoint: str, bucket: s3.IBucket, key: kms.IKey, log_stream: str
    ) -> firehose.CfnDeliveryStream.HttpEndpointDestinationConfigurationProperty:
        cfn = firehose.CfnDeliveryStream
        logging = cfn.CloudWatchLoggingOptionsProperty(
            enabled=True, log_group_name=self.log_group.log_group_name, log_stream_name=log_stream
        )
        return cfn.HttpEndpointDestinationConfigurationProperty(
            endpoint_configuration=cfn.HttpEndpointConfigurationProperty(
                url=api_endpoint + ROUTE_PATH, name="NovaCron"
            ),
            # The key is read from the secret at delivery time: it never appears in the template.
            secrets_manager_configuration=cfn.SecretsManagerConfigurationProperty(
                enabled=True, secret_arn=self.secret.secret_arn, role_arn=self.delivery_role.role_arn
            ),
            request_configuration=cfn.HttpEndpointRequestConfigurationProperty(content_encoding="GZIP"),
            buffering_hints=cfn.BufferingHintsProperty(
                interval_in_seconds=settings.buffer_seconds, size_in_m_bs=BUFFER_MIB
            ),
            retry_options=cfn.RetryOptionsProperty(duration_in_seconds=settings.retry_seconds),
            role_arn=self.delivery_role.role_arn,
            s3_backup_mode="FailedDataOnly",
            s3_configuration=cfn.S3DestinationConfigurationProperty(
                bucket_arn=bucket.bucket_arn,
                role_arn=self.delivery_role.role_arn,
                prefix=FAILED_PREFIX,
                error_output_prefix=FAILED_PREFIX + "errors/",
                compression_format="GZIP",
                encryption_configuration=cfn.EncryptionConfigurationProperty(
                    kms_encryption_config=cfn.KMSEncryptionConfigProperty(awskms_key_arn=key.key_arn)
                ),
                cloud_watch_logging_options=logging,
            ),
            cloud_watch_logging_options=logging,
        )


def _statistics(
    settings: MetricStreamSettings,
) -> Sequence[cloudwatch.CfnMetricStream.MetricStreamStatisticsConfigurationProperty] | None:
    if not settings.statistics:
        return None
    metrics = []
    for pair in settings.statistics_metrics:
        namespace, _, metric = pair.rpartition(":")
        metrics.append(
            cloudwatch.CfnMetricStream.MetricStreamStatisticsMetricProperty(namespace=namespace, metric_name=metric)
        )
    return [
        cloudwatch.CfnMetricStream.MetricStreamStatisticsConfigurationProperty(
            additional_statistics=list(settings.statistics), include_metrics=metrics
        )
    ]
