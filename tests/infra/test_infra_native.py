"""The core layer ships the native wire decoder built for Lambda's python3.11 runtime (Amazon Linux 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import bundling
from infra.bundling import LAMBDA_EXT_SUFFIX, LAMBDA_MAX_GLIBC, NATIVE_EXTENSIONS

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def core_python(synthesized) -> Path:
    """The core layer's ``python/`` directory, as synthesized (the layer is cached: no pip here)."""
    problem = bundling._native_build_problem()
    if problem is not None:
        pytest.skip(f"SKIPPED LOUDLY: this machine cannot build the layer's native extension: {problem}")
    return bundling.prepare_layer("core") / "python"


@pytest.mark.parametrize(("module", "source"), NATIVE_EXTENSIONS)
def test_the_layer_ships_each_extension_built_for_lambda(core_python: Path, module: str, source: str) -> None:
    shipped = core_python / "novacron" / f"{module}{LAMBDA_EXT_SUFFIX}"
    assert shipped.is_file(), f"{shipped} is missing from the core layer"
    # Only the Lambda build is shipped: nothing built in the source tree for another interpreter, no C source.
    assert sorted(p.name for p in shipped.parent.glob(f"{Path(module).name}*")) == [shipped.name, "_wirec.pyi"]


@pytest.mark.parametrize(("module", "source"), NATIVE_EXTENSIONS)
def test_the_shipped_extension_needs_no_glibc_newer_than_amazon_linux_2(core_python: Path, module: str, source: str):
    shipped = core_python / "novacron" / f"{module}{LAMBDA_EXT_SUFFIX}"
    versions = bundling.glibc_versions_required(shipped)
    if versions is None:
        pytest.skip("SKIPPED LOUDLY: objdump (binutils) is not installed, so the glibc symbol versions are unchecked")
    assert versions, "objdump found no GLIBC symbol versions at all: is this an ELF shared object?"
    newest = max(versions)
    assert newest <= LAMBDA_MAX_GLIBC, f"{shipped.name} needs GLIBC_{'.'.join(map(str, newest))}"


def test_the_layer_decodes_with_the_native_extension(core_python: Path) -> None:
    # With only the layer on the path (no site-packages, no source tree), the decoder uses the shipped .so.
    script = (
        "from novacron.protocols import wire, _wirec\n"
        "assert wire.native_enabled(), 'the native decoder did not load'\n"
        f"assert _wirec.__file__.startswith({str(core_python)!r}), _wirec.__file__\n"
        "d = wire.decode_write_request(b'\\x0a\\x0d\\x0a\\x06\\x0a\\x01a\\x12\\x01b\\x12\\x03\\x10\\xe8\\x07')\n"
        "assert d.label_bytes == [b'\\x0a\\x06\\x0a\\x01a\\x12\\x01b'], d.label_bytes\n"
        "assert (d.timestamps.tolist(), d.values.tolist()) == ([1000], [0.0])\n"
    )
    proc = subprocess.run(  # -S: no site-packages of the development environment
        [sys.executable, "-S", "-c", script],
        cwd=core_python,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(core_python), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2500:]
