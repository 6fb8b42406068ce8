"""The registry of per-service models (the multivariate Isolation Forests), over a versioned object store.

Layout, per tenant and service (in the models bucket, S3 object versioning on)::

    models/{tenant}/{service}/v{version:06d}.model   one trained model (ServiceModel.to_bytes), written once
    models/{tenant}/{service}/registry.json          which version is current and which in shadow, and the log

``registry.json`` holds ``current`` and ``shadow`` (versions or null), ``next_version`` (the next version
a trainer may take), ``shadow_since_ms`` (when the shadow was installed), ``shadow_stats`` (the scorer's
running comparison of the shadow with the current model), ``models`` (a summary of the current and shadow
models, so that the API need not load them) and ``log``: the last :data:`MAX_LOG` actions (trained,
shadowed, promoted, rejected, retired), each with when, which version, why and the figures behind it.

Every change of ``registry.json`` is a compare-and-swap: it is written only if the object is still the
one that was read (its ETag), so two trainers, or a trainer and the scorer, cannot overwrite each other's
change; the loser gets :class:`RegistryConflict` and tries again on its next run. A trainer first
*reserves* a version (``next_version`` + 1, one CAS), then writes the model object, then installs it (a
second CAS): a version number is never used twice, even by a trainer that dies half-way.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from novacron.detect.service_model import ServiceModel

PREFIX = "models/"
REGISTRY_FILE = "registry.json"
FORMAT = 1
MAX_LOG = 100
ACTIONS = ("trained", "shadowed", "promoted", "rejected", "retired")
# Tenants and services become object key segments: nothing that could walk out of the tenant's prefix.
_SEGMENT = re.compile(r"[^/\x00-\x1f]{1,200}")
_CACHED_MODELS = 256


class RegistryConflict(Exception):
    """The registry changed between reading and writing it (another trainer or the scorer was first)."""


class ModelStore(Protocol):
    """Objects with conditional writes (the models bucket; a dict in tests)."""

    def read(self, key: str) -> tuple[bytes, str] | None:
        """An object's bytes and its ETag, or None when it does not exist."""
        ...

    def write(self, key: str, data: bytes, *, etag: str | None = None, create_only: bool = False) -> str | None:
        """Store ``data`` if the object is still at ``etag`` (or, ``create_only``, does not exist yet): the
        new ETag, or None when that precondition failed."""
        ...

    def list_prefixes(self, prefix: str) -> list[str]:
        """The names directly under ``prefix`` (``a/b/`` under ``a/`` is ``b``)."""
        ...


