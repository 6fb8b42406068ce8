"""EventBridge Scheduler schedules, one per declared ``Schedule``."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from infra.constructs.naming import pascal
from novacron.wiring import Schedule


def rate_expression(every_s: int) -> str:
    """``rate(...)`` for a period in seconds; Scheduler's finest unit is one minute."""
    if every_s < 60 or every_s % 60:
        raise ValueError(
            f"schedule period {every_s}s: EventBridge Scheduler rates are whole minutes (>= 60 s, multiple of 60)"
        )
    minutes = every_s // 60
    for unit, size in (("day", 1440), ("hour", 60)):
        if minutes % size == 0:
            count = minutes // size
            return f"rate({count} {unit}{'s' if count > 1 else ''})"
    return f"rate({minutes} minute{'s' if minutes > 1 else ''})"


class Schedules(Construct):
    """Invoke each scheduled function at its rate, with a role that may invoke only that function.

    The L1 resource is used because the L2 Lambda target also grants ``function:*`` (all versions).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        schedules: tuple[Schedule, ...],
        functions: dict[str, lambda_.Function],
    ) -> None:
        super().__init__(scope, construct_id)
        self.by_name: dict[str, scheduler.CfnSchedule] = {}
        for decl in schedules:
            fn = functions[decl.function]
            cid = pascal(decl.name)
            role = iam.Role(
                self,
                cid + "Role",
                assumed_by=iam.ServicePrincipal(
                    "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
                ),
                description=f"EventBridge Scheduler: invoke NovaCron {decl.function}",
            )
            role.add_to_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[fn.function_arn]))
            schedule = scheduler.CfnSchedule(
                self,
                cid + "Schedule",
                description=f"NovaCron {decl.name}: invoke {decl.function} every {decl.every_s}s",
                schedule_expression=rate_expression(decl.every_s),
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                state="ENABLED",
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=fn.function_arn,
                    role_arn=role.role_arn,
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                        maximum_retry_attempts=2, maximum_event_age_in_seconds=max(60, decl.every_s)
                    ),
                ),
            )
            schedule.node.add_dependency(role)
            self.by_name[decl.name] = schedule
