"""Resolution selection: which rollup, if any, answers a range function exactly enough for its steps.

A range function over rollups reads one row per series and interval instead of every sample. The
answer stays right when every window ``(t - range, t]`` is made of whole intervals: the range and every
evaluation time are multiples of the interval (Grafana aligns ``start`` to the step, so a step that is a
multiple of it does). Over whole intervals, ``min``/``max``/``sum``/``count``/``avg``/``last_over_time``
equal the raw answer, and ``rate``/``increase`` see the same first and last samples, the same increase
between them and the same number of samples (which decides how far they extrapolate): the raw answer
too, a sample exactly on a window's start or end aside.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from novacron.storage.rollups import RESOLUTIONS_MS, VIEW_OF_FUNCTION


def choose_resolution(function: str, times: npt.NDArray[np.int64], range_ms: int) -> str | None:
    """The coarsest rollup that answers ``function(x[range])`` at ``times`` right, or None for raw samples."""
    if function not in VIEW_OF_FUNCTION or len(times) == 0:
        return None
    steps = np.diff(times)
    for name, resolution_ms in sorted(RESOLUTIONS_MS.items(), key=lambda item: -item[1]):
        if range_ms % resolution_ms:
            continue
        if np.any(times % resolution_ms) or np.any(steps % resolution_ms):
            continue
        return name
    return None
