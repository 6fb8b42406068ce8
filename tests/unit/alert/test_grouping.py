"""The dispatcher's timers and notification decisions, against Alertmanager's documented behaviour."""

from __future__ import annotations

import json
import textwrap

import pytest

from novacron.alert.amconfig import parse_config
from novacron.alert.grouping import Alert, Dispatcher, InvalidAlert, go_quote, labelset_string
from novacron.alert.matchers import parse_matchers
from novacron.alert.silences import Silence

T0 = 1_700_000_000.0

CONFIG = """\
global: {resolve_timeout: 5m}
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
  routes:
    - matchers: [team="db"]
      receiver: db
      group_by: [alertname, cluster]
      continue: true
    - matchers: [team="db"]
      receiver: quiet
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1/hook"}]
  - name: db
    webhook_configs: [{url: "http://127.0.0.1/hook"}]
    slack_configs: [{api_url: "https://hooks.slack.com/x"}]
  - name: quiet
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [cluster]
"""


@pytest.fixture
def config():
    return parse_config(textwrap.dedent(CONFIG))


@pytest.fixture
def dispatcher(config):
    return Dispatcher(config)


def alert(name: str = "HighLatency", starts_at: float = T0, ends_at: float | None = None, **labels: str) -> Alert:
    return Alert({"alertname": name, **labels}, starts_at=starts_at, ends_at=ends_at)


def summary(notifications):
    return [
        (n.receiver, n.integration, n.at - T0, sorted(a.labels["alertname"] for a in n.firing),
         sorted(a.labels["alertname"] for a in n.resolved))
        for n in notifications
    ]  # fmt: skip


def test_first_notification_after_group_wait(dispatcher):
    # Given an alert received at T0
    dispatcher.receive([alert()], now=T0)
    # When flushed before and at group_wait
    early = dispatcher.flush(now=T0 + 29)
    due = dispatcher.flush(now=T0 + 30)
    # Then nothing is sent before group_wait, one notification at it, with Alertmanager's group key
    assert early == []
    assert summary(due) == [("team", "webhook[0]", 30.0, ["HighLatency"], [])]
    assert due[0].group_key == '{}:{alertname="HighLatency"}'
    assert due[0].group_labels == {"alertname": "HighLatency"}
    assert dispatcher.flush(now=T0 + 31) == []  # returned once


def test_old_alert_flushes_at_once(dispatcher):
    # Given an alert that started longer than group_wait ago (e.g. after a restart)
    dispatcher.receive([alert(starts_at=T0 - 60)], now=T0)
    # Then its new group notifies immediately
    assert summary(dispatcher.flush(now=T0)) == [("team", "webhook[0]", 0.0, ["HighLatency"], [])]


def test_alerts_joining_a_group_wait_for_group_interval(dispatcher):
    # Given a group that notified at T0+30 about alert A (grouped by alertname: one group per name,
    # so B here is a second instance of the same alertname)
    later = T0 + 3600  # Prometheus sends an end time ahead; it is refreshed on each evaluation
    dispatcher.receive([alert(instance="a", ends_at=later)], now=T0)
    dispatcher.flush(now=T0 + 30)
    # When a second instance arrives at T0+60
    dispatcher.receive([alert(instance="b", ends_at=later)], now=T0 + 60)
    # Then it is sent at the next group_interval tick (T0+330), not before, with both alerts
    assert dispatcher.flush(now=T0 + 329) == []
    (n,) = dispatcher.flush(now=T0 + 330)
    assert n.at == T0 + 330
    assert [a.labels["instance"] for a in n.firing] == ["a", "b"]


def test_alerts_arriving_during_group_wait_are_batched(dispatcher):
    # Given two instances arriving 10 s apart within group_wait
    dispatcher.receive([alert(instance="a")], now=T0)
    dispatcher.receive([alert(instance="b")], now=T0 + 10)
    # Then one notification carries both at T0+30
    (n,) = dispatcher.flush(now=T0 + 30)
    assert len(n.firing) == 2


