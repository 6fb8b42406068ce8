"""SNS topics, one per declared ``Topic``, and the functions subscribed to them."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.naming import pascal
from novacron.wiring import Topic, TopicSubscription


class Topics(Construct):
    """KMS-encrypted, TLS-only topics. Only functions granted WRITE may publish (``sns:Publish`` on that
    topic alone)."""

    def __init__(self, scope: Construct, construct_id: str, *, topics: tuple[Topic, ...], key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.by_name: dict[str, sns.Topic] = {}
        for decl in topics:
            self.by_name[decl.name] = sns.Topic(
                self,
                pascal(decl.name) + "Topic",
                display_name=f"NovaCron {decl.name}",
                master_key=key,
                enforce_ssl=True,
            )
        if topics:
            # SNS encrypts what it sends to a subscription's (KMS-encrypted) dead-letter queue with the key.
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowSnsToDeadLetterQueues",
                    principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
                )
            )

    def subscribe(
        self,
        decls: tuple[TopicSubscription, ...],
        functions: dict[str, lambda_.Function],
        queues: dict[str, sqs.Queue],
    ) -> None:
        """Subscribe each function: SNS invokes it asynchronously; Lambda retries ``max_retry_attempts``
        times, then the event goes to the on-failure queue, as does a message SNS could not deliver."""
        for decl in decls:
            fn = functions[decl.function]
            queue = queues[decl.on_failure] if decl.on_failure else None
            # L1 rather than configure_async_invoke(SqsDestination): that destination grants the role
            # wildcard KMS actions (kms:ReEncrypt*, kms:GenerateDataKey*), while the wiring already grants
            # exactly what sending to the queue needs (a WRITE grant on ``on_failure`` is checked).
            on_failure = lambda_.CfnEventInvokeConfig.OnFailureProperty(destination=queue.queue_arn) if queue else None
            lambda_.CfnEventInvokeConfig(
                self,
                pascal(f"{decl.function}-{decl.topic}") + "InvokeConfig",
                function_name=fn.function_name,
                qualifier="$LATEST",
                maximum_retry_attempts=decl.max_retry_attempts,
                destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(on_failure=on_failure)
                if on_failure
                else None,
            )
            self.by_name[decl.topic].add_subscription(subscriptions.LambdaSubscription(fn, dead_letter_queue=queue))
