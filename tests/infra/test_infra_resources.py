"""The synthesized template matches the wiring: encryption, streams, tables, queues, functions."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.bundling import PYTHON_VERSION
from novacron.wiring import WIRING

pytestmark = pytest.mark.infra


def _key_ref(synthesized) -> dict[str, Any]:
    return {"Fn::GetAtt": [synthesized.logical_id(synthesized.stack.resources.key), "Arn"]}


def test_single_rotating_customer_managed_key(synthesized):
    synthesized.template.resource_count_is("AWS::KMS::Key", 1)
    synthesized.template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_streams_match_wiring_and_use_the_cmk(synthesized):
    streams = synthesized.of_type("AWS::Kinesis::Stream")
    assert len(streams) == len(WIRING.streams)
    for decl in WIRING.streams:
        props = synthesized.resources[synthesized.logical_id(synthesized.stack.resources.streams[decl.name])][
            "Properties"
        ]
        assert props["ShardCount"] == decl.shards
        assert props["RetentionPeriodHours"] == decl.retention_hours
        assert props["StreamEncryption"] == {"EncryptionType": "KMS", "KeyId": _key_ref(synthesized)}


def test_tables_have_pitr_cmk_and_ttl(synthesized):
    assert len(synthesized.of_type("AWS::DynamoDB::Table")) == len(WIRING.tables)
    for decl in WIRING.tables:
        table = synthesized.stack.resources.tables[decl.name]
        props = synthesized.resources[synthesized.logical_id(table)]["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["SSESpecification"] == {
            "SSEEnabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": _key_ref(synthesized),
        }
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        keys = {k["AttributeName"]: k["KeyType"] for k in props["KeySchema"]}
        expected = {decl.partition_key: "HASH", **({decl.sort_key: "RANGE"} if decl.sort_key else {})}
        assert keys == expected
        if decl.ttl_attribute:
            assert props["TimeToLiveSpecification"] == {"AttributeName": decl.ttl_attribute, "Enabled": True}
        else:
            assert "TimeToLiveSpecification" not in props


def test_buckets_are_private_tls_only_versioned_logged_and_kms(synthesized):
    key_ref = _key_ref(synthesized)
    for decl in WIRING.buckets:
        bucket = synthesized.stack.resources.buckets[decl.name]
        logical_id = synthesized.logical_id(bucket)
        props = synthesized.resources[logical_id]["Properties"]
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert sse["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_ref}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert "DestinationBucketName" in props["LoggingConfiguration"]
        synthesized.template.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": {"Ref": logical_id},
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )


def test_queues_topic_and_log_groups_use_the_cmk(synthesized):
    key_ref = _key_ref(synthesized)
    queues = synthesized.of_type("AWS::SQS::Queue")
    assert len(queues) == len(WIRING.queues)
    for queue in queues.values():
        assert queue["Properties"]["KmsMasterKeyId"] == key_ref
    for topic in synthesized.of_type("AWS::SNS::Topic").values():
        assert topic["Properties"]["KmsMasterKeyId"] == key_ref
    log_groups = synthesized.of_type("AWS::Logs::LogGroup")
    assert len(log_groups) == len(WIRING.functions) + 1  # one per function + API access logs
    for group in log_groups.values():
        assert group["Properties"]["KmsKeyId"] == key_ref
        assert group["Properties"]["RetentionInDays"] == 30


def test_functions_match_wiring(synthesized):
    functions = synthesized.of_type("AWS::Lambda::Function")
    assert len(functions) == len(WIRING.functions)
    layer_ids = {name: synthesized.logical_id(layer) for name, layer in synthesized.stack.functions.layers.items()}
    for decl in WIRING.functions:
        fn = synthesized.stack.functions.by_name[decl.name]
        props = synthesized.resources[synthesized.logical_id(fn)]["Properties"]
        assert props["Runtime"] == f"python{PYTHON_VERSION}"
        assert props["Architectures"] == ["x86_64"]
        assert props["Handler"] == decl.handler
        assert props["MemorySize"] == decl.memory_mb
        assert props["Timeout"] == decl.timeout_s
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Layers"] == [{"Ref": layer_ids[name]} for name in decl.layers]
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == decl.name
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "NovaCron"
        for var, resource in decl.environment.items():
            construct = _construct_of(synthesized, resource)
            logical_id = synthesized.logical_id(construct)
            # A queue's Ref is its URL: functions get its name (and look the URL up).
            is_queue = resource in synthesized.stack.resources.queues
            assert env[var] == ({"Fn::GetAtt": [logical_id, "QueueName"]} if is_queue else {"Ref": logical_id}), var
        assert set(env) == {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", *decl.environment}
        assert "ReservedConcurrentExecutions" not in props


def _construct_of(synthesized, name: str) -> Any:
    res = synthesized.stack.resources
    for group in (res.streams, res.tables, res.buckets, res.queues, res.secrets, res.buses, res.topics):
        if name in group:
            return group[name]
    raise KeyError(name)


def test_layers_are_built_for_the_runtime(synthesized):
    layers = synthesized.of_type("AWS::Lambda::LayerVersion")
    assert set(synthesized.stack.functions.layers) == {n for fn in WIRING.functions for n in fn.layers}
    assert len(layers) == len(synthesized.stack.functions.layers)
    for layer in layers.values():
        assert layer["Properties"]["CompatibleRuntimes"] == [f"python{PYTHON_VERSION}"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]


def test_no_timestream_by_default(synthesized):
    assert not [r for r in synthesized.resources.values() if r["Type"].startswith("AWS::Timestream::")]


def test_declared_secrets_are_generated_and_encrypted_with_the_stack_key(synthesized):
    key_id = synthesized.logical_id(synthesized.stack.resources.key)
    for decl in WIRING.secrets:
        props = synthesized.resources[synthesized.logical_id(synthesized.stack.resources.secrets[decl.name])][
            "Properties"
        ]
        # The value is made by Secrets Manager at deployment: never a literal in the template
        assert "SecretString" not in props
        assert props["GenerateSecretString"]["PasswordLength"] >= 48
        assert props["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
