"""Silences: validation, states, muting, expiry and the v2 API JSON form."""

from __future__ import annotations

import pytest

from novacron.alert.matchers import parse_matchers
from novacron.alert.silences import Silence, SilenceError, SilenceState, format_time, parse_time, silenced_by

T0 = 1_700_000_000.0


def make(matchers: str = 'team="db"', start: float = T0, end: float = T0 + 3600, **kw) -> Silence:
    fields = {"id": "s1", "created_by": "alice", "comment": "db maintenance", **kw}
    return Silence(matchers=tuple(parse_matchers(matchers)), starts_at=start, ends_at=end, **fields)


def test_states_over_time():
    # Given a silence from T0 to T0+1h
    s = make()
    # Then it is pending before, active during and expired from its end
    assert s.state(T0 - 1) is SilenceState.PENDING
    assert s.state(T0) is SilenceState.ACTIVE
    assert s.state(T0 + 3599) is SilenceState.ACTIVE
    assert s.state(T0 + 3600) is SilenceState.EXPIRED


def test_silenced_by_only_while_active_and_matching():
    # Given two silences, one for team db, one for env staging later on
    silences = [make(), make('env="staging"', start=T0 + 100, id="s2")]
    # Then a db alert is silenced by s1 while it is active, a staging one by s2 once it starts
    assert silenced_by(silences, {"team": "db"}, T0 + 10) == ["s1"]
    assert silenced_by(silences, {"env": "staging"}, T0 + 10) == []
    assert silenced_by(silences, {"env": "staging", "team": "db"}, T0 + 200) == ["s1", "s2"]
    assert silenced_by(silences, {"team": "db"}, T0 + 3600) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"matchers": ""}, "at least one matcher required"),
        ({"matchers": 'team=~".*"'}, "must not match the empty string"),
        ({"matchers": 'team="", env!="x"'}, "must not match the empty string"),
        ({"end": T0 - 1}, "end time must not be before start time"),
        ({"created_by": " "}, "createdBy is required"),
        ({"comment": ""}, "comment is required"),
        ({"id": ""}, "id missing"),
    ],
)
def test_invalid_silences_are_refused(kwargs, message):
    # Given a silence breaking one of Alertmanager's rules
    # When it is created
    # Then it is refused with the reason
    with pytest.raises(SilenceError, match=message):
        make(**kwargs)


def test_expire_active_and_pending():
    # Given an active and a pending silence
    active, pending = make(), make(start=T0 + 600)
    # When both are expired at T0+60
    ended, never_started = active.expire(T0 + 60), pending.expire(T0 + 60)
    # Then the active one ends now, the pending one starts and ends now, both are expired
    assert (ended.starts_at, ended.ends_at) == (T0, T0 + 60)
    assert (never_started.starts_at, never_started.ends_at) == (T0 + 60, T0 + 60)
    assert ended.state(T0 + 60) is SilenceState.EXPIRED
    assert never_started.state(T0 + 60) is SilenceState.EXPIRED
    # And an expired silence cannot be expired again
    with pytest.raises(SilenceError, match="already expired"):
        ended.expire(T0 + 61)


def test_api_json_round_trip():
    # Given a silence with every matcher kind
    s = make('a="1", b!="2", c=~"3.*", d!~"4"', updated_at=T0 - 5)
    # When it is written in the v2 API shape and read back
    data = s.to_api(now=T0 + 1)
    # Then the shape is Alertmanager's and the round trip is exact
    assert data["status"] == {"state": "active"}
    assert data["startsAt"] == "2023-11-14T22:13:20.000Z"
    assert data["matchers"][2] == {"name": "c", "value": "3.*", "isRegex": True, "isEqual": True}
    assert set(data) == {"id", "status", "updatedAt", "matchers", "startsAt", "endsAt", "createdBy", "comment"}
    assert Silence.from_api(data) == s


def test_new_silence_from_postable_body():
    # Given a PostableSilence body without id
    body = {
        "matchers": [{"name": "team", "value": "db", "isRegex": False}],
        "startsAt": "2023-11-14T22:13:20Z",
        "endsAt": "2023-11-14T23:13:20+00:00",
        "createdBy": "bob",
        "comment": "deploy",
    }
    # When it is read with a new id at T0
    s = Silence.from_api(body, silence_id="new-id", now=T0)
    # Then it gets the id, isEqual defaults to true, and the update time is now
    assert s.id == "new-id"
    assert str(s.matchers[0]) == 'team="db"'
    assert s.updated_at == T0
    # And a body already ended, missing a field, or with a bad time is refused
    with pytest.raises(SilenceError, match="in the past"):
        Silence.from_api(body, silence_id="x", now=T0 + 7200)
    with pytest.raises(SilenceError, match="comment is required"):
        Silence.from_api({k: v for k, v in body.items() if k != "comment"}, silence_id="x")
    with pytest.raises(SilenceError, match="RFC 3339"):
        Silence.from_api({**body, "startsAt": "yesterday"}, silence_id="x")


def test_time_format_round_trip():
    # Given a time with milliseconds
    # Then it is written as Alertmanager does and parsed back
    assert format_time(T0 + 0.25) == "2023-11-14T22:13:20.250Z"
    assert parse_time("2023-11-14T22:13:20.250Z", "t") == T0 + 0.25
    with pytest.raises(SilenceError, match="time zone"):
        parse_time("2023-11-14T22:13:20", "t")
