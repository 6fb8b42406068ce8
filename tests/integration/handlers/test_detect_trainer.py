"""The model trainer against moto: history written through ingest and writer → v1 current in S3 → a second
training installs a shadow → a third judges it (promoted or rejected), all logged and shown by the admin API."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from novacron.detect.trainer import MINUTE_MS
from novacron.local.handlers import load_handler, make_context
from novacron.local.resources import physical_name
from novacron.local.scheduler import scheduled_event
from novacron.wiring import DETECT_TRAINER, MODELS_BUCKET, WIRING
from tests.builders import RW_HEADERS, service_samples, timeseries, write_request
from tests.integration.handlers.conftest import Stack, body_json

HOUR_MS = 3_600_000
TRAINING = next(s for s in WIRING.schedules if s.function == DETECT_TRAINER)


@pytest.fixture
def history_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ingest accepts samples up to a day old, and a shadow is judged on the trainer's next run (no trial
    period), both set before the stack loads the handlers."""
    monkeypatch.setenv("NOVACRON_MAX_SAMPLE_AGE_S", "86400")
    monkeypatch.setenv("NOVACRON_SHADOW_TRIAL_S", "0")


def write_services(stack: Stack, start_ms: int, end_ms: int, faults: dict[str, tuple[int, int]] | None = None) -> None:
    """acme's api and payment services (tests.builders.service_samples) through ingest and the writer."""
    series = []
    for seed, service in enumerate(("api", "payment")):
        fault = (faults or {}).get(service)
        for labels, samples in service_samples(service, start_ms, end_ms, interval_ms=60_000, seed=seed, fault=fault):
            series.append(timeseries(labels, samples))
    response = stack.http(
        stack.ingest, "POST", "/api/v1/write", key=stack.keys["acme-ingest"], body=write_request(series),
        headers=RW_HEADERS,
    )  # fmt: skip
    assert response["statusCode"] == 204, body_json(response)
    assert stack.consume(stack.stream_event()) == {"batchItemFailures": []}


def minute_now() -> int:
    return int(time.time() * 1000) // MINUTE_MS * MINUTE_MS


@pytest.fixture
def trainer(history_window: None, stack: Stack) -> Any:
    """The trainer handler, loaded inside the moto stack."""
    fn = load_handler(WIRING.function(DETECT_TRAINER))
    return lambda: fn(scheduled_event(TRAINING), make_context(WIRING.function(DETECT_TRAINER)))


def registry_json(service: str, tenant: str = "acme") -> dict[str, Any]:
    s3 = boto3.client("s3", region_name="us-east-1")
    key = f"models/{tenant}/{service}/registry.json"
    return json.loads(s3.get_object(Bucket=physical_name(MODELS_BUCKET), Key=key)["Body"].read())


def test_training_promotes_v1_then_shadows_then_judges_with_a_log(history_window, stack, trainer):
    # Given four hours of acme's api and payment services, stored through the writer
    now = minute_now()
    write_services(stack, now - 4 * HOUR_MS, now)
    # When the trainer runs
    summary = trainer()
    # Then each service's v1 is stored in S3 and current, logged as the initial promotion
    assert summary["ModelsTrained"] == 2
    s3 = boto3.client("s3", region_name="us-east-1")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=physical_name(MODELS_BUCKET))["Contents"]}
    assert {"models/acme/api/v000001.model", "models/acme/payment/registry.json"} <= keys
    api = registry_json("api")
    assert (api["current"], api["shadow"], api["next_version"]) == (1, None, 2)
    assert [e["action"] for e in api["log"]] == ["trained", "promoted"]
    assert "request rate" in api["models"]["1"]["features"]
    # When it runs a second and a third time
    trainer()
    summary = trainer()
    # Then v2 ran in shadow and was judged on the third run (promoted or rejected, with figures), v3 is the shadow
    api = registry_json("api")
    judged = [e for e in api["log"] if e["version"] == 2 and e["action"] in ("promoted", "rejected")]
    assert len(judged) == 1
    assert {"current", "candidate"} <= set(judged[0]["figures"])
    assert api["shadow"] == 3
    assert summary["ModelsPromoted"] + summary["ModelsRejected"] == 2
    # And the admin API shows it to acme's admin, and to nobody else
    answer = stack.http(stack.admin, "GET", "/api/v1/admin/models", key=stack.keys["acme-admin"], query="service=api")
    assert answer["statusCode"] == 200, body_json(answer)
    [row] = body_json(answer)["data"]["services"]
    assert (row["service"], row["shadow"]["version"]) == ("api", 3)
    assert row["log"][0]["action"] == "shadowed"
    assert stack.http(stack.admin, "GET", "/api/v1/admin/models", key=stack.keys["acme-read"])["statusCode"] == 403
    other = stack.http(stack.admin, "GET", "/api/v1/admin/models", key=stack.keys["globex-admin"])
    assert body_json(other)["data"]["services"] == []
    missing = stack.http(stack.admin, "GET", "/api/v1/admin/models", key=stack.keys["acme-admin"], query="service=x")
    assert missing["statusCode"] == 404


def test_a_tenant_without_enough_history_gets_no_model(history_window, stack, trainer):
    # Given half an hour of data
    now = minute_now()
    write_services(stack, now - 30 * MINUTE_MS, now)
    # When the trainer runs
    summary = trainer()
    # Then both services are skipped and nothing is stored
    assert (summary["ModelsTrained"], summary["ServicesSkipped"]) == (0, 2)
    s3 = boto3.client("s3", region_name="us-east-1")
    assert s3.list_objects_v2(Bucket=physical_name(MODELS_BUCKET)).get("Contents", []) == []
