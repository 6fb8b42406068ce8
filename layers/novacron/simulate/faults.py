"""Fault injection for the simulated estate: the ``--fault`` grammar, fault windows and chaos mode.

The grammar is ``GRAMMAR`` below (also shown by ``novacron simulate --help``). A fault acts on the
service itself; its callers feel it through the dependency graph (see ``estate.py``).
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

GRAMMAR = """\
  SPEC      := KIND ":" SERVICE [":" MAGNITUDE] ["@" ["+"] OFFSET] ["/" DURATION]     (no spaces)
  KIND      := latency | errors | down | cpu | leak
  OFFSET    := DURATION    when the fault starts, after the first simulated timestamp (default 0)
  DURATION  := NUMBER UNIT [NUMBER UNIT ...] | NUMBER   (units ms s m h d; a bare number is seconds)
               e.g. 300ms, 90s, 5m, 1h30m; without /DURATION the fault lasts until the end

  kind     MAGNITUDE                            default   effect on the service
  latency  added time: +300ms, 1.5s             required  answers that much slower
  errors   5xx share: 20%, 2.5% (0 < x <= 100)  required  that share of its requests fail
  down     instances: 1, 2, ... or all          all       instances stop (up=0), restart at the end
  cpu      CPU cost factor: 3x (> 1)            2x        saturation: more CPU time, higher latency
  leak     memory leaked: 512MiB, 1GiB, 300MB   256MiB    memory grows (over the window, or 1h),
                                                          then the process is OOM-killed at the end
  Callers feel a fault through the dependency graph: slower and failing calls make them slower
  and failing too (less so for optional dependencies such as recommendation and ad).

  examples: latency:payment:+300ms@+5m/10m  errors:product-catalog:20%@+2m/5m
            down:cart:1@+10m/3m  cpu:currency:3x@+1h/15m  leak:recommendation:1GiB/30m
"""

GRAMMAR_HINT = (
    "expected KIND:SERVICE[:MAGNITUDE][@+OFFSET][/DURATION], e.g. 'latency:payment:+300ms@+5m/10m' or "
    "'errors:product-catalog:20%@+2m/5m'; KIND is one of latency, errors, down, cpu, leak"
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


class FaultKind(StrEnum):
    """What goes wrong."""

    LATENCY = "latency"
    ERRORS = "errors"
    DOWN = "down"
    CPU = "cpu"
    LEAK = "leak"


class FaultSpecError(ValueError):
    """A ``--fault`` spec (or a duration) that cannot be understood; the message says why and how to fix it."""


def parse_duration(text: str) -> float:
    """Seconds in a duration like ``300ms``, ``90s``, ``5m``, ``1h30m`` or a bare number of seconds."""
    text = text.strip()
    if not text:
        raise FaultSpecError("empty duration; use e.g. 30s, 5m or 1h30m")
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if value < 0 or not math.isfinite(value):
            raise FaultSpecError(f"duration {text!r} must be a non-negative number of seconds")
        return value
    position = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        raise FaultSpecError(f"invalid duration {text!r}; use NUMBER+UNIT parts with units ms, s, m, h, d (e.g. 1h30m)")
    return total


def format_duration(seconds: float) -> str:
    """A short human form of a duration: ``450ms``, ``42s``, ``5m``, ``1h30m``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class FaultSpec:
    """A parsed ``--fault``: what, where, how much, and when relative to the simulation's start.

    ``magnitude`` is in base units: seconds (latency), a ratio in (0, 1] (errors), an instance count
    with 0 meaning all (down), a factor (cpu), bytes (leak).
    """

    kind: FaultKind
    service: str
    magnitude: float
    offset_s: float = 0.0
    duration_s: float | None = None
    text: str = ""

    def at(self, sim_start: float) -> Fault:
        """The fault placed on the simulated timeline that starts at ``sim_start`` (epoch seconds)."""
        return Fault(self.kind, self.service, self.magnitude, sim_start + self.offset_s, self.duration_s)


@dataclass(frozen=True)
class Fault:
    """A fault on the absolute (simulated) timeline, epoch seconds."""

    kind: FaultKind
    service: str
    magnitude: float
    start: float
    duration: float | None = None
    source: str = "fault"

    @property
    def end(self) -> float:
        """When the fault stops (infinity when it lasts until the end)."""
        return math.inf if self.duration is None else self.start + self.duration

    def active(self, t: float) -> bool:
        """Whether the fault is in effect at time ``t``."""
        return self.start <= t < self.end

    def progress(self, t: float) -> float:
        """How far into its window the fault is at ``t``, 0..1 (a leak uses it; open-ended: 1 hour)."""
        span = self.duration if self.duration else 3600.0
        return min(1.0, max(0.0, (t - self.start) / span))

    def describe(self) -> str:
        """The fault as a spec-like string, e.g. ``latency:payment:+300ms``."""
        return f"{self.kind.value}:{self.service}:{format_magnitude(self.kind, self.magnitude)}"


