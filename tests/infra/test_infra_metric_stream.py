"""The CloudWatch metric stream construct: off by default; when on, Firehose delivers to /aws/firehose."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App

from infra.constructs.metric_stream import FAILED_PREFIX, MetricStreamSettings

pytestmark = pytest.mark.infra

CONTEXT = {
    "novacron:stackName": "NovaCronMetricStream",
    "novacron:metricStream": "true",
    "novacron:metricStreamFormat": "opentelemetry1.0",
    "novacron:metricStreamNamespaces": "AWS/EC2,AWS/Lambda",
    "novacron:metricStreamStatistics": "p99,p99.9",
    "novacron:metricStreamStatisticsMetrics": "AWS/Lambda:Duration",
}


@pytest.fixture(scope="module")
def streamed(tmp_path_factory, synthesize_app):
    """The app with the metric stream on (synthesis raises on any cdk-nag violation)."""
    return synthesize_app(tmp_path_factory.mktemp("cdk-out-metric-stream"), context=CONTEXT)


def only(synthesized, cfn_type: str) -> tuple[str, dict]:
    [(logical_id, resource)] = synthesized.of_type(cfn_type).items()
    return logical_id, resource["Properties"]


def stream_secret(synthesized) -> tuple[str, dict]:
    """The metric stream's access-key secret (the wiring declares secrets of its own)."""
    wiring_secrets = {synthesized.logical_id(s) for s in synthesized.stack.resources.secrets.values()}
    [(logical_id, resource)] = [
        (lid, r) for lid, r in synthesized.of_type("AWS::SecretsManager::Secret").items() if lid not in wiring_secrets
    ]
    return logical_id, resource["Properties"]


def statements(synthesized, role_id: str) -> list[dict]:
    found = []
    for policy in synthesized.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def test_the_metric_stream_is_off_by_default(synthesized):
    assert not synthesized.of_type("AWS::CloudWatch::MetricStream")
    assert not synthesized.of_type("AWS::KinesisFirehose::DeliveryStream")
    assert synthesized.stack.metric_stream is None


def test_the_metric_stream_sends_the_configured_namespaces_and_statistics_to_firehose(streamed):
    stream_id, delivery = only(streamed, "AWS::KinesisFirehose::DeliveryStream")
    _, props = only(streamed, "AWS::CloudWatch::MetricStream")
    assert props["OutputFormat"] == "opentelemetry1.0"
    assert props["IncludeFilters"] == [{"Namespace": "AWS/EC2"}, {"Namespace": "AWS/Lambda"}]
    assert props["StatisticsConfigurations"] == [
        {
            "AdditionalStatistics": ["p99", "p99.9"],
            "IncludeMetrics": [{"Namespace": "AWS/Lambda", "MetricName": "Duration"}],
        }
    ]
    assert props["FirehoseArn"] == {"Fn::GetAtt": [stream_id, "Arn"]}
    assert delivery["DeliveryStreamType"] == "DirectPut"
    assert delivery["DeliveryStreamEncryptionConfigurationInput"]["KeyType"] == "CUSTOMER_MANAGED_CMK"


def test_firehose_delivers_gzip_to_the_api_route_with_the_key_from_secrets_manager(streamed):
    _, delivery = only(streamed, "AWS::KinesisFirehose::DeliveryStream")
    destination = delivery["HttpEndpointDestinationConfiguration"]
    api_id = streamed.logical_id(streamed.stack.http_api.api)
    url = json.dumps(destination["EndpointConfiguration"]["Url"])
    assert api_id in url
    assert url.endswith('"/aws/firehose"]]}')
    # The access key is never in the template: Firehose reads it from the secret
    assert "AccessKey" not in destination["EndpointConfiguration"]
    secret_id, _ = stream_secret(streamed)
    assert destination["SecretsManagerConfiguration"]["Enabled"] is True
    assert destination["SecretsManagerConfiguration"]["SecretARN"] == {"Ref": secret_id}
    assert destination["RequestConfiguration"] == {"ContentEncoding": "GZIP"}
    assert destination["BufferingHints"] == {"IntervalInSeconds": 60, "SizeInMBs": 1}
    assert destination["RetryOptions"] == {"DurationInSeconds": 3600}
    assert destination["CloudWatchLoggingOptions"]["Enabled"] is True


