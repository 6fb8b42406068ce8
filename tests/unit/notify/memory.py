"""In-memory implementations of the notifier's stores and clock, for tests."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

from novacron.notify.delivery import AttemptFailed
from novacron.notify.dispatch import DeadLetter, DeliveryOutcome
from novacron.notify.inbox import InboxEntry
from novacron.notify.slack import MessageRef


class FakeClock:
    """A clock whose sleeps are recorded and advance time instantly."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class MemoryDeliveryLog:
    """DeliveryLog with the lease semantics of the DynamoDB conditional put."""

    def __init__(self) -> None:
        self.claims: dict[str, float] = {}  # key → lease expiry
        self.outcomes: dict[str, DeliveryOutcome] = {}

    def claim(self, key: str, now: float, lease_s: float) -> bool:
        if key in self.outcomes or self.claims.get(key, float("-inf")) > now:
            return False
        self.claims[key] = now + lease_s
        return True

    def record(self, key: str, outcome: DeliveryOutcome) -> None:
        self.outcomes[key] = outcome


class ListDeadLetters:
    """DeadLetters in a list; can be told to fail (the queue unavailable)."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []
        self.fail = False

    def put(self, letter: DeadLetter) -> None:
        if self.fail:
            raise ConnectionError("dead-letter queue unavailable")
        self.letters.append(letter)


class MemoryMessageRefs:
    def __init__(self) -> None:
        self.refs: dict[str, MessageRef] = {}

    def get(self, key: str) -> MessageRef | None:
        return self.refs.get(key)

    def put(self, key: str, ref: MessageRef) -> None:
        self.refs[key] = ref


class MemoryInbox:
    """InboxStore over a bounded deque per tenant."""

    def __init__(self, max_per_tenant: int = 1000) -> None:
        self.entries: dict[str, deque[InboxEntry]] = {}
        self.max_per_tenant = max_per_tenant

    def append(self, entry: InboxEntry) -> None:
        self.entries.setdefault(entry.tenant, deque(maxlen=self.max_per_tenant)).append(entry)

    def latest(self, tenant: str, limit: int) -> Sequence[InboxEntry]:
        return list(reversed(self.entries.get(tenant, ())))[:limit]


class ScriptedPublisher:
    """Publisher recording what it publishes; raises the scripted failures first."""

    def __init__(self, *failures: AttemptFailed) -> None:
        self.failures = list(failures)
        self.published: list[tuple[str, str, str, dict[str, str]]] = []

    def publish(self, topic_arn: str, subject: str, message: str, attributes: Mapping[str, str]) -> str:
        if self.failures:
            raise self.failures.pop(0)
        self.published.append((topic_arn, subject, message, dict(attributes)))
        return f"msg-{len(self.published)}"
