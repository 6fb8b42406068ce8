"""Other wirings derive too (schedules, no routes), and bad wirings or settings fail clearly."""

from __future__ import annotations

import dataclasses

import pytest

from infra.constructs.schedules import rate_expression
from infra.permissions import check_wiring
from infra.settings import Settings
from novacron.wiring import WIRING, Access, Function, Grant, Schedule, Stream, StreamConsumer, Table, Wiring

pytestmark = pytest.mark.infra

SCHEDULED = Wiring(
    streams=(Stream("events"),),
    tables=(Table("rollups", partition_key="pk", sort_key="sk", ttl_attribute="ttl"),),
    buckets=(),
    queues=(),
    functions=(
        Function(
            "rollup",
            code="functions/writer",  # any existing folder: this wiring is about schedules
            handler="handler.lambda_handler",
            grants=(Grant("rollups", Access.READ_WRITE), Grant("events", Access.WRITE)),
            environment={"NOVACRON_ROLLUPS_TABLE": "rollups"},
        ),
    ),
    consumers=(),
    routes=(),
    schedules=(Schedule("rollup-5m", function="rollup", every_s=300),),
)


@pytest.fixture(scope="module")
def scheduled(tmp_path_factory, synthesize_app):
    return synthesize_app(
        tmp_path_factory.mktemp("cdk-out-scheduled"),
        wiring=SCHEDULED,
        context={"novacron:stackName": "NovaCronScheduled", "novacron:retainData": "false"},
    )


def test_schedule_invokes_its_function_at_the_declared_rate(scheduled):
    schedules = scheduled.of_type("AWS::Scheduler::Schedule")
    assert len(schedules) == 1
    [props] = [s["Properties"] for s in schedules.values()]
    assert props["ScheduleExpression"] == "rate(5 minutes)"
    fn_id = scheduled.logical_id(scheduled.stack.functions.by_name["rollup"])
    assert props["Target"]["Arn"] == {"Fn::GetAtt": [fn_id, "Arn"]}
    assert props["State"] == "ENABLED"


def test_wiring_without_routes_has_no_api(scheduled):
    assert not scheduled.of_type("AWS::ApiGatewayV2::Api")
    assert scheduled.stack.http_api is None


def test_destroy_policy_when_data_is_not_retained(scheduled):
    [table] = scheduled.of_type("AWS::DynamoDB::Table").values()
    assert table["DeletionPolicy"] == "Delete"
    assert table["Properties"].get("DeletionProtectionEnabled") is False


def test_rate_must_be_whole_minutes():
    assert rate_expression(3600) == "rate(1 hour)"
    assert rate_expression(300) == "rate(5 minutes)"
    assert rate_expression(2 * 86400) == "rate(2 days)"
    for bad in (30, 90):
        with pytest.raises(ValueError, match="whole minutes"):
            rate_expression(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda w: dataclasses.replace(w, schedules=(Schedule("x", "nope", 60),)), "undeclared function"),
        (
            lambda w: dataclasses.replace(
                w, functions=(dataclasses.replace(w.functions[0], grants=(Grant("ghost", Access.READ),)),)
            ),
            "undeclared resource 'ghost'",
        ),
        (
            lambda w: dataclasses.replace(w, consumers=(StreamConsumer("rollup", "events"),)),
            "no READ grant",
        ),
    ],
)
def test_inconsistent_wiring_fails_with_a_clear_message(change, message):
    with pytest.raises(ValueError, match=message):
        check_wiring(change(SCHEDULED))


def test_the_real_wiring_is_consistent():
    check_wiring(WIRING)


def test_timestream_retention_must_be_within_timestream_bounds():
    # The sink itself is tested in test_infra_timestream.py.
    with pytest.raises(ValueError, match="timestreamMemoryHours"):
        Settings(timestream=True, timestream_memory_hours=0)
    with pytest.raises(ValueError, match="timestreamMagneticDays"):
        Settings(timestream=True, timestream_magnetic_days=73001)


def test_log_retention_must_be_a_cloudwatch_value():
    with pytest.raises(ValueError, match="logRetentionDays"):
        Settings(log_retention_days=31)