def test_unchanged_group_repeats_after_repeat_interval(dispatcher):
    # Given a firing alert kept alive (re-sent every minute, as Prometheus does) after its first notification
    dispatcher.receive([alert()], now=T0)
    dispatcher.flush(now=T0 + 30)
    sent = []
    for minute in range(1, 72):
        dispatcher.receive([alert()], now=T0 + 60 * minute)
        sent += dispatcher.flush(now=T0 + 60 * minute)
    # Then it is re-sent only on the first group_interval tick strictly past repeat_interval (1h05m after)
    assert [n.at - T0 for n in sent] == [30.0 + 3900.0]


def test_resolved_sent_once_then_group_dropped(dispatcher):
    # Given a notified alert that then resolves explicitly
    dispatcher.receive([alert()], now=T0)
    dispatcher.flush(now=T0 + 30)
    dispatcher.receive([alert(ends_at=T0 + 100)], now=T0 + 100)
    # Then the resolution is sent once at the next tick, and the group is gone afterwards
    assert summary(dispatcher.flush(now=T0 + 330)) == [("team", "webhook[0]", 330.0, [], ["HighLatency"])]
    assert dispatcher.flush(now=T0 + 10_000) == []
    assert dispatcher.next_due() is None


def test_send_resolved_is_per_integration(dispatcher):
    # Given a db alert (webhook: send_resolved true; slack: false) that fires then resolves
    db = {"team": "db", "cluster": "c1"}
    dispatcher.receive([alert(**db)], now=T0)
    first = dispatcher.flush(now=T0 + 30)
    dispatcher.receive([alert(ends_at=T0 + 60, **db)], now=T0 + 60)
    second = dispatcher.flush(now=T0 + 330)
    # Then both integrations got the firing alert (the receiver without integrations nothing, the
    # root route not at all because the db route matched), only the webhook the resolution
    assert sorted((n.receiver, n.integration) for n in first) == [("db", "slack[0]"), ("db", "webhook[0]")]
    assert summary(second) == [("db", "webhook[0]", 330.0, [], ["HighLatency"])]
    assert first[0].group_key == '{}/{team="db"}:{alertname="HighLatency", cluster="c1"}'


def test_resolved_only_without_earlier_notification_is_not_sent(dispatcher):
    # Given an alert that fires and resolves within group_wait
    dispatcher.receive([alert()], now=T0)
    dispatcher.receive([alert(ends_at=T0 + 10)], now=T0 + 10)
    # Then nobody is told about it
    assert dispatcher.flush(now=T0 + 400) == []


def test_alert_without_end_resolves_after_resolve_timeout(dispatcher):
    # Given an alert sent once without ends_at (global resolve_timeout 5m)
    dispatcher.receive([alert()], now=T0)
    dispatcher.flush(now=T0 + 30)
    # When it is never re-sent
    # Then it is resolved at the first tick after T0+5m
    assert summary(dispatcher.flush(now=T0 + 330)) == [("team", "webhook[0]", 330.0, [], ["HighLatency"])]


def test_new_firing_alert_notifies_even_when_others_resolve(dispatcher):
    # Given a notified instance a; then a resolves and b fires before the next tick
    dispatcher.receive([alert(instance="a")], now=T0)
    dispatcher.flush(now=T0 + 30)
    dispatcher.receive([alert(instance="a", ends_at=T0 + 40), alert(instance="b")], now=T0 + 40)
    # Then the tick notifies b firing and a resolved
    (n,) = dispatcher.flush(now=T0 + 330)
    assert [a.labels["instance"] for a in n.firing] == ["b"]
    assert [a.labels["instance"] for a in n.resolved] == ["a"]


