"""cdk-nag (AwsSolutions) passes: no unacknowledged finding, and every acknowledgement has a reason."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk import aws_sqs as sqs

from infra.app import build_app

pytestmark = pytest.mark.infra

# Changing this set is a security decision: review the reason in the code and docs/deploy.md.
EXPECTED_ACKNOWLEDGEMENTS = {
    "AwsSolutions-APIG4",
    "AwsSolutions-IAM5[Resource::*]",
    "AwsSolutions-KDS3",
    "AwsSolutions-L1",
    "AwsSolutions-SMG4",
    "AwsSolutions-SQS3",
}


def _metadata(synthesized) -> dict[str, list[dict]]:
    return json.loads((synthesized.outdir / f"{synthesized.stack.artifact_id}.metadata.json").read_text())


def test_validation_report_has_no_violations(synthesized):
    # Synthesis itself raises on a violation; the report, when written, must be empty too.
    report_file = synthesized.outdir / "validation-report.json"
    if report_file.exists():
        report = json.loads(report_file.read_text())
        violations = [v for plugin in report["pluginReports"] for v in plugin["violations"]]
        assert violations == [], json.dumps(violations, indent=1)


def test_no_error_or_warning_annotations(synthesized):
    annotations = [
        (path, entry["type"], entry["data"])
        for path, entries in _metadata(synthesized).items()
        for entry in entries
        if entry["type"] in ("aws:cdk:error", "aws:cdk:warning")
    ]
    assert annotations == []


def test_every_acknowledgement_has_a_reason_and_is_expected(synthesized):
    acknowledged: dict[str, str] = {}
    for entries in _metadata(synthesized).values():
        for entry in entries:
            if entry["type"] == "aws:cdk:acknowledged-rules":
                for rule, reason in entry["data"].items():
                    acknowledged[rule.removeprefix("Annotation::")] = reason
    for rule, reason in acknowledged.items():
        assert len(reason) >= 40, f"{rule}: reason too short: {reason!r}"
    # Object-level bucket access: ``<bucket>/*``, or ``<bucket>/<prefix>*`` for grants limited to key prefixes.
    bucket_objects = {r for r in acknowledged if re.fullmatch(r"AwsSolutions-IAM5\[Resource::<[^>]+>/[a-z-]*/?\*\]", r)}
    assert set(acknowledged) - bucket_objects == EXPECTED_ACKNOWLEDGEMENTS
    for rule in bucket_objects:
        assert "Bucket" in rule, rule


def test_nag_is_active_an_unacknowledged_finding_fails_synth(tmp_path):
    """Guard against a vacuous pass: a non-compliant resource must make synthesis fail."""
    app, stack = build_app(outdir=tmp_path)
    sqs.Queue(stack, "Unencrypted", encryption=sqs.QueueEncryption.UNENCRYPTED)
    with pytest.raises(RuntimeError, match=r"AwsSolutions-SQS"):
        app.synth()
