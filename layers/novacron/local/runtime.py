"""``LocalRuntime``: the whole platform in one process, and ``run`` behind ``novacron local``."""

from __future__ import annotations

import importlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from novacron.local._env import EnvPatch
from novacron.local.gateway import Gateway
from novacron.local.handlers import Handler, LocalFunction, handler_path
from novacron.local.moto_server import MotoServer
from novacron.local.poller import KinesisPoller, PollerSettings
from novacron.local.resources import (
    DEFAULT_PREFIX,
    LocalResources,
    create_resources,
    create_timestream,
    physical_name,
    runtime_environment,
    wiring_environment,
)
from novacron.local.scheduler import ScheduleTimer
from novacron.local.topics import TopicDispatcher
from novacron.wiring import KEYS_TABLE, WIRING, Wiring

log = logging.getLogger(__name__)

RegisterKey = Callable[..., Any]


class LocalRuntime:
    """moto + resources + pollers + gateway + schedules, started and stopped together.

    ``root`` is where ``Function.code`` folders are looked up (the repository by default);
    ``handlers`` replaces the handler of the named functions (for tests and benchmarks);
    ``allow_missing_handlers`` skips functions whose handler file does not exist yet instead of
    failing, together with their routes, consumers and schedules; ``timestream`` turns the wiring's
    optional Timestream sink on (its database and table are created in moto); ``environment`` adds
    variables the handlers see while the runtime runs (restored afterwards, like the rest).
    """

    def __init__(
        self,
        wiring: Wiring = WIRING,
        *,
        prefix: str = DEFAULT_PREFIX,
        host: str = "127.0.0.1",
        port: int = 0,
        moto_port: int = 0,
        root: Path | None = None,
        handlers: Mapping[str, Handler] | None = None,
        poller_settings: PollerSettings | None = None,
        schedule_time_scale: float = 1.0,
        allow_missing_handlers: bool = False,
        timestream: bool = False,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.wiring = wiring
        self.prefix = prefix
        self._host = host
        self._port = port
        self._root = root
        self._handler_overrides = dict(handlers or {})
        self._poller_settings = poller_settings or PollerSettings()
        self._schedule_time_scale = schedule_time_scale
        self._allow_missing = allow_missing_handlers
        self._timestream = timestream
        self._environment = dict(environment or {})
        self.moto = MotoServer(port=moto_port, host=host)
        self.resources: LocalResources | None = None
        self.functions: dict[str, LocalFunction] = {}
        self.pollers: list[KinesisPoller] = []
        self.timers: list[ScheduleTimer] = []
        self.dispatchers: list[TopicDispatcher] = []
        self.gateway: Gateway | None = None
        self._env = EnvPatch()
        self._started = False

    # --- lifecycle ---

    def start(self) -> LocalRuntime:
        """Start everything; on any failure, stop what was started and re-raise."""
        if self._started:
            return self
        self._started = True
        began = time.perf_counter()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        log.info(
            "local runtime ready in %.2fs: gateway %s, moto %s",
            time.perf_counter() - began,
            self.url,
            self.endpoint_url,
        )
        return self

    def _start(self) -> None:
        self.moto.start()
        # Environment before resources and handlers: handler modules may read it at import time.
        self._env.apply(runtime_environment(self.moto.endpoint_url))
        self._env.apply(wiring_environment(self.wiring, self.prefix))
        self._env.apply(self._environment)
        _reset_shared_clients()
        self.resources = create_resources(self.moto, self.wiring, self.prefix)
        if self._timestream and self.wiring.timestream is not None:
            self._env.apply(create_timestream(self.moto, self.wiring.timestream, self.prefix))
        self.functions = self._load_functions()

        kinesis, sqs = self.moto.client("kinesis"), self.moto.client("sqs")
        for consumer in self.wiring.consumers:
            if consumer.function not in self.functions:
                continue
            poller = KinesisPoller(
                consumer,
                self.functions[consumer.function],
                kinesis=kinesis,
                stream_name=physical_name(consumer.stream, self.prefix),
                stream_arn=self.resources.stream_arns[consumer.stream],
                sqs=sqs,
                on_failure_url=self.resources.queue_urls[consumer.on_failure] if consumer.on_failure else None,
                settings=self._poller_settings,
            )
            self.pollers.append(poller)
            poller.start()

        routes = [r for r in self.wiring.routes if r.function in self.functions]
        self.gateway = Gateway(routes, self.functions, host=self._host, port=self._port)
        self.gateway.start()

        sns = self.moto.client("sns")
        for subscription in self.wiring.subscriptions:
            if subscription.function not in self.functions:
                continue
            dispatcher = TopicDispatcher(
                subscription,
                self.functions[subscription.function],
                sns,
                sqs,
                self.resources.topic_arns[subscription.topic],
                self.resources.queue_urls[subscription.on_failure] if subscription.on_failure else None,
                self.prefix,
            )
            self.dispatchers.append(dispatcher)
            dispatcher.start()

        for schedule in self.wiring.schedules:
            if schedule.function not in self.functions:
                continue
            timer = ScheduleTimer(schedule, self.functions[schedule.function], self.prefix, self._schedule_time_scale)
            self.timers.append(timer)
            timer.start()

    def _load_functions(self) -> dict[str, LocalFunction]:
        loaded: dict[str, LocalFunction] = {}
        # Powertools' HTTP resolvers share the current event through a class attribute, so every
        # function serving routes takes turns on one lock; the others each have their own.
        http_lock = threading.Lock()
        for fn in self.wiring.functions:
            lock = http_lock if self.wiring.routes_of(fn.name) else threading.Lock()
            if fn.name in self._handler_overrides:
                loaded[fn.name] = LocalFunction(fn, self._handler_overrides[fn.name], self.prefix, lock)
                continue
            if self._allow_missing and not handler_path(fn, self._root).is_file():
                log.warning("function %s: no handler at %s yet; skipping it", fn.name, handler_path(fn, self._root))
                continue
            loaded[fn.name] = LocalFunction.load(fn, self._root, self.prefix, lock)
        return loaded

    def stop(self) -> None:
        """Stop in reverse order (no new work first), join every thread, stop moto, restore env."""
        if not self._started:
            return
        self._started = False
        for timer in self.timers:  # all of them first: their runs in flight wind down together
            timer.request_stop()
        for timer in self.timers:
            timer.stop()
        self.timers.clear()
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        for poller in self.pollers:
            poller.stop()
        self.pollers.clear()
        for dispatcher in self.dispatchers:
            dispatcher.stop()
        self.dispatchers.clear()
        self._env.restore()
        self.moto.stop()
        _reset_shared_clients()
        log.info("local runtime stopped")

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- accessors ---

    @property
    def url(self) -> str:
        """Base URL of the HTTP gateway."""
        if self.gateway is None:
            raise RuntimeError("local runtime is not running")
        return self.gateway.url

    @property
    def endpoint_url(self) -> str:
        """moto's endpoint (what ``AWS_ENDPOINT_URL`` is set to)."""
        return self.moto.endpoint_url

    def client(self, service: str) -> Any:
        """A boto3 client for the local AWS."""
        return self.moto.client(service)

    def wait_until_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every poller has caught up with its stream; False on timeout."""
        deadline = time.monotonic() + timeout
        return all(p.wait_until_idle(max(0.0, deadline - time.monotonic())) for p in self.pollers)


def _reset_shared_clients() -> None:
    # novacron.aws caches clients per endpoint; a fresh runtime (new port) must not reuse stale ones.
    try:
        aws = importlib.import_module("novacron.aws")
    except ImportError:
        return
    aws.reset_clients()


# --- the CLI entry point ------------------------------------------------------------------------

_NOISY_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug", "moto", "pynamodb")


def configure_logging(level: int = logging.INFO) -> None:
    """Readable, timestamped logs; AWS client and moto chatter only at WARNING and above."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    else:
        root.setLevel(level)
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _auth_function(name: str) -> Callable[..., Any]:
    # Resolved at call time: novacron.auth belongs to another part of the code base.
    function: Callable[..., Any] = getattr(importlib.import_module("novacron.auth"), name)
    return function


def run(
    port: int,
    api_key: str | None,
    prefix: str = DEFAULT_PREFIX,
    *,
    wiring: Wiring = WIRING,
    register_key: RegisterKey | None = None,
    generate_key: Callable[[], str] | None = None,
    stop_event: threading.Event | None = None,
    runtime_options: Mapping[str, Any] | None = None,
) -> None:
    """Run the local platform until Ctrl-C or SIGTERM (or ``stop_event``), then stop cleanly.

    Registers ``api_key`` (a new key when None) as the ``default`` tenant's admin key and prints the
    gateway URL and the key.
    """
    configure_logging()
    stop = stop_event or threading.Event()
    register = register_key or _auth_function("register_key")
    key = api_key or (generate_key or _auth_function("generate_key"))()

    previous: dict[int, Any] = {}

    def _request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    # Signal handlers can only be installed from the main thread (tests call run() from others).
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, _request_stop)
    try:
        with LocalRuntime(wiring, prefix=prefix, port=port, **dict(runtime_options or {})) as runtime:
            register(key, tenant="default", role="admin", table_name=physical_name(KEYS_TABLE, prefix))
            print(f"NovaCron is running at {runtime.url}", flush=True)
            print(f"Admin API key (tenant 'default'): {key}", flush=True)
            print("Press Ctrl-C to stop.", flush=True)
            # A timed wait keeps the main thread responsive to signals on every platform.
            while not stop.wait(0.5):
                pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
