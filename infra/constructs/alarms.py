"""CloudWatch alarms on the pipeline's health, notifying a KMS-encrypted SNS topic."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.naming import pascal
from novacron.wiring import StreamConsumer

FIVE_MINUTES = Duration.minutes(5)


class Alarms(Construct):
    """Iterator age + errors per consumer, errors/throttles per function, DLQ depth, API 5xx.

    Every function gets exactly one Errors alarm: a stream consumer's is its consumer alarm (a failing
    consumer retries and holds its shard), any other function's is a plain function alarm.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        consumers: tuple[StreamConsumer, ...],
        functions: dict[str, lambda_.Function],
        queues: dict[str, sqs.Queue],
        api: apigwv2.HttpApi | None,
        key: kms.IKey,
        iterator_age_alarm_s: int,
        email: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "AlarmTopic", display_name="NovaCron alarms", master_key=key, enforce_ssl=True)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        consumer_functions = {c.function for c in consumers}
        for decl in consumers:
            fn = functions[decl.function]
            cid = f"{pascal(decl.function)}From{pascal(decl.stream)}"
            # Alarm well before records age out of the mapping (max record age) or the stream (retention).
            threshold_s = min(iterator_age_alarm_s, decl.max_record_age_s // 2)
            self._add(
                cid + "IteratorAge",
                fn.metric("IteratorAge", statistic="Maximum", period=Duration.minutes(1)),
                threshold=threshold_s * 1000,
                evaluation_periods=5,
                description=f"{decl.function} is more than {threshold_s}s behind on stream {decl.stream}",
            )
            self._add(
                cid + "Errors",
                fn.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                description=f"{decl.function} (consumer of {decl.stream}) failed whole batches",
            )
        for name, fn in functions.items():
            cid = pascal(name)
            if name not in consumer_functions:
                self._add(
                    cid + "Errors",
                    fn.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                    threshold=1,
                    evaluation_periods=1,
                    description=f"{name} raised unhandled errors",
                )
            self._add(
                cid + "Throttles",
                fn.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                description=f"{name} was throttled",
            )
        for name, queue in queues.items():
            self._add(
                pascal(name) + "MessagesVisible",
                queue.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Maximum"),
                threshold=1,
                evaluation_periods=1,
                description=f"failed records are waiting in {name}",
            )
        if api is not None:
            self._add(
                "Api5xx",
                api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
                threshold=5,
                evaluation_periods=1,
                description="the HTTP API answered 5xx",
            )

    def _add(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        evaluation_periods: int,
        description: str,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"NovaCron: {description}",
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        alarm.add_ok_action(actions.SnsAction(self.topic))
        self.alarms[construct_id] = alarm