def test_inhibited_alert_is_left_out_until_source_resolves(dispatcher):
    # Given a critical and a warning in cluster c1, and a warning in c2
    later = T0 + 3600
    crit = alert("DbDown", ends_at=later, team="db", cluster="c1", severity="critical")
    warn1 = alert("DbSlow", ends_at=later, team="db", cluster="c1", severity="warning")
    warn2 = alert("DbSlow", ends_at=later, team="db", cluster="c2", severity="warning")
    dispatcher.receive([crit, warn1, warn2], now=T0)
    # When the groups flush
    first = dispatcher.flush(now=T0 + 30)
    # Then the c1 warning is inhibited, the c2 one is not
    keys = {(n.group_labels.get("alertname"), n.group_labels.get("cluster")) for n in first}
    assert keys == {("DbDown", "c1"), ("DbSlow", "c2")}
    assert dispatcher.muted_by(warn1, T0 + 30)[0].startswith("inhibited by ")
    # And once the critical resolves, the c1 warning is sent at its group's next tick
    dispatcher.receive([alert("DbDown", ends_at=T0 + 100, team="db", cluster="c1", severity="critical")], now=T0 + 100)
    later = dispatcher.flush(now=T0 + 330)
    assert {(n.group_labels["alertname"], n.group_labels["cluster"], n.status) for n in later} == {
        ("DbDown", "c1", "resolved"),
        ("DbSlow", "c1", "firing"),
    }


def test_silenced_alert_is_not_notified_while_the_silence_is_active(config):
    # Given a silence on instance a from T0 to T0+100
    silence = Silence("s1", tuple(parse_matchers('instance="a"')), T0, T0 + 100, "alice", "maintenance")
    dispatcher = Dispatcher(config, silences=[silence])
    dispatcher.receive([alert(instance="a")], now=T0)
    # Then nothing is sent while it is active, and the alert is sent at the first tick after it ends
    assert dispatcher.flush(now=T0 + 30) == []
    assert dispatcher.muted_by(alert(instance="a"), T0 + 30) == ["s1"]
    for t in range(60, 400, 60):
        dispatcher.receive([alert(instance="a")], now=T0 + t)
    assert summary(dispatcher.flush(now=T0 + 330)) == [("team", "webhook[0]", 330.0, ["HighLatency"], [])]


def test_state_round_trips_through_json(config):
    # Given two dispatchers fed the same story, one saved and resumed between every step
    story = [
        (T0, [alert(instance="a"), alert("Other", team="db", cluster="c1")]),
        (T0 + 40, [alert(instance="b")]),
        (T0 + 100, [alert(instance="a", ends_at=T0 + 100)]),
        (T0 + 700, [alert(instance="b")]),
    ]
    straight, resumed_state = Dispatcher(config), Dispatcher(config).to_dict()
    got_straight, got_resumed = [], []
    for now, alerts in story:
        straight.receive(alerts, now)
        got_straight += straight.flush(now + 1)
        d = Dispatcher.from_dict(config, json.loads(json.dumps(resumed_state)))
        d.receive(alerts, now)
        got_resumed += d.flush(now + 1)
        resumed_state = d.to_dict()
    # Then both sent exactly the same notifications
    assert [n.to_dict() for n in got_resumed] == [n.to_dict() for n in got_straight]
    assert len(got_straight) >= 3


def test_changed_route_tree_regroups_held_alerts(config):
    # Given state saved under one tree with a firing alert already notified
    d = Dispatcher(config)
    d.receive([alert(starts_at=T0)], now=T0)
    d.flush(now=T0 + 30)
    other = parse_config(
        "route: {receiver: ops, group_by: [alertname]}\nreceivers: [{name: ops, inbox_configs: [{}]}]\n"
    )
    # When it is resumed under a different tree
    resumed = Dispatcher.from_dict(other, d.to_dict())
    # Then the held alert is routed again (an old alert: flushed at once) to the new receiver
    assert summary(resumed.flush(now=T0 + 60)) == [("ops", "inbox[0]", 60.0, ["HighLatency"], [])]


@pytest.mark.parametrize(
    "bad",
    [
        Alert({}, starts_at=T0),
        Alert({"bad-name": "x"}, starts_at=T0),
        Alert({"a": ""}, starts_at=T0),
        Alert({"a": "b"}, starts_at=T0, ends_at=T0 - 1),
    ],
)
def test_invalid_alerts_are_refused_before_anything_changes(dispatcher, bad):
    # Given a batch with one invalid alert
    # When it is received
    # Then it is refused and the valid one was not taken either
    with pytest.raises(InvalidAlert):
        dispatcher.receive([alert(), bad], now=T0)
    assert dispatcher.flush(now=T0 + 100) == []


