"""Parsing and validating Alertmanager-style YAML (config/config.go's rules, with line numbers)."""

from __future__ import annotations

import textwrap

import pytest

from novacron.alert.amconfig import (
    ConfigError,
    EmailConfig,
    InboxConfig,
    OpsgenieConfig,
    PagerDutyConfig,
    Secret,
    SlackConfig,
    WebhookConfig,
    parse_config,
)
from novacron.alert.matchers import AlertMatcher


def config(text: str):
    return parse_config(textwrap.dedent(text))


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        config(text)
    return str(caught.value)


FULL = """\
global:
  resolve_timeout: 2m
  slack_api_url: https://hooks.slack.com/services/T000/B000/SECRETTOKEN
  opsgenie_api_key: og-secret
  smtp_from: alerts@example.com
  smtp_smarthost: smtp.example.com:587
templates: ['/etc/am/*.tmpl']
route:
  receiver: team
  group_by: [alertname, cluster]
  routes:
    - matchers: ['severity="critical"']
      match: {team: db}
      match_re: {service: "pg.*"}
      receiver: pager
      group_wait: 10s
      continue: true
receivers:
  - name: team
    slack_configs: [{channel: "#ops", title: "{{ .CommonLabels.alertname }}"}]
    email_configs: [{to: oncall@example.com}]
    inbox_configs: [{}]
  - name: pager
    pagerduty_configs: [{routing_key: pd-secret}]
    opsgenie_configs: [{priority: P1}]
    webhook_configs: [{url: "https://hooks.example.com/am", hmac_secret: hm-secret, max_alerts: 10}]
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_match: {severity: warning}
    equal: [cluster]
"""


def test_full_config_parses_with_defaults_and_global_fill_in():
    # Given a config using every supported receiver kind, global defaults and legacy matchers
    # When it is parsed
    c = config(FULL)
    # Then globals fill in what the integrations leave out, with each provider's send_resolved default
    slack, email, inbox = c.receivers["team"].integrations
    assert isinstance(slack, SlackConfig)
    assert slack.api_url.reveal().endswith("SECRETTOKEN")
    assert slack.channel == "#ops"
    assert slack.send_resolved is False
    assert slack.name == "slack[0]"
    assert slack.options["title"] == "{{ .CommonLabels.alertname }}"
    assert isinstance(email, EmailConfig)
    assert email.sender == "alerts@example.com"
    assert email.smarthost == "smtp.example.com:587"
    assert email.send_resolved is False
    assert isinstance(inbox, InboxConfig)
    assert inbox.inbox == "team"
    assert inbox.send_resolved is True
    pd, og, hook = c.receivers["pager"].integrations
    assert isinstance(pd, PagerDutyConfig)
    assert pd.routing_key == Secret("pd-secret")
    assert pd.send_resolved
    assert pd.url == "https://events.pagerduty.com/v2/enqueue"
    assert isinstance(og, OpsgenieConfig)
    assert og.api_key.reveal() == "og-secret"
    assert og.api_url == "https://api.opsgenie.com/"
    assert isinstance(hook, WebhookConfig)
    assert hook.max_alerts == 10
    assert hook.hmac_secret == Secret("hm-secret")
    assert c.global_.resolve_timeout == 120.0
    # And the child route holds the legacy and new matchers; unset timers stay None (inherited later)
    child = c.route.routes[0]
    assert set(child.matchers) == {
        AlertMatcher("severity", "=", "critical"),
        AlertMatcher("team", "=", "db"),
        AlertMatcher("service", "=~", "pg.*"),
    }
    assert child.group_wait == 10.0
    assert child.group_interval is None
    assert child.continue_
    assert c.route.group_by == ("alertname", "cluster")
    assert child.group_by is None
    # And the inhibit rule merges legacy and new forms; templates are ignored with a warning
    (rule,) = c.inhibit_rules
    assert rule.source_matchers == (AlertMatcher("severity", "=", "critical"),)
    assert rule.target_matchers == (AlertMatcher("severity", "=", "warning"),)
    assert rule.equal == ("cluster",)
    assert c.warnings == ("line 7: templates are ignored: NovaCron renders notifications itself",)


def test_secrets_never_show_in_reprs():
    # Given a config with secrets
    c = config(FULL)
    # When it is printed whole
    shown = repr(c) + str(c)
    # Then no secret value appears
    for secret in ("SECRETTOKEN", "og-secret", "pd-secret", "hm-secret"):
        assert secret not in shown
    assert str(Secret("x")) == "<secret>"


def test_secret_urls_are_not_echoed_in_errors():
    # Given a Slack api_url that is not a URL but holds a token
    message = error_of(
        """\
        route: {receiver: r}
        receivers:
          - name: r
            slack_configs: [{api_url: "hooks.slack.com/services/T/B/TOPSECRET"}]
        """
    )
    # Then the error says what is wrong without the value
    assert "TOPSECRET" not in message
    assert message.startswith("line 4:")
    assert "unsupported scheme" in message


