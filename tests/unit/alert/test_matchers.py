"""Alertmanager 0.25 matcher syntax and semantics (pkg/labels)."""

from __future__ import annotations

import pytest

from novacron.alert.matchers import (
    AlertMatcher,
    MatcherError,
    matchers_string,
    matches_labels,
    parse_matcher,
    parse_matchers,
    sorted_matchers,
)


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ('severity="critical"', "severity", "=", "critical"),
        ("severity=critical", "severity", "=", "critical"),
        ("  team  !=  db  ", "team", "!=", "db"),
        ('job=~"api|web"', "job", "=~", "api|web"),
        ("job!~api.*", "job", "!~", "api.*"),
        ('env=""', "env", "=", ""),
        ("env=", "env", "=", ""),
        ('msg="a \\"quoted\\" word"', "msg", "=", 'a "quoted" word'),
        ('msg="line\\nbreak"', "msg", "=", "line\nbreak"),
        ('path="C:\\\\dir"', "path", "=", "C:\\dir"),
        ('re="\\d+"', "re", "=", "\\d+"),  # a spurious escape stays a literal backslash
        ("a==b", "a", "=", "=b"),
        ("ns:name=x", "ns:name", "=", "x"),
        ('greeting="héllo wörld"', "greeting", "=", "héllo wörld"),
    ],
)
def test_parse_one_matcher(text, name, op, value):
    # Given a matcher in Alertmanager's syntax
    # When it is parsed
    m = parse_matcher(text)
    # Then name, operator and unescaped value are Alertmanager's
    assert (m.name, m.op, m.value) == (name, op, value)


@pytest.mark.parametrize(
    "text",
    ['1a="b"', "a~b", 'a="b', 'a="b"c"', 'a=b"', "=b", 'a=~"("', 'a=~"(?=x)"', 'a=~"(a)\\1"', "a-b=c"],
)
def test_bad_matchers_are_refused(text):
    # Given a malformed matcher (bad name, operator, quoting, or a regex RE2 rejects)
    # When it is parsed
    # Then it fails with a MatcherError naming the problem
    with pytest.raises(MatcherError):
        parse_matcher(text)


def test_parse_list_with_braces_quotes_and_trailing_comma():
    # Given the documented list forms
    # When they are parsed
    listed = parse_matchers('{foo = "bar", dings != "bums", }')
    quoted_comma = parse_matchers('{quote="She said: \\"Hi, ladies!\\""}')
    bare = parse_matchers("foo=bar,dings!=bums")
    # Then commas split outside quotes only, and braces and a trailing comma are optional
    assert listed == bare == [AlertMatcher("foo", "=", "bar"), AlertMatcher("dings", "!=", "bums")]
    assert quoted_comma == [AlertMatcher("quote", "=", 'She said: "Hi, ladies!"')]
    assert parse_matchers("{}") == []


def test_regexes_are_anchored_without_dotall():
    # Given regex matchers
    m = parse_matcher('svc=~"api.*"')
    negative = parse_matcher('svc!~"api|web"')
    # When label values are matched
    # Then the whole value must match, and "." does not cross a newline (Go's default)
    assert m.matches("api-gw")
    assert not m.matches("my-api")
    assert not m.matches("api\nx")
    assert not parse_matcher('a=~"x"').matches("x\n")
    assert negative.matches("queue")
    assert not negative.matches("web")
    assert negative.matches("")  # an absent label reads as "" and is not api|web


def test_absent_label_reads_as_empty():
    # Given matchers on a label that is not there
    # When a label set without it is matched
    # Then "=" to a value fails, "=" to "" and "!=" succeed
    labels = {"alertname": "X"}
    assert not matches_labels(parse_matchers("team=db"), labels)
    assert matches_labels(parse_matchers('team=""'), labels)
    assert matches_labels(parse_matchers("team!=db"), labels)


def test_canonical_string_and_order():
    # Given matchers in any order, one with characters that need escaping
    ms = parse_matchers('team="db", severity=~"crit.*", msg="say \\"hi\\"\\n", team!="db"')
    # When sorted and printed as Alertmanager does (route keys)
    text = matchers_string(sorted_matchers(ms))
    # Then order is by name, value, operator, and values are OpenMetrics-escaped
    assert text == '{msg="say \\"hi\\"\\n",severity=~"crit.*",team="db",team!="db"}'


def test_api_form():
    # Given each operator
    # When rendered in the v2 API form
    # Then isRegex/isEqual encode it
    forms = [parse_matcher(t).to_api() for t in ("a=1", "a!=1", "a=~1", "a!~1")]
    assert [(f["isRegex"], f["isEqual"]) for f in forms] == [(False, True), (False, False), (True, True), (True, False)]
