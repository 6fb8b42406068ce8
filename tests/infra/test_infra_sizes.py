"""Every function plus its layers stays under Lambda's 250 MB unzipped limit (measured on the assets)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from infra.bundling import directory_size
from novacron.wiring import WIRING

pytestmark = pytest.mark.infra

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
MB = 1024 * 1024


@pytest.mark.parametrize("function", [fn.name for fn in WIRING.functions])
def test_function_and_layers_fit_in_lambda(synthesized, function):
    fn_props = synthesized.resources[synthesized.logical_id(synthesized.stack.functions.by_name[function])][
        "Properties"
    ]
    code_size = directory_size(synthesized.asset_dir(fn_props["Code"]["S3Key"]))
    parts = [f"code {code_size / MB:.1f} MB"]
    total = code_size
    for layer_ref in fn_props["Layers"]:
        layer = synthesized.resources[layer_ref["Ref"]]
        layer_dir = synthesized.asset_dir(layer["Properties"]["Content"]["S3Key"])
        assert (layer_dir / "python").is_dir(), f"{layer_dir} must hold python/ (Lambda's layer layout)"
        size = directory_size(layer_dir)
        parts.append(f"{layer['Properties']['Description']} {size / MB:.1f} MB")
        total += size
    print(f"\n{function}: {' + '.join(parts)} = {total / MB:.1f} MB unzipped (limit 250 MB)")
    assert total < LAMBDA_UNZIPPED_LIMIT


def test_core_layer_ships_the_novacron_package_without_the_aws_sdk(synthesized):
    core = synthesized.stack.functions.layers["core"]
    layer_dir = synthesized.asset_dir(
        synthesized.resources[synthesized.logical_id(core)]["Properties"]["Content"]["S3Key"]
    )
    python = layer_dir / "python"
    assert (python / "novacron" / "__init__.py").is_file()
    assert (python / "novacron" / "wiring.py").is_file()
    assert (python / "aws_lambda_powertools").is_dir()
    assert (python / "pydantic").is_dir()
    for provided in ("boto3", "botocore", "s3transfer"):
        assert not (python / provided).exists(), provided
    assert not list(python.rglob("__pycache__"))
    assert not list(python.rglob("*.pyc"))


def test_layers_import_on_cpython_311(synthesized):
    """The pruned layers still import (runtime-provided boto3/botocore come from the environment)."""
    paths = [
        str(synthesized.asset_dir(layer["Properties"]["Content"]["S3Key"]) / "python")
        for layer in synthesized.of_type("AWS::Lambda::LayerVersion").values()
    ]
    modules = [
        "novacron",
        "novacron.wiring",
        "aws_lambda_powertools",
        "aws_lambda_powertools.tracing",
        "pydantic",
        "pynamodb.models",
        "cramjam",
        "google.protobuf",
        "numpy",
        "promql_parser",
    ]
    script = (
        "import importlib, sys\n"
        f"layers = {paths!r}\n"
        f"for name in {modules!r}:\n"
        "    module = importlib.import_module(name)\n"
        "    assert any(module.__file__.startswith(p) for p in layers), (name, module.__file__)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
