"""Alertmanager's time intervals: when a route's notifications are muted (or active).

A named entry of ``time_intervals`` (or the older ``mute_time_intervals``) holds a list of periods; the
entry is active at an instant when any of its periods contains it. A period restricts the instant by the
fields it has, all of which must agree (a field left out allows everything):

- ``times``: ``[{start_time: "HH:MM", end_time: "HH:MM"}]``, start inclusive, end exclusive, ``24:00``
  allowed as an end;
- ``weekdays``: names or ``name:name`` ranges, ``sunday`` (0) to ``saturday`` (6), as Go numbers them, so
  ``saturday:sunday`` is not a range: write ``['saturday', 'sunday']``;
- ``days_of_month``: ``1`` to ``31`` or counted from the month's end, ``-1`` the last day; ranges
  ``a:b``; a day past the end of a shorter month never matches;
- ``months``: names or numbers 1-12, and ranges of them;
- ``years``: numbers and ranges;
- ``location``: an IANA time zone the other fields are read in (default ``UTC``; ``Local`` is UTC here:
  functions have no local zone).

The rules and their checks are those of Alertmanager's ``timeinterval`` package (0.25). A route whose
``mute_time_intervals`` include an active entry, or whose ``active_time_intervals`` include none active,
sends nothing at a flush; its groups keep their alerts and timers, and the next unmuted flush notifies.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FIELDS = frozenset({"times", "weekdays", "days_of_month", "months", "years", "location"})
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
MONTHS = tuple(name.lower() for name in calendar.month_name[1:])
_TIME_OF_DAY = re.compile(r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")


class TimeIntervalError(ValueError):
    """A period that cannot be parsed; the message names the field and the value."""


@dataclass(frozen=True)
class Period:
    """One period of a time interval; empty tuples allow everything (see the module docstring)."""

    times: tuple[tuple[int, int], ...] = ()  # minutes of the day, [start, end)
    weekdays: tuple[tuple[int, int], ...] = ()  # 0 = Sunday
    days_of_month: tuple[tuple[int, int], ...] = ()
    months: tuple[tuple[int, int], ...] = ()
    years: tuple[tuple[int, int], ...] = ()
    location: tzinfo = UTC

    def contains(self, at: float) -> bool:
        """Whether the instant ``at`` (epoch seconds) lies in this period."""
        local = datetime.fromtimestamp(at, self.location)
        minute = local.hour * 60 + local.minute
        weekday = (local.weekday() + 1) % 7  # Python's Monday = 0 -> Go's Sunday = 0
        return (
            _any_range(self.times, minute, end_exclusive=True)
            and _any_range(self.weekdays, weekday)
            and _day_of_month_matches(self.days_of_month, local)
            and _any_range(self.months, local.month)
            and _any_range(self.years, local.year)
        )


def active(periods: Sequence[Period], at: float) -> bool:
    """Whether a time interval made of ``periods`` is active at ``at``."""
    return any(period.contains(at) for period in periods)


def parse_period(spec: Any) -> Period:
    """One entry of a time interval's ``time_intervals`` list, checked as Alertmanager checks it."""
    if spec is None:
        return Period()
    if not isinstance(spec, Mapping):
        raise TimeIntervalError("a time interval must be a mapping of times, weekdays, days_of_month, months, ...")
    unknown = sorted(set(map(str, spec)) - FIELDS)
    if unknown:
        raise TimeIntervalError(f"field {unknown[0]} not found in type timeinterval.TimeInterval")
    return Period(
        times=tuple(_time_range(item) for item in _items(spec, "times")),
        weekdays=tuple(_named_range(item, "weekdays", WEEKDAYS, numbers=False) for item in _items(spec, "weekdays")),
        days_of_month=tuple(_day_range(item) for item in _items(spec, "days_of_month")),
        months=tuple(_named_range(item, "months", MONTHS, numbers=True) for item in _items(spec, "months")),
        years=tuple(_year_range(item) for item in _items(spec, "years")),
        location=_location(spec.get("location")),
    )


