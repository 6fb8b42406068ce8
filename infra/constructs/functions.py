"""Lambda layers and functions, one function per declared ``Function``."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.bundling import FUNCTION_ASSET_EXCLUDES, PYTHON_VERSION, prepare_function_code, prepare_layer
from infra.constructs.naming import pascal
from infra.nag import acknowledge
from infra.permissions import ResourceCatalog
from infra.settings import Settings
from novacron.wiring import Function

RUNTIME = lambda_.Runtime.PYTHON_3_11
ARCHITECTURE = lambda_.Architecture.X86_64
METRICS_NAMESPACE = "NovaCron"

assert RUNTIME.name == f"python{PYTHON_VERSION}", "layers are built for the functions' runtime"


class Functions(Construct):
    """Layers built without Docker, and functions with their own least-privilege role and log group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: tuple[Function, ...],
        resources: ResourceCatalog,
        settings: Settings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.layers: dict[str, lambda_.LayerVersion] = {}
        self.by_name: dict[str, lambda_.Function] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        for name in sorted({layer for fn in functions for layer in fn.layers}):
            self.layers[name] = lambda_.LayerVersion(
                self,
                pascal(name) + "Layer",
                code=lambda_.Code.from_asset(str(prepare_layer(name))),
                compatible_runtimes=[RUNTIME],
                compatible_architectures=[ARCHITECTURE],
                description=f"NovaCron {name} layer ({RUNTIME.name}, x86_64)",
                removal_policy=RemovalPolicy.RETAIN,
            )
        for decl in functions:
            self.by_name[decl.name] = self._function(decl, resources, settings)

    def _function(self, decl: Function, resources: ResourceCatalog, settings: Settings) -> lambda_.Function:
        """One function: log group, role (exactly the declared grants), layers and environment."""
        cid = pascal(decl.name)
        log_group = logs.LogGroup(
            self,
            cid + "Logs",
            retention=settings.log_retention,
            encryption_key=resources.key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.log_groups[decl.name] = log_group
        role = iam.Role(
            self,
            cid + "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"NovaCron {decl.name} function: exactly the grants declared in the wiring",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        for statement in resources.statements(decl.grants):
            role.add_to_policy(statement)

        environment = {
            "POWERTOOLS_SERVICE_NAME": decl.name,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            **{var: resources.physical_name(res) for var, res in sorted(decl.environment.items())},
        }
        fn = lambda_.Function(
            self,
            cid + "Function",
            description=f"NovaCron {decl.name}",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=lambda_.Code.from_asset(
                str(prepare_function_code(decl.name, decl.code)), exclude=list(FUNCTION_ASSET_EXCLUDES)
            ),
            handler=decl.handler,
            memory_size=decl.memory_mb,
            timeout=Duration.seconds(decl.timeout_s),
            role=role,
            layers=[self.layers[name] for name in decl.layers],
            tracing=lambda_.Tracing.ACTIVE,
            environment=environment,
            log_group=log_group,
        )
        acknowledge(
            fn,
            "AwsSolutions-L1",
            f"NovaCron targets {RUNTIME.name}: pyproject requires-python and the layers' binary wheels "
            "(manylinux2014, cp311) are built for it. Moving runtimes is a deliberate project-wide change.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing (Tracing.ACTIVE): xray:PutTraceSegments and xray:PutTelemetryRecords do not "
            "support resource-level permissions, so AWS requires Resource '*'.",
        )
        for grant in decl.grants:
            if grant.resource in resources.buckets:
                bucket = resources.buckets[grant.resource]
                logical_id = Stack.of(self).resolve(
                    Stack.of(self).get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
                )
                for pattern in [f"{p}*" for p in grant.prefixes] or ["*"]:
                    acknowledge(
                        role,
                        f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/{pattern}]",
                        f"Object-level access to the declared bucket {grant.resource!r} ({grant.access}): "
                        "object keys are tenant- and time-partitioned and created at run time.",
                    )
        return fn