def format_magnitude(kind: FaultKind, magnitude: float) -> str:
    """The magnitude of a fault in the grammar's notation."""
    if kind is FaultKind.LATENCY:
        return f"+{magnitude * 1000:.0f}ms"
    if kind is FaultKind.ERRORS:
        return f"{magnitude * 100:g}%"
    if kind is FaultKind.DOWN:
        return "all" if magnitude == 0 else f"{magnitude:.0f}"
    if kind is FaultKind.CPU:
        return f"{magnitude:g}x"
    return f"{magnitude / 1024**2:.0f}MiB"


def parse_fault(spec: str, services: Collection[str] | None = None) -> FaultSpec:
    """Parse one ``--fault`` spec (see the module docstring); ``services`` checks the name when given."""
    text = spec.strip()
    if not text:
        raise FaultSpecError(f"empty fault spec; {GRAMMAR_HINT}")
    if any(ch.isspace() for ch in text):
        raise FaultSpecError(f"fault spec {spec!r} contains whitespace; {GRAMMAR_HINT}")
    head, duration_s = _split_off(text, "/", spec, "duration")
    head, offset_s = _split_off(head, "@", spec, "start offset")
    parts = head.split(":")
    if len(parts) not in (2, 3):
        raise FaultSpecError(f"fault spec {spec!r} has {len(parts)} ':'-separated parts; {GRAMMAR_HINT}")
    kind_text, service = parts[0].lower(), parts[1]
    try:
        kind = FaultKind(kind_text)
    except ValueError:
        close = difflib.get_close_matches(kind_text, [k.value for k in FaultKind], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise FaultSpecError(
            f"unknown fault kind {kind_text!r} in {spec!r}{hint}; kinds: {', '.join(k.value for k in FaultKind)}"
        ) from None
    if not service:
        raise FaultSpecError(f"fault spec {spec!r} names no service; {GRAMMAR_HINT}")
    if services is not None and service not in services:
        close = difflib.get_close_matches(service, list(services), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise FaultSpecError(
            f"unknown service {service!r} in fault spec {spec!r}; {hint}services: {', '.join(sorted(services))}"
        )
    magnitude = _parse_magnitude(kind, parts[2] if len(parts) == 3 else None, spec)
    if duration_s is not None and duration_s <= 0:
        raise FaultSpecError(f"fault spec {spec!r}: the duration must be positive")
    return FaultSpec(kind, service, magnitude, offset_s or 0.0, duration_s, text)


def _split_off(text: str, sep: str, spec: str, what: str) -> tuple[str, float | None]:
    if text.count(sep) > 1:
        raise FaultSpecError(f"fault spec {spec!r} has more than one {sep!r}; {GRAMMAR_HINT}")
    if sep not in text:
        return text, None
    head, _, tail = text.partition(sep)
    if sep == "@":
        if tail.startswith("-"):
            raise FaultSpecError(f"fault spec {spec!r}: the start offset cannot be negative ({tail!r})")
        tail = tail.removeprefix("+")
    try:
        return head, parse_duration(tail)
    except FaultSpecError as exc:
        raise FaultSpecError(f"fault spec {spec!r}: bad {what}: {exc}") from None


def _parse_magnitude(kind: FaultKind, text: str | None, spec: str) -> float:
    def bad(why: str) -> FaultSpecError:
        return FaultSpecError(f"fault spec {spec!r}: {why}")

    if kind is FaultKind.LATENCY:
        if not text:
            raise bad("a latency fault needs the added time, e.g. 'latency:payment:+300ms'")
        try:
            seconds = parse_duration(text.removeprefix("+"))
        except FaultSpecError:
            raise bad(f"latency {text!r} is not a duration like +300ms or 1.5s") from None
        if seconds <= 0:
            raise bad("the added latency must be positive")
        return seconds
    if kind is FaultKind.ERRORS:
        if not text:
            raise bad("an errors fault needs a percentage, e.g. 'errors:cart:20%'")
        match = re.fullmatch(r"(\d+(?:\.\d+)?)%", text)
        if not match:
            raise bad(f"error rate {text!r} must be a percentage like 20% or 2.5%")
        percent = float(match.group(1))
        if not 0 < percent <= 100:
            raise bad(f"error rate {text} must be above 0% and at most 100%")
        return percent / 100
    if kind is FaultKind.DOWN:
        if text is None or text.lower() == "all":
            return 0.0
        if not text.isdigit() or int(text) < 1:
            raise bad(f"'down' takes a number of instances (1, 2, ...) or 'all', not {text!r}")
        return float(text)
    if kind is FaultKind.CPU:
        if text is None:
            return 2.0
        match = re.fullmatch(r"(\d+(?:\.\d+)?)x", text.lower())
        if not match or float(match.group(1)) <= 1:
            raise bad(f"cpu factor {text!r} must be a factor above 1 like 2x or 3.5x")
        return float(match.group(1))
    if text is None:
        return 256.0 * 1024**2
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([a-zA-Z]*)", text)
    if not match or match.group(2).lower() not in _BYTE_UNITS or float(match.group(1)) <= 0:
        raise bad(f"leak size {text!r} must be a positive size like 512MiB, 1GiB or 300MB")
    return float(match.group(1)) * _BYTE_UNITS[match.group(2).lower()]


def stable_unit(seed: int, *parts: object) -> float:
    """A deterministic pseudo-random number in [0, 1) from a seed and a key (stable across processes)."""
    digest = hashlib.blake2b(":".join(map(str, (seed, *parts))).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 18446744073709551616.0  # 2**64


@dataclass
class Chaos:
    """Random faults, about one per ``mean_interval_s`` of simulated time, a pure function of (seed, time).

    Time is cut into windows of ``mean_interval_s``; each window holds one fault starting at a random
    point in it, on a random service, of a random kind, lasting 2-10 minutes.
    """

    seed: int
    services: Sequence[str]
    mean_interval_s: float = 1800.0
    max_duration_s: float = 600.0
    _cache: dict[int, Fault] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.mean_interval_s <= 0:
            raise FaultSpecError("the chaos interval must be positive")
        if not self.services:
            raise FaultSpecError("chaos needs at least one service")

    def window_fault(self, k: int) -> Fault:
        """The fault of window ``k`` (deterministic)."""
        cached = self._cache.get(k)
        if cached is not None:
            return cached
        u = [stable_unit(self.seed, "chaos", k, i) for i in range(5)]
        service = self.services[int(u[0] * len(self.services))]
        start = (k + u[1]) * self.mean_interval_s
        duration = 120.0 + u[2] * (self.max_duration_s - 120.0)
        roll = u[3]
        if roll < 0.35:
            kind, magnitude = FaultKind.LATENCY, round(0.1 + u[4] * 0.7, 3)
        elif roll < 0.7:
            kind, magnitude = FaultKind.ERRORS, round(0.05 + u[4] * 0.35, 3)
        elif roll < 0.82:
            kind, magnitude = FaultKind.DOWN, 1.0
        elif roll < 0.94:
            kind, magnitude = FaultKind.CPU, round(2 + u[4] * 2, 1)
        else:
            kind, magnitude = FaultKind.LEAK, (128 + u[4] * 896) * 1024**2
        fault = Fault(kind, service, magnitude, start, duration, source="chaos")
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[k] = fault
        return fault

    def overlapping(self, t0: float, t1: float) -> list[Fault]:
        """Chaos faults whose window intersects ``[t0, t1]``."""
        first = math.floor((t0 - self.max_duration_s) / self.mean_interval_s)
        last = math.floor(t1 / self.mean_interval_s)
        faults = (self.window_fault(k) for k in range(first, last + 1))
        return [f for f in faults if f.start <= t1 and f.end >= t0]


@dataclass
class FaultSchedule:
    """Every fault of a run: the explicit ones plus, optionally, chaos."""

    faults: Sequence[Fault] = ()
    chaos: Chaos | None = None

    def active(self, t: float) -> list[Fault]:
        """Faults in effect at ``t``."""
        found = [f for f in self.faults if f.active(t)]
        if self.chaos is not None:
            found.extend(f for f in self.chaos.overlapping(t, t) if f.active(t))
        return found

    def overlapping(self, t0: float, t1: float) -> list[Fault]:
        """Faults whose window intersects ``[t0, t1]``."""
        found = [f for f in self.faults if f.start <= t1 and f.end >= t0]
        if self.chaos is not None:
            found.extend(self.chaos.overlapping(t0, t1))
        return found
