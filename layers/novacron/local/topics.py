"""SNS → Lambda subscriptions, standing in for SNS's asynchronous invocation of a subscribed function.

moto delivers a topic's messages to SQS subscriptions (its Lambda subscriptions need Docker), so each
declared :class:`TopicSubscription` gets a private queue subscribed to its topic; a thread receives the
SNS envelopes from it and invokes the function with the event SNS would send (one record per event).
As with Lambda's asynchronous invocation, a failed event is retried ``max_retry_attempts`` times (with
a pause), then sent to the on-failure queue as an invocation record (``requestContext.condition`` =
``RetriesExhausted``, the event as ``requestPayload``, the error as ``responsePayload``).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from novacron.local.handlers import LocalFunction
from novacron.local.resources import DEFAULT_PREFIX, physical_name
from novacron.wiring import TopicSubscription

log = logging.getLogger(__name__)

RETRY_PAUSE_S = 0.5  # Lambda waits a minute, then two; locally the story matters, not the wait


def sns_event(envelope: dict[str, Any], subscription_arn: str) -> dict[str, Any]:
    """The Lambda event of one SNS notification (``envelope`` is what SNS delivers to SQS)."""
    attributes = {
        name: {"Type": attr.get("Type", "String"), "Value": attr.get("Value", "")}
        for name, attr in (envelope.get("MessageAttributes") or {}).items()
    }
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": envelope.get("Type", "Notification"),
                    "MessageId": envelope.get("MessageId", str(uuid.uuid4())),
                    "TopicArn": envelope["TopicArn"],
                    "Subject": envelope.get("Subject"),
                    "Message": envelope["Message"],
                    "Timestamp": envelope.get("Timestamp", datetime.now(UTC).isoformat()),
                    "SignatureVersion": envelope.get("SignatureVersion", "1"),
                    "Signature": envelope.get("Signature", ""),
                    "SigningCertUrl": envelope.get("SigningCertURL", ""),
                    "UnsubscribeUrl": envelope.get("UnsubscribeURL", ""),
                    "MessageAttributes": attributes,
                },
            }
        ]
    }


class TopicDispatcher:
    """Delivers one topic's messages to one subscribed function until stopped."""

    def __init__(
        self,
        subscription: TopicSubscription,
        function: LocalFunction,
        sns: Any,
        sqs: Any,
        topic_arn: str,
        on_failure_url: str | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.subscription = subscription
        self.function = function
        self._sns, self._sqs = sns, sqs
        self._on_failure_url = on_failure_url
        name = physical_name(f"{subscription.topic}-to-{subscription.function}", prefix)
        self._queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.subscription_arn = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
        self.delivered = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the delivery thread."""
        name = f"topic:{self.subscription.topic}->{self.subscription.function}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current delivery and join the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def deliver_pending(self) -> int:
        """Receive what is waiting (up to 10 messages) and deliver each; how many were taken."""
        answer = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = answer.get("Messages", [])
        for message in messages:
            self._deliver(json.loads(message["Body"]))
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_pending()
            except Exception:
                log.warning("topic %s: receiving failed", self.subscription.topic, exc_info=True)
                self._stop.wait(1.0)

    def _deliver(self, envelope: dict[str, Any]) -> None:
        event = sns_event(envelope, self.subscription_arn)
        error: Exception | None = None
        for attempt in range(self.subscription.max_retry_attempts + 1):
            if attempt and self._stop.wait(RETRY_PAUSE_S):
                break
            try:
                self.function.invoke(event)
            except Exception as exc:
                error = exc
                log.warning(
                    "topic %s: %s failed (attempt %d)",
                    self.subscription.topic,
                    self.subscription.function,
                    attempt + 1,
                    exc_info=True,
                )
            else:
                self.delivered += 1
                return
        self.failed += 1
        if self._on_failure_url is not None:
            self._sqs.send_message(QueueUrl=self._on_failure_url, MessageBody=json.dumps(self._record(event, error)))

    def _record(self, event: dict[str, Any], error: Exception | None) -> dict[str, Any]:
        """What Lambda's on-failure destination receives for an event whose retries ran out."""
        return {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function.arn,
                "condition": "RetriesExhausted",
                "approximateInvokeCount": self.subscription.max_retry_attempts + 1,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {
                "errorType": type(error).__name__ if error else "Stopped",
                "errorMessage": str(error) if error else "the local runtime stopped before the last attempt",
            },
        }
