"""The per-service models' deployment: a versioned, encrypted bucket, the trainer and scorer with least
privilege and their schedules, and the admin route."""

from __future__ import annotations

from typing import Any

import pytest

from novacron.wiring import (
    ADMIN,
    DETECT_TRAINER,
    EVENT_BUS,
    MODELS_BUCKET,
    SERVICE_DETECT,
    TRAINING_EVERY_S,
    WIRING,
)
from tests.infra.test_infra_detect import _actions, _role_statements

pytestmark = pytest.mark.infra


def _bucket_statements(synthesized, function: str) -> list[dict[str, Any]]:
    bucket_id = synthesized.logical_id(synthesized.stack.resources.buckets[MODELS_BUCKET])
    return [s for s in _role_statements(synthesized, function) if bucket_id in str(s["Resource"])]


def test_the_models_bucket_is_versioned_and_encrypted_with_the_stack_key(synthesized):
    # Given the synthesized app
    bucket_id = synthesized.logical_id(synthesized.stack.resources.buckets[MODELS_BUCKET])
    props = synthesized.resources[bucket_id]["Properties"]
    # Then old versions of registries and models are kept, and objects are KMS-encrypted
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


@pytest.mark.parametrize("function", [DETECT_TRAINER, SERVICE_DETECT, ADMIN])
def test_model_access_is_limited_to_the_models_prefix(synthesized, function):
    # When the function's statements on the models bucket are read
    statements = _bucket_statements(synthesized, function)
    # Then every object statement is scoped to models/*, and listing to the models/ prefix
    assert statements
    for statement in statements:
        if "s3:ListBucket" in _actions(statement):
            assert statement["Condition"]["StringLike"]["s3:prefix"] in ("models/*", ["models/*"])
        else:
            assert "/models/*" in str(statement["Resource"])


def test_only_the_trainer_and_scorer_write_models_and_the_admin_only_reads_them(synthesized):
    def writes(function: str) -> bool:
        return any("s3:PutObject" in _actions(s) for s in _bucket_statements(synthesized, function))

    assert writes(DETECT_TRAINER)
    assert writes(SERVICE_DETECT)
    assert not writes(ADMIN)
    others = {f.name for f in WIRING.functions} - {DETECT_TRAINER, SERVICE_DETECT, ADMIN}
    assert not any(_bucket_statements(synthesized, name) for name in others)


def test_the_scorer_puts_events_on_the_bus_and_the_trainer_does_not(synthesized):
    bus_id = synthesized.logical_id(synthesized.stack.resources.buses[EVENT_BUS])

    def puts(function: str) -> bool:
        return any(bus_id in str(s["Resource"]) for s in _role_statements(synthesized, function))

    assert puts(SERVICE_DETECT)
    assert not puts(DETECT_TRAINER)


def test_training_and_scoring_are_scheduled(synthesized):
    # When the schedules are read
    expressions = {
        s["Properties"]["Description"].split(":")[0]: s["Properties"]["ScheduleExpression"]
        for s in synthesized.of_type("AWS::Scheduler::Schedule").values()
    }
    # Then training runs every 6 hours and scoring every minute
    assert TRAINING_EVERY_S == 6 * 3600
    assert expressions["NovaCron model-training"] == "rate(6 hours)"
    assert expressions["NovaCron service-scoring"] == "rate(1 minute)"


def test_the_models_route_reaches_the_admin_function(synthesized):
    routes = {r["Properties"]["RouteKey"] for r in synthesized.of_type("AWS::ApiGatewayV2::Route").values()}
    assert "GET /api/v1/admin/models" in routes
