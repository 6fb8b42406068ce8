"""Alertmanager-style configuration (0.25 schema): global, route, receivers, inhibit_rules, time_intervals.

``parse_config(text)`` returns an :class:`AlertmanagerConfig` or raises :class:`ConfigError` whose message
starts with ``line N:`` (1-based, from the YAML node at fault). It applies what Alertmanager applies:

- unknown fields are errors (Alertmanager parses strictly), duplicate keys too;
- the root route must name a receiver and have no matchers nor time intervals; every receiver a route
  names must exist; receiver names are unique; ``group_by`` is ``['...']`` or distinct label names;
  ``group_interval``/``repeat_interval`` are not zero (defaults 30s/5m/4h are applied in routing.py);
- each integration gets its provider's required fields, filled from ``global`` where Alertmanager does
  (Slack ``api_url``, Opsgenie ``api_key``/``api_url``, PagerDuty ``url``, e-mail ``from``/``smarthost``),
  and its ``send_resolved`` default (true for webhook, PagerDuty, Opsgenie, inbox; false for Slack, e-mail).

NovaCron extensions: ``webhook_configs[].hmac_secret`` (the webhook body is signed) and ``inbox_configs``
(the local inbox). ``templates`` are accepted and ignored with a warning (NovaCron renders messages
itself); other Alertmanager receiver kinds are refused by name. Secrets (:class:`Secret`) never appear in
a repr, a ``str`` or an error message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from novacron.alert.durations import parse_duration_ms
from novacron.alert.inhibit import InhibitRule
from novacron.alert.matchers import AlertMatcher, MatcherError, new_matcher, parse_matchers
from novacron.alert.timeintervals import Period, TimeIntervalError, active, parse_period

# Prometheus's legacy label names, which Alertmanager 0.25 requires in match/group_by/equal.
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"

DEFAULT_RESOLVE_TIMEOUT_S = 300.0
DEFAULT_PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_OPSGENIE_API_URL = "https://api.opsgenie.com/"

_GLOBAL_FIELDS = {
    "resolve_timeout", "http_config", "smtp_from", "smtp_hello", "smtp_smarthost", "smtp_auth_username",
    "smtp_auth_password", "smtp_auth_password_file", "smtp_auth_secret", "smtp_auth_identity",
    "smtp_require_tls", "slack_api_url", "slack_api_url_file", "pagerduty_url", "opsgenie_api_key",
    "opsgenie_api_key_file", "opsgenie_api_url", "wechat_api_url", "wechat_api_secret", "wechat_api_corp_id",
    "victorops_api_key", "victorops_api_key_file", "victorops_api_url", "telegram_api_url", "webex_api_url",
}  # fmt: skip
_ROUTE_FIELDS = {
    "receiver", "group_by", "continue", "matchers", "match", "match_re", "group_wait", "group_interval",
    "repeat_interval", "mute_time_intervals", "active_time_intervals", "routes",
}  # fmt: skip
_INHIBIT_FIELDS = {
    "source_match", "source_match_re", "source_matchers", "target_match", "target_match_re", "target_matchers",
    "equal",
}  # fmt: skip
_TOP_FIELDS = {"global", "route", "receivers", "inhibit_rules", "templates", "mute_time_intervals", "time_intervals"}
_UNSUPPORTED_KINDS = {
    "wechat_configs", "pushover_configs", "victorops_configs", "sns_configs", "telegram_configs",
    "webex_configs", "discord_configs",
}  # fmt: skip
# Per kind: the fields Alertmanager accepts (kept as presentation ``options`` unless read below).
_COMMON = {"send_resolved", "http_config"}
_KIND_FIELDS: dict[str, set[str]] = {
    "slack_configs": _COMMON | {
        "api_url", "api_url_file", "channel", "username", "color", "title", "title_link", "pretext", "text",
        "fields", "short_fields", "footer", "fallback", "callback_id", "icon_emoji", "icon_url", "image_url",
        "thumb_url", "link_names", "mrkdwn_in", "actions",
    },
    "pagerduty_configs": _COMMON | {
        "service_key", "service_key_file", "routing_key", "routing_key_file", "url", "client", "client_url",
        "description", "details", "images", "links", "source", "severity", "class", "component", "group",
    },
    "opsgenie_configs": _COMMON | {
        "api_key", "api_key_file", "api_url", "message", "description", "source", "details", "entity",
        "responders", "actions", "tags", "note", "priority", "update_alerts",
    },
    "webhook_configs": _COMMON | {"url", "url_file", "max_alerts", "hmac_secret"},
    "email_configs": _COMMON | {
        "to", "from", "hello", "smarthost", "auth_username", "auth_password", "auth_password_file",
        "auth_secret", "auth_identity", "headers", "html", "text", "require_tls", "tls_config",
    },
    "inbox_configs": {"send_resolved", "inbox"},
}  # fmt: skip
_SECRET_FIELDS = {"api_url", "service_key", "routing_key", "api_key", "hmac_secret", "auth_password", "auth_secret"}
_SEND_RESOLVED_DEFAULT = {
    "slack_configs": False,
    "email_configs": False,
    "pagerduty_configs": True,
    "opsgenie_configs": True,
    "webhook_configs": True,
    "inbox_configs": True,
}


DEFAULT_RECEIVER = "inbox"
# What applies to a tenant that stored no configuration: every alert to the local inbox, grouped by incident
# (an alert storm is one notification per incident).
DEFAULT_CONFIG_TEXT = f"""\
route:
  receiver: {DEFAULT_RECEIVER}
  group_by: [incident]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: {DEFAULT_RECEIVER}
    inbox_configs:
      - send_resolved: true
