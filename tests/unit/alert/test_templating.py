"""Alert templates: Go text/template semantics and Prometheus's functions, formatted as Go formats."""

from __future__ import annotations

import math

import pytest

from novacron.alert.gofmt import go_float_text, go_parse_float, go_sprintf
from novacron.alert.templating import (
    TemplateSyntaxError,
    alert_template_data,
    check_alert_template,
    expand_alert_template,
    humanize,
    humanize1024,
    humanize_duration,
    humanize_percentage,
    humanize_timestamp,
    parse_template,
)

LABELS = {"__name__": "http_errors", "job": "api", "instance": "10.0.0.1:9100"}


def expand(text: str, value: float = 1234.5, labels: dict[str, str] | None = None) -> str:
    data = alert_template_data(LABELS if labels is None else labels, {"cluster": "eu-1"}, "http://prom:9090/x", value)
    return expand_alert_template(text, "__alert_Test", data)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (1, "1"),
        (999.9, "999.9"),
        (1234.5, "1.234k"),
        (1234567, "1.235M"),
        (-2500, "-2.5k"),
        (0.012345, "12.35m"),
        (0.000001, "1u"),
        (1e30, "1e+06Y"),
        (math.inf, "+Inf"),
        (math.nan, "NaN"),
    ],
)
def test_humanize_uses_si_prefixes_with_four_significant_digits(value: float, text: str) -> None:
    # Given a value, When humanized, Then it reads as Prometheus writes it
    assert humanize(value) == text


@pytest.mark.parametrize(
    ("value", "text"), [(1, "1"), (1024, "1ki"), (1536, "1.5ki"), (5 * 1024**3, "5Gi"), (0.5, "0.5"), (-2048, "-2ki")]
)
def test_humanize1024_uses_binary_prefixes(value: float, text: str) -> None:
    # Given a value, When humanized in base 1024, Then binary prefixes are used (only above 1 in magnitude)
    assert humanize1024(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (1.5, "1.5s"),
        (59, "59s"),
        (61, "1m 1s"),
        (3661, "1h 1m 1s"),
        (90061, "1d 1h 1m 1s"),
        (-61, "-1m 1s"),
        (0.0012, "1.2ms"),
        (0.000002, "2us"),
    ],
)
def test_humanize_duration(seconds: float, text: str) -> None:
    # Given seconds, When humanized as a duration, Then days/hours/minutes/seconds or sub-second prefixes
    assert humanize_duration(seconds) == text


def test_humanize_percentage_and_timestamp() -> None:
    # Given a ratio and a Unix time, When humanized, Then a percentage and Go's UTC time text
    assert humanize_percentage(0.12345) == "12.35%"
    assert humanize_timestamp(1_700_000_000) == "2023-11-14 22:13:20 +0000 UTC"
    assert humanize_timestamp(1_700_000_000.5) == "2023-11-14 22:13:20.5 +0000 UTC"


def test_humanize_accepts_numeric_strings_as_prometheus_does() -> None:
    # Given a label value holding a number, When humanized, Then it is parsed as a float first
    assert expand('{{ humanize "2048" }} {{ humanize1024 "2048" }}') == "2.048k 2ki"


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("{{ $value }}", "1234.5"),
        ("{{ .Value }}", "1234.5"),
        ("{{ $labels.job }}/{{ .Labels.instance }}", "api/10.0.0.1:9100"),
        ("{{ $labels.missing }}|", "|"),
        ("{{ $externalLabels.cluster }} {{ .ExternalURL }}", "eu-1 http://prom:9090/x"),
        ('{{ $labels.job | toUpper }} {{ toLower "ABC" }} {{ title "disk is full" }}', "API abc Disk Is Full"),
        ('{{ reReplaceAll "(.*):(\\\\d+)" "$1 port ${2}" $labels.instance }}', "10.0.0.1 port 9100"),
        ('{{ printf "%.1f%%" $value }} {{ printf "%5s|%-5s|%03d" "a" "b" 7 }}', "1234.5% " + "    a|b    |007"),
        ('{{ printf "%d" "x" }} {{ printf "%s" }}', "%!d(string=x) %!s(MISSING)"),
        ("{{ if gt $value 1000.0 }}big{{ else if gt $value 10.0 }}mid{{ else }}small{{ end }}", "big"),
        ("{{ if lt $value 10.0 }}small{{ else if gt $value 1000.0 }}big{{ end }}", "big"),
        ('{{ if and (eq $labels.job "api") (ne $labels.instance "") }}yes{{ end }}', "yes"),
        ("{{ if or (not true) false }}x{{ else }}y{{ end }}", "y"),
        ('{{ if eq $labels.job "db" "api" }}one of{{ end }}', "one of"),
        (
            "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
            "__name__=http_errors;instance=10.0.0.1:9100;job=api;",
        ),
        ("{{ range $labels }}{{ . }}{{ break }}{{ end }}", "http_errors"),
        ("{{ with $labels.job }}job {{ . }}{{ end }}{{ with $labels.none }}x{{ else }} none{{ end }}", "job api none"),
        ("a  {{- 1 -}}  b {{/* a comment */}}c", "a1b c"),
        ("{{ $x := 3 }}{{ $x = 4 }}{{ $x }}", "4"),
        ('{{ len $labels }} {{ index $labels "job" }} {{ print 1 2 "a" }}', "3 api 1 2a"),
        ("{{ 1e6 }} {{ 0.5 }} {{ 100000.0 }}", "1e+06 0.5 100000"),
        ("{{ `raw {{` }}", "raw {{"),
    ],
)
def test_expansion(template: str, text: str) -> None:
    # Given a template, When expanded for an alert, Then the text is what Prometheus produces
    assert expand(template) == text


