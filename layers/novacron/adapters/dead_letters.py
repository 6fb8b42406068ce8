"""Dead letters on an SQS queue (the ``notify-failures`` queue): failed deliveries and malformed messages.

Each message's body is JSON: a :class:`~novacron.notify.dispatch.DeadLetter` (``kind`` = ``delivery``:
the reason, attempts, whether a redrive may work, and the notification itself) or a message that could
not be read at all (``kind`` = ``malformed``: the reason and the message as received). The reason, kind,
tenant and receiver are also message attributes, so an operator sees why at a glance (console,
``aws sqs receive-message --message-attribute-names All``). The same queue receives the subscription's
on-failure records (Lambda's ``RetriesExhausted`` invocation records), which have no ``kind``.

For the redrive (novacron.notify.redrive), the queue is also read: messages are received in batches of
up to 10 and hidden for a visibility timeout, so that a redrive that dies leaves them to come back;
handled ones are deleted, and those left for a human are made visible again at once
(ChangeMessageVisibility 0) rather than staying hidden for the rest of the timeout.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from novacron import aws
from novacron.notify.dispatch import DeadLetter
from novacron.notify.redrive import QueuedMessage

MAX_ATTRIBUTE = 256  # an attribute is for reading at a glance: the body has the whole reason
MAX_MALFORMED = 200_000  # SQS takes 256 KiB per message: keep the start of a huge malformed message
MAX_BATCH = 10  # ReceiveMessage, DeleteMessageBatch and ChangeMessageVisibilityBatch take at most 10
VISIBILITY_TIMEOUT_S = 300  # how long a received letter stays hidden if the reader dies
WAIT_S = 2  # long polling asks every SQS server: a short poll may find a small queue empty


class DeadLetterQueueError(RuntimeError):
    """Some messages could not be deleted or made visible (they come back after their visibility timeout)."""


class SqsDeadLetters:
    """DeadLetters, and the redrive's DeadLetterQueue, over one queue by name (its URL is looked up on first use)."""

    client = aws.AdapterClient("sqs")

    def __init__(
        self,
        queue_name: str,
        client: Any | None = None,
        visibility_timeout_s: int = VISIBILITY_TIMEOUT_S,
        wait_s: int = WAIT_S,
    ) -> None:
        self.queue_name = queue_name
        self._client = client
        self._url: str | None = None
        self.visibility_timeout_s = visibility_timeout_s
        self.wait_s = wait_s

    def put(self, letter: DeadLetter) -> None:
        """Send a failed delivery (raises if SQS does not take it: the invocation is then retried)."""
        attributes = {"kind": "delivery", "reason": letter.reason, "tenant": letter.tenant, "receiver": letter.receiver}
        self._send({"kind": "delivery", **letter.to_dict()}, attributes)

    def put_malformed(self, message: str, reason: str) -> None:
        """Send a message that could not be read as a notification request, with why."""
        self._send(
            {"kind": "malformed", "reason": reason, "message": message[:MAX_MALFORMED]},
            {"kind": "malformed", "reason": reason},
        )

    def receive(self, max_messages: int = MAX_BATCH) -> list[QueuedMessage]:
        """Up to ``max_messages`` (at most 10) messages, hidden from other readers for the visibility timeout."""
        answer = self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(MAX_BATCH, max_messages)),
            VisibilityTimeout=self.visibility_timeout_s,
            WaitTimeSeconds=self.wait_s,
        )
        return [QueuedMessage(m["MessageId"], m["ReceiptHandle"], m["Body"]) for m in answer.get("Messages", [])]

    def delete(self, receipts: Sequence[str]) -> None:
        """Delete received messages (DeadLetterQueueError naming those SQS did not delete)."""
        self._each_batch(receipts, "delete", self.client.delete_message_batch, {})

    def make_visible(self, receipts: Sequence[str]) -> None:
        """Show received messages to every reader again now (DeadLetterQueueError naming those that failed)."""
        self._each_batch(
            receipts, "make visible", self.client.change_message_visibility_batch, {"VisibilityTimeout": 0}
        )

    def _each_batch(
        self, receipts: Sequence[str], action: str, call: Callable[..., Any], extra: Mapping[str, Any]
    ) -> None:
        failures: list[str] = []
        for start in range(0, len(receipts), MAX_BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": receipt, **extra}
                for i, receipt in enumerate(receipts[start : start + MAX_BATCH])
            ]
            answer = call(QueueUrl=self.url, Entries=entries)
            failures += [f"{f.get('Code', '')}: {f.get('Message', '')}" for f in answer.get("Failed", [])]
        if failures:
            raise DeadLetterQueueError(
                f"could not {action} {len(failures)} messages of {self.queue_name}: " + "; ".join(sorted(set(failures)))
            )

    @property
    def url(self) -> str:
        """The queue's URL (looked up once)."""
        if self._url is None:
            self._url = str(self.client.get_queue_url(QueueName=self.queue_name)["QueueUrl"])
        return self._url

    def _send(self, body: Mapping[str, Any], attributes: Mapping[str, str]) -> None:
        self.client.send_message(
            QueueUrl=self.url,
            MessageBody=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value[:MAX_ATTRIBUTE] or "-"}
                for name, value in attributes.items()
            },
        )