"""


class ConfigError(ValueError):
    """An invalid configuration; the message starts with ``line N:`` when a place is known."""


@dataclass(frozen=True)
class Secret:
    """A secret value: shown as ``<secret>`` everywhere but :meth:`reveal`."""

    value: str = field(repr=False)

    def reveal(self) -> str:
        """The secret itself, for the one place that sends it."""
        return self.value

    def __str__(self) -> str:
        return "<secret>"

    def __repr__(self) -> str:
        return "Secret(<secret>)"


@dataclass(frozen=True)
class Integration:
    """One entry of a receiver's ``*_configs`` list; ``name`` is Alertmanager's ``kind[index]``."""

    kind: str  # "slack", "pagerduty", "opsgenie", "webhook", "email", "inbox"
    index: int
    send_resolved: bool
    options: Mapping[str, Any] = field(default_factory=dict)  # presentation fields (title, text, ...)

    @property
    def name(self) -> str:
        """``slack[0]``, ``webhook[1]``, ...: how Alertmanager names an integration."""
        return f"{self.kind}[{self.index}]"


@dataclass(frozen=True)
class SlackConfig(Integration):
    """Slack incoming webhook (or ``chat.postMessage`` URL) and channel."""

    api_url: Secret = Secret("")
    channel: str = ""


@dataclass(frozen=True)
class PagerDutyConfig(Integration):
    """PagerDuty: Events API v2 ``routing_key`` or the v1 ``service_key``."""

    routing_key: Secret | None = None
    service_key: Secret | None = None
    url: str = DEFAULT_PAGERDUTY_URL


@dataclass(frozen=True)
class OpsgenieConfig(Integration):
    """Opsgenie alert API (Atlassian ends this REST API on 2027-04-05)."""

    api_key: Secret = Secret("")
    api_url: str = DEFAULT_OPSGENIE_API_URL


@dataclass(frozen=True)
class WebhookConfig(Integration):
    """A generic webhook; with ``hmac_secret`` (NovaCron) the body is signed with HMAC-SHA256."""

    url: str = ""
    max_alerts: int = 0
    hmac_secret: Secret | None = None


@dataclass(frozen=True)
class EmailConfig(Integration):
    """E-mail: recipients, sender and (for a real SMTP server) the smarthost."""

    to: str = ""
    sender: str = ""
    smarthost: str = ""
    auth_password: Secret | None = None


@dataclass(frozen=True)
class InboxConfig(Integration):
    """NovaCron's local inbox (the local stack's stand-in for real endpoints)."""

    inbox: str = ""


@dataclass(frozen=True)
class Receiver:
    """A named set of integrations; a receiver without any is valid and notifies nobody."""

    name: str
    integrations: tuple[Integration, ...] = ()


@dataclass(frozen=True)
class RouteConfig:
    """One node of the ``route`` tree as written: ``None`` means "inherit from the parent"."""

    receiver: str | None = None
    group_by: tuple[str, ...] | None = None
    group_by_all: bool = False
    matchers: tuple[AlertMatcher, ...] = ()
    continue_: bool = False
    group_wait: float | None = None
    group_interval: float | None = None
    repeat_interval: float | None = None
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class GlobalConfig:
    """The ``global`` section's values NovaCron uses."""

    resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT_S
    slack_api_url: Secret | None = None
    pagerduty_url: str = DEFAULT_PAGERDUTY_URL
    opsgenie_api_url: str = DEFAULT_OPSGENIE_API_URL
    opsgenie_api_key: Secret | None = None
    smtp_from: str = ""
    smtp_smarthost: str = ""
    smtp_auth_password: Secret | None = None


