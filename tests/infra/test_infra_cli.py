"""The real ``cdk synth`` (CLI via npx, offline once cached) runs the app from cdk.json."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from infra.bundling import REPO_ROOT

pytestmark = pytest.mark.infra

CDK_CLI = ["npx", "--yes", "aws-cdk@2"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
        CDK_DISABLE_CLI_TELEMETRY="true",
        # No credentials here: keep the SDK's credential chain away from the instance metadata service.
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


@pytest.fixture(scope="module")
def cdk_cli() -> list[str]:
    """The CDK CLI through npx; skip loudly when it cannot be installed."""
    if shutil.which("npx") is None:
        pytest.skip("CDK CLI synth skipped: npx (Node.js) is not installed")
    try:
        proc = subprocess.run(
            [*CDK_CLI, "--version"], capture_output=True, text=True, timeout=300, env=_env(), check=False
        )
    except subprocess.TimeoutExpired:
        pytest.skip("CDK CLI synth skipped: `npx --yes aws-cdk@2` timed out (npm registry unreachable?)")
    if proc.returncode != 0:
        pytest.skip(f"CDK CLI synth skipped: `npx --yes aws-cdk@2` failed: {proc.stderr.strip()[-500:]}")
    return CDK_CLI


def test_cli_synth_succeeds_without_violations(cdk_cli, tmp_path):
    outdir = tmp_path / "cdk.out"
    # cdk.json's app runs .venv/bin/python; elsewhere (a venv in another place) run this interpreter.
    app = [] if (REPO_ROOT / ".venv" / "bin" / "python").exists() else ["--app", f"{sys.executable} -m infra.app"]
    proc = subprocess.run(
        [
            *cdk_cli,
            "synth",
            *app,
            "--quiet",
            "--no-notices",
            "--no-version-reporting",
            "--no-lookups",
            "--output",
            str(outdir),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(),
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    template = json.loads((outdir / "NovaCron.template.json").read_text())
    assert any(r["Type"] == "AWS::Lambda::EventSourceMapping" for r in template["Resources"].values())
    report = outdir / "validation-report.json"
    if report.exists():
        assert all(not p["violations"] for p in json.loads(report.read_text())["pluginReports"])