def test_group_by_all_and_duration_forms():
    # Given group_by ['...'] and compound durations
    c = config(
        """\
        route: {receiver: r, group_by: ['...'], group_wait: 1m30s, group_interval: 1500ms, repeat_interval: 1d}
        receivers: [{name: r}]
        """
    )
    # Then grouping is by all labels and durations are in seconds
    assert c.route.group_by_all
    assert c.route.group_by == ()
    assert (c.route.group_wait, c.route.group_interval, c.route.repeat_interval) == (90.0, 1.5, 86400.0)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("receivers: [{name: r}]\n", None, "no routes provided"),
        ("route: {group_by: [a]}\nreceivers: [{name: r}]\n", 1, "root route must specify a default receiver"),
        ("route: {receiver: r, matchers: [a=b]}\nreceivers: [{name: r}]\n", 1, "root route must not have any matchers"),
        (
            "route:\n  receiver: r\n  routes:\n    - receiver: nope\nreceivers: [{name: r}]\n",
            4,
            "undefined receiver 'nope'",
        ),
        ("route: {receiver: r}\nreceivers:\n  - name: r\n  - name: r\n", 4, "'r' is not unique"),
        ("route:\n  receiver: r\n  recevier: x\nreceivers: [{name: r}]\n", 3, "field recevier not found in route"),
        ("route:\n  receiver: r\n  routes:\n    - matchers: ['a=\"b']\n", 4, "unescaped double quote"),
        ("route: {receiver: r}\nreceivers: [{name: r}]\nfoo: 1\n", 3, "field foo not found"),
        ("route:\n  receiver: r\n  group_wait: 5 minutes\n", 3, "not a valid duration string"),
        ("route:\n  receiver: r\n  group_interval: 0s\n", 3, "group_interval cannot be zero"),
        ("route:\n  receiver: r\n  group_by: ['...', a]\n", 3, "cannot have wildcard group_by"),
        ("route:\n  receiver: r\n  group_by: [a, a]\n", 3, "duplicated label 'a' in group_by"),
        ("route:\n  receiver: r\n  routes: [{continue: 'yes'}]\n", 3, "expected true or false"),
        ("route: {receiver: r}\nreceivers:\n  - name: r\n    webhook_configs: [{}]\n", 4, "one of url or url_file"),
        (
            "route: {receiver: r}\nreceivers:\n  - name: r\n    pagerduty_configs: [{}]\n",
            4,
            "missing service or routing key",
        ),
        (
            "route: {receiver: r}\nreceivers:\n  - name: r\n    opsgenie_configs: [{}]\n",
            4,
            "no global OpsGenie API Key",
        ),
        ("route: {receiver: r}\nreceivers:\n  - name: r\n    slack_configs: [{}]\n", 4, "no global Slack API URL"),
        (
            "route: {receiver: r}\nreceivers:\n  - name: r\n    email_configs: [{from: a@b, smarthost: 'h:1'}]\n",
            4,
            "missing to",
        ),
        ("route: {receiver: r}\nreceivers:\n  - name: r\n    email_configs: [{to: a@b}]\n", 4, "no global mail from"),
        ("route: {receiver: r}\nreceivers:\n  - name: r\n    sns_configs: [{}]\n", 4, "not supported by NovaCron"),
        (
            "route:\n  receiver: r\n  routes:\n    - mute_time_intervals: [x]\nreceivers: [{name: r}]\n",
            4,
            "undefined time interval 'x'",
        ),
        (
            "route: {receiver: r}\nreceivers: [{name: r}]\ninhibit_rules:\n  - equal: [a-b]\n",
            4,
            "not a valid label name",
        ),
        ("route: {receiver: r\n", None, "invalid YAML"),
    ],
)
def test_invalid_configs_name_the_line_and_the_problem(text, line, fragment):
    # Given an invalid config
    # When it is parsed
    message = error_of(text)
    # Then the error names the line (when there is one) and what is wrong
    assert fragment in message
    if line is not None:
        assert message.startswith(f"line {line}:"), message


def test_time_intervals_are_kept_by_name():
    # Given named time intervals, old and new sections
    c = config(
        """\
        route: {receiver: r, routes: [{receiver: r, matchers: [a=b], active_time_intervals: [work]}]}
        receivers: [{name: r}]
        mute_time_intervals: [{name: nights, time_intervals: [{times: [{start_time: "00:00", end_time: "06:00"}]}]}]
        time_intervals: [{name: work, time_intervals: [{weekdays: ["monday:friday"]}]}]
        """
    )
    # Then both are known by name, as written
    assert set(c.time_intervals) == {"nights", "work"}
    assert c.time_intervals["work"].intervals == ({"weekdays": ["monday:friday"]},)