@dataclass(frozen=True)
class TimeInterval:
    """A named ``time_intervals`` entry (routes reference it by name): its periods as written and parsed."""

    name: str
    intervals: tuple[Mapping[str, Any], ...] = ()
    periods: tuple[Period, ...] = ()

    def active_at(self, at: float) -> bool:
        """Whether any of its periods contains the instant ``at`` (epoch seconds)."""
        return active(self.periods, at)


@dataclass(frozen=True)
class AlertmanagerConfig:
    """A parsed, validated configuration."""

    route: RouteConfig
    receivers: Mapping[str, Receiver]
    global_: GlobalConfig = GlobalConfig()
    inhibit_rules: tuple[InhibitRule, ...] = ()
    time_intervals: Mapping[str, TimeInterval] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def parse_config(text: str) -> AlertmanagerConfig:
    """Parse and validate an Alertmanager-style YAML document."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError(f"{where}invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if root is None or _is_null(root):
        raise ConfigError("no routes provided")
    top = _mapping(root, "the configuration", _TOP_FIELDS)
    warnings: list[str] = []
    if "templates" in top:
        warnings.append(f"line {_line(top['templates'])}: templates are ignored: NovaCron renders notifications itself")
    global_ = _global(top["global"]) if "global" in top else GlobalConfig()
    receivers = _receivers(top.get("receivers"), global_)
    intervals = _time_intervals(top)
    if "route" not in top or _is_null(top["route"]):
        raise ConfigError("no routes provided")
    route = _route(top["route"])
    _check_root(route, top["route"])
    _check_references(route, receivers, intervals)
    inhibit_node = top.get("inhibit_rules")
    rules = tuple(_inhibit_rule(n) for n in _sequence(inhibit_node)) if inhibit_node is not None else ()
    return AlertmanagerConfig(route, receivers, global_, rules, intervals, tuple(warnings))


# --- YAML node helpers: every error names the line of the node at fault ---


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _fail(node: yaml.Node, message: str) -> ConfigError:
    return ConfigError(f"line {_line(node)}: {message}")


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


def _mapping(node: yaml.Node, what: str, allowed: set[str]) -> dict[str, yaml.Node]:
    """A mapping's values by key; unknown or repeated keys are errors, null values are left out."""
    if _is_null(node):
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise _fail(node, f"{what} must be a mapping")
    out: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key not in allowed:
            raise _fail(key_node, f"field {key} not found in {what}")
        if key in out:
            raise _fail(key_node, f"key {key!r} already set in {what}")
        if not _is_null(value_node):
            out[key] = value_node
    return out


def _sequence(node: yaml.Node) -> list[yaml.Node]:
    if _is_null(node):
        return []
    if not isinstance(node, yaml.SequenceNode):
        raise _fail(node, "expected a list")
    return list(node.value)


