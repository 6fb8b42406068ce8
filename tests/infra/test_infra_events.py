"""Event source mappings, HTTP routes and alarms are derived one-to-one from the wiring."""

from __future__ import annotations

import json

import pytest

from novacron.wiring import WIRING

pytestmark = pytest.mark.infra


def test_event_source_mappings_equal_the_wiring(synthesized):
    mappings = synthesized.of_type("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == len(WIRING.consumers)
    res = synthesized.stack.resources
    for decl in WIRING.consumers:
        fn_id = synthesized.logical_id(synthesized.stack.functions.by_name[decl.function])
        stream_id = synthesized.logical_id(res.streams[decl.stream])
        [props] = [
            m["Properties"]
            for m in mappings.values()
            if m["Properties"]["FunctionName"] == {"Fn::GetAtt": [fn_id, "Arn"]}
            and m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [stream_id, "Arn"]}
        ]
        assert props["BatchSize"] == decl.batch_size
        assert props["MaximumBatchingWindowInSeconds"] == decl.batching_window_s
        assert props["StartingPosition"] == decl.starting_position
        assert props.get("FunctionResponseTypes") == (
            ["ReportBatchItemFailures"] if decl.report_batch_item_failures else None
        )
        assert props["BisectBatchOnFunctionError"] is decl.bisect_on_error
        assert props["MaximumRetryAttempts"] == decl.max_retry_attempts
        assert props["MaximumRecordAgeInSeconds"] == decl.max_record_age_s
        assert props["ParallelizationFactor"] == decl.parallelization_factor
        if decl.on_failure:
            queue_id = synthesized.logical_id(res.queues[decl.on_failure])
            assert props["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}}
        else:
            assert "DestinationConfig" not in props


def test_one_route_per_wiring_route_with_payload_v2_lambda_proxy(synthesized):
    routes = synthesized.of_type("AWS::ApiGatewayV2::Route")
    integrations = synthesized.of_type("AWS::ApiGatewayV2::Integration")
    by_key = {r["Properties"]["RouteKey"]: r["Properties"] for r in routes.values()}
    assert len(routes) == len(WIRING.routes)
    assert set(by_key) == {f"{r.method} {r.path}" for r in WIRING.routes}
    assert "POST /api/v1/write" in by_key
    for decl in WIRING.routes:
        target = by_key[f"{decl.method} {decl.path}"]["Target"]["Fn::Join"][1][1]["Ref"]
        integration = integrations[target]["Properties"]
        fn_id = synthesized.logical_id(synthesized.stack.functions.by_name[decl.function])
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert integration["PayloadFormatVersion"] == "2.0"
        assert integration["IntegrationUri"] == {"Fn::GetAtt": [fn_id, "Arn"]}


def test_api_stage_has_access_logging_and_throttling(synthesized):
    [stage] = synthesized.of_type("AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "$default"
    assert props["AutoDeploy"] is True
    log_group_id = synthesized.logical_id(synthesized.stack.http_api.access_logs)
    assert props["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": [log_group_id, "Arn"]}
    assert json.loads(props["AccessLogSettings"]["Format"])["requestId"] == "$context.requestId"
    assert props["DefaultRouteSettings"] == {"ThrottlingBurstLimit": 2000, "ThrottlingRateLimit": 1000}


def _alarms_on(synthesized, metric: str) -> list[dict]:
    return [
        a["Properties"]
        for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == metric
    ]


def _function_dimension(synthesized, name: str) -> list[dict]:
    return [
        {"Name": "FunctionName", "Value": {"Ref": synthesized.logical_id(synthesized.stack.functions.by_name[name])}}
    ]


def test_alarms_on_iterator_age_errors_throttles_dlq_and_5xx(synthesized):
    topic_id = synthesized.logical_id(synthesized.stack.alarms.topic)  # not the declared topics
    for alarm in synthesized.of_type("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
    iterator_age = _alarms_on(synthesized, "IteratorAge")
    errors = _alarms_on(synthesized, "Errors")
    throttles = _alarms_on(synthesized, "Throttles")
    for decl in WIRING.consumers:
        dims = _function_dimension(synthesized, decl.function)
        [age] = [a for a in iterator_age if a["Dimensions"] == dims]
        assert age["Statistic"] == "Maximum"
        assert age["Threshold"] <= decl.max_record_age_s * 1000 / 2
        assert [a for a in errors if a["Dimensions"] == dims]
    for decl in WIRING.functions:
        dims = _function_dimension(synthesized, decl.name)
        assert len([a for a in errors if a["Dimensions"] == dims]) == 1, decl.name
        assert len([a for a in throttles if a["Dimensions"] == dims]) == 1, decl.name
    assert len(_alarms_on(synthesized, "ApproximateNumberOfMessagesVisible")) == len(WIRING.queues)
    assert len(_alarms_on(synthesized, "5xx")) == 1
