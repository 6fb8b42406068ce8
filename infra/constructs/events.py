"""EventBridge event buses, one per declared ``EventBus`` (the detector's anomaly events)."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.constructs.naming import pascal
from novacron.wiring import EventBus


class EventBuses(Construct):
    """Custom buses encrypted with the stack key (CDK adds the key policy EventBridge needs for it).

    Only functions granted WRITE on a bus may put events on it (``events:PutEvents`` on that bus alone);
    rules and their targets are added by the functions that consume the events.
    """

    def __init__(self, scope: Construct, construct_id: str, *, buses: tuple[EventBus, ...], key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.by_name: dict[str, events.EventBus] = {}
        for decl in buses:
            self.by_name[decl.name] = events.EventBus(
                self,
                pascal(decl.name) + "Bus",
                description=f"NovaCron {decl.name}: anomaly events of the streaming detector",
                kms_key=key,
            )
