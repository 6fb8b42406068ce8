"""Fixtures for the local runtime tests (helpers live in ``support.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from novacron.local.runtime import LocalRuntime
from novacron.wiring import Wiring
from tests.integration.local.support import make_wiring, running, write_handlers


@pytest.fixture
def handler_root(tmp_path: Path) -> Path:
    return write_handlers(tmp_path)


@pytest.fixture
def wiring() -> Wiring:
    return make_wiring()


@pytest.fixture
def runtime(handler_root: Path, wiring: Wiring) -> Iterator[LocalRuntime]:
    """A runtime of its own for each test (pollers keep per-stream state)."""
    with running(handler_root, wiring) as started:
        yield started


@pytest.fixture(scope="module")
def shared_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    """One runtime for a whole module of stateless (gateway) tests."""
    with running(write_handlers(tmp_path_factory.mktemp("handlers")), make_wiring()) as started:
        yield started


@pytest.fixture
def kinesis(runtime: LocalRuntime) -> Any:
    return runtime.client("kinesis")
