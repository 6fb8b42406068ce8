"""Per-receiver rate limits: a token bucket per receiver, its state in an injectable store.

A request *reserves* a token: when the bucket is empty the token is taken on credit (the level goes
negative) and the caller is told how long to wait, so concurrent callers queue up in order instead of
all waking at once. The store is a dict in a warm function; a shared store (a DynamoDB item per
receiver) can replace it when several function instances send to one receiver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RateLimit:
    """At most ``burst`` requests at once, refilled at ``per_second``."""

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs per_second > 0 and burst >= 1")


@dataclass(frozen=True)
class BucketState:
    """A bucket's level (may be negative: tokens reserved on credit) at ``updated_at`` (epoch seconds)."""

    tokens: float
    updated_at: float


class RateLimitStore(Protocol):
    """Where bucket states live, by receiver key."""

    def load(self, key: str) -> BucketState | None: ...

    def save(self, key: str, state: BucketState) -> None: ...


class MemoryRateLimits:
    """RateLimitStore in a dict: the state of one function instance."""

    def __init__(self) -> None:
        self.states: dict[str, BucketState] = {}

    def load(self, key: str) -> BucketState | None:
        """The bucket of ``key``, if it was used."""
        return self.states.get(key)

    def save(self, key: str, state: BucketState) -> None:
        """Remember the bucket of ``key``."""
        self.states[key] = state


def reserve(store: RateLimitStore, key: str, limit: RateLimit, now: float) -> float:
    """Take one token from ``key``'s bucket; return how many seconds to wait before using it."""
    state = store.load(key) or BucketState(float(limit.burst), now)
    elapsed = max(0.0, now - state.updated_at)
    level = min(float(limit.burst), state.tokens + elapsed * limit.per_second) - 1.0
    store.save(key, BucketState(level, now))
    return 0.0 if level >= 0 else -level / limit.per_second


def release(store: RateLimitStore, key: str, limit: RateLimit) -> None:
    """Give back a token reserved but not used (the caller gave up instead of waiting)."""
    state = store.load(key)
    if state is not None:
        store.save(key, BucketState(min(float(limit.burst), state.tokens + 1.0), state.updated_at))