@dataclass(frozen=True)
class ModelSummary:
    """What the API shows of a model without loading it."""

    version: int
    trained_at_ms: int
    start_ms: int
    end_ms: int
    points: int
    step_s: int
    features: tuple[str, ...]

    @classmethod
    def of(cls, model: ServiceModel) -> ModelSummary:
        """The summary of ``model``."""
        return cls(
            model.version,
            model.trained_at_ms,
            model.start_ms,
            model.end_ms,
            model.points,
            model.step_s,
            tuple(f.name for f in model.features),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {**self.__dict__, "features": list(self.features)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSummary:
        """The inverse of :meth:`to_json`."""
        return cls(**{**data, "features": tuple(data["features"])})


@dataclass(frozen=True)
class LogEntry:
    """One action on a service's models."""

    at_ms: int
    action: str  # one of ACTIONS
    version: int
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class RegistryState:
    """A service's registry as read (``etag`` None: nothing stored yet)."""

    tenant: str
    service: str
    current: int | None = None
    shadow: int | None = None
    next_version: int = 1
    shadow_since_ms: int | None = None
    shadow_stats: dict[str, Any] | None = None
    models: dict[int, ModelSummary] = field(default_factory=dict)
    log: tuple[LogEntry, ...] = ()
    etag: str | None = None

    def logged(self, *entries: LogEntry) -> RegistryState:
        """This state with ``entries`` appended to the log (the oldest dropped beyond MAX_LOG)."""
        return replace(self, log=(*self.log, *entries)[-MAX_LOG:])

    def to_json(self) -> dict[str, Any]:
        """The stored document."""
        return {
            "format": FORMAT,
            "tenant": self.tenant,
            "service": self.service,
            "current": self.current,
            "shadow": self.shadow,
            "next_version": self.next_version,
            "shadow_since_ms": self.shadow_since_ms,
            "shadow_stats": self.shadow_stats,
            "models": {str(v): m.to_json() for v, m in sorted(self.models.items())},
            "log": [e.to_json() for e in self.log],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], etag: str | None) -> RegistryState:
        """The inverse of :meth:`to_json`."""
        return cls(
            tenant=data["tenant"],
            service=data["service"],
            current=data.get("current"),
            shadow=data.get("shadow"),
            next_version=int(data.get("next_version", 1)),
            shadow_since_ms=data.get("shadow_since_ms"),
            shadow_stats=data.get("shadow_stats"),
            models={int(v): ModelSummary.from_json(m) for v, m in data.get("models", {}).items()},
            log=tuple(LogEntry(**e) for e in data.get("log", ())),
            etag=etag,
        )


def service_prefix(tenant: str, service: str) -> str:
    """The key prefix of a service's models (ValueError for a tenant or service unfit for a key)."""
    for what, value in (("tenant", tenant), ("service", service)):
        if not _SEGMENT.fullmatch(value) or value in (".", ".."):
            raise ValueError(f"{what} {value!r} cannot name a model path (1-200 characters, no '/')")
    return f"{PREFIX}{tenant}/{service}/"


def model_key(tenant: str, service: str, version: int) -> str:
    """The object key of one model version."""
    return f"{service_prefix(tenant, service)}v{version:06d}.model"


class ModelRegistry:
    """Reads and compare-and-swap writes of the registries, and the (immutable) model objects."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        # Model objects never change once written: a process-wide LRU of the decoded ones.
        self._models: OrderedDict[tuple[str, str, int], ServiceModel] = OrderedDict()

    def tenants(self) -> list[str]:
        """The tenants that have models, sorted."""
        return sorted(self.store.list_prefixes(PREFIX))

    def services(self, tenant: str) -> list[str]:
        """The services of ``tenant`` that have a registry, sorted."""
        return sorted(self.store.list_prefixes(f"{PREFIX}{tenant}/"))

    def state(self, tenant: str, service: str) -> RegistryState:
        """The service's registry (an empty one, ``etag`` None, when none is stored)."""
        found = self.store.read(service_prefix(tenant, service) + REGISTRY_FILE)
        if found is None:
            return RegistryState(tenant, service)
        data, etag = found
        return RegistryState.from_json(json.loads(data), etag)

    def save(self, state: RegistryState) -> RegistryState:
        """Write ``state`` if the stored registry is still the one it was read from; the state as now stored.

        Raises RegistryConflict when another writer changed it first.
        """
        key = service_prefix(state.tenant, state.service) + REGISTRY_FILE
        data = json.dumps(state.to_json(), separators=(",", ":")).encode()
        etag = self.store.write(key, data, etag=state.etag, create_only=state.etag is None)
        if etag is None:
            raise RegistryConflict(f"the registry of {state.tenant}/{state.service} changed meanwhile")
        return replace(state, etag=etag)

    def reserve_version(self, tenant: str, service: str) -> tuple[int, RegistryState]:
        """Take the service's next version number (a CAS on the registry): the version and the new state."""
        state = self.state(tenant, service)
        saved = self.save(replace(state, next_version=state.next_version + 1))
        return state.next_version, saved

    def put_model(self, model: ServiceModel) -> None:
        """Store a model (under a version reserved with :meth:`reserve_version`)."""
        self.store.write(model_key(model.tenant, model.service, model.version), model.to_bytes())
        self._remember((model.tenant, model.service, model.version), model)

    def model(self, tenant: str, service: str, version: int) -> ServiceModel:
        """One stored model version (KeyError when it is missing)."""
        key = (tenant, service, version)
        if key in self._models:
            self._models.move_to_end(key)
            return self._models[key]
        found = self.store.read(model_key(tenant, service, version))
        if found is None:
            raise KeyError(f"model {tenant}/{service} v{version} is missing from the store")
        model = ServiceModel.from_bytes(found[0])
        self._remember(key, model)
        return model

    def _remember(self, key: tuple[str, str, int], model: ServiceModel) -> None:
        self._models[key] = model
        while len(self._models) > _CACHED_MODELS:
            self._models.popitem(last=False)


def models_report(registry: ModelRegistry, tenant: str, service: str | None = None) -> list[dict[str, Any]]:
    """Per service (or only ``service``): current and shadow models, shadow stats and the log, newest first."""
    services = [service] if service is not None else registry.services(tenant)
    report = []
    for name in services:
        state = registry.state(tenant, name)
        if state.etag is None:
            continue

        def summary(version: int | None, state: RegistryState = state) -> dict[str, Any] | None:
            if version is None:
                return None
            known = state.models.get(version)
            return known.to_json() if known is not None else {"version": version}

        report.append(
            {
                "service": name,
                "current": summary(state.current),
                "shadow": summary(state.shadow),
                "shadow_since_ms": state.shadow_since_ms,
                "shadow_stats": state.shadow_stats,
                "next_version": state.next_version,
                "log": [e.to_json() for e in reversed(state.log)],
            }
        )
    return report