def test_value_prints_as_go_prints_floats() -> None:
    # Given large and small values, When printed with {{ $value }}, Then Go's %v form is used
    assert [expand("{{ $value }}", v) for v in (1e6, 123456.0, 1e-5, 0.25)] == ["1e+06", "123456", "1e-05", "0.25"]


def test_execution_errors_become_prometheus_error_text() -> None:
    # Given templates that fail while running
    # When expanded
    bad_number = expand('{{ humanize "abc" }}')
    bad_compare = expand("{{ if gt $value 1 }}x{{ end }}")
    bad_field = expand("{{ .Nope }}")

    # Then the text says so as Prometheus's does, with the failing command
    assert bad_number.startswith(
        "<error expanding template: error executing template __alert_Test: template: __alert_Test:1:"
    )
    assert (
        'at <humanize "abc">: error calling humanize: strconv.ParseFloat: parsing "abc": invalid syntax>' in bad_number
    )
    assert "incompatible types for comparison" in bad_compare
    assert "can't evaluate field Nope" in bad_field


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{{ nope }}", 'function "nope" not defined'),
        ("{{ $undefined }}", 'undefined variable "$undefined"'),
        ("{{ if true }}x", "unexpected EOF"),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ $value ", "unclosed action"),
        ("{{ break }}", "{{break}} outside {{range}}"),
        ("{{ $value | }}", "missing value for command"),
        ('{{ define "x" }}{{ end }}', "not supported"),
    ],
)
def test_parse_errors_are_reported(template: str, error: str) -> None:
    # Given a template that does not parse
    # When checked as a rule file check does, Then the error is named
    message = check_alert_template(template, "__A")
    assert message is not None
    assert error in message
    # and when expanded, Prometheus's error text comes out instead of a crash
    assert expand(template).startswith("<error expanding template: error parsing template __alert_Test")


def test_parse_errors_carry_the_line() -> None:
    # Given a template whose third line is broken, When parsed, Then the error names line 3
    with pytest.raises(TemplateSyntaxError) as caught:
        parse_template("a\nb\n{{ nope }}", "t")
    assert caught.value.line == 3


def test_variables_declared_in_a_block_end_with_it() -> None:
    # Given a variable declared inside an if, used after its end
    # When checked, Then it is undefined there
    message = check_alert_template("{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}", "__A")
    assert message is not None
    assert 'undefined variable "$x"' in message


def test_go_number_parsing_is_stricter_than_python() -> None:
    # Given texts Python's float() would take but Go's ParseFloat would not
    for text in (" 1", "1_000", "infinity1", ""):
        with pytest.raises(ValueError, match="invalid syntax"):
            go_parse_float(text)
    # Then Go's spellings still parse
    assert go_parse_float("+Inf") == math.inf
    assert go_parse_float("0x1p-2") == 0.25
    assert go_parse_float("1e3") == 1000


def test_go_float_formats() -> None:
    # Given floats, When formatted as strconv does, Then the 'e' shortest form matches Go's
    assert [go_float_text(v, "e") for v in (1.0, 0.5, 1234.5, -2e-7)] == ["1e+00", "5e-01", "1.2345e+03", "-2e-07"]
    assert go_sprintf("%v %g %.3e %x", [1.5, 1e21, 1234.5, 255]) == "1.5 1e+21 1.234e+03 ff"
    assert go_sprintf("%d", [1, 2]) == "1%!(EXTRA int=2)"