def test_failed_deliveries_are_kept_in_the_archive_bucket(streamed):
    _, delivery = only(streamed, "AWS::KinesisFirehose::DeliveryStream")
    destination = delivery["HttpEndpointDestinationConfiguration"]
    archive_id = streamed.logical_id(streamed.stack.resources.buckets["archive"])
    assert destination["S3BackupMode"] == "FailedDataOnly"
    backup = destination["S3Configuration"]
    assert backup["BucketARN"] == {"Fn::GetAtt": [archive_id, "Arn"]}
    assert backup["Prefix"] == FAILED_PREFIX
    assert "KMSEncryptionConfig" in backup["EncryptionConfiguration"]


def test_the_secret_holds_a_generated_placeholder_only(streamed):
    _, secret = stream_secret(streamed)
    assert "SecretString" not in secret
    assert secret["GenerateSecretString"]["GenerateStringKey"] == "api_key"
    assert "KmsKeyId" in secret


def test_roles_are_least_privilege(streamed):
    _, delivery = only(streamed, "AWS::KinesisFirehose::DeliveryStream")
    stream_id, _ = only(streamed, "AWS::KinesisFirehose::DeliveryStream")
    delivery_role = delivery["HttpEndpointDestinationConfiguration"]["RoleARN"]["Fn::GetAtt"][0]
    _, metric_stream = only(streamed, "AWS::CloudWatch::MetricStream")
    stream_role = metric_stream["RoleArn"]["Fn::GetAtt"][0]
    # The metric stream may only put records into its delivery stream
    [put] = statements(streamed, stream_role)
    assert sorted(put["Action"]) == ["firehose:PutRecord", "firehose:PutRecordBatch"]
    assert put["Resource"] == {"Fn::GetAtt": [stream_id, "Arn"]}
    # Firehose may write objects only under the failed-data prefix, and no action is a wildcard
    delivery_statements = statements(streamed, delivery_role)
    actions = [a for s in delivery_statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert not [a for a in actions if "*" in a]
    [put_object] = [s for s in delivery_statements if "s3:PutObject" in s["Action"]]
    assert FAILED_PREFIX + "*" in json.dumps(put_object["Resource"])
    # And each role trusts only its service, for this account
    roles = streamed.of_type("AWS::IAM::Role")
    trust = roles[stream_role]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "streams.metrics.cloudwatch.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]


def test_the_json_format_may_stream_any_statistic():
    settings = MetricStreamSettings(statistics=("TM(10%:90%)",), statistics_metrics=("AWS/EC2:CPUUtilization",))
    assert settings.output_format == "json"


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"output_format": "opentelemetry0.7"}, "metricStreamFormat"),
        ({"statistics": ("p99",)}, "go together"),
        ({"statistics": ("p99",), "statistics_metrics": ("Duration",)}, "Namespace:MetricName"),
        (
            {"output_format": "opentelemetry1.0", "statistics": ("tm99",), "statistics_metrics": ("A:B",)},
            "only percentiles",
        ),
        ({"retry_seconds": 9000}, "0-7200"),
    ],
)
def test_bad_settings_fail_clearly(values, fragment):
    with pytest.raises(ValueError, match=fragment):
        MetricStreamSettings(**values)


def test_settings_come_from_context():
    app = App(context=CONTEXT | {"novacron:metricStreamNamespaces": ["AWS/SQS"]})
    settings = MetricStreamSettings.from_context(app.node)
    assert settings.enabled
    assert settings.namespaces == ("AWS/SQS",)
    assert settings.statistics == ("p99", "p99.9")


def _metadata(synthesized) -> dict[str, list[dict]]:
    return json.loads((synthesized.outdir / f"{synthesized.stack.artifact_id}.metadata.json").read_text())


def test_nag_passes_with_only_the_reasoned_acknowledgements(streamed):
    # Synthesis raises on an unacknowledged finding; warnings and errors must be absent as well
    entries = [(path, e) for path, found in _metadata(streamed).items() for e in found]
    assert [e["data"] for _, e in entries if e["type"] in ("aws:cdk:error", "aws:cdk:warning")] == []
    # And the construct's own acknowledgements are the secret's rotation and the failed-data prefix
    acknowledged = {
        rule.removeprefix("Annotation::"): reason
        for path, e in entries
        if e["type"] == "aws:cdk:acknowledged-rules" and "/MetricStream/" in path
        for rule, reason in e["data"].items()
    }
    assert set(acknowledged) == {
        "AwsSolutions-SMG4",
        f"AwsSolutions-IAM5[Resource::<{_archive_id(streamed)}.Arn>/{FAILED_PREFIX}*]",
    }
    assert all(len(reason) >= 40 for reason in acknowledged.values())


def _archive_id(synthesized) -> str:
    return synthesized.logical_id(synthesized.stack.resources.buckets["archive"])
