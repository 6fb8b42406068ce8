"""``novacron notifications redrive``: send the notifier's dead letters again once their cause is fixed.

Direct mode, with the operator's AWS credentials (as ``novacron keys --table``): it reads the
``notify-failures`` queue, releases the delivery keys of retryable failed deliveries in the
``notify-state`` table and republishes their requests on the ``notifications`` topic
(novacron.notify.redrive). Progress goes to stderr, the summary and the kept letters to stdout.
Exit status: 0 when every selected letter was handled, 1 when some were kept (or the redrive
stopped), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING, Any

from novacron.cli import CliError
from novacron.notify.redrive import DEFAULT_LIMIT, Redriver, RedriveReport, Selection

if TYPE_CHECKING:
    from novacron.adapters.dead_letters import SqsDeadLetters
    from novacron.adapters.notify_state import DynamoDeliveryLog

TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
NO_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
BAD_ARGUMENTS = 2


def register(actions: Any) -> None:
    """Add ``redrive`` to the ``notifications`` actions."""
    redrive = actions.add_parser(
        "redrive",
        help="send the notifier's dead letters again, once the receiver is fixed",
        description=(
            "Redrive the notify-failures queue with your AWS credentials: retryable failed deliveries and "
            "the notifier's on-failure records are published again on the notifications topic (each "
            "retryable delivery's key is first released in the delivery table); deliveries the receiver "
            "refused and malformed requests are kept on the queue for a human. Safe to run again."
        ),
    )
    redrive.add_argument("--queue", required=True, metavar="NAME", help="the notify-failures queue's name")
    redrive.add_argument("--topic", required=True, type=_topic_arn, metavar="ARN", help="the notifications topic's ARN")
    redrive.add_argument("--delivery-table", required=True, metavar="NAME", help="the notify-state table's name")
    redrive.add_argument("--tenant", metavar="T", help="only this tenant's letters")
    redrive.add_argument(
        "--receiver", metavar="R", help="only this receiver's letters (NAME or NAME/INTEGRATION, e.g. oncall)"
    )
    redrive.add_argument(
        "--max",
        type=_positive,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most this many letters (default {DEFAULT_LIMIT})",
    )
    redrive.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    redrive.set_defaults(run=_redrive)


def _topic_arn(value: str) -> str:
    if not TOPIC_ARN.match(value):
        raise argparse.ArgumentTypeError(f"expected an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME), got {value!r}")
    return value


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return number


def _redrive(args: argparse.Namespace) -> int:
    # AWS clients are imported when used, as the other direct-mode commands do (``novacron keys --table``).
    from botocore.exceptions import BotoCoreError, ClientError
    from pynamodb.exceptions import PynamoDBException

    from novacron.adapters.dead_letters import DeadLetterQueueError, SqsDeadLetters
    from novacron.adapters.notification_topic import NotificationPublishError, NotificationTopic
    from novacron.adapters.notify_state import DynamoDeliveryLog

    queue, log = SqsDeadLetters(args.queue), DynamoDeliveryLog(args.delivery_table)
    try:
        problem = _missing(queue, log, args)
    except (BotoCoreError, ClientError, PynamoDBException) as exc:
        raise CliError(f"cannot read the queue or the delivery table: {exc}") from None
    if problem is not None:
        print(f"novacron notifications redrive: error: {problem}", file=sys.stderr)
        return BAD_ARGUMENTS
    redriver = Redriver(
        queue,
        log,
        NotificationTopic(args.topic),
        Selection(args.tenant, args.receiver),
        limit=args.max,
        dry_run=args.dry_run,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    try:
        report = redriver.run()
    except (NotificationPublishError, DeadLetterQueueError, PynamoDBException, BotoCoreError, ClientError) as exc:
        print(
            f"novacron: error: redrive stopped: {exc}\nLetters not deleted return to the queue after their "
            "visibility timeout; running the redrive again is safe (each delivery key is redriven once).",
            file=sys.stderr,
        )
        return 1
    _print(report)
    return 1 if report.kept else 0


def _missing(queue: SqsDeadLetters, log: DynamoDeliveryLog, args: argparse.Namespace) -> str | None:
    """Which named resource does not exist, checked before anything changes: a wrong name is a bad argument."""
    from botocore.exceptions import ClientError

    try:
        _ = queue.url
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in NO_QUEUE:
            return f"--queue: no queue named {args.queue!r}"
        raise
    if not log.table_exists():
        return f"--delivery-table: no table named {args.delivery_table!r}"
    return None


def _print(report: RedriveReport) -> None:
    print(report.summary())
    for kept in report.kept:
        print(f"kept {kept.message_id}  {kept.what}: {kept.reason}")
