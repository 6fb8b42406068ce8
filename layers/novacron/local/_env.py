"""Reversible changes to ``os.environ``.

The local runtime has to set process-wide variables (endpoint, credentials, resource names) because
every handler runs in this one process; tests start and stop runtimes repeatedly, so each change
remembers what it replaced and can be undone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


class EnvPatch:
    """Set environment variables now, restore the previous values on :meth:`restore`."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def apply(self, values: Mapping[str, str]) -> None:
        """Set ``values``, remembering the first value seen for each key."""
        for key, value in values.items():
            if key not in self._saved:
                self._saved[key] = os.environ.get(key)
            os.environ[key] = value

    def restore(self) -> None:
        """Put back every variable as it was before the first :meth:`apply`."""
        for key, old in self._saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        self._saved.clear()
