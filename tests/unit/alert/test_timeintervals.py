"""Alertmanager time intervals: what a period contains, and which periods are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from novacron.alert.timeintervals import Period, TimeIntervalError, active, parse_period


def at(text: str) -> float:
    """Epoch seconds of an ISO time (UTC unless it says otherwise)."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def test_times_include_the_start_and_exclude_the_end():
    # Given working hours
    period = parse_period({"times": [{"start_time": "09:00", "end_time": "17:00"}]})
    # Then 09:00 and 16:59 are inside, 08:59 and 17:00 are not
    assert period.contains(at("2024-03-05T09:00"))
    assert period.contains(at("2024-03-05T16:59"))
    assert not period.contains(at("2024-03-05T08:59"))
    assert not period.contains(at("2024-03-05T17:00"))


def test_weekdays_are_numbered_from_sunday_and_ranges_are_inclusive():
    # Given weekdays Monday to Friday, and a weekend written as two days
    workweek = parse_period({"weekdays": ["monday:friday"]})
    weekend = parse_period({"weekdays": ["Saturday", "sunday"]})
    # Then 2024-03-04 (a Monday) and 2024-03-08 (a Friday) are in the week, 2024-03-09/10 in the weekend
    assert workweek.contains(at("2024-03-04T00:00"))
    assert workweek.contains(at("2024-03-08T23:59"))
    assert not workweek.contains(at("2024-03-09T12:00"))
    assert weekend.contains(at("2024-03-09T12:00"))
    assert weekend.contains(at("2024-03-10T12:00"))
    assert not weekend.contains(at("2024-03-11T12:00"))


def test_negative_days_count_from_the_end_of_the_month():
    # Given the last day of the month, and the 31st
    last = parse_period({"days_of_month": ["-1"]})
    thirty_first = parse_period({"days_of_month": ["31"]})
    # Then the last day of February 2024 is the 29th, and a 30-day month has no 31st
    assert last.contains(at("2024-02-29T10:00"))
    assert not last.contains(at("2024-02-28T10:00"))
    assert not any(thirty_first.contains(at(f"2024-04-{day:02d}T10:00")) for day in range(1, 31))
    assert thirty_first.contains(at("2024-05-31T10:00"))


def test_a_range_from_a_day_to_one_before_the_end():
    # Given the 3rd to the day before the last
    period = parse_period({"days_of_month": ["3:-2"]})
    # Then in April (30 days) the 3rd to the 29th match, the 2nd and the 30th do not
    assert period.contains(at("2024-04-03T00:00"))
    assert period.contains(at("2024-04-29T00:00"))
    assert not period.contains(at("2024-04-02T00:00"))
    assert not period.contains(at("2024-04-30T00:00"))


def test_months_by_name_or_number_and_years():
    # Given the first quarter of 2024 and 2025, written two ways
    period = parse_period({"months": ["january:2", "march"], "years": ["2024:2025"]})
    # Then every field must agree
    assert period.contains(at("2024-01-15T00:00"))
    assert period.contains(at("2025-03-31T23:59"))
    assert not period.contains(at("2024-04-01T00:00"))
    assert not period.contains(at("2026-02-01T00:00"))


def test_fields_are_read_in_the_location():
    # Given working hours in New York (UTC-5 in winter, UTC-4 in summer)
    period = parse_period({"location": "America/New_York", "times": [{"start_time": "09:00", "end_time": "17:00"}]})
    # Then 14:00 UTC is 09:00 there in January and 10:00 in July; 13:59 UTC in January is 08:59
    assert period.contains(at("2024-01-10T14:00"))
    assert not period.contains(at("2024-01-10T13:59"))
    assert period.contains(at("2024-07-10T13:00"))


def test_an_interval_is_active_when_any_period_contains_the_instant():
    # Given nights and weekends as two periods
    periods = [
        parse_period({"times": [{"start_time": "00:00", "end_time": "06:00"}]}),
        parse_period({"weekdays": ["saturday", "sunday"]}),
    ]
    # Then a Tuesday night and a Saturday noon are active, a Tuesday noon is not; no period: never
    assert active(periods, at("2024-03-05T03:00"))
    assert active(periods, at("2024-03-09T12:00"))
    assert not active(periods, at("2024-03-05T12:00"))
    assert not active([], at("2024-03-05T12:00"))
    assert Period().contains(at("2024-03-05T12:00"))  # a period with no field: always


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"times": [{"start_time": "17:00", "end_time": "09:00"}]}, "start time 17:00"),
        ({"times": [{"start_time": "09:00", "end_time": "09:00"}]}, "start time 09:00"),
        ({"times": [{"start_time": "9:00", "end_time": "17:00"}]}, "start_time '9:00'"),
        ({"times": [{"start_time": "00:00", "end_time": "24:30"}]}, "end_time '24:30'"),
        ({"times": [{"start_time": "09:00"}]}, "end_time ''"),
        ({"weekdays": ["funday"]}, "'funday' is not a valid weekday"),
        ({"weekdays": ["saturday:sunday"]}, "'saturday:sunday'"),
        ({"weekdays": ["monday : friday"]}, "'monday ' is not a valid weekday"),
        ({"days_of_month": ["0"]}, "0 is not a valid day"),
        ({"days_of_month": ["-1:5"]}, "end must be negative"),
        ({"days_of_month": ["5:1"]}, "start of '5:1'"),
        ({"months": ["march:january"]}, "start of 'march:january'"),
        ({"months": ["13"]}, "'13' is not a valid month"),
        ({"years": ["2022:2020"]}, "start of '2022:2020'"),
        ({"years": ["2020:2021:2022"]}, "not a value or a start:end range"),
        ({"location": "Mars/Olympus"}, "'Mars/Olympus' is not a known time zone"),
        ({"hours": ["1"]}, "field hours not found"),
        ("weekends", "must be a mapping"),
    ],
)
def test_bad_periods_are_refused_naming_what_is_wrong(spec, named):
    # When a bad period is parsed, Then the error names the field and value at fault
    with pytest.raises(TimeIntervalError, match=named.replace("(", r"\(")):
        parse_period(spec)
