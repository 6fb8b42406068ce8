"""The optional Timestream sink: nothing of it by default; when on, a CMK-encrypted table the writer alone may write."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constructs.timestream import REJECTED_PREFIX
from novacron.wiring import ARCHIVE_BUCKET, WIRING, WRITER

pytestmark = pytest.mark.infra

CONTEXT = {
    "novacron:stackName": "NovaCronTimestream",
    "novacron:timestream": "true",
    "novacron:timestreamMemoryHours": "12",
    "novacron:timestreamMagneticDays": "30",
}
SINK = WIRING.timestream
assert SINK is not None


@pytest.fixture(scope="module")
def with_timestream(tmp_path_factory, synthesize_app):
    """The app with the sink on (synthesis raises on any unacknowledged cdk-nag finding)."""
    return synthesize_app(tmp_path_factory.mktemp("cdk-out-timestream"), context=CONTEXT)


def timestream_grants(synthesized) -> dict[str, list[tuple[list[str], Any]]]:
    """Per function, its roles' statements that mention a Timestream action: (actions, resource)."""
    found: dict[str, list[tuple[list[str], Any]]] = {}
    for name, fn in synthesized.stack.functions.by_name.items():
        role_ref = {"Ref": synthesized.logical_id(fn.role)}
        for policy in synthesized.of_type("AWS::IAM::Policy").values():
            if role_ref not in policy["Properties"]["Roles"]:
                continue
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if any(a.startswith("timestream:") for a in actions):
                    found.setdefault(name, []).append((actions, statement["Resource"]))
    return found


def writer_environment(synthesized) -> dict[str, Any]:
    fn_id = synthesized.logical_id(synthesized.stack.functions.by_name[WRITER])
    return synthesized.resources[fn_id]["Properties"]["Environment"]["Variables"]


def test_flag_off_no_timestream_resources_permissions_or_variables(synthesized):
    assert synthesized.stack.timestream is None
    assert not [r for r in synthesized.resources.values() if r["Type"].startswith("AWS::Timestream::")]
    assert timestream_grants(synthesized) == {}
    assert not {SINK.database_env, SINK.table_env} & set(writer_environment(synthesized))


def test_flag_on_creates_an_encrypted_database_and_a_table_with_the_configured_retention(with_timestream):
    [(db_id, database)] = with_timestream.of_type("AWS::Timestream::Database").items()
    [(_, table)] = with_timestream.of_type("AWS::Timestream::Table").items()
    key_id = with_timestream.logical_id(with_timestream.stack.resources.key)
    assert database["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    props = table["Properties"]
    assert props["DatabaseName"] == {"Ref": db_id}
    assert props["RetentionProperties"] == {
        "MemoryStoreRetentionPeriodInHours": "12",
        "MagneticStoreRetentionPeriodInDays": "30",
    }
    # Data is kept when the stack is deleted, like every other store (novacron:retainData defaults to true).
    assert database["DeletionPolicy"] == table["DeletionPolicy"] == "Retain"


def test_late_samples_go_to_the_magnetic_store_and_rejections_are_reported_to_the_archive(with_timestream):
    [table] = with_timestream.of_type("AWS::Timestream::Table").values()
    writes = table["Properties"]["MagneticStoreWriteProperties"]
    assert writes["EnableMagneticStoreWrites"] is True
    s3 = writes["MagneticStoreRejectedDataLocation"]["S3Configuration"]
    archive_id = with_timestream.logical_id(with_timestream.stack.resources.buckets[ARCHIVE_BUCKET])
    assert s3["BucketName"] == {"Ref": archive_id}
    assert s3["ObjectKeyPrefix"] == REJECTED_PREFIX
    assert s3["EncryptionOption"] == "SSE_KMS"


def test_only_the_writer_may_write_and_only_that_table(with_timestream):
    [(table_id, _)] = with_timestream.of_type("AWS::Timestream::Table").items()
    grants = timestream_grants(with_timestream)
    assert set(grants) == {WRITER}
    assert sorted(grants[WRITER]) == sorted(
        [
            (["timestream:WriteRecords"], {"Fn::GetAtt": [table_id, "Arn"]}),
            (["timestream:DescribeEndpoints"], "*"),
        ]
    )


def test_the_writer_is_told_the_database_and_table(with_timestream):
    [(db_id, _)] = with_timestream.of_type("AWS::Timestream::Database").items()
    [(table_id, _)] = with_timestream.of_type("AWS::Timestream::Table").items()
    env = writer_environment(with_timestream)
    assert env[SINK.database_env] == {"Ref": db_id}
    assert env[SINK.table_env] == {"Fn::GetAtt": [table_id, "Name"]}


def test_other_functions_do_not_get_the_variables(with_timestream):
    for name, fn in with_timestream.stack.functions.by_name.items():
        if name == WRITER:
            continue
        variables = with_timestream.resources[with_timestream.logical_id(fn)]["Properties"]["Environment"]["Variables"]
        assert not {SINK.database_env, SINK.table_env} & set(variables)


def test_flag_on_acknowledges_maintenance_mode_and_the_endpoint_wildcard_with_reasons(with_timestream):
    metadata = json.loads((with_timestream.outdir / f"{with_timestream.stack.artifact_id}.metadata.json").read_text())
    prefix = f"/{with_timestream.stack.stack_name}/Timestream"
    acknowledged: dict[str, dict[str, str]] = {}
    for path, entries in metadata.items():
        for entry in entries:
            assert entry["type"] not in ("aws:cdk:error", "aws:cdk:warning"), (path, entry)
            if entry["type"] == "aws:cdk:acknowledged-rules" and path.startswith(prefix):
                acknowledged[path] = entry["data"]
    assert "maintenance mode" in acknowledged[prefix]["CloudFormation-Validate::W3697"]
    assert "DescribeEndpoints" in acknowledged[prefix + "/WritePolicy"]["Annotation::AwsSolutions-IAM5[Resource::*]"]
    assert set(acknowledged) == {prefix, prefix + "/WritePolicy"}
    report_file = with_timestream.outdir / "validation-report.json"
    if report_file.exists():
        report = json.loads(report_file.read_text())
        assert [v for plugin in report["pluginReports"] for v in plugin["violations"]] == []
