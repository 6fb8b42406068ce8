"""The input of every notifier: one change of one incident, as the incident service publishes it.

A notification is a self-contained snapshot (title, severity, alerts…) plus the ``action`` that
produced it and a per-incident ``sequence`` number, so that a receiver that is updated in place
(Slack with a bot token) can ignore a notification older than the one it already shows.
It travels as JSON (an SNS message): ``to_dict``/``from_dict`` are exact inverses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from novacron.auth import validate_tenant

_E = TypeVar("_E", bound=StrEnum)

MAX_INCIDENT_ID = 255  # PagerDuty's dedup_key limit; the id is used as dedup key and Opsgenie alias


class Action(StrEnum):
    """What happened to the incident."""

    OPENED = "opened"
    UPDATED = "updated"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    REOPENED = "reopened"


class Severity(StrEnum):
    """The incident's severity, in PagerDuty's vocabulary (which the other receivers map from)."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Status(StrEnum):
    """The incident's state after the action."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class InvalidNotification(ValueError):
    """A notification message that cannot be delivered as it is (names the field at fault)."""


@dataclass(frozen=True)
class AlertSummary:
    """One alert of the incident, as much of it as a message shows."""

    name: str
    fingerprint: str
    starts_at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "starts_at": _iso(self.starts_at),
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "value": self.value,
        }


@dataclass(frozen=True)
class IncidentNotification:
    """One change of one incident, to be told to every receiver its route names."""

    action: Action
    tenant: str
    incident_id: str
    sequence: int
    title: str
    summary: str
    severity: Severity
    priority: int  # 1 (highest) … 5, as Opsgenie's P1…P5
    status: Status
    started_at: datetime
    url: str = ""
    services: tuple[str, ...] = ()
    alerts: tuple[AlertSummary, ...] = ()

    def __post_init__(self) -> None:
        try:
            validate_tenant(self.tenant)
        except ValueError as exc:
            raise InvalidNotification(f"tenant: {exc}") from None
        if not self.incident_id or len(self.incident_id) > MAX_INCIDENT_ID:
            raise InvalidNotification(f"incident_id: must be 1-{MAX_INCIDENT_ID} characters")
        if not self.title.strip():
            raise InvalidNotification("title: must not be empty")
        if not 1 <= self.priority <= 5:
            raise InvalidNotification(f"priority: must be 1-5, got {self.priority}")
        if self.sequence < 0:
            raise InvalidNotification(f"sequence: must be >= 0, got {self.sequence}")
        if self.started_at.tzinfo is None:
            raise InvalidNotification("started_at: must carry a time zone")

    def delivery_key(self, receiver: str) -> str:
        """The idempotency key of telling ``receiver`` about this change: the same on every retry."""
        return f"{self.tenant}/{self.incident_id}/{self.sequence}/{receiver}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the SNS message body and the signed webhook's ``notification``)."""
        return {
            "action": self.action.value,
            "tenant": self.tenant,
            "incident_id": self.incident_id,
            "sequence": self.sequence,
            "title": self.title,
            "summary": self.summary,
            "severity": self.severity.value,
            "priority": self.priority,
            "status": self.status.value,
            "started_at": _iso(self.started_at),
            "url": self.url,
            "services": list(self.services),
            "alerts": [alert.to_dict() for alert in self.alerts],
        }

    @classmethod
    def from_dict(cls, data: object) -> IncidentNotification:
        """Parse the JSON form; raise InvalidNotification naming the first field at fault."""
        if not isinstance(data, Mapping):
            raise InvalidNotification("notification: expected a JSON object")
        return cls(
            action=_enum(Action, data, "action"),
            tenant=_str(data, "tenant"),
            incident_id=_str(data, "incident_id"),
            sequence=_int(data, "sequence"),
            title=_str(data, "title"),
            summary=_str(data, "summary", ""),
            severity=_enum(Severity, data, "severity"),
            priority=_int(data, "priority"),
            status=_enum(Status, data, "status"),
            started_at=_time(data.get("started_at"), "started_at"),
            url=_str(data, "url", ""),
            services=tuple(_str_list(data, "services")),
            alerts=tuple(_alert(item, i) for i, item in enumerate(_list(data, "alerts"))),
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _str(data: Mapping[str, Any], name: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise InvalidNotification(f"{name}: expected a string")
    return value


def _int(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidNotification(f"{name}: expected an integer")
    return value


def _enum(kind: type[_E], data: Mapping[str, Any], name: str) -> _E:
    value = data.get(name)
    try:
        return kind(str(value))
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidNotification(f"{name}: expected one of {allowed}, got {value!r}") from None


def _list(data: Mapping[str, Any], name: str) -> list[Any]:
    value = data.get(name, [])
    if not isinstance(value, list):
        raise InvalidNotification(f"{name}: expected a list")
    return value


def _str_list(data: Mapping[str, Any], name: str) -> list[str]:
    values = _list(data, name)
    if not all(isinstance(v, str) for v in values):
        raise InvalidNotification(f"{name}: expected a list of strings")
    return values


def _str_map(data: Mapping[str, Any], name: str) -> dict[str, str]:
    value = data.get(name, {})
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidNotification(f"{name}: expected an object of strings")
    return dict(value)


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidNotification(f"{name}: expected an RFC 3339 time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidNotification(f"{name}: expected an RFC 3339 time, got {value!r}") from None
    if moment.tzinfo is None:
        raise InvalidNotification(f"{name}: must carry a time zone")
    return moment


def _alert(item: Any, index: int) -> AlertSummary:
    where = f"alerts[{index}]"
    if not isinstance(item, Mapping):
        raise InvalidNotification(f"{where}: expected an object")
    value = item.get("value")
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise InvalidNotification(f"{where}.value: expected a number or null")
    try:
        return AlertSummary(
            name=_str(item, "name"),
            fingerprint=_str(item, "fingerprint"),
            starts_at=_time(item.get("starts_at"), "starts_at"),
            labels=_str_map(item, "labels"),
            annotations=_str_map(item, "annotations"),
            value=None if value is None else float(value),
        )
    except InvalidNotification as exc:
        raise InvalidNotification(f"{where}.{exc}") from None
