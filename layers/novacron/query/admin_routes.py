"""The admin function's routes: which logic answers each (method, path) the wiring sends to it.

The handler turns an event into an AdminRequest and calls the endpoint of its route; this table is
the only per-route glue, so a new admin route is a wiring line plus an entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import unquote

from novacron.alert import alertmanager_api, correlation_api, incidents_api, rules_api, silences_api
from novacron.alert.incidents_api import Announcer, IncidentStore
from novacron.alert.state import AlertingStore
from novacron.auth import KeyStore, Principal
from novacron.detect.registry import ModelRegistry
from novacron.query import detection_api, keys_api, models_api, policy_api, retention_api
from novacron.query.detection_api import DetectionStore, FeedbackStore
from novacron.query.keys_api import managed_tenant
from novacron.query.policy_api import CardinalitySummary, Params, PolicyStore, Response
from novacron.query.retention_api import RetentionStore


@dataclass(frozen=True)
class AdminRequest:
    """What an admin endpoint needs of a request."""

    principal: Principal
    params: Params
    body: bytes
    content_type: str  # without parameters, lower case ("" when absent)
    path: Mapping[str, str]  # path parameters, as in the route ({key_id}, {metric})
    now: int  # epoch seconds

    def json_body(self) -> bytes:
        """The body if it is JSON (a form-encoded POST carries its fields as parameters instead)."""
        return self.body if self.content_type in ("", "application/json") else b""


class SettingsStore(PolicyStore, RetentionStore, DetectionStore, Protocol):
    """The tenant-settings table: ingest, retention and detection policies."""


Endpoint = Callable[[AdminRequest], Response]
Endpoints = dict[tuple[str, str], Endpoint]


def admin_endpoints(
    keys: KeyStore,
    settings: SettingsStore,
    index: CardinalitySummary,
    anomalies: FeedbackStore,
    models: ModelRegistry,
    alerting: AlertingStore,
    incidents: IncidentStore,
    announcer: Announcer,
) -> dict[tuple[str, str], Endpoint]:
    """The endpoint of every admin route, by (method, path as declared in the wiring)."""

    def metric(r: AdminRequest) -> str:
        # Metric names hold no '%': unquoting undoes a client's or gateway's encoding of ':' only.
        return unquote(r.path["metric"])

    approvals = "/api/v1/admin/cardinality/approvals"
    return {
        ("GET", "/api/v1/admin/keys"): lambda r: keys_api.handle(keys, r.principal, "GET", r.params, r.now, b""),
        ("POST", "/api/v1/admin/keys"): lambda r: keys_api.handle(
            keys, r.principal, "POST", r.params, r.now, r.json_body()
        ),
        ("DELETE", "/api/v1/admin/keys/{key_id}"): lambda r: keys_api.revoke(
            keys, r.principal, r.path["key_id"], r.params, r.now
        ),
        ("GET", "/api/v1/admin/ingest-policy"): lambda r: policy_api.get_policy(settings, r.principal, r.params),
        ("PUT", "/api/v1/admin/ingest-policy"): lambda r: policy_api.put_policy(
            settings, r.principal, r.params, r.body, r.now
        ),
        ("GET", "/api/v1/admin/cardinality"): lambda r: policy_api.cardinality(
            settings, index, r.principal, r.params, r.now * 1000
        ),
        ("GET", approvals): lambda r: policy_api.list_approvals(settings, r.principal, r.params),
        ("PUT", approvals + "/{metric}"): lambda r: policy_api.put_approval(
            settings, r.principal, metric(r), r.params, r.body, r.now
        ),
        ("DELETE", approvals + "/{metric}"): lambda r: policy_api.delete_approval(
            settings, r.principal, metric(r), r.params, r.now
        ),
        ("GET", "/api/v1/admin/retention"): lambda r: retention_api.get_retention(settings, r.principal, r.params),
        ("PUT", "/api/v1/admin/retention"): lambda r: retention_api.put_retention(
            settings, r.principal, r.params, r.body, r.now
        ),
        ("GET", "/api/v1/admin/retention/history"): lambda r: retention_api.retention_history(
            settings, r.principal, r.params
        ),
        ("GET", "/api/v1/admin/detection"): lambda r: detection_api.get_detection(settings, r.principal, r.params),
        ("PUT", "/api/v1/admin/detection"): lambda r: detection_api.put_detection(
            settings, r.principal, r.params, r.body, r.now
        ),
        ("GET", "/api/v1/admin/detection/history"): lambda r: detection_api.detection_history(
            settings, r.principal, r.params
        ),
        # Feedback changes what training learns from: an admin's call, served here rather than by the
        # read-only query function.
        ("POST", "/api/v1/anomalies/{id}/feedback"): lambda r: detection_api.post_feedback(
            anomalies, r.principal, r.path["id"], r.params, r.json_body(), r.now
        ),
        ("GET", "/api/v1/admin/models"): lambda r: models_api.get_models(models, r.principal, r.params),
        **_alerting_endpoints(alerting, incidents, announcer),
    }


def _alerting_endpoints(alerting: AlertingStore, incidents: IncidentStore, announcer: Announcer) -> Endpoints:
    """Rule files, the Alertmanager configuration, correlation settings, silences and incident actions
    (docs/alerting.md)."""
    files = "/api/v1/rules/files/{name}"
    endpoints: Endpoints = {
        ("GET", "/api/v1/rules/files"): lambda r: rules_api.list_rule_files(alerting, r.principal, r.params),
        ("GET", files): lambda r: rules_api.get_rule_file(alerting, r.principal, r.path["name"], r.params),
        ("PUT", files): lambda r: rules_api.put_rule_file(
            alerting, r.principal, r.path["name"], r.params, r.body, r.content_type, r.now
        ),
        ("DELETE", files): lambda r: rules_api.delete_rule_file(alerting, r.principal, r.path["name"], r.params),
        ("GET", "/api/v1/admin/alertmanager"): lambda r: alertmanager_api.get_config(alerting, r.principal, r.params),
        ("PUT", "/api/v1/admin/alertmanager"): lambda r: alertmanager_api.put_config(
            alerting, r.principal, r.params, r.body, r.content_type, r.now
        ),
        ("GET", "/api/v1/admin/correlation"): lambda r: correlation_api.get_correlation(
            alerting, r.principal, r.params
        ),
        ("PUT", "/api/v1/admin/correlation"): lambda r: correlation_api.put_correlation(
            alerting, r.principal, r.params, r.body, r.content_type, r.now
        ),
        ("POST", "/api/v2/silences"): lambda r: silences_api.post_silence(
            alerting, r.principal, r.params, r.body, r.now
        ),
        ("DELETE", "/api/v2/silence/{id}"): lambda r: silences_api.expire_silence(
            alerting, r.principal, r.path["id"], r.params, r.now
        ),
    }
    for action in incidents_api.ACTIONS:
        endpoints[("POST", f"/api/v1/incidents/{{id}}/{action}")] = _incident_action(incidents, announcer, action)
    return endpoints


def _incident_action(incidents: IncidentStore, announcer: Announcer, action: str) -> Endpoint:
    def endpoint(r: AdminRequest) -> Response:
        tenant = managed_tenant(r.principal, r.params)
        if not isinstance(tenant, str):
            return tenant
        return incidents_api.act(
            incidents, announcer, tenant, r.path["id"], action, r.principal.key_id, r.json_body(), r.now * 1000
        )

    return endpoint
