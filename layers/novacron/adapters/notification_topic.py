"""Notification requests onto the ``notifications`` SNS topic (PublishBatch), for the notifier function.

Each request is one message (``NotificationRequest.to_json``), with the tenant and the action as message
attributes (a subscription filter policy can use them). PublishBatch takes at most 10 messages and 256 KB
per call and reports failures per entry: failed entries and failed calls (throttling, service errors)
are sent again with a growing pause; what still has not gone through raises NotificationPublishError,
so the alert function does not record those notifications as sent and sends them on its next run (the
notifier deduplicates on the request's delivery key).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from novacron import aws
from novacron.alert.state import NotificationRequest

MAX_ENTRIES = 10  # PublishBatch's limit per call
MAX_BATCH_BYTES = 256 * 1024  # per call, messages and attributes together
ATTEMPTS = 5
# Errors a retry cannot fix: the request itself is wrong (or the topic gone).
_PERMANENT = {"InvalidParameter", "InvalidParameterValue", "NotFound", "AuthorizationError", "KMSDisabled"}


class NotificationPublishError(RuntimeError):
    """Some notification requests could not be published."""


class NotificationTopic:
    """Publishes NotificationRequests to one SNS topic (by ARN)."""

    client = aws.AdapterClient("sns")

    def __init__(
        self,
        topic_arn: str,
        client: Any | None = None,
        attempts: int = ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.topic_arn = topic_arn
        self._client = client
        self._attempts = attempts
        self._sleep = sleep

    def publish(self, requests: Sequence[NotificationRequest]) -> None:
        """Publish every request; NotificationPublishError naming what failed if some never go through."""
        entries = [_entry(str(i), request) for i, request in enumerate(requests)]
        for batch in _batches(entries):
            self._publish_batch(batch)

    def _publish_batch(self, entries: list[dict[str, Any]]) -> None:
        pending = entries
        errors: set[str] = set()
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(min(0.1 * 2**attempt, 2.0))
            try:
                response = self.client.publish_batch(TopicArn=self.topic_arn, PublishBatchRequestEntries=pending)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                errors = {f"{code}: {exc.response.get('Error', {}).get('Message', '')}"}
                if code in _PERMANENT:
                    break
                continue
            except BotoCoreError as exc:
                errors = {f"{type(exc).__name__}: {exc}"}
                continue
            failed = {f["Id"]: f for f in response.get("Failed", [])}
            if not failed:
                return
            errors = {f"{f.get('Code', '')}: {f.get('Message', '')}" for f in failed.values()}
            if any(f.get("SenderFault") for f in failed.values()):
                break
            pending = [e for e in pending if e["Id"] in failed]
        raise NotificationPublishError(
            f"{len(pending)} notification requests were not published to {self.topic_arn}: " + "; ".join(sorted(errors))
        )


def _entry(entry_id: str, request: NotificationRequest) -> dict[str, Any]:
    notification = request.notification
    return {
        "Id": entry_id,
        "Message": json.dumps(request.to_json(), separators=(",", ":")),
        "MessageAttributes": {
            "tenant": {"DataType": "String", "StringValue": notification.tenant},
            "action": {"DataType": "String", "StringValue": notification.action.value},
        },
    }


def _size(entry: dict[str, Any]) -> int:
    attributes = sum(len(k) + len(v["DataType"]) + len(v["StringValue"]) for k, v in entry["MessageAttributes"].items())
    return len(entry["Message"].encode()) + attributes


def _batches(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Entries grouped into PublishBatch calls within the per-call count and size limits."""
    batches: list[list[dict[str, Any]]] = []
    size = 0
    for entry in entries:
        entry_size = _size(entry)
        if not batches or len(batches[-1]) >= MAX_ENTRIES or size + entry_size > MAX_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(entry)
        size += entry_size
    return batches
