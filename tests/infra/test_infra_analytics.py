"""The Parquet archive in the CDK app: Glue table, Athena workgroup, the archiver's role and packaging."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from aws_cdk.assertions import Match

from infra.constructs.analytics import COLUMNS, DEFAULT_SCAN_CUTOFF_GB
from novacron.wiring import ARCHIVER, QUERY

pytestmark = pytest.mark.infra


def test_glue_table_projects_tenant_and_date_partitions_over_parquet(synthesized):
    # Then the table is Parquet with the archive's columns, partitioned by injected tenant and date range
    synthesized.template.has_resource_properties(
        "AWS::Glue::Table",
        {
            "TableInput": Match.object_like(
                {
                    "Name": "samples",
                    "TableType": "EXTERNAL_TABLE",
                    "Parameters": Match.object_like(
                        {
                            "projection.enabled": "true",
                            "projection.tenant.type": "injected",
                            "projection.date.type": "date",
                            "projection.date.format": "yyyy-MM-dd",
                            "projection.date.range": Match.string_like_regexp(r"^\d{4}-\d{2}-\d{2},NOW$"),
                        }
                    ),
                    "PartitionKeys": [
                        Match.object_like({"Name": "tenant", "Type": "string"}),
                        Match.object_like({"Name": "date", "Type": "string"}),
                    ],
                    "StorageDescriptor": Match.object_like(
                        {
                            "SerdeInfo": Match.object_like(
                                {
                                    "SerializationLibrary": (
                                        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                                    )
                                }
                            ),
                            "Columns": [Match.object_like({"Name": n, "Type": t}) for n, t, _ in COLUMNS],
                        }
                    ),
                }
            )
        },
    )
    (table,) = synthesized.of_type("AWS::Glue::Table").values()
    template = json.dumps(table["Properties"]["TableInput"]["Parameters"]["storage.location.template"])
    assert "/parquet/tenant=${tenant}/date=${date}/" in template
    assert synthesized.of_type("AWS::Glue::Crawler") == {}


def test_athena_workgroup_enforces_encrypted_results_and_a_scan_cutoff(synthesized):
    (workgroup,) = synthesized.of_type("AWS::Athena::WorkGroup").values()
    config = workgroup["Properties"]["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == DEFAULT_SCAN_CUTOFF_GB * 1024**3
    assert config["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    output = json.dumps(config["ResultConfiguration"]["OutputLocation"])
    results_bucket = synthesized.logical_id(synthesized.stack.analytics.results_bucket)
    assert results_bucket in output
    archive_bucket = synthesized.logical_id(synthesized.stack.resources.buckets["archive"])
    assert archive_bucket not in output, "results go to their own bucket"
    bucket = synthesized.resources[results_bucket]["Properties"]
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert encryption["SSEAlgorithm"] == "aws:kms"


def _archiver_statements(synthesized) -> list[dict]:
    fn = synthesized.resources[synthesized.logical_id(synthesized.stack.functions.by_name[ARCHIVER])]
    role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = [
        r for r in synthesized.of_type("AWS::IAM::Policy").values() if {"Ref": role} in r["Properties"]["Roles"]
    ]
    return [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_archiver_reads_raw_and_writes_parquet_only(synthesized):
    statements = _archiver_statements(synthesized)
    by_action: dict[str, list[str]] = {}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            by_action.setdefault(action, []).extend(json.dumps(r) for r in resources)
    suffixes = {action: sorted(r.split("/", 1)[-1] for r in found if "/" in r) for action, found in by_action.items()}
    assert suffixes["s3:GetObject"] == ['parquet-manifests/*"]]}', 'raw/*"]]}']
    assert suffixes["s3:PutObject"] == ['parquet-manifests/*"]]}', 'parquet/*"]]}']
    assert "s3:DeleteObject" not in by_action
    (listing,) = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["raw/*", "parquet-manifests/*"]}}


def test_archiver_runs_on_a_schedule_with_the_arrow_layer(synthesized):
    fn = synthesized.resources[synthesized.logical_id(synthesized.stack.functions.by_name[ARCHIVER])]
    layers = {synthesized.resources[ref["Ref"]]["Properties"]["Description"] for ref in fn["Properties"]["Layers"]}
    assert layers == {
        "NovaCron core layer (python3.11, x86_64)",
        "NovaCron arrow layer (python3.11, x86_64)",
        "NovaCron science layer (python3.11, x86_64)",  # retention selectors need the PromQL parser
    }
    synthesized.template.has_resource_properties("AWS::Scheduler::Schedule", {"ScheduleExpression": "rate(15 minutes)"})
    # And pyarrow goes only to the archiver and the query function (which reads the archive past the hot tier)
    arrow = synthesized.logical_id(synthesized.stack.functions.layers["arrow"])
    users = {
        name
        for name, fn in synthesized.stack.functions.by_name.items()
        if {"Ref": arrow} in synthesized.resources[synthesized.logical_id(fn)]["Properties"].get("Layers", [])
    }
    assert users == {ARCHIVER, QUERY}


def test_arrow_layer_reads_parquet_on_cpython_311(synthesized):
    layer = synthesized.resources[synthesized.logical_id(synthesized.stack.functions.layers["arrow"])]
    core = synthesized.resources[synthesized.logical_id(synthesized.stack.functions.layers["core"])]
    paths = [str(synthesized.asset_dir(x["Properties"]["Content"]["S3Key"]) / "python") for x in (layer, core)]
    script = "\n".join(
        [
            "import io, pyarrow, pyarrow.parquet, novacron.archive.reader",
            f"assert pyarrow.__file__.startswith({paths[0]!r}), pyarrow.__file__",
            "b = io.BytesIO(); pyarrow.parquet.write_table(pyarrow.table({'x': [1, 2]}), b)",
            "assert pyarrow.parquet.read_table(io.BytesIO(b.getvalue())).num_rows == 2",
            # pyarrow's thread pools can abort the interpreter's teardown under load ("terminate called
            # without an active exception"); Lambda never tears down: leave once the checks have passed.
            "import os, sys; sys.stdout.write('read ok'); sys.stdout.flush(); os._exit(0)",
        ]
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert (proc.returncode, proc.stdout) == (0, "read ok"), proc.stderr[-3000:]
