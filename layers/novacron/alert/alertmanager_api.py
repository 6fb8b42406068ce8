"""``/api/v1/admin/alertmanager``: a tenant's Alertmanager-style configuration (admin role).

- ``GET``: the stored YAML with every secret (webhook and Slack URLs, keys, passwords, HTTP credentials)
  replaced by ``<secret>``, as Alertmanager shows its configuration; the rest of the text (comments,
  order) is as uploaded. Until one is stored, the default (:data:`DEFAULT_CONFIG_TEXT`: every alert to the
  local inbox, grouped by incident) with version 0.
- ``PUT``: the body is the YAML (at most 1 MB), validated by ``novacron.alert.amconfig.parse_config``
  (400 ``line N: ...``); ``?version=N`` makes it conditional (409 when the stored version moved on). A
  value still reading ``<secret>`` (a GET's answer sent back unchanged) is refused: the real secret is
  not known here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from novacron.alert.amconfig import DEFAULT_CONFIG_TEXT, ConfigError, parse_config
from novacron.alert.state import AlertingStore
from novacron.alert.uploads import api_error, write_versioned, yaml_text
from novacron.auth import Principal
from novacron.query.keys_api import managed_tenant
from novacron.query.prom_api import Params, Response, success

MASK = "<secret>"
# The routing every tenant has until it stores its own: one inbox notification per incident.
# Keys whose value is a secret wherever they appear (receivers, ``global``, ``http_config``).
SECRET_KEYS = frozenset(
    {
        "api_url",
        "api_key",
        "service_key",
        "routing_key",
        "hmac_secret",
        "auth_password",
        "auth_secret",
        "slack_api_url",
        "opsgenie_api_key",
        "smtp_auth_password",
        "smtp_auth_secret",
        "password",
        "credentials",
        "bearer_token",
        "client_secret",
    }
)
# A webhook's URL often carries a token: Alertmanager treats it as a secret too.
_SECRET_IN = {"webhook_configs": frozenset({"url"})}


def _secret_values(node: yaml.Node | None, parent_section: str = "") -> Iterator[tuple[str, yaml.Node]]:
    """Every (key, value node) of the document whose value is a secret."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = str(key.value)
            secret = name in SECRET_KEYS or name in _SECRET_IN.get(parent_section, ())
            if secret and isinstance(value, yaml.ScalarNode):
                yield name, value
            else:
                yield from _secret_values(value, name)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _secret_values(item, parent_section)


def masked(text: str) -> str:
    """The configuration with each secret value replaced by ``<secret>`` (the rest kept byte for byte)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    spans = sorted(((v.start_mark.index, v.end_mark.index) for _, v in _secret_values(root)), reverse=True)
    for start, end in spans:
        text = text[:start] + MASK + text[end:]
    return text


def _unmasked_value(text: str) -> str | None:
    """The ``line N: ...`` problem of a secret still reading ``<secret>``, or None (invalid YAML too: the
    configuration's parser names that problem)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    for name, value in _secret_values(root):
        if value.value == MASK:
            line = value.start_mark.line + 1
            return f"line {line}: {name} is {MASK}, the mask GET shows in place of a secret: give the real value"
    return None


def get_config(store: AlertingStore, principal: Principal, params: Params) -> Response:
    """``GET``: the configuration with its secrets masked, its version and provenance."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    stored = store.alertmanager_config(tenant)
    if stored is None:
        data: dict[str, Any] = {"config": DEFAULT_CONFIG_TEXT, "version": 0, "default": True}
        return success(data | {"updated_at": None, "updated_by": None})
    return success(
        {
            "config": masked(stored.text),
            "version": stored.version,
            "default": False,
            "updated_at": stored.updated_at,
            "updated_by": stored.updated_by,
        }
    )


def put_config(
    store: AlertingStore, principal: Principal, params: Params, body: bytes, content_type: str, now: int
) -> Response:
    """``PUT``: store a valid configuration; the answer names the new version, the receivers and warnings."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    text = yaml_text(body, content_type)
    if not isinstance(text, str):
        return text
    try:
        problem = _unmasked_value(text)
        if problem is not None:
            raise ConfigError(problem)
        config = parse_config(text)
    except ConfigError as exc:
        return api_error(400, "bad_data", f"invalid Alertmanager configuration: {exc}", [str(exc)])
    version = write_versioned(
        params,
        store.alertmanager_config(tenant),
        lambda expected: store.put_alertmanager_config(tenant, text, principal.key_id, now, expected),
        "the Alertmanager configuration",
    )
    if not isinstance(version, int):
        return version
    return success(
        {
            "version": version,
            "default": False,
            "updated_at": now,
            "updated_by": principal.key_id,
            "receivers": sorted(config.receivers),
            "warnings": list(config.warnings),
        }
    )
