"""Notifier function: notification requests from the notifications topic → the tenant's receivers."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from novacron.adapters.alerting_table import DynamoAlertingStore
from novacron.adapters.dead_letters import SqsDeadLetters
from novacron.adapters.email_topic import SnsEmailPublisher
from novacron.adapters.notify_state import (
    DynamoDeliveryLog,
    DynamoInbox,
    DynamoMessageRefs,
    DynamoRateLimits,
    DynamoToldReceivers,
)
from novacron.alert.state import NotificationRequest
from novacron.config import NotifierConfig
from novacron.notify.delivery import RetryPolicy, Sender
from novacron.notify.dispatch import Dispatcher
from novacron.notify.http_client import UrllibClient
from novacron.notify.receivers import Outlets
from novacron.notify.service import NotificationService
from novacron.telemetry import add_metrics

config = NotifierConfig.from_env()
logger = Logger(service="novacron-notifier")
tracer = Tracer()
metrics = Metrics()
state = config.notify_state_table
dead_letters = SqsDeadLetters(config.notify_failures_queue)
policy = RetryPolicy(max_attempts=config.max_attempts, deadline_s=config.deadline_s)
sender = Sender(UrllibClient(config.http_timeout_s), policy=policy, limits=DynamoRateLimits(state))
service = NotificationService(
    DynamoAlertingStore(config.alerting_table),
    DynamoToldReceivers(state),
    Dispatcher(sender, DynamoDeliveryLog(state), dead_letters),
    Outlets(DynamoMessageRefs(state), DynamoInbox(state), SnsEmailPublisher(), config.email_topic),
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    # SNS sends one record per invocation. A store failing raises: Lambda retries the event, then it
    # goes to the on-failure queue; deliveries already made are not repeated (the delivery log).
    for record in event.get("Records", []):
        message = str(record.get("Sns", {}).get("Message", ""))
        try:
            request = NotificationRequest.from_json(json.loads(message))
        except (ValueError, TypeError, AttributeError) as exc:  # not JSON, not an object, not a request
            reason = f"malformed notification request: {exc}"
            logger.warning("notification request refused", extra={"reason": reason[:500]})
            dead_letters.put_malformed(message, reason)  # never retried: it would be refused again
            add_metrics(metrics, {"notification_requests_malformed": 1})
            continue
        report = service.deliver(request)
        n = request.notification
        extra = {"tenant": n.tenant, "incident": n.incident_id, "sequence": n.sequence, "receivers": report.receivers}
        logger.info("notification delivered", extra={**extra, "outcomes": report.counts()})
        add_metrics(metrics, {f"notifications_{status}": count for status, count in report.counts().items()})
