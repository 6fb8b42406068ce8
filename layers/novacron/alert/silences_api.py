"""Silences in Alertmanager's v2 API shape, so that amtool-style clients work.

- ``GET /api/v2/silences`` (read role): the tenant's silences, active first (soonest ending first), then
  pending (soonest starting first), then expired (latest ended first), as Alertmanager sorts them.
  ``filter`` (repeatable; ``name="value"`` matchers, or a ``{...}`` list) keeps the silences that have,
  for every filter matcher, a matcher of that name whose value the filter matches (Alertmanager's rule).
- ``GET /api/v2/silence/{id}`` (read role): one silence; 404 when unknown.
- ``POST /api/v2/silences`` (admin role): a ``PostableSilence``; ``createdBy`` defaults to the API key's
  id. Without ``id`` a new silence (a start in the past becomes now); with one, an update: in place when
  Alertmanager would (same matchers, an active silence keeping its start, a pending one not moved into
  the past), else the old silence is expired and a new one created. Answers ``{"silenceID": "..."}``.
- ``DELETE /api/v2/silence/{id}`` (admin role): expire it; 404 when unknown, 409 when already expired.

Errors are JSON strings, as Alertmanager's API answers them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from novacron.alert.matchers import AlertMatcher, MatcherError, parse_matchers
from novacron.alert.silences import Silence, SilenceError, SilenceState
from novacron.alert.state import AlertingStore
from novacron.auth import Principal
from novacron.query.keys_api import managed_tenant
from novacron.query.prom_api import Params, _params

V2Response = tuple[int, Any]  # the body is a list, an object or (errors) a string
ID_RE = re.compile(r"[A-Za-z0-9-]{1,64}")
MAX_SILENCES = 1_000  # pending and active ones per tenant (Alertmanager's limits.max_silences)
MAX_MATCHERS = 64
MAX_COMMENT = 4_096
_ORDER = {SilenceState.ACTIVE: 0, SilenceState.PENDING: 1, SilenceState.EXPIRED: 2}


def _sort_key(silence: Silence, now: float) -> tuple[int, float]:
    state = silence.state(now)
    when = {
        SilenceState.ACTIVE: silence.ends_at,
        SilenceState.PENDING: silence.starts_at,
        SilenceState.EXPIRED: -silence.ends_at,
    }[state]
    return _ORDER[state], when


def _matches_filter(silence: Silence, matchers: Sequence[AlertMatcher]) -> bool:
    patterns = {m.name: m.value for m in silence.matchers}
    return all(m.name in patterns and m.matches(patterns[m.name]) for m in matchers)


def list_silences(store: AlertingStore, tenant: str, params: Params, now: float) -> V2Response:
    """``GET /api/v2/silences``."""
    try:
        matchers = [m for text in _params(params, "filter") for m in parse_matchers(text)]
    except MatcherError as exc:
        return 400, f"bad matcher in filter: {exc}"
    kept = [s for s in store.silences(tenant) if _matches_filter(s, matchers)]
    return 200, [s.to_api(now) for s in sorted(kept, key=lambda s: _sort_key(s, now))]


def _find(store: AlertingStore, tenant: str, silence_id: str) -> Silence | None:
    if ID_RE.fullmatch(silence_id) is None:
        return None
    return next((s for s in store.silences(tenant) if s.id == silence_id), None)


def get_silence(store: AlertingStore, tenant: str, silence_id: str, now: float) -> V2Response:
    """``GET /api/v2/silence/{id}``."""
    found = _find(store, tenant, silence_id)
    if found is None:
        return 404, f"silence {silence_id} not found"
    return 200, found.to_api(now)


def _updatable_in_place(old: Silence, new: Silence, now: float) -> bool:
    """Alertmanager's ``canUpdate``: what an update may change without becoming a new silence."""
    if old.matchers != new.matchers:
        return False
    state = old.state(now)
    if state is SilenceState.ACTIVE:
        return new.starts_at == old.starts_at and new.ends_at >= now
    if state is SilenceState.PENDING:
        return new.starts_at >= now
    return False


def _tenant_or_refusal(principal: Principal, params: Params) -> str | V2Response:
    tenant = managed_tenant(principal, params)
    return tenant if isinstance(tenant, str) else (tenant[0], tenant[1]["error"])


def post_silence(
    store: AlertingStore,
    principal: Principal,
    params: Params,
    raw: bytes,
    now: float,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> V2Response:
    """``POST /api/v2/silences``: ``raw`` is the JSON body; answers the silence's id."""
    tenant = _tenant_or_refusal(principal, params)
    if not isinstance(tenant, str):
        return tenant
    try:
        body = json.loads(raw)
    except ValueError:
        return 400, "the body must be JSON (a PostableSilence)"
    if not isinstance(body, dict):
        return 400, "the body must be a JSON object (a PostableSilence)"
    wanted = body.get("id") or None
    if wanted is not None and (not isinstance(wanted, str) or ID_RE.fullmatch(wanted) is None):
        return 400, "id: must be the id of an existing silence (letters, digits and '-')"
    if not body.get("createdBy"):
        body = {**body, "createdBy": principal.key_id}  # who made it: the key, unless the client says
    try:
        silence = Silence.from_api(body, silence_id=wanted or new_id(), now=now)
    except SilenceError as exc:
        return 400, str(exc)
    if len(silence.matchers) > MAX_MATCHERS:
        return 400, f"matchers: at most {MAX_MATCHERS} per silence"
    if len(silence.comment) > MAX_COMMENT or len(silence.created_by) > 256:
        return 400, f"comment: at most {MAX_COMMENT} characters (createdBy: at most 256)"
    existing = store.silences(tenant)
    old = next((s for s in existing if s.id == wanted), None)
    if wanted is not None:
        if old is None:
            return 404, f"silence {wanted} not found"
        if _updatable_in_place(old, silence, now):
            store.put_silence(tenant, silence)
            return 200, {"silenceID": silence.id}
    # A replaced silence stops counting: it is expired below.
    live = sum(1 for s in existing if s.state(now) is not SilenceState.EXPIRED and s.id != wanted)
    if live >= MAX_SILENCES:
        return 400, f"exceeded maximum number of silences: {live} (limit: {MAX_SILENCES})"
    if old is not None:
        if old.state(now) is not SilenceState.EXPIRED:
            store.put_silence(tenant, old.expire(now))
        silence = replace(silence, id=new_id())
    if silence.starts_at < now:
        silence = replace(silence, starts_at=now)
    store.put_silence(tenant, silence)
    return 200, {"silenceID": silence.id}


def expire_silence(
    store: AlertingStore, principal: Principal, silence_id: str, params: Params, now: float
) -> V2Response:
    """``DELETE /api/v2/silence/{id}``."""
    tenant = _tenant_or_refusal(principal, params)
    if not isinstance(tenant, str):
        return tenant
    found = _find(store, tenant, silence_id)
    if found is None:
        return 404, f"silence {silence_id} not found"
    try:
        store.put_silence(tenant, found.expire(now))
    except SilenceError as exc:
        return 409, str(exc)
    return 200, {}
