"""Each function's handler imports with exactly its code asset, its declared layers and what the
Lambda Python runtime provides (boto3 & co.) — nothing from the development virtualenv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from novacron.wiring import WIRING

pytestmark = pytest.mark.infra

# What the python3.11 Lambda runtime puts on sys.path besides the function and its layers.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory) -> Path:
    """A directory exposing only the runtime-provided packages, linked from this environment."""
    target = tmp_path_factory.mktemp("lambda-runtime")
    site = Path(boto3.__file__).resolve().parent.parent
    for name in RUNTIME_PROVIDED:
        if (site / name).exists():
            (target / name).symlink_to(site / name)
    return target


@pytest.mark.parametrize("function", [fn.name for fn in WIRING.functions])
def test_handler_imports_with_its_declared_layers(synthesized, runtime_dir, function):
    decl = WIRING.function(function)
    fn_props = synthesized.resources[synthesized.logical_id(synthesized.stack.functions.by_name[function])][
        "Properties"
    ]
    code_dir = synthesized.asset_dir(fn_props["Code"]["S3Key"])
    module = decl.handler.rsplit(".", 1)[0]
    if not (code_dir / f"{module}.py").is_file():
        pytest.skip(f"{decl.code}/{module}.py is not written yet")
    layer_dirs = [
        str(synthesized.asset_dir(synthesized.resources[ref["Ref"]]["Properties"]["Content"]["S3Key"]) / "python")
        for ref in fn_props["Layers"]
    ]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(code_dir), *layer_dirs, str(runtime_dir)]),
        "PYTHONDONTWRITEBYTECODE": "1",  # keep the staged assets pristine
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": function,
        "POWERTOOLS_METRICS_NAMESPACE": "NovaCron",
        **{var: f"novacron-test-{res}" for var, res in decl.environment.items()},
    }
    entry = decl.handler.rsplit(".", 1)[1]
    script = f"import importlib; m = importlib.import_module({module!r}); assert callable(m.{entry})"
    proc = subprocess.run(  # -S: no site-packages of the development environment
        [sys.executable, "-S", "-c", script],
        cwd=code_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"{function} does not import with layers {list(decl.layers)}:\n{proc.stderr[-2500:]}"