def test_group_key_quoting_is_gos():
    # Given label values with quotes, newlines and non-printable characters
    # Then they are quoted as Go's %q does
    assert go_quote('a"b\n\x01é') == '"a\\"b\\n\\x01é"'
    assert labelset_string({"b": "2", "a": "1"}) == '{a="1", b="2"}'


MUTED_CONFIG = """\
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: [team="db"]
      receiver: team
      mute_time_intervals: [nights]
    - matchers: [team="web"]
      receiver: team
      active_time_intervals: [nights]
receivers:
  - name: team
    webhook_configs: [{url: "http://127.0.0.1/hook"}]
time_intervals:
  - name: nights
    time_intervals: [{times: [{start_time: "00:00", end_time: "06:00"}]}]
"""
NIGHT = 1_709_604_000.0  # 2024-03-05 02:00 UTC


def test_a_muted_route_sends_nothing_until_its_mute_ends():
    # Given a route muted at night, and an alert on it at 02:00 (firing until noon)
    dispatcher = Dispatcher(parse_config(MUTED_CONFIG))
    dispatcher.receive([alert("DbDown", starts_at=NIGHT, ends_at=NIGHT + 10 * 3600, team="db")], now=NIGHT)

    # When the group's flushes fall due through the night, and past 06:00
    night = dispatcher.flush(now=NIGHT + 4 * 3600 - 60)
    morning = dispatcher.flush(now=NIGHT + 4 * 3600 + 300)

    # Then nothing was sent at night, and the first flush after 06:00 notifies the firing alert
    assert night == []
    assert len(morning) == 1
    assert morning[0].at == NIGHT + 30 + 48 * 300  # group_wait, then the 48th group_interval: 06:00:30
    assert [a.labels["alertname"] for a in morning[0].firing] == ["DbDown"]


def test_an_alert_resolved_while_muted_is_never_sent():
    # Given a muted route whose alert fires and resolves in the night
    dispatcher = Dispatcher(parse_config(MUTED_CONFIG))
    dispatcher.receive([alert("DbDown", starts_at=NIGHT, team="db")], now=NIGHT)
    dispatcher.receive([alert("DbDown", starts_at=NIGHT, ends_at=NIGHT + 600, team="db")], now=NIGHT + 600)

    # Then nothing is ever sent, and the group is gone
    assert dispatcher.flush(now=NIGHT + 6 * 3600) == []
    assert dispatcher.next_due() is None


def test_an_active_interval_route_sends_only_inside_it():
    # Given a route active only at night, and an alert on it at 05:50 (firing all day)
    dispatcher = Dispatcher(parse_config(MUTED_CONFIG))
    start = NIGHT + 3 * 3600 + 50 * 60
    dispatcher.receive([alert("WebSlow", starts_at=start, ends_at=start + 86_400, team="web")], now=start)

    # When its flushes fall due at 05:50:30, then every 5 minutes through the day (runs every hour)
    sent = [n for hour in range(13) for n in dispatcher.flush(now=start + 60 + hour * 3600)]

    # Then only the night-time flush notifies (the repeats fall due by day, when the route is muted)
    assert [n.at - start for n in sent] == [30.0]


def test_the_route_muted_check_reads_the_route_s_intervals():
    # Given the muted config's routes
    dispatcher = Dispatcher(parse_config(MUTED_CONFIG))
    root, db, web = dispatcher.root, *dispatcher.root.routes
    noon = NIGHT + 10 * 3600

    # Then the db route is muted at night only, the web route by day only, the root never
    assert dispatcher.route_muted(db, NIGHT)
    assert not dispatcher.route_muted(db, noon)
    assert dispatcher.route_muted(web, noon)
    assert not dispatcher.route_muted(web, NIGHT)
    assert not dispatcher.route_muted(root, NIGHT)
    assert not dispatcher.route_muted(root, noon)
