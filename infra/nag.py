"""cdk-nag (3.x) wiring: the AwsSolutions pack and the acknowledgement helper."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge (suppress) one cdk-nag finding on ``scope`` and its children, with a reason.

    ``rule`` is a rule id such as ``AwsSolutions-L1`` or a finding id such as
    ``AwsSolutions-IAM5[Resource::*]``.
    """
    if len(reason) < 20:
        raise ValueError(f"acknowledgement of {rule} needs a real reason, got {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def add_nag_checks(app: App) -> None:
    """Run the AwsSolutions rule pack on the whole app at synth (violations fail the synth)."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
