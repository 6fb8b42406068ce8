"""``GET /api/v1/admin/models`` (admin role): a tenant's per-service models, their shadows and promotion log.

Per service: the current and the shadow model (version, when trained, the window and points it was
trained on, its features), since when the shadow runs and how it did beside the current model
(``shadow_stats``: minutes, alarms of each, agreement), and the registry's log, newest first
(novacron.detect.registry). ``service`` narrows the answer to one service; ``tenant`` is for the
operator's admin, as on the other admin routes.
"""

from __future__ import annotations

from novacron.auth import Principal
from novacron.detect.registry import ModelRegistry, models_report
from novacron.query.keys_api import managed_tenant
from novacron.query.policy_api import Params, Response, _error


def get_models(registry: ModelRegistry, principal: Principal, params: Params) -> Response:
    """GET: the tenant's services with models (or only ``service``), as models_report answers them."""
    tenant = managed_tenant(principal, params)
    if not isinstance(tenant, str):
        return tenant
    services = params.get("service", [])
    if len(services) > 1:
        return _error(400, "service: give at most one service")
    service = services[0] if services else None
    try:
        report = models_report(registry, tenant, service)
    except ValueError as exc:  # a service name that cannot be a model path
        return _error(400, f"service: {exc}")
    if service is not None and not report:
        return _error(404, f"service {service!r} of tenant {tenant!r} has no models")
    return 200, {"status": "success", "data": {"tenant": tenant, "services": report}}
