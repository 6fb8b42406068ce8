"""Layer requirements, caching and failure modes of the Docker-free bundling."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from infra import bundling
from infra.bundling import LAYERS, REPO_ROOT, BundlingError, LayerSpec

pytestmark = pytest.mark.infra

RUNTIME_PROVIDED = {"boto3"}


def _name(requirement: str) -> str:
    return Requirement(requirement).name.lower().replace("_", "-")


def test_layer_requirements_cover_pyproject_dependencies_with_compatible_pins():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    # Layers ship the runtime dependencies, plus the extras of optional runtime features (the Parquet archive).
    runtime_extras = [r for extra in ("archive",) for r in project["optional-dependencies"][extra]]
    declared = {_name(r): Requirement(r) for r in [*project["dependencies"], *runtime_extras]}
    shipped: dict[str, tuple[str, Requirement]] = {}
    for layer, spec in LAYERS.items():
        for line in spec.requirements():
            req = Requirement(line)
            assert _name(line) not in shipped, f"{req.name} is in two layers"
            shipped[_name(line)] = (layer, req)
    assert set(shipped) == set(declared) - RUNTIME_PROVIDED
    for name, (layer, req) in shipped.items():
        [pin] = list(req.specifier)
        assert pin.operator == "==", f"{layer}: pin {name} exactly (the pin is the cache key)"
        assert declared[name].specifier.contains(pin.version), f"{name}=={pin.version} violates pyproject"
        assert req.extras == declared[name].extras, name


def test_cache_key_depends_on_requirements_only(tmp_path: Path):
    req = tmp_path / "req.txt"
    req.write_text("# comment\nnumpy==2.2.6\n\npromql-parser==0.12.0  # inline\n")
    key = LayerSpec("x", req).cache_key()
    req.write_text("promql-parser==0.12.0\nnumpy==2.2.6\n")
    assert LayerSpec("x", req).cache_key() == key
    req.write_text("promql-parser==0.12.0\nnumpy==2.2.5\n")
    assert LayerSpec("x", req).cache_key() != key


def test_cached_layer_is_reused_and_the_package_is_refreshed(synthesized, monkeypatch):
    def no_pip(spec, target):
        raise AssertionError("a cached layer must not call pip")

    monkeypatch.setattr(bundling, "_pip_install", no_pip)
    layer_dir = bundling.prepare_layer("core")
    assert (layer_dir / "python" / "novacron" / "__init__.py").is_file()
    assert (layer_dir / "python" / "pydantic").is_dir()
    source = {p.relative_to(REPO_ROOT / "layers") for p in (REPO_ROOT / "layers" / "novacron").rglob("*.py")}
    copied = {p.relative_to(layer_dir / "python") for p in (layer_dir / "python" / "novacron").rglob("*.py")}
    assert copied == {p for p in source if "__pycache__" not in p.parts}


def test_pip_failure_is_a_clear_bundling_error(tmp_path: Path, monkeypatch):
    req = tmp_path / "requirements.txt"
    req.write_text("numpy==2.2.6\n")
    monkeypatch.setitem(LAYERS, "offline", LayerSpec("offline", req))
    # No pip config (no local wheelhouse / extra index) and an index on a closed local port:
    # pip fails fast, and no network is touched.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(BundlingError, match=r"layer 'offline': pip could not fetch wheels"):
        bundling.prepare_layer("offline", build_dir=tmp_path / "build")


def test_unknown_layer_is_rejected():
    with pytest.raises(BundlingError, match="unknown layer"):
        bundling.prepare_layer("pandas")


def test_a_function_without_its_code_folder_fails_synth():
    with pytest.raises(BundlingError, match="'functions/not-written-yet', which does not exist"):
        bundling.prepare_function_code("not-written-yet", "functions/not-written-yet")
    assert not (REPO_ROOT / "functions" / "not-written-yet").exists()
