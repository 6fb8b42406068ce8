"""The API Gateway HTTP API: one route per declared ``Route``, Lambda proxy with payload 2.0."""

from __future__ import annotations

import json

from aws_cdk import CfnOutput, RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.naming import pascal
from infra.nag import acknowledge
from infra.settings import Settings
from novacron.wiring import Route

ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "path": "$context.path",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integrationErrorMessage",
    "userAgent": "$context.identity.userAgent",
}


class HttpApi(Construct):
    """HTTP API with a throttled, access-logged ``$default`` stage."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        routes: tuple[Route, ...],
        functions: dict[str, lambda_.Function],
        key: kms.IKey,
        settings: Settings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            description="NovaCron: Prometheus remote write in, PromQL out",
            create_default_stage=False,
        )
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=settings.log_retention,
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=settings.api_throttle_rate, burst_limit=settings.api_throttle_burst
            ),
        )
        cfn_stage = self.stage.node.default_child
        assert isinstance(cfn_stage, apigwv2.CfnStage)
        cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn, format=json.dumps(ACCESS_LOG_FORMAT)
        )

        self.integrations: dict[str, integrations.HttpLambdaIntegration] = {}
        self.routes: dict[str, apigwv2.HttpRoute] = {}
        for decl in routes:
            integration = self.integrations.get(decl.function)
            if integration is None:
                integration = integrations.HttpLambdaIntegration(
                    pascal(decl.function) + "Integration",
                    functions[decl.function],
                    payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
                )
                self.integrations[decl.function] = integration
            route_key = f"{decl.method.upper()} {decl.path}"
            self.routes[route_key] = apigwv2.HttpRoute(
                self,
                pascal(f"{decl.method.lower()} {decl.path}") + "Route",
                http_api=self.api,
                route_key=apigwv2.HttpRouteKey.with_(decl.path, apigwv2.HttpMethod(decl.method.upper())),
                integration=integration,
            )

        acknowledge(
            self,
            "AwsSolutions-APIG4",
            "Every route authenticates in the function: API keys (stored hashed in the api-keys table) "
            "carry the tenant and role, as Prometheus remote write and Grafana send them (bearer/basic). "
            "See the wiring note on a Lambda authorizer.",
        )
        CfnOutput(self, "Url", value=self.api.api_endpoint, description="NovaCron HTTP API endpoint")
