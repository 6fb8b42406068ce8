"""Secrets Manager secrets, one per declared ``Secret``, generated at deployment and never in the template."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.naming import pascal
from infra.nag import acknowledge
from novacron.wiring import Secret


class Secrets(Construct):
    """Random 64-character secrets encrypted with the stack key."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        secrets: tuple[Secret, ...],
        key: kms.IKey,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.by_name: dict[str, secretsmanager.Secret] = {}
        for decl in secrets:
            secret = secretsmanager.Secret(
                self,
                pascal(decl.name) + "Secret",
                description=decl.description or f"NovaCron {decl.name}",
                encryption_key=key,
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    password_length=64, exclude_punctuation=True, include_space=False
                ),
                removal_policy=removal_policy,
            )
            acknowledge(
                secret,
                "AwsSolutions-SMG4",
                "Values derived from this secret (per-tenant PII tokens) must stay stable so that equal values "
                "keep correlating over time; rotating it is a deliberate operator action (docs/pii.md), not a "
                "schedule.",
            )
            self.by_name[decl.name] = secret
