"""Run the wire decoder tests against both implementations: the C extension and the numpy reference."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from novacron.protocols import wire


@pytest.fixture(params=["numpy", "native"])
def impl(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which decoder ``wire`` uses for the test; the native one is skipped (loudly) when not built."""
    if request.param == "native" and not wire.native_available():
        pytest.skip("novacron.protocols._wirec is not built (pip install -e . with a C compiler builds it)")
    previous = wire.use_native(request.param == "native")
    try:
        yield request.param
    finally:
        wire.use_native(previous)
