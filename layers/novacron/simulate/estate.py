"""A simulated online-shop microservice estate and the Prometheus series its instances would expose.

Two layers, so that tests can assert properties:

* ``Estate.load(t, faults)`` is a pure function of (seed, time, active faults): the request rate,
  latency and error ratio of every service and route. Demand flows down the dependency graph (a
  caller's requests become calls to its dependencies); health flows up (a dependency's latency and
  errors become its callers'), so a fault on ``payment`` shows on ``checkout`` and ``frontend``.
* ``EstateSimulator.scrape(t)`` turns loads into the samples a Prometheus scrape would collect at
  ``t``. Counters are integrals of rates, so they are state: the simulator keeps them, and resets
  them when an instance restarts (rarely at random, after a ``down`` fault, after a ``leak``'s OOM kill).
  Same seed and same scrape times give the same samples.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from novacron.series import METRIC_NAME, Labels
from novacron.simulate.faults import Fault, FaultKind, FaultSchedule, stable_unit

# Prometheus client libraries' default buckets, which most services never change.
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Spread of the log-normal latency distribution of one route (median * e^(±sigma) covers ~68%).
LATENCY_SIGMA = 0.6
# A random restart about once every five days per instance.
RESTART_PROBABILITY_PER_HOUR = 1 / 120
# Share of requests answered 4xx (bad input, missing products): constant, unrelated to health.
CLIENT_ERROR_RATIO = 0.01
# Peak-hour utilisation the estate is sized for (capacity is derived from it).
TARGET_UTILISATION = 0.5
# Mon..Sun traffic relative to a weekday: shoppers are quieter at the weekend.
WEEKLY = (1.0, 1.0, 1.0, 1.0, 0.95, 0.7, 0.62)

Sample = tuple[Labels, float]


class Kind(StrEnum):
    """What a component is: it decides which series its instances expose."""

    APP = "app"
    REDIS = "redis"
    POSTGRES = "postgres"


@dataclass(frozen=True)
class Route:
    """One HTTP route of a service and the calls one request to it makes to dependencies."""

    method: str
    path: str
    weight: float = 1.0
    calls: tuple[tuple[str, float], ...] = ()
    latency_factor: float = 1.0


@dataclass(frozen=True)
class ServiceSpec:
    """A service (or datastore) of the estate, with the numbers that shape its behaviour."""

    name: str
    kind: Kind = Kind.APP
    instances: int = 2
    port: int = 8080
    routes: tuple[Route, ...] = ()
    optional: tuple[str, ...] = ()  # dependencies a failure of which the service degrades around
    entry_rps: float = 0.0  # requests/s from outside (users) at the daily peak
    latency_s: float = 0.01  # own median processing time at low load
    error_ratio: float = 0.001  # own baseline 5xx ratio
    memory_bytes: float = 150 * 1024**2
    cpu_per_request_s: float = 0.002

    @property
    def effective_routes(self) -> tuple[Route, ...]:
        """The routes, or one pseudo-route for a datastore (used for its load and health)."""
        return self.routes or (Route("*", "*"),)

    def calls_per_request(self) -> dict[str, float]:
        """Average calls to each dependency per request, over the route mix."""
        total = sum(r.weight for r in self.effective_routes)
        calls: dict[str, float] = defaultdict(float)
        for route in self.effective_routes:
            for target, n in route.calls:
                calls[target] += n * route.weight / total
        return dict(calls)

    @property
    def dependencies(self) -> tuple[str, ...]:
        """Names of the services this one calls, sorted."""
        return tuple(sorted({t for r in self.effective_routes for t, _ in r.calls}))


def default_services() -> tuple[ServiceSpec, ...]:
    """The online shop: 12 application services, a Redis and a PostgreSQL."""
    cat, cur, usr = "product-catalog", "currency", "user"
    return (
        ServiceSpec(
            "frontend",
            instances=3,
            entry_rps=120.0,
            latency_s=0.012,
            optional=("recommendation", "ad"),
            memory_bytes=220 * 1024**2,
            routes=(
                Route("GET", "/", 0.30, ((cat, 1), (cur, 1), ("ad", 1), ("recommendation", 1), (usr, 1))),
                Route("GET", "/product/{id}", 0.35, ((cat, 1), (cur, 1), ("recommendation", 1), ("ad", 1), (usr, 1))),
                Route("GET", "/cart", 0.12, (("cart", 1), (cat, 2), (cur, 2), ("shipping", 1), (usr, 1))),
                Route("POST", "/cart", 0.15, (("cart", 1), (cat, 1), (usr, 1)), 0.8),
                Route("POST", "/cart/checkout", 0.04, (("checkout", 1), (usr, 1)), 1.5),
            ),
        ),
        ServiceSpec(
            "checkout",
            instances=2,
            latency_s=0.02,
            routes=(
                Route(
                    "POST",
                    "/checkout",
                    1.0,
                    (
                        ("cart", 2),
                        (cat, 3),
                        (cur, 4),
                        ("shipping", 2),
                        ("payment", 1),
                        ("email", 1),
                        ("inventory", 1),
                        ("postgres", 2),
                    ),
                ),
            ),
            optional=("email",),
        ),
        ServiceSpec("payment", instances=2, latency_s=0.12, error_ratio=0.002, routes=(Route("POST", "/charge"),)),
        ServiceSpec(
            "cart",
            instances=3,
            latency_s=0.003,
            routes=(
                Route("GET", "/cart", 0.6, (("redis-cart", 1),)),
                Route("POST", "/cart/items", 0.3, (("redis-cart", 2),)),
                Route("DELETE", "/cart", 0.1, (("redis-cart", 1),)),
            ),
        ),
        ServiceSpec(
            "redis-cart",
            Kind.REDIS,
            instances=2,
            port=9121,
            latency_s=0.0008,
            error_ratio=0.0,
            memory_bytes=400 * 1024**2,
            cpu_per_request_s=0.00005,
        ),
        ServiceSpec(
            cat,
            instances=4,
            latency_s=0.006,
            routes=(
                Route("GET", "/products", 0.3, (("postgres", 1),), 2.0),
                Route("GET", "/products/{id}", 0.7, (("postgres", 0.3),)),
            ),
            cpu_per_request_s=0.001,
        ),
        ServiceSpec(
            "recommendation",
            instances=2,
            latency_s=0.025,
            routes=(Route("GET", "/recommendations", 1.0, ((cat, 1),)),),
            memory_bytes=512 * 1024**2,
            cpu_per_request_s=0.006,
        ),
        ServiceSpec(
            "shipping",
            instances=2,
            latency_s=0.008,
            routes=(Route("GET", "/quote", 0.7), Route("POST", "/ship", 0.3, latency_factor=2.0)),
        ),
        ServiceSpec(
            cur,
            instances=3,
            latency_s=0.002,
            routes=(Route("GET", "/currencies", 0.1), Route("POST", "/convert", 0.9)),
            cpu_per_request_s=0.0005,
        ),
        ServiceSpec("email", instances=2, latency_s=0.08, error_ratio=0.003, routes=(Route("POST", "/send"),)),
        ServiceSpec("ad", instances=2, latency_s=0.01, routes=(Route("GET", "/ads"),)),
        ServiceSpec(
            usr,
            instances=3,
            latency_s=0.004,
            routes=(
                Route("GET", "/session", 0.9, (("redis-cart", 0.2),)),
                Route("POST", "/login", 0.1, (("postgres", 1),), 3.0),
            ),
        ),
        ServiceSpec(
            "inventory", instances=2, latency_s=0.005, routes=(Route("POST", "/reserve", 1.0, (("postgres", 2),)),)
        ),
        ServiceSpec(
            "postgres",
            Kind.POSTGRES,
            instances=2,
            port=9187,
            latency_s=0.003,
            error_ratio=0.0002,
            memory_bytes=1024**3,
            cpu_per_request_s=0.0003,
        ),
    )


# --- time shapes ---------------------------------------------------------------------------------


def _smoothstep(x: float) -> float:
    return x * x * (3 - 2 * x)


def diurnal_factor(hour: float) -> float:
    """Traffic at a local hour of day relative to the afternoon peak (~15:00): ~0.15 at 03:00."""
    day = math.pow((1 + math.cos(2 * math.pi * (hour - 15.0) / 24.0)) / 2, 1.6)
    evening = 0.12 * math.exp(-math.pow((hour - 20.5) / 1.5, 2))  # after-dinner shopping
    return 0.15 + 0.85 * day + evening


def traffic_factor(t: float, tz_offset_h: float = 0.0) -> float:
    """Daily and weekly seasonality of user traffic at epoch second ``t`` (no noise), about 0.1..1.05.

    The weekly factor changes from one day to the next over the two hours around midnight, so
    the curve has no steps.
    """
    local = t + tz_offset_h * 3600
    day = math.floor(local / 86400)
    hour = (local - day * 86400) / 3600
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    today = WEEKLY[weekday]
    if hour >= 23:
        weekly = today + (WEEKLY[(weekday + 1) % 7] - today) * _smoothstep((hour - 23) / 2)
    elif hour < 1:
        yesterday = WEEKLY[(weekday - 1) % 7]
        weekly = yesterday + (today - yesterday) * _smoothstep(0.5 + hour / 2)
    else:
        weekly = today
    return diurnal_factor(hour) * weekly


def smooth_noise(seed: int, key: str, t: float, period: float = 60.0) -> float:
    """Deterministic noise in [-1, 1] that wanders smoothly between random knots every ``period`` s."""
    k = math.floor(t / period)
    frac = t / period - k
    a = 2 * stable_unit(seed, key, k) - 1
    b = 2 * stable_unit(seed, key, k + 1) - 1
    return a + (b - a) * _smoothstep(frac)


def _normal_cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def format_le(bound: float) -> str:
    """A bucket bound as Prometheus clients write it: ``0.005``, ``1``, ``2.5``, ``+Inf``."""
    return "+Inf" if math.isinf(bound) else f"{bound:g}"


# --- the estate ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """One running copy of a service, with the target labels a scrape attaches to its series."""

    service: str
    index: int
    pod: str
    address: str

    @property
    def key(self) -> str:
        """A stable identity used to derive per-instance randomness."""
        return f"{self.service}/{self.index}"


@dataclass(frozen=True)
class RouteLoad:
    """Rate, median latency and 5xx ratio of one route at one moment."""

    rps: float
    latency_s: float
    error_ratio: float


@dataclass(frozen=True)
class ServiceLoad:
    """The state of one service at one moment (all instances together)."""

    rps: float
    latency_s: float  # request-weighted median latency over routes
    error_ratio: float  # request-weighted 5xx ratio over routes
    call_error_ratio: float  # share of calls from callers that fail (all down: 1)
    utilisation: float
    cpu_factor: float
    leak_bytes: float
    down: frozenset[int]  # indices of instances that are down
    routes: tuple[RouteLoad, ...]


@dataclass(frozen=True)
class EstateLoad:
    """Every service's state at time ``t``, with the faults in effect."""

    t: float
    traffic: float
    services: dict[str, ServiceLoad]
    faults: tuple[Fault, ...]


