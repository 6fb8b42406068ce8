"""Docker-free, offline-friendly Lambda packaging.

Layers are built with ``pip install --target`` for Lambda's platform (manylinux2014, CPython 3.11,
x86_64) into ``.build/layers/<name>/python/``. Third-party dependencies are cached, keyed by a hash of
the layer's requirement list and the target platform, so repeated synths (and tests) never reinstall;
once built, synth needs no network. The ``novacron`` package itself is copied fresh on every synth.

The package's optional C extensions (``NATIVE_EXTENSIONS``) are compiled for the layer by the local C
compiler against this interpreter's headers, which must be CPython 3.11 on x86_64 Linux (Lambda's
python3.11 runtime). The result is cached by a hash of the source, compiler and flags, and checked to
need no glibc symbol newer than Amazon Linux 2's (2.26). Elsewhere (another Python, no compiler) the
layer ships without it, with a warning: the package then uses its pure-Python/numpy code.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / ".build"

PYTHON_VERSION = "3.11"
PIP_PLATFORM = "manylinux2014_x86_64"
PIP_IMPLEMENTATION = "cp"
PIP_TIMEOUT_S = 1200
# Bump when the layout or pruning rules change, to invalidate every cached layer.
BUNDLING_VERSION = "1"

# Provided by the Lambda Python runtime; shipping them would only add ~30 MB per layer.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
# Never useful at run time inside Lambda.
PRUNED_DIR_NAMES = frozenset({"__pycache__", "tests", "bin"})
PRUNED_SUFFIXES = (".pyc", ".pyo")

# Never copied from a function's folder into its code asset.
FUNCTION_ASSET_EXCLUDES = ("__pycache__", "*.pyc", "tests", ".pytest_cache", ".mypy_cache")
# Nor from the package into the core layer: extensions built in the source tree (pip install -e) are
# for the developer's interpreter; the layer gets its own, built for Lambda (see _build_native).
PACKAGE_EXCLUDES = (*FUNCTION_ASSET_EXCLUDES, "*.so", "*.c")

# Optional C extensions of the package: (module path inside the package, C source inside it).
NATIVE_EXTENSIONS = (("protocols/_wirec", "protocols/_wirec.c"),)
# What Lambda's python3.11 x86_64 runtime imports, and the newest glibc it has (Amazon Linux 2).
LAMBDA_EXT_SUFFIX = ".cpython-311-x86_64-linux-gnu.so"
LAMBDA_MAX_GLIBC = (2, 26)
NATIVE_CFLAGS = ("-O2", "-fPIC", "-shared", "-fno-strict-aliasing", "-Wall")


class BundlingError(RuntimeError):
    """A Lambda artifact could not be prepared (for example, pip could not fetch wheels)."""


@dataclass(frozen=True)
class LayerSpec:
    """One Lambda layer: a requirement file, plus whether it carries the ``novacron`` package."""

    name: str
    requirements_file: Path
    package_source: Path | None = None

    def requirements(self) -> list[str]:
        """The requirement lines, without comments or blanks."""
        if not self.requirements_file.is_file():
            raise BundlingError(f"layer {self.name!r}: missing requirement file {self.requirements_file}")
        lines = (ln.split("#", 1)[0].strip() for ln in self.requirements_file.read_text().splitlines())
        return [ln for ln in lines if ln]

    def cache_key(self) -> str:
        """A hash of everything that determines the third-party content of the layer."""
        material = {
            "requirements": sorted(self.requirements()),
            "platform": PIP_PLATFORM,
            "python": PYTHON_VERSION,
            "implementation": PIP_IMPLEMENTATION,
            "runtime_provided": RUNTIME_PROVIDED,
            "pruned": sorted(PRUNED_DIR_NAMES),
            "version": BUNDLING_VERSION,
        }
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


LAYERS: dict[str, LayerSpec] = {
    "core": LayerSpec("core", REPO_ROOT / "requirements-layer-core.txt", REPO_ROOT / "layers" / "novacron"),
    "science": LayerSpec("science", REPO_ROOT / "requirements-layer-science.txt"),
    "arrow": LayerSpec("arrow", REPO_ROOT / "requirements-layer-arrow.txt"),
}


@contextlib.contextmanager
def _locked(build_dir: Path) -> Iterator[None]:
    """Serialize layer builds between concurrent synths (tests and CLI share ``.build``)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with (build_dir / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pip_install(spec: LayerSpec, target: Path) -> None:
    """Install the layer's requirements for Lambda's platform into ``target``; fail clearly."""
    cmd = [
        sys.executable, "-m", "pip", "install",
        "--target", str(target),
        "--platform", PIP_PLATFORM,
        "--implementation", PIP_IMPLEMENTATION,
        "--python-version", PYTHON_VERSION,
        "--only-binary=:all:",
        "--no-compile",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        "-r", str(spec.requirements_file),
    ]  # fmt: skip
    try:
        proc = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BundlingError(
            f"layer {spec.name!r}: pip did not finish within {PIP_TIMEOUT_S}s while fetching wheels "
            f"for {PIP_PLATFORM}/cp{PYTHON_VERSION}. Is PyPI (or PIP_INDEX_URL / PIP_FIND_LINKS) reachable?"
        ) from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BundlingError(
            f"layer {spec.name!r}: pip could not fetch wheels for {PIP_PLATFORM} / CPython {PYTHON_VERSION} "
            f"from {spec.requirements_file.name} (exit {proc.returncode}). Layers are built from binary "
            "wheels only, without Docker: make PyPI reachable, or point PIP_INDEX_URL / PIP_FIND_LINKS at "
            "a mirror or wheelhouse, or pin a version that publishes a manylinux2014 wheel. Once built, "
            f"the layer is cached under {BUILD_DIR} and synth works offline.\npip said:\n{tail}"
        )


def _prune(root: Path) -> None:
    """Drop byte code, test suites, scripts and the runtime-provided AWS SDK from a layer tree."""
    for name in RUNTIME_PROVIDED:
        shutil.rmtree(root / name, ignore_errors=True)
        for dist_info in root.glob(f"{name}-*.dist-info"):
            shutil.rmtree(dist_info, ignore_errors=True)
    for dirpath, dirnames, filenames in os.walk(root, topdown=True):
        for dirname in [d for d in dirnames if d in PRUNED_DIR_NAMES]:
            shutil.rmtree(Path(dirpath) / dirname, ignore_errors=True)
            dirnames.remove(dirname)
        for filename in filenames:
            if filename.endswith(PRUNED_SUFFIXES):
                (Path(dirpath) / filename).unlink(missing_ok=True)


def _replace_dir(staged: Path, final: Path) -> None:
    """Swap ``staged`` into ``final`` (same filesystem), removing what was there."""
    if final.exists():
        trash = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    staged.rename(final)


def _copy_package(source: Path, python_dir: Path, work_dir: Path) -> None:
    """Copy the ``novacron`` package into ``python/novacron`` (fresh, every synth)."""
    if not (source / "__init__.py").is_file():
        raise BundlingError(f"the novacron package was not found at {source}")
    staged = Path(tempfile.mkdtemp(prefix="pkg-", dir=work_dir)) / source.name
    shutil.copytree(source, staged, ignore=shutil.ignore_patterns(*PACKAGE_EXCLUDES))
    for module, c_source in NATIVE_EXTENSIONS:
        built = _build_native(source / c_source, work_dir.parent / "native")
        if built is not None:
            shutil.copy2(built, staged / f"{module}{LAMBDA_EXT_SUFFIX}")
    _replace_dir(staged, python_dir / source.name)
    shutil.rmtree(staged.parent, ignore_errors=True)


def _native_build_problem() -> str | None:
    """Why this machine cannot build an extension for Lambda's python3.11 x86_64, or None."""
    if sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11):
        return f"synth runs on {sys.implementation.name} {sys.version_info[0]}.{sys.version_info[1]}, not CPython 3.11"
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return f"synth runs on {sys.platform}/{platform.machine()}, not linux/x86_64"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        return "the CPython 3.11 headers (Python.h) are not installed"
    if _compiler() is None:
        return "no C compiler (set CC, or install gcc)"
    return None


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "") or "gcc") or shutil.which("cc")


