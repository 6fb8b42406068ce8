"""Kinesis event source mappings, one per declared ``StreamConsumer``, with Lambda's semantics."""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.naming import pascal
from infra.permissions import ResourceCatalog
from novacron.wiring import StreamConsumer


class StreamConsumers(Construct):
    """Event source mappings whose every setting comes from the wiring.

    The L1 resource is used on purpose: the L2 event sources add their own IAM grants, while here the
    function's role holds exactly the wiring's grants (READ on the stream, WRITE on the on-failure
    queue, which ``check_wiring`` enforces).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        consumers: tuple[StreamConsumer, ...],
        functions: dict[str, lambda_.Function],
        resources: ResourceCatalog,
    ) -> None:
        super().__init__(scope, construct_id)
        self.mappings: dict[tuple[str, str], lambda_.CfnEventSourceMapping] = {}
        for decl in consumers:
            fn = functions[decl.function]
            destination = (
                lambda_.CfnEventSourceMapping.DestinationConfigProperty(
                    on_failure=lambda_.CfnEventSourceMapping.OnFailureProperty(
                        destination=resources.queues[decl.on_failure].queue_arn
                    )
                )
                if decl.on_failure
                else None
            )
            mapping = lambda_.CfnEventSourceMapping(
                self,
                f"{pascal(decl.function)}From{pascal(decl.stream)}",
                function_name=fn.function_arn,
                event_source_arn=resources.streams[decl.stream].stream_arn,
                starting_position=decl.starting_position,
                batch_size=decl.batch_size,
                maximum_batching_window_in_seconds=decl.batching_window_s,
                function_response_types=["ReportBatchItemFailures"] if decl.report_batch_item_failures else None,
                bisect_batch_on_function_error=decl.bisect_on_error,
                maximum_retry_attempts=decl.max_retry_attempts,
                maximum_record_age_in_seconds=decl.max_record_age_s,
                parallelization_factor=decl.parallelization_factor,
                destination_config=destination,
                enabled=True,
            )
            # The role must hold its stream/queue permissions before Lambda validates the mapping.
            if fn.role is not None:
                mapping.node.add_dependency(fn.role)
            self.mappings[(decl.function, decl.stream)] = mapping
