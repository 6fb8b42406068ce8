"""Dead letters on an SQS queue (the ``notify-failures`` queue): failed deliveries and malformed messages.

Each message's body is JSON: a :class:`~novacron.notify.dispatch.DeadLetter` (``kind`` = ``delivery``:
the reason, attempts, whether a redrive may work, and the notification itself) or a message that could
not be read at all (``kind`` = ``malformed``: the reason and the message as received). The reason, kind,
tenant and receiver are also message attributes, so an operator sees why at a glance (console,
``aws sqs receive-message --message-attribute-names All``). The same queue receives the subscription's
on-failure records (Lambda's ``RetriesExhausted`` invocation records), which have no ``kind``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from novacron import aws
from novacron.notify.dispatch import DeadLetter

MAX_ATTRIBUTE = 256  # an attribute is for reading at a glance: the body has the whole reason
MAX_MALFORMED = 200_000  # SQS takes 256 KiB per message: keep the start of a huge malformed message


class SqsDeadLetters:
    """DeadLetters over one queue, by name (its URL is looked up on first use)."""

    client = aws.AdapterClient("sqs")

    def __init__(self, queue_name: str, client: Any | None = None) -> None:
        self.queue_name = queue_name
        self._client = client
        self._url: str | None = None

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

    def _send(self, body: Mapping[str, Any], attributes: Mapping[str, str]) -> None:
        if self._url is None:
            self._url = self.client.get_queue_url(QueueName=self.queue_name)["QueueUrl"]
        self.client.send_message(
            QueueUrl=self._url,
            MessageBody=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value[:MAX_ATTRIBUTE] or "-"}
                for name, value in attributes.items()
            },
        )
