"""``/api/v1/admin/correlation``: a tenant's correlation settings, declared topology and tiers (admin role).

- ``GET``: the stored document as uploaded (comments and order kept), its version and provenance, and
  ``settings``: the document complete, every default filled in. Until one is stored, the default
  (:data:`DEFAULT_TEXT`) with version 0.
- ``PUT``: the body is the document, YAML or JSON (at most 256 KB), validated by
  ``novacron.alert.correlation.parse_correlation``: 400 listing every problem in ``details``
  (``line N: field: message``); ``?version=N`` makes it conditional (409 when the stored version moved on).

The defaults shown are those of a default deployment; a deployment that tunes the alert function's
``correlation_window_s``, ``max_hops`` or ``reopen_window_s`` changes what an omitted field means.
"""

from __future__ import annotations

from novacron.alert.correlation import DEFAULT_TEXT, MAX_DOCUMENT_BYTES, CorrelationError, parse_correlation
from novacron.alert.state import AlertingStore
from novacron.alert.uploads import YAML_CONTENT_TYPES, api_error, write_versioned, yaml_text
from novacron.auth import Principal
from novacron.query.keys_api import managed_tenant
from novacron.query.prom_api import Params, Response, success

CONTENT_TYPES = (*YAML_CONTENT_TYPES, "application/json")


def get_correlation(store: AlertingStore, principal: Principal, params: Params) -> Response:
    """``GET``: the document, its version and provenance, and the settings it makes."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    stored = store.correlation_config(tenant)
    if stored is None:
        return success(
            {
                "config": DEFAULT_TEXT,
                "version": 0,
                "default": True,
                "updated_at": None,
                "updated_by": None,
                "settings": parse_correlation(DEFAULT_TEXT).to_json(),
            }
        )
    try:
        settings = parse_correlation(stored.text).to_json()
    except CorrelationError as exc:  # validated on upload: only a newer, stricter parser can refuse it
        settings = {"error": str(exc)}
    return success(
        {
            "config": stored.text,
            "version": stored.version,
            "default": False,
            "updated_at": stored.updated_at,
            "updated_by": stored.updated_by,
            "settings": settings,
        }
    )


def put_correlation(
    store: AlertingStore, principal: Principal, params: Params, body: bytes, content_type: str, now: int
) -> Response:
    """``PUT``: store a valid document; the answer names the new version and what the document declares."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    text = yaml_text(body, content_type, max_bytes=MAX_DOCUMENT_BYTES, content_types=CONTENT_TYPES)
    if not isinstance(text, str):
        return text
    try:
        config = parse_correlation(text)
    except CorrelationError as exc:
        problems = [str(p) for p in exc.problems]
        message = f"invalid correlation settings: {problems[0]}"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
        return api_error(400, "bad_data", message, problems)
    version = write_versioned(
        params,
        store.correlation_config(tenant),
        lambda expected: store.put_correlation_config(tenant, text, principal.key_id, now, expected),
        "the correlation settings",
    )
    if not isinstance(version, int):
        return version
    return success(
        {
            "version": version,
            "default": False,
            "updated_at": now,
            "updated_by": principal.key_id,
            "settings": config.to_json(),
            **config.summary(),
        }
    )
