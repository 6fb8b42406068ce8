"""Load a declared function's handler from its file and invoke it like Lambda does.

Several functions have a module called ``handler.py``; importing them by file path under a unique
module name keeps them apart in one process (a plain ``import handler`` would return the first one
for all of them). Handlers should import shared code from ``novacron`` only: their folder is not put
on ``sys.path``, because two functions' sibling modules of the same name would collide there.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import novacron
from novacron.local.resources import DEFAULT_PREFIX, function_arn, physical_name
from novacron.wiring import Function

Handler = Callable[[Any, Any], Any]


def repo_root() -> Path:
    """The repository root: the package lives in ``<root>/layers/novacron/``."""
    return Path(novacron.__file__).resolve().parents[2]


def handler_path(fn: Function, root: Path | None = None) -> Path:
    """``<root>/<fn.code>/<module>.py`` for ``fn.handler == "module.function"``."""
    module, _, _ = fn.handler.rpartition(".")
    return (root or repo_root()) / fn.code / (module.replace(".", "/") + ".py")


def load_handler(fn: Function, root: Path | None = None) -> Handler:
    """Import ``fn``'s handler module from its file and return the handler function."""
    module_name, _, attribute = fn.handler.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"handler {fn.handler!r} of {fn.name!r} is not 'module.function'")
    path = handler_path(fn, root)
    if not path.is_file():
        raise FileNotFoundError(f"handler module of {fn.name!r} not found: {path}")
    unique = "novacron_local_fn_" + re.sub(r"\W", "_", f"{fn.name}__{module_name}")
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered before exec so that dataclasses, pickling and typing.get_type_hints find the module.
    sys.modules[unique] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(unique, None)
        raise
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise AttributeError(f"{path} has no callable {attribute!r}")
    return handler  # type: ignore[no-any-return]


@dataclass
class LocalContext:
    """What Lambda passes as ``context``: the attributes Powertools and handlers read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_s: float
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        if not self.log_group_name:
            self.log_group_name = f"/aws/lambda/{self.function_name}"
        if not self.log_stream_name:
            day = datetime.now(UTC).strftime("%Y/%m/%d")
            self.log_stream_name = f"{day}/[{self.function_version}]{uuid.uuid4().hex}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until the declared timeout, counted from the start of the invocation."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def expire(self) -> None:
        """Run the time out now: handlers that watch their remaining time wind down as at a timeout."""
        self._deadline = time.monotonic()


def make_context(fn: Function, prefix: str = DEFAULT_PREFIX) -> LocalContext:
    """A fresh context for one invocation of ``fn``."""
    return LocalContext(
        function_name=physical_name(fn.name, prefix),
        invoked_function_arn=function_arn(fn.name, prefix),
        memory_limit_in_mb=fn.memory_mb,
        timeout_s=fn.timeout_s,
    )


class LocalFunction:
    """A declared function bound to its handler: ``invoke(event)`` runs it with a fresh context.

    Like one Lambda execution environment, it runs one event at a time: handlers keep per-invocation
    state at module level (Powertools' resolver even keeps the current event on a class shared by
    every resolver), so concurrent callers wait on ``lock``. Functions whose state is shared pass the
    same lock.
    """

    def __init__(
        self, fn: Function, handler: Handler, prefix: str = DEFAULT_PREFIX, lock: threading.Lock | None = None
    ) -> None:
        self.fn = fn
        self.handler = handler
        self.prefix = prefix
        self.arn = function_arn(fn.name, prefix)
        self._lock = lock or threading.Lock()
        self._current: LocalContext | None = None  # the invocation in flight, if any

    @classmethod
    def load(
        cls, fn: Function, root: Path | None = None, prefix: str = DEFAULT_PREFIX, lock: threading.Lock | None = None
    ) -> LocalFunction:
        """Load ``fn``'s handler from disk."""
        return cls(fn, load_handler(fn, root), prefix, lock)

    def invoke(self, event: Any) -> Any:
        """Call the handler with ``event`` and a new context; exceptions propagate."""
        with self._lock:
            self._current = make_context(self.fn, self.prefix)
            try:
                return self.handler(event, self._current)
            finally:
                self._current = None

    def expire_current(self) -> None:
        """Run the time out of the invocation in flight, if any (see :meth:`LocalContext.expire`)."""
        current = self._current
        if current is not None:
            current.expire()
