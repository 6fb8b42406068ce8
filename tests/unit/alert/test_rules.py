"""Rule files: the model, line-precise validation errors (all of them), and the API shape."""

from __future__ import annotations

import pytest

from novacron.alert.durations import format_duration, parse_duration_ms
from novacron.alert.rules import AlertingRule, RecordingRule, RuleFileError, parse_rule_file

GOOD = """\
groups:
  - name: api
    interval: 30s
    limit: 10
    query_offset: 1m
    labels:
      team: core
    rules:
      - record: job:errors:sum
        expr: sum by (job) (errors_total)
        labels:
          tier: "1"
      - alert: HighErrors
        expr: job:errors:sum > 5
        for: 5m
        keep_firing_for: 10m
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.job }} at {{ humanize $value }}"
"""


def issues_of(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(RuleFileError) as caught:
        parse_rule_file(text, "t.yml")
    return [(i.line, i.column, i.message) for i in caught.value.issues]


def test_a_valid_file_becomes_the_model() -> None:
    # Given a file with a recording and an alerting rule
    # When it is parsed
    parsed = parse_rule_file(GOOD, "api.yml")

    # Then groups and rules carry every field, durations in milliseconds
    group = parsed.groups[0]
    assert (group.name, group.interval_ms, group.limit, group.query_offset_ms) == ("api", 30_000, 10, 60_000)
    assert group.labels == {"team": "core"}
    record, alert = group.rules
    assert record == RecordingRule("job:errors:sum", "sum by (job) (errors_total)", {"tier": "1"}, line=9)
    assert isinstance(alert, AlertingRule)
    assert (alert.for_ms, alert.keep_firing_for_ms, alert.line) == (300_000, 600_000, 13)
    assert alert.annotations == {"summary": "{{ $labels.job }} at {{ humanize $value }}"}


def test_to_json_has_the_shape_of_the_rules_api() -> None:
    # Given a parsed file
    parsed = parse_rule_file(GOOD, "api.yml")

    # When it is shown as /api/v1/rules would
    data = parsed.to_json()

    # Then groups and rules have Prometheus's fields, never evaluated
    group = data["groups"][0]
    assert (group["name"], group["file"], group["interval"], group["limit"]) == ("api", "api.yml", 30.0, 10)
    recording, alerting = group["rules"]
    assert recording["type"] == "recording"
    assert recording["query"] == "sum by (job) (errors_total)"
    assert alerting["type"] == "alerting"
    assert alerting["duration"] == 300.0
    assert alerting["keepFiringFor"] == 600.0
    assert alerting["state"] == "inactive"
    assert alerting["health"] == "unknown"
    assert alerting["alerts"] == []
    assert alerting["lastEvaluation"] == "0001-01-01T00:00:00Z"


def test_every_error_is_reported_with_its_line_and_column() -> None:
    # Given a file with many problems
    text = """\
groups:
  - name: g
    interval: 1x
    rules:
      - alert: A
        expr: sum(up
        labels:
          bad-label: x
        annotations:
          s: "{{ $value "
      - record: a:b
        expr: up
        for: 1m
      - record: not valid
        expr: up
      - expr: up
        severity: page
  - name: g
    rules: []
"""
    # When it is parsed
    found = issues_of(text)

    # Then each problem points at its node, in file order
    assert [(line, col) for line, col, _ in found] == [
        (3, 15),
        (6, 15),
        (8, 11),
        (10, 14),
        (13, 9),
        (14, 17),
        (16, 9),
        (17, 9),
        (18, 5),
    ]
    messages = [m for _, _, m in found]
    assert "not a valid duration string" in messages[0]
    assert messages[1].startswith('group "g", rule 1, "A": could not parse expression: ')
    assert messages[2] == 'group "g", rule 1, "A": invalid label name: bad-label'
    assert "error parsing template __A" in messages[3]
    assert messages[4] == 'group "g", rule 2, "a:b": invalid field \'for\' in recording rule'
    assert messages[5].endswith("invalid recording rule name: not valid")
    assert messages[6].endswith("one of 'record' or 'alert' must be set")
    assert messages[7].startswith("field severity not found in a rule")
    assert messages[8].startswith('groupname: "g" is repeated')


def test_the_error_text_names_the_source_and_positions() -> None:
    # Given a rule with both record and alert
    text = "groups:\n- name: g\n  rules:\n  - alert: A\n    record: a\n    expr: up\n"

    # When it is parsed
    with pytest.raises(RuleFileError) as caught:
        parse_rule_file(text, "team.yml")

    # Then the message reads like promtool's, file:line:column first
    assert str(caught.value) == "team.yml:4:5: group \"g\", rule 1, \"a\": only one of 'record' and 'alert' must be set"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("groups:\n- name: g\n  rules:\n  - alert: A\n", (4, 5, "field 'expr' must be set")),
        ("groups:\n- name: ''\n", (2, 9, "Groupname must not be empty")),
        ("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 5 min\n", (6, 10, "not a valid duration")),
        (
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    annotations: {a: b}\n",
            (6, 5, "'annotations'"),
        ),
        ("groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    labels: {__name__: x}\n", (6, 14, "__name__")),
        ("groups:\n- name: g\n  limit: many\n", (3, 10, "limit must be a non-negative integer")),
        ("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    expr: down\n", (6, 5, 'mapping key "expr"')),
        ("groups: {a: 1}\n", (1, 9, "groups must be a list")),
        (
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      x: '{{ nope }}'\n",
            (7, 10, "nope"),
        ),
        ("groups: [\n", (2, 1, "invalid YAML")),
    ],
)
def test_single_problems(text: str, expected: tuple[int, int, str]) -> None:
    # Given a file with one problem
    # When it is parsed
    found = issues_of(text)

    # Then that problem is reported at its node
    assert len(found) == 1
    line, column, message = found[0]
    assert (line, column) == expected[:2]
    assert expected[2] in message


def test_a_template_error_on_a_later_line_of_a_block_points_at_that_line() -> None:
    # Given an annotation whose second line has a bad action
    text = (
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n"
        "    annotations:\n      s: |\n        ok\n        {{ end }}\n"
    )

    # When it is parsed, Then the error names the line of the template error
    (line, _, message) = issues_of(text)[0]
    assert line == 8
    assert "unexpected {{end}}" in message


def test_an_empty_file_has_no_groups() -> None:
    # Given an empty file, When parsed, Then it is valid and empty
    assert parse_rule_file("").groups == ()


@pytest.mark.parametrize(
    ("text", "ms"),
    [("0", 0), ("5m", 300_000), ("1h30m", 5_400_000), ("1d", 86_400_000), ("1w", 604_800_000), ("1s500ms", 1500)],
)
def test_durations_parse_as_prometheus_does(text: str, ms: int) -> None:
    # Given a duration, When parsed, Then it is the milliseconds Prometheus would take
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "5", "5 m", "1m1h", "-1m", "1.5h"])
def test_bad_durations_are_refused(text: str) -> None:
    # Given a malformed duration, When parsed, Then it is refused
    with pytest.raises(ValueError, match="duration"):
        parse_duration_ms(text)


def test_durations_format_back() -> None:
    # Given milliseconds, When formatted, Then Prometheus's notation comes out
    assert [format_duration(ms) for ms in (0, 90_000, 5_400_000, 1500)] == ["0s", "1m30s", "1h30m", "1s500ms"]
