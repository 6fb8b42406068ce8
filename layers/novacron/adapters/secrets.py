"""Secrets Manager: read a deployment secret once per cold start."""

from __future__ import annotations

from novacron import aws


def read_secret(secret_id: str) -> bytes:
    """The value of ``secret_id`` (a name or an ARN) as bytes; binary secrets are returned as stored."""
    response = aws.client("secretsmanager").get_secret_value(SecretId=secret_id)
    if "SecretBinary" in response:
        return bytes(response["SecretBinary"])
    return str(response["SecretString"]).encode()
