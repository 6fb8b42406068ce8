"""E-mail through SNS: the notify e-mail Publisher over the deployment's ``email`` topic.

Addresses are subscriptions of the topic (protocol ``email``), each with a filter policy on the message
attributes (``tenant``, ``receiver``, ``to``, ``severity``, ``action``; docs/notifications.md), so an
address receives only its tenant's incidents, and only those its receiver's route sends it.

Failures are AttemptFailed for the Sender: throttling, service-side errors and a connection that got no
answer are retried; a refusal (no such topic, access denied, an invalid parameter, a disabled key) is
final and dead-lettered with SNS's error code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from novacron import aws
from novacron.notify.delivery import AttemptFailed

RETRIED_ERRORS = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "KMSThrottling",
        "KMSThrottlingException",
        "RequestTimeout",
    }
)


class SnsEmailPublisher:
    """Publisher over SNS Publish."""

    client = aws.AdapterClient("sns")

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    def publish(self, topic_arn: str, subject: str, message: str, attributes: Mapping[str, str]) -> str:
        """Publish one e-mail; its message id. AttemptFailed (retryable or not) when SNS does not take it."""
        try:
            answer = self.client.publish(
                TopicArn=topic_arn,
                Subject=subject,
                Message=message,
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value} for name, value in attributes.items() if value
                },
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            retryable = code in RETRIED_ERRORS or status >= 500
            raise AttemptFailed(f"SNS {code}: {error.get('Message', '')}".strip(), retryable) from exc
        except BotoCoreError as exc:  # no answer: connection refused or reset, timeouts
            raise AttemptFailed(f"SNS did not answer: {type(exc).__name__}", retryable=True) from exc
        return str(answer["MessageId"])