def _str(node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise _fail(node, "expected a string")
    return str(node.value)


def _bool(node: yaml.Node) -> bool:
    # A YAML boolean only: a quoted 'yes' or a 1 is an error, as in Alertmanager.
    if not isinstance(node, yaml.ScalarNode) or node.tag != _BOOL_TAG:
        raise _fail(node, f"expected true or false, got {_plain(node)!r}")
    return bool(_plain(node))


def _str_list(node: yaml.Node) -> tuple[str, ...]:
    return tuple(_str(n) for n in _sequence(node))


def _str_map(node: yaml.Node, what: str) -> dict[str, tuple[str, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise _fail(node, f"{what} must be a mapping")
    return {str(k.value): (_str(v), k) for k, v in node.value}


def _plain(node: yaml.Node) -> Any:
    """A node as plain Python data (for presentation options and time interval specs)."""
    return yaml.SafeLoader(yaml.serialize(node)).get_single_data()


def _duration(node: yaml.Node) -> float:
    try:
        return parse_duration_ms(_str(node)) / 1000.0
    except ValueError as exc:
        raise _fail(node, str(exc)) from None


def _url(node: yaml.Node, what: str, secret: bool = False) -> str:
    """An http(s) URL with a host; a secret URL is never quoted back."""
    text = _str(node)
    parts = urlsplit(text)
    shown = "(value hidden)" if secret else repr(text)
    if parts.scheme not in ("http", "https"):
        raise _fail(node, f"{what} {shown}: unsupported scheme {parts.scheme!r} for URL")
    if not parts.hostname:
        raise _fail(node, f"{what} {shown}: missing host for URL")
    return text


def _label_names(node: yaml.Node, what: str) -> tuple[str, ...]:
    names = _str_list(node)
    for n, name in zip(_sequence(node), names, strict=True):
        if not _LABEL_NAME.fullmatch(name):
            raise _fail(n, f"{name!r} is not a valid label name in {what}")
    return names


# --- sections ---


def _global(node: yaml.Node) -> GlobalConfig:
    g = _mapping(node, "global", _GLOBAL_FIELDS)

    def secret(key: str) -> Secret | None:
        return Secret(_str(g[key])) if key in g else None

    return GlobalConfig(
        resolve_timeout=_duration(g["resolve_timeout"]) if "resolve_timeout" in g else DEFAULT_RESOLVE_TIMEOUT_S,
        slack_api_url=Secret(_url(g["slack_api_url"], "slack_api_url", secret=True)) if "slack_api_url" in g else None,
        pagerduty_url=_url(g["pagerduty_url"], "pagerduty_url") if "pagerduty_url" in g else DEFAULT_PAGERDUTY_URL,
        opsgenie_api_url=_url(g["opsgenie_api_url"], "opsgenie_api_url")
        if "opsgenie_api_url" in g
        else DEFAULT_OPSGENIE_API_URL,
        opsgenie_api_key=secret("opsgenie_api_key"),
        smtp_from=_str(g["smtp_from"]) if "smtp_from" in g else "",
        smtp_smarthost=_str(g["smtp_smarthost"]) if "smtp_smarthost" in g else "",
        smtp_auth_password=secret("smtp_auth_password"),
    )


def _receivers(node: yaml.Node | None, global_: GlobalConfig) -> dict[str, Receiver]:
    receivers: dict[str, Receiver] = {}
    for item in _sequence(node) if node is not None else []:
        fields = _mapping(item, "receiver", {"name"} | set(_KIND_FIELDS) | _UNSUPPORTED_KINDS)
        name = _str(fields["name"]) if "name" in fields else ""
        if not name:
            raise _fail(item, "missing name in receiver")
        if name in receivers:
            raise _fail(fields["name"], f"notification config name {name!r} is not unique")
        integrations: list[Integration] = []
        for kind, value in fields.items():
            if kind in _UNSUPPORTED_KINDS:
                supported = ", ".join(sorted(_KIND_FIELDS))
                raise _fail(value, f"receiver {name!r}: {kind} is not supported by NovaCron (supported: {supported})")
            if kind in _KIND_FIELDS:
                for index, entry in enumerate(_sequence(value)):
                    integrations.append(_integration(kind, index, entry, name, global_))
        receivers[name] = Receiver(name, tuple(integrations))
    return receivers


def _integration(kind: str, index: int, node: yaml.Node, receiver: str, g: GlobalConfig) -> Integration:
    f = _mapping(node, kind.removesuffix("s"), _KIND_FIELDS[kind])
    where = f"receiver {receiver!r} {kind}[{index}]"
    base: dict[str, Any] = {
        "kind": kind.removesuffix("_configs"),
        "index": index,
        "send_resolved": _bool(f["send_resolved"]) if "send_resolved" in f else _SEND_RESOLVED_DEFAULT[kind],
        "options": {k: _plain(v) for k, v in f.items() if k not in _SECRET_FIELDS and k != "send_resolved"},
    }

    def secret(key: str) -> Secret | None:
        return Secret(_str(f[key])) if key in f else None

    def exclusive(a: str, b: str) -> None:
        if a in f and b in f:
            raise _fail(node, f"{where}: at most one of {a} & {b} must be configured")

    if kind == "slack_configs":
        exclusive("api_url", "api_url_file")
        if "api_url" in f:
            api_url = Secret(_url(f["api_url"], f"{where} api_url", secret=True))
        elif g.slack_api_url is not None:
            api_url = g.slack_api_url
        elif "api_url_file" in f:
            raise _fail(node, f"{where}: api_url_file is not supported by NovaCron; give api_url")
        else:
            raise _fail(node, f"{where}: no global Slack API URL set")
        return SlackConfig(**base, api_url=api_url, channel=_str(f["channel"]) if "channel" in f else "")
    if kind == "pagerduty_configs":
        exclusive("routing_key", "routing_key_file")
        exclusive("service_key", "service_key_file")
        if not {"routing_key", "service_key"} & f.keys():
            raise _fail(node, f"{where}: missing service or routing key in PagerDuty config")
        url = _url(f["url"], f"{where} url") if "url" in f else g.pagerduty_url
        return PagerDutyConfig(**base, routing_key=secret("routing_key"), service_key=secret("service_key"), url=url)
    if kind == "opsgenie_configs":
        exclusive("api_key", "api_key_file")
        api_key = secret("api_key") or g.opsgenie_api_key
        if api_key is None:
            raise _fail(node, f"{where}: no global OpsGenie API Key set")
        opsgenie_url = _url(f["api_url"], f"{where} api_url") if "api_url" in f else g.opsgenie_api_url
        return OpsgenieConfig(**base, api_key=api_key, api_url=opsgenie_url)
    if kind == "webhook_configs":
        exclusive("url", "url_file")
        if "url" not in f:
            raise _fail(node, f"{where}: one of url or url_file must be configured")
        max_alerts = _str(f["max_alerts"]) if "max_alerts" in f else "0"
        if not max_alerts.isdigit():
            raise _fail(f["max_alerts"], f"{where}: max_alerts must be a non-negative integer")
        return WebhookConfig(
            **base, url=_url(f["url"], f"{where} url"), max_alerts=int(max_alerts), hmac_secret=secret("hmac_secret")
        )
    if kind == "email_configs":
        to = _str(f["to"]) if "to" in f else ""
        if not to:
            raise _fail(node, f"{where}: missing to address in email config")
        sender = _str(f["from"]) if "from" in f else g.smtp_from
        if not sender:
            raise _fail(node, f"{where}: no global mail from address set")
        smarthost = _str(f["smarthost"]) if "smarthost" in f else g.smtp_smarthost
        if not smarthost:
            raise _fail(node, f"{where}: no global SMTP smarthost set")
        password = secret("auth_password") or g.smtp_auth_password
        return EmailConfig(**base, to=to, sender=sender, smarthost=smarthost, auth_password=password)
    return InboxConfig(**base, inbox=_str(f["inbox"]) if "inbox" in f else receiver)


def _time_intervals(top: Mapping[str, yaml.Node]) -> dict[str, TimeInterval]:
    out: dict[str, TimeInterval] = {}
    for section in ("mute_time_intervals", "time_intervals"):
        for item in _sequence(top[section]) if section in top else []:
            f = _mapping(item, section.removesuffix("s"), {"name", "time_intervals"})
            name = _str(f["name"]) if "name" in f else ""
            if not name:
                raise _fail(item, f"missing name in {section.removesuffix('s')}")
            if name in out:
                raise _fail(f["name"], f"time interval {name!r} is not unique")
            nodes = _sequence(f["time_intervals"]) if "time_intervals" in f else []
            specs = tuple(_plain(n) for n in nodes)
            try:
                periods = tuple(parse_period(spec) for spec in specs)
            except TimeIntervalError as exc:
                raise _fail(f["time_intervals"], f"time interval {name!r}: {exc}") from None
            out[name] = TimeInterval(name, specs, periods)
    return out


def _matcher_list(node: yaml.Node) -> list[AlertMatcher]:
    out: list[AlertMatcher] = []
    for item in _sequence(node):
        try:
            out += parse_matchers(_str(item))
        except MatcherError as exc:
            raise _fail(item, str(exc)) from None
    return out


def _legacy_matchers(f: Mapping[str, yaml.Node], equal_key: str, regex_key: str) -> list[AlertMatcher]:
    """The deprecated ``match``/``match_re`` maps as matchers."""
    out: list[AlertMatcher] = []
    for key, op in ((equal_key, "="), (regex_key, "=~")):
        if key not in f:
            continue
        for name, (value, key_node) in _str_map(f[key], key).items():
            if not _LABEL_NAME.fullmatch(name):
                raise _fail(key_node, f"invalid label name {name!r}")
            try:
                out.append(new_matcher(name, op, value))
            except MatcherError as exc:
                raise _fail(key_node, str(exc)) from None
    return out


def _route(node: yaml.Node) -> RouteConfig:
    f = _mapping(node, "route", _ROUTE_FIELDS)
    group_by: tuple[str, ...] | None = None
    group_by_all = False
    if "group_by" in f:
        names: list[str] = []
        for item in _sequence(f["group_by"]):
            name = _str(item)
            if name == "...":
                group_by_all = True
            elif not _LABEL_NAME.fullmatch(name):
                raise _fail(item, f"invalid label name {name!r} in group_by list")
            elif name in names:
                raise _fail(item, f"duplicated label {name!r} in group_by")
            else:
                names.append(name)
        if names and group_by_all:
            raise _fail(f["group_by"], "cannot have wildcard group_by (`...`) and other labels at the same time")
        group_by = tuple(names)
    timers: dict[str, float | None] = {}
    for key in ("group_wait", "group_interval", "repeat_interval"):
        timers[key] = _duration(f[key]) if key in f else None
        if key != "group_wait" and timers[key] == 0:
            raise _fail(f[key], f"{key} cannot be zero")
    matchers = _legacy_matchers(f, "match", "match_re")
    if "matchers" in f:
        matchers += _matcher_list(f["matchers"])
    return RouteConfig(
        receiver=_str(f["receiver"]) if "receiver" in f else None,
        group_by=group_by,
        group_by_all=group_by_all,
        matchers=tuple(matchers),
        continue_=_bool(f["continue"]) if "continue" in f else False,
        group_wait=timers["group_wait"],
        group_interval=timers["group_interval"],
        repeat_interval=timers["repeat_interval"],
        mute_time_intervals=_str_list(f["mute_time_intervals"]) if "mute_time_intervals" in f else (),
        active_time_intervals=_str_list(f["active_time_intervals"]) if "active_time_intervals" in f else (),
        routes=tuple(_route(n) for n in _sequence(f["routes"])) if "routes" in f else (),
        line=_line(node),
    )


def _check_root(route: RouteConfig, node: yaml.Node) -> None:
    if not route.receiver:
        raise _fail(node, "root route must specify a default receiver")
    if route.matchers:
        raise _fail(node, "root route must not have any matchers")
    if route.mute_time_intervals:
        raise _fail(node, "root route must not have any mute time intervals")
    if route.active_time_intervals:
        raise _fail(node, "root route must not have any active time intervals")


def _check_references(route: RouteConfig, receivers: Mapping[str, Receiver], intervals: Mapping[str, Any]) -> None:
    for child in route.routes:
        _check_references(child, receivers, intervals)
    if route.receiver is not None and route.receiver not in receivers:
        raise ConfigError(f"line {route.line}: undefined receiver {route.receiver!r} used in route")
    for name in (*route.mute_time_intervals, *route.active_time_intervals):
        if name not in intervals:
            raise ConfigError(f"line {route.line}: undefined time interval {name!r} used in route")


def _inhibit_rule(node: yaml.Node) -> InhibitRule:
    f = _mapping(node, "inhibit rule", _INHIBIT_FIELDS)
    source = _legacy_matchers(f, "source_match", "source_match_re")
    target = _legacy_matchers(f, "target_match", "target_match_re")
    if "source_matchers" in f:
        source += _matcher_list(f["source_matchers"])
    if "target_matchers" in f:
        target += _matcher_list(f["target_matchers"])
    equal = _label_names(f["equal"], "equal") if "equal" in f else ()
    return InhibitRule(tuple(source), tuple(target), equal)