def _build_native(c_source: Path, cache_dir: Path) -> Path | None:
    """Compile one extension for the layer (cached); None, with a warning, where that is not possible."""
    problem = _native_build_problem()
    if problem is not None:
        warnings.warn(
            f"the core layer ships without the native extension {c_source.name} ({problem}); "
            "the package falls back to its slower numpy code",
            stacklevel=3,
        )
        return None
    compiler = _compiler()
    assert compiler is not None
    include = sysconfig.get_paths()["include"]
    version = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [compiler, "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[:1]
    material = json.dumps(
        {
            "source": hashlib.sha256(c_source.read_bytes()).hexdigest(),
            "compiler": version,
            "flags": NATIVE_CFLAGS,
            "include": include,
            "version": BUNDLING_VERSION,
        },
        sort_keys=True,
    )
    target = cache_dir / hashlib.sha256(material.encode()).hexdigest()[:16] / f"{c_source.stem}{LAMBDA_EXT_SUFFIX}"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.{os.getpid()}")
    cmd = [compiler, *NATIVE_CFLAGS, f"-I{include}", str(c_source), "-o", str(staged)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603 - no shell
    if proc.returncode != 0:
        raise BundlingError(f"could not compile {c_source} for the core layer:\n{proc.stderr[-2000:]}")
    newest = max(glibc_versions_required(staged) or [(0,)])
    if newest > LAMBDA_MAX_GLIBC:
        staged.unlink(missing_ok=True)
        raise BundlingError(
            f"{c_source.name} compiled here needs glibc {'.'.join(map(str, newest))}, newer than Lambda's "
            f"python3.11 runtime has ({'.'.join(map(str, LAMBDA_MAX_GLIBC))}); build on an older distribution"
        )
    staged.rename(target)
    return target


def glibc_versions_required(shared_object: Path) -> set[tuple[int, ...]] | None:
    """The GLIBC_x.y symbol versions a shared object imports (``objdump -T``); None without objdump."""
    objdump = shutil.which("objdump")
    if objdump is None:
        return None
    proc = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [objdump, "-T", str(shared_object)], capture_output=True, text=True, check=True
    )
    return {tuple(int(p) for p in m.split(".")) for m in re.findall(r"\bGLIBC_([0-9]+(?:\.[0-9]+)+)", proc.stdout)}


def prepare_layer(name: str, build_dir: Path = BUILD_DIR) -> Path:
    """Build (or reuse) the layer ``name`` and return its asset directory (which holds ``python/``)."""
    if name not in LAYERS:
        raise BundlingError(f"unknown layer {name!r}; known layers: {sorted(LAYERS)}")
    spec = LAYERS[name]
    layers_dir = build_dir / "layers"
    layer_dir = layers_dir / name
    stamp = layers_dir / f"{name}.key"
    with _locked(build_dir):
        layers_dir.mkdir(parents=True, exist_ok=True)
        key = spec.cache_key()
        cached = stamp.is_file() and stamp.read_text().strip() == key and (layer_dir / "python").is_dir()
        if not cached:
            staging = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=layers_dir))
            staging.chmod(0o755)  # mkdtemp makes 0700; Lambda's sandbox user must read the layer
            try:
                _pip_install(spec, staging / "python")
                _prune(staging / "python")
                stamp.unlink(missing_ok=True)
                _replace_dir(staging, layer_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            stamp.write_text(key + "\n")
        if spec.package_source is not None:
            _copy_package(spec.package_source, layer_dir / "python", layers_dir)
    return layer_dir


def prepare_function_code(name: str, code: str) -> Path:
    """The code asset directory of a function: its declared folder, which must exist.

    Deploying a function without its code would only fail at its first invocation, so synth fails now.
    """
    source = REPO_ROOT / code
    if not source.is_dir():
        raise BundlingError(f"function {name!r} declares its code in {code!r}, which does not exist")
    return source


def directory_size(path: Path) -> int:
    """Total size in bytes of the regular files under ``path`` (what Lambda counts once unzipped)."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for filename in filenames:
            file = Path(dirpath) / filename
            if not file.is_symlink():
                total += file.stat().st_size
    return total