def _items(spec: Mapping[str, Any], field: str) -> list[Any]:
    value = spec.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise TimeIntervalError(f"{field} must be a list")
    return value


def _time_range(item: Any) -> tuple[int, int]:
    if not isinstance(item, Mapping) or set(map(str, item)) - {"start_time", "end_time"}:
        raise TimeIntervalError("times must be a list of {start_time: 'HH:MM', end_time: 'HH:MM'}")
    start, end = (_minutes(item.get(key), key) for key in ("start_time", "end_time"))
    if start >= end:
        raise TimeIntervalError(f"start time {item.get('start_time')} cannot be equal or greater than end time")
    return start, end


def _minutes(value: Any, key: str) -> int:
    text = "" if value is None else str(value)
    if not _TIME_OF_DAY.match(text):
        raise TimeIntervalError(f"{key} {text!r} is not a valid time of day (HH:MM, 00:00 to 24:00)")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _bounds(item: Any, field: str) -> tuple[str, str]:
    text = str(item).lower()
    parts = text.split(":")
    if not text or len(parts) > 2:
        raise TimeIntervalError(f"{field}: {item!r} is not a value or a start:end range")
    return parts[0], parts[-1]


def _named_range(item: Any, field: str, names: tuple[str, ...], numbers: bool) -> tuple[int, int]:
    def value(text: str) -> int:
        if text in names:
            return names.index(text) + (1 if numbers else 0)
        if numbers and text.isdigit() and 1 <= int(text) <= len(names):
            return int(text)
        raise TimeIntervalError(f"{field}: {text!r} is not a valid {field.removesuffix('s')}")

    low, high = (value(part) for part in _bounds(item, field))
    if low > high:
        raise TimeIntervalError(f"{field}: start of {item!r} cannot be after its end")
    return low, high


def _integer(text: str, field: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TimeIntervalError(f"{field}: {text!r} is not a number") from None


def _day_range(item: Any) -> tuple[int, int]:
    low, high = (_integer(part, "days_of_month") for part in _bounds(item, "days_of_month"))
    for day in (low, high):
        if day == 0 or not -31 <= day <= 31:
            raise TimeIntervalError(f"days_of_month: {day} is not a valid day of the month (1 to 31, or -31 to -1)")
    if low < 0 < high:
        raise TimeIntervalError(f"days_of_month: in {item!r} the end must be negative when the start is")
    # 3:-2 (the 3rd to the day before the last) is only decided against the month's length
    if (low > 0) == (high > 0) and low > high:
        raise TimeIntervalError(f"days_of_month: start of {item!r} cannot be after its end")
    return low, high


def _year_range(item: Any) -> tuple[int, int]:
    low, high = (_integer(part, "years") for part in _bounds(item, "years"))
    if low <= 0 or high <= 0:
        raise TimeIntervalError(f"years: {item!r} is not a valid year")
    if low > high:
        raise TimeIntervalError(f"years: start of {item!r} cannot be after its end")
    return low, high


def _location(value: Any) -> tzinfo:
    if value is None or str(value) in ("", "UTC", "Local"):
        return UTC
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeIntervalError(f"location {value!r} is not a known time zone") from None


def _any_range(ranges: tuple[tuple[int, int], ...], value: int, end_exclusive: bool = False) -> bool:
    if not ranges:
        return True
    if end_exclusive:
        return any(low <= value < high for low, high in ranges)
    return any(low <= value <= high for low, high in ranges)


def _day_of_month_matches(ranges: tuple[tuple[int, int], ...], local: datetime) -> bool:
    if not ranges:
        return True
    length = calendar.monthrange(local.year, local.month)[1]
    for low, high in ranges:
        first = length + low + 1 if low < 0 else low
        last = length + high + 1 if high < 0 else high
        if first > length:
            continue  # the 31st in a 30-day month: never
        first, last = max(first, -length), min(last, length)
        if first <= local.day <= last:
            return True
    return False