class Estate:
    """Services, their dependency graph, their instances, and their load as a function of time."""

    def __init__(
        self,
        services: Sequence[ServiceSpec] | None = None,
        *,
        seed: int = 0,
        scale: int = 1,
        namespace: str = "shop",
        env: str = "prod",
        tz_offset_h: float = 0.0,
    ) -> None:
        if scale < 1:
            raise ValueError("scale must be at least 1")
        self.seed = seed
        self.scale = scale
        self.namespace = namespace
        self.env = env
        self.tz_offset_h = tz_offset_h
        self.services: dict[str, ServiceSpec] = {s.name: s for s in services or default_services()}
        self.order = self._topological_order()
        self.calls = {name: spec.calls_per_request() for name, spec in self.services.items()}
        self.instances: dict[str, tuple[Instance, ...]] = {
            name: tuple(self._instance(spec, i) for i in range(spec.instances * scale))
            for name, spec in self.services.items()
        }
        self.capacity = self._capacity_per_instance()

    # graph

    def _topological_order(self) -> list[str]:
        """Callers before the services they call; raises on unknown names and on cycles."""
        for spec in self.services.values():
            for dep in spec.dependencies:
                if dep not in self.services:
                    raise ValueError(f"service {spec.name!r} calls unknown service {dep!r}")
        order: list[str] = []
        state: dict[str, int] = {}  # 1 = visiting, 2 = done

        def visit(name: str, path: tuple[str, ...]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                raise ValueError(f"dependency cycle: {' -> '.join((*path, name))}")
            state[name] = 1
            for dep in self.services[name].dependencies:
                visit(dep, (*path, name))
            state[name] = 2
            order.append(name)

        for name in self.services:
            visit(name, ())
        order.reverse()  # post-order puts dependencies first
        return order

    def edges(self) -> list[tuple[str, str]]:
        """Every (caller, callee) pair."""
        return [(name, dep) for name, spec in self.services.items() for dep in spec.dependencies]

    def callers(self, name: str) -> set[str]:
        """Services that call ``name`` directly."""
        return {caller for caller, callee in self.edges() if callee == name}

    def upstream(self, name: str) -> set[str]:
        """Services that call ``name`` directly or through others (who feels its faults)."""
        found: set[str] = set()
        todo = [name]
        while todo:
            for caller in self.callers(todo.pop()):
                if caller not in found:
                    found.add(caller)
                    todo.append(caller)
        return found

    def all_instances(self) -> list[Instance]:
        """Every instance, service by service in graph order."""
        return [inst for name in self.order for inst in self.instances[name]]

    def _instance(self, spec: ServiceSpec, index: int) -> Instance:
        u = [stable_unit(self.seed, "pod", spec.name, index, i) for i in range(4)]
        if spec.kind is Kind.APP:
            alphabet = "bcdfghjklmnpqrstvwxz2456789"

            def pick(*key: object) -> str:
                return alphabet[int(stable_unit(self.seed, *key) * len(alphabet))]

            # a Deployment's pod: <name>-<replicaset hash>-<random suffix>
            rs = "".join(pick("rs", spec.name, i) for i in range(9))
            suffix = "".join(pick("pod", spec.name, index, i) for i in range(5))
            pod = f"{spec.name}-{rs}-{suffix}"
        else:
            pod = f"{spec.name}-{index}"  # datastores run as StatefulSets
        address = f"10.{int(u[0] * 4)}.{int(u[1] * 254) + 1}.{int(u[2] * 253) + 2}:{spec.port}"
        return Instance(spec.name, index, pod, address)

    def _capacity_per_instance(self) -> dict[str, float]:
        """Requests/s one instance serves, sized so that the daily peak runs at the target utilisation."""
        peak: dict[str, float] = defaultdict(float)
        for name in self.order:
            peak[name] += self.services[name].entry_rps * self.scale
            for dep, n in self.calls[name].items():
                peak[dep] += peak[name] * n
        # services are not all sized alike: some run hotter than others at the peak
        return {
            name: max(peak[name], 1.0)
            / (len(self.instances[name]) * TARGET_UTILISATION * (0.7 + 0.6 * stable_unit(self.seed, "size", name)))
            for name in self.services
        }

    # load

    def load(self, t: float, faults: Iterable[Fault] = ()) -> EstateLoad:
        """Rates, latencies and error ratios of every service at ``t`` (pure: same inputs, same result)."""
        active = tuple(f for f in faults if f.active(t) and f.service in self.services)
        by_service: dict[str, list[Fault]] = defaultdict(list)
        for fault in active:
            by_service[fault.service].append(fault)
        traffic = traffic_factor(t, self.tz_offset_h)

        rps: dict[str, float] = defaultdict(float)
        for name in self.order:  # callers first: demand flows down the graph
            spec = self.services[name]
            rps[name] += spec.entry_rps * self.scale * traffic * (1 + 0.06 * smooth_noise(self.seed, f"rps/{name}", t))
            for dep, n in self.calls[name].items():
                rps[dep] += rps[name] * n

        loads: dict[str, ServiceLoad] = {}
        for name in reversed(self.order):  # dependencies first: health flows up the graph
            loads[name] = self._service_load(name, t, rps[name], by_service.get(name, []), loads)
        return EstateLoad(t, traffic, loads, active)

    def down_instances(self, fault: Fault) -> frozenset[int]:
        """Which instances a ``down`` fault stops: ``magnitude`` of them (0: all), picked by hash."""
        count = len(self.instances[fault.service])
        k = count if fault.magnitude <= 0 else min(count, int(fault.magnitude))
        ranked = sorted(range(count), key=lambda i: stable_unit(self.seed, "down", fault.service, fault.start, i))
        return frozenset(ranked[:k])

    def _service_load(
        self, name: str, t: float, rps: float, faults: list[Fault], deps: dict[str, ServiceLoad]
    ) -> ServiceLoad:
        spec = self.services[name]
        extra_latency = sum(f.magnitude for f in faults if f.kind is FaultKind.LATENCY)
        extra_errors = sum(f.magnitude for f in faults if f.kind is FaultKind.ERRORS)
        cpu_factor = max((f.magnitude for f in faults if f.kind is FaultKind.CPU), default=1.0)
        leaks = [f for f in faults if f.kind is FaultKind.LEAK]
        leak_progress = max((f.progress(t) for f in leaks), default=0.0)
        leak_bytes = sum(f.magnitude * f.progress(t) for f in leaks)
        down: frozenset[int] = frozenset()
        for fault in faults:
            if fault.kind is FaultKind.DOWN:
                down |= self.down_instances(fault)
        up = len(self.instances[name]) - len(down)

        if up == 0:
            utilisation = math.inf
            queueing = 1.0
        else:
            utilisation = rps * cpu_factor / (self.capacity[name] * up)
            u = min(utilisation, 0.97)
            queueing = 1 + 0.3 * u * u / (1 - u)  # M/M/1-like growth as the service saturates
        overload = min(0.5, max(0.0, utilisation - 0.95) * 2) if up else 0.0
        noise_l = smooth_noise(self.seed, f"lat/{name}", t)
        noise_e = smooth_noise(self.seed, f"err/{name}", t, period=120.0)
        own_latency = (
            spec.latency_s * queueing * math.sqrt(cpu_factor) * (1 + 0.5 * leak_progress) * (1 + 0.05 * noise_l)
            + extra_latency
        )
        own_errors = min(1.0, spec.error_ratio * (1 + 0.4 * noise_e) + extra_errors + overload)

        routes = spec.effective_routes
        total_weight = sum(r.weight for r in routes)
        route_loads = []
        for route in routes:
            latency = own_latency * route.latency_factor
            ok = 1 - own_errors
            for dep, n in route.calls:
                latency += n * deps[dep].latency_s
                # a failure of an optional dependency is mostly hidden by a fallback
                propagation = 0.1 if dep in spec.optional else 0.9
                ok *= 1 - min(1.0, n) * deps[dep].call_error_ratio * propagation
            route_loads.append(RouteLoad(rps * route.weight / total_weight, latency, min(1.0, max(0.0, 1 - ok))))
        latency_s = sum(r.latency_s * r.rps for r in route_loads) / rps if rps > 0 else route_loads[0].latency_s
        error_ratio = sum(r.error_ratio * r.rps for r in route_loads) / rps if rps > 0 else route_loads[0].error_ratio
        return ServiceLoad(
            rps=rps,
            latency_s=latency_s,
            error_ratio=error_ratio,
            call_error_ratio=1.0 if up == 0 else error_ratio,
            utilisation=utilisation,
            cpu_factor=cpu_factor,
            leak_bytes=leak_bytes,
            down=down,
            routes=tuple(route_loads),
        )

    # restarts

    def restarts(self, instance: Instance, t0: float, t1: float, faults: Iterable[Fault]) -> list[float]:
        """Sorted times in ``(t0, t1]`` at which ``instance``'s process (re)starts.

        Random restarts (about one per five days), the end of a ``down`` fault that stopped it, and
        the end of a ``leak`` on its service (the OOM kill).
        """
        times = []
        for hour in range(math.floor(t0 / 3600), math.floor(t1 / 3600) + 1):
            if stable_unit(self.seed, "restart", instance.key, hour) < RESTART_PROBABILITY_PER_HOUR:
                times.append((hour + stable_unit(self.seed, "restart-at", instance.key, hour)) * 3600)
        for fault in faults:
            if fault.service != instance.service or fault.duration is None:
                continue
            if fault.kind is FaultKind.LEAK or (
                fault.kind is FaultKind.DOWN and instance.index in self.down_instances(fault)
            ):
                times.append(fault.end)
        return sorted(x for x in times if t0 < x <= t1)

    def process_start(self, instance: Instance, t: float, faults: Iterable[Fault]) -> float:
        """When the process running at ``t`` started: its last restart, or a few days before."""
        lookback = 3 * 86400
        earlier = self.restarts(instance, t - lookback, t, faults)
        if earlier:
            return earlier[-1]
        return t - lookback - stable_unit(self.seed, "uptime", instance.key) * 4 * 86400


# --- scraping --------------------------------------------------------------------------------------


def make_labels(name: str, base: Iterable[tuple[str, str]], **extra: str) -> Labels:
    """A label set sorted by name, ``__name__`` included."""
    pairs = {METRIC_NAME: name, **dict(base), **extra}
    return tuple(sorted(pairs.items()))


@dataclass
class _Series:
    """The label sets one instance exposes, built once."""

    up: Labels
    start_time: Labels
    cpu: Labels
    memory: Labels
    requests: list[list[Labels]] = field(default_factory=list)  # route -> [2xx, 4xx, 500, 503]
    buckets: list[list[Labels]] = field(default_factory=list)  # route -> one per le, +Inf last
    sums: list[Labels] = field(default_factory=list)
    counts: list[Labels] = field(default_factory=list)
    rpc: list[tuple[str, Labels, Labels]] = field(default_factory=list)  # target, requests, errors
    extra: list[Labels] = field(default_factory=list)  # datastore series
    # Per request and RPC counter, a fixed offset in [0, 1) added before the floor (see _emit).
    phases: dict[Labels, float] = field(default_factory=dict)


@dataclass
class _State:
    """One instance's process: when it started and its counters (floats; emitted rounded down)."""

    started: float
    last_t: float
    counters: dict[Labels, float] = field(default_factory=lambda: defaultdict(float))
    cpu_s: float = 0.0


@dataclass(frozen=True)
class Scrape:
    """The samples of one scrape of the whole estate at one timestamp."""

    timestamp_ms: int
    samples: list[Sample]
    load: EstateLoad
    restarted: tuple[str, ...] = ()  # pods whose counters were reset in this scrape


class EstateSimulator:
    """Scrapes the estate at increasing times, keeping counters between scrapes."""

    def __init__(self, estate: Estate, schedule: FaultSchedule | None = None) -> None:
        self.estate = estate
        self.schedule = schedule or FaultSchedule()
        self._series = {inst.key: self._build_series(inst) for inst in estate.all_instances()}
        self._state: dict[str, _State] = {}
        self._last_t: float | None = None
        self._scrapes = 0

    @property
    def scrapes(self) -> int:
        """How many scrapes have been taken (0: the simulator is fresh)."""
        return self._scrapes

    @property
    def series_count(self) -> int:
        """How many series a scrape with every instance up returns."""
        total = 0
        for s in self._series.values():
            total += 4 + sum(map(len, s.requests)) + sum(map(len, s.buckets)) + len(s.sums) + len(s.counts)
            total += 2 * len(s.rpc) + len(s.extra)
        return total

    def _build_series(self, inst: Instance) -> _Series:
        est = self.estate
        spec = est.services[inst.service]
        base = (
            ("env", est.env),
            ("instance", inst.address),
            ("job", inst.service),
            ("namespace", est.namespace),
            ("pod", inst.pod),
            ("service", inst.service),
        )
        s = _Series(
            up=make_labels("up", base),
            start_time=make_labels("process_start_time_seconds", base),
            cpu=make_labels("process_cpu_seconds_total", base),
            memory=make_labels("process_resident_memory_bytes", base),
        )
        if spec.kind is Kind.APP:
            for route in spec.effective_routes:
                ok_code = "201" if route.method == "POST" and "checkout" not in route.path else "200"
                bad_code = "400" if route.method in ("POST", "DELETE") else "404"
                s.requests.append(
                    [
                        make_labels("http_requests_total", base, code=code, method=route.method, route=route.path)
                        for code in (ok_code, bad_code, "500", "503")
                    ]
                )
                s.buckets.append(
                    [
                        make_labels(
                            "http_request_duration_seconds_bucket",
                            base,
                            le=format_le(le),
                            method=route.method,
                            route=route.path,
                        )
                        for le in (*BUCKETS, math.inf)
                    ]
                )
                hist = {"method": route.method, "route": route.path}
                s.sums.append(make_labels("http_request_duration_seconds_sum", base, **hist))
                s.counts.append(make_labels("http_request_duration_seconds_count", base, **hist))
            for dep in spec.dependencies:
                s.rpc.append(
                    (
                        dep,
                        make_labels("rpc_client_requests_total", base, target=dep),
                        make_labels("rpc_client_errors_total", base, target=dep),
                    )
                )
            counters = [*(labels for codes in s.requests for labels in codes), *(x for _, *pair in s.rpc for x in pair)]
            s.phases = {labels: stable_unit(est.seed, "phase", inst.key, labels) for labels in counters}
        elif spec.kind is Kind.REDIS:
            s.extra = [
                make_labels("redis_commands_processed_total", base),
                make_labels("redis_connected_clients", base),
                make_labels("redis_memory_used_bytes", base),
            ]
        else:
            db = {"datname": est.namespace}
            s.extra = [
                make_labels("pg_stat_database_xact_commit", base, **db),
                make_labels("pg_stat_database_xact_rollback", base, **db),
                make_labels("pg_stat_activity_count", base, state="active", **db),
            ]
        return s

    def scrape(self, t: float) -> Scrape:
        """The samples of a scrape at epoch second ``t``; ``t`` must increase from call to call."""
        if self._last_t is not None and t <= self._last_t:
            raise ValueError(f"scrape times must increase ({t} after {self._last_t})")
        est = self.estate
        window_start = self._last_t if self._last_t is not None else t - 3 * 86400
        faults = self.schedule.overlapping(window_start - 86400, t)
        load = est.load(t, faults)
        samples: list[Sample] = []
        restarted: list[str] = []
        for inst in est.all_instances():
            svc = load.services[inst.service]
            series = self._series[inst.key]
            state = self._state.get(inst.key)
            if state is None:
                state = self._first_state(inst, t, faults, load)
                self._state[inst.key] = state
            else:
                restarts = est.restarts(inst, state.last_t, t, faults)
                if restarts:
                    state = _State(started=restarts[-1], last_t=restarts[-1])
                    self._state[inst.key] = state
                    restarted.append(inst.pod)
            if inst.index in svc.down:
                # a stopped target: the scrape fails, so only the synthetic ``up`` exists
                samples.append((series.up, 0.0))
                state.last_t = t
                continue
            self._advance(inst, state, svc, load, t - state.last_t)
            state.last_t = t
            samples.extend(self._emit(inst, series, state, svc, load, t))
        self._last_t = t
        self._scrapes += 1
        return Scrape(round(t * 1000), samples, load, tuple(restarted))

    def _first_state(self, inst: Instance, t: float, faults: list[Fault], load: EstateLoad) -> _State:
        """A process that has been running for a while: counters warmed by its uptime at average traffic."""
        started = self.estate.process_start(inst, t, faults)
        state = _State(started=started, last_t=t)
        # Traffic averages about half of the value at t over a day; the exact history does not matter,
        # only that counters do not all start at zero.
        svc = load.services[inst.service]
        self._advance(inst, state, svc, load, (t - started) * 0.5)
        return state

    def _instance_rps(self, inst: Instance, svc: ServiceLoad) -> float:
        """This instance's share of the service's traffic (load balancing is a little uneven)."""
        instances = self.estate.instances[inst.service]
        weights = [
            0.0 if i in svc.down else 1 + 0.15 * stable_unit(self.estate.seed, "w", inst.service, i)
            for i in range(len(instances))
        ]
        total = sum(weights)
        return svc.rps * weights[inst.index] / total if total else 0.0

    def _advance(self, inst: Instance, state: _State, svc: ServiceLoad, load: EstateLoad, dt: float) -> None:
        """Add ``dt`` seconds of this instance's work to its counters."""
        if dt <= 0:
            return
        est = self.estate
        spec = est.services[inst.service]
        series = self._series[inst.key]
        rps = self._instance_rps(inst, svc)
        c = state.counters
        share = rps / svc.rps if svc.rps > 0 else 0.0
        wobble = 1 + 0.04 * smooth_noise(est.seed, f"inst/{inst.key}", load.t)
        for r, route in enumerate(svc.routes if spec.kind is Kind.APP else ()):
            n = route.rps * share * dt
            err = route.error_ratio
            codes = series.requests[r]
            c[codes[0]] += n * max(0.0, 1 - err - CLIENT_ERROR_RATIO)
            c[codes[1]] += n * CLIENT_ERROR_RATIO
            c[codes[2]] += n * err * 0.7
            c[codes[3]] += n * err * 0.3
            median = route.latency_s * wobble
            log_median = math.log(median)
            for le, labels in zip(BUCKETS, series.buckets[r], strict=False):
                c[labels] += n * _normal_cdf((math.log(le) - log_median) / LATENCY_SIGMA)
            c[series.counts[r]] += n
            c[series.sums[r]] += n * median * math.exp(LATENCY_SIGMA**2 / 2)  # log-normal mean
        for dep, requests, errors in series.rpc:
            calls = rps * est.calls[inst.service].get(dep, 0.0) * dt
            c[requests] += calls
            c[errors] += calls * load.services[dep].call_error_ratio
        if spec.kind is Kind.REDIS:
            c[series.extra[0]] += rps * dt
        elif spec.kind is Kind.POSTGRES:
            c[series.extra[0]] += rps * dt * (1 - svc.error_ratio)
            c[series.extra[1]] += rps * dt * svc.error_ratio
        cores = 2.0
        busy = 0.01 + rps * spec.cpu_per_request_s * svc.cpu_factor
        state.cpu_s += dt * min(cores, busy)

    def _emit(
        self, inst: Instance, series: _Series, state: _State, svc: ServiceLoad, load: EstateLoad, t: float
    ) -> list[Sample]:
        est = self.estate
        spec = est.services[inst.service]
        c = state.counters
        uptime = max(0.0, t - state.started)
        warm = 0.75 + 0.25 * (1 - math.exp(-uptime / 900))  # caches fill after a start
        noise = smooth_noise(est.seed, f"mem/{inst.key}", t, period=300.0)
        memory = spec.memory_bytes * warm * (1 + 0.1 * min(svc.utilisation, 1.0)) * (1 + 0.02 * noise)
        memory += svc.leak_bytes
        out: list[Sample] = [
            (series.up, 1.0),
            (series.start_time, float(math.floor(state.started))),
            (series.cpu, round(state.cpu_s, 2)),
            (series.memory, float(round(memory))),
        ]
        # A counter shows whole events: the floor of its expected count. Each counter's floor falls at its own
        # phase: with one phase for all, the many slow counters of a service (pods x routes x codes, one 5xx
        # each every half hour at night) stepped in the same scrape, and errors came in bursts of ten
        # between quiet scrapes, which no real service does.
        phases = series.phases
        for r in range(len(series.requests)):
            out.extend((labels, float(math.floor(c[labels] + phases[labels]))) for labels in series.requests[r])
            count = float(math.floor(c[series.counts[r]]))
            # floors of ordered accumulators stay ordered, so buckets are cumulative; +Inf is _count
            out.extend((labels, float(math.floor(c[labels]))) for labels in series.buckets[r][:-1])
            out.append((series.buckets[r][-1], count))
            out.append((series.sums[r], round(c[series.sums[r]], 6)))
            out.append((series.counts[r], count))
        for _, requests, errors in series.rpc:
            out.append((requests, float(math.floor(c[requests] + phases[requests]))))
            out.append((errors, float(math.floor(c[errors] + phases[errors]))))
        if spec.kind is Kind.REDIS:
            clients = 8 + 40 * load.traffic + 2 * smooth_noise(est.seed, f"cl/{inst.key}", t)
            out += [
                (series.extra[0], float(math.floor(c[series.extra[0]]))),
                (series.extra[1], float(round(clients))),
                (series.extra[2], float(round(memory * 0.8))),
            ]
        elif spec.kind is Kind.POSTGRES:
            active = self._instance_rps(inst, svc) * svc.latency_s  # Little's law: in flight = rate * time
            out += [
                (series.extra[0], float(math.floor(c[series.extra[0]]))),
                (series.extra[1], float(math.floor(c[series.extra[1]]))),
                (series.extra[2], float(max(1, round(active + 1)))),
            ]
        return out
