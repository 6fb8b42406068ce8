"""Silences: matchers and a time range during which matching alerts are not notified.

Alertmanager's rules (``silence/silence.go``, API v2):

- a silence needs at least one matcher, and at least one that does not match the empty string (a
  silence matching every alert is refused); its end is not before its start; author and comment are
  required (the v2 API's ``createdBy``/``comment``);
- its state at ``now`` is ``pending`` before ``startsAt``, ``active`` until ``endsAt``, then ``expired``;
- expiring an active silence ends it now; expiring a pending one makes it start and end now; an expired
  silence cannot be expired again.

The JSON form is the v2 API's ``/api/v2/silences`` one (RFC 3339 times, ``matchers`` with
``isRegex``/``isEqual``, ``status.state``). Times are seconds since the epoch everywhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from novacron.alert.matchers import AlertMatcher, MatcherError, matches_labels, new_matcher


class SilenceError(ValueError):
    """An invalid silence or silence operation (the message says what is wrong)."""


class SilenceState(StrEnum):
    """Where a silence is in its life."""

    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Silence:
    """One silence. ``updated_at`` is when it was last written."""

    id: str
    matchers: tuple[AlertMatcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float = 0.0

    def __post_init__(self) -> None:
        if not self.id:
            raise SilenceError("silence id missing")
        if not self.matchers:
            raise SilenceError("at least one matcher required")
        if all(m.matches("") for m in self.matchers):
            raise SilenceError("at least one matcher must not match the empty string")
        if self.ends_at < self.starts_at:
            raise SilenceError("end time must not be before start time")
        if not self.created_by.strip():
            raise SilenceError("createdBy is required")
        if not self.comment.strip():
            raise SilenceError("comment is required")

    def state(self, now: float) -> SilenceState:
        """The state at ``now``."""
        if now < self.starts_at:
            return SilenceState.PENDING
        if now < self.ends_at:
            return SilenceState.ACTIVE
        return SilenceState.EXPIRED

    def mutes(self, labels: Mapping[str, str], now: float) -> bool:
        """Whether the silence is active at ``now`` and matches the labels."""
        return self.state(now) is SilenceState.ACTIVE and matches_labels(self.matchers, labels)

    def expire(self, now: float) -> Silence:
        """The silence ended at ``now``."""
        state = self.state(now)
        if state is SilenceState.EXPIRED:
            raise SilenceError(f"silence {self.id} already expired")
        start = now if state is SilenceState.PENDING else self.starts_at
        return replace(self, starts_at=start, ends_at=now, updated_at=now)

    def to_api(self, now: float) -> dict[str, Any]:
        """The v2 API ``GettableSilence`` at ``now``."""
        return {
            "id": self.id,
            "status": {"state": self.state(now).value},
            "updatedAt": format_time(self.updated_at),
            "matchers": [m.to_api() for m in self.matchers],
            "startsAt": format_time(self.starts_at),
            "endsAt": format_time(self.ends_at),
            "createdBy": self.created_by,
            "comment": self.comment,
        }

    @classmethod
    def from_api(cls, data: Mapping[str, Any], silence_id: str | None = None, now: float | None = None) -> Silence:
        """A silence from a v2 API ``PostableSilence`` (or ``GettableSilence``); ``status`` is ignored.

        ``silence_id`` is used when the body has no ``id`` (a new silence); ``now``, when given, is the
        update time and refuses a silence that has already ended (as the API does).
        """
        if not isinstance(data, Mapping):
            raise SilenceError("a silence must be a JSON object")
        try:
            raw_matchers = data["matchers"]
            if not isinstance(raw_matchers, list):
                raise SilenceError("matchers must be a list")
            matchers = tuple(_matcher_from_api(i, m) for i, m in enumerate(raw_matchers))
            starts, ends = parse_time(data["startsAt"], "startsAt"), parse_time(data["endsAt"], "endsAt")
            created_by, comment = str(data["createdBy"]), str(data["comment"])
        except KeyError as exc:
            raise SilenceError(f"{exc.args[0]} is required") from None
        if now is not None and ends <= now:
            raise SilenceError("end time can't be in the past")
        updated = now if now is not None else parse_time(data["updatedAt"], "updatedAt") if "updatedAt" in data else 0.0
        return cls(
            id=str(data.get("id") or silence_id or ""),
            matchers=matchers,
            starts_at=starts,
            ends_at=ends,
            created_by=created_by,
            comment=comment,
            updated_at=updated,
        )


def _matcher_from_api(index: int, data: Any) -> AlertMatcher:
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str) or not isinstance(data.get("value"), str):
        raise SilenceError(f"invalid label matcher {index}: needs string name and value")
    is_regex, is_equal = bool(data.get("isRegex", False)), bool(data.get("isEqual", True))
    op = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}[(is_regex, is_equal)]
    try:
        return new_matcher(data["name"], op, data["value"])
    except MatcherError as exc:
        raise SilenceError(f"invalid label matcher {index}: {exc}") from None


def silenced_by(silences: Iterable[Silence], labels: Mapping[str, str], now: float) -> list[str]:
    """The ids of the silences that mute the labels at ``now``."""
    return [s.id for s in silences if s.mutes(labels, now)]


def active(silences: Sequence[Silence], now: float) -> list[Silence]:
    """The silences active at ``now``."""
    return [s for s in silences if s.state(now) is SilenceState.ACTIVE]


def format_time(seconds: float) -> str:
    """RFC 3339 with milliseconds in UTC, as Alertmanager's API writes times."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any, what: str) -> float:
    """Seconds since the epoch of an RFC 3339 time (``Z`` or an offset required)."""
    if not isinstance(value, str):
        raise SilenceError(f"{what} must be an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise SilenceError(f"{what} {value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise SilenceError(f"{what} {value!r} has no time zone")
    return parsed.timestamp()
