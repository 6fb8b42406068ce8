"""The one declaration of NovaCron's wiring.

Streams, tables, buckets, queues, functions, which function consumes which stream and with which
event-source-mapping settings, which HTTP route reaches which function, and which jobs run on a
schedule. The CDK constructs (``infra/``) and the local runtime (``novacron.local``) are both derived
from this module, so the cloud and the laptop cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Access(StrEnum):
    """What a function may do with a resource; the CDK grants exactly this."""

    READ = "read"
    WRITE = "write"
    READ_WRITE = "read_write"


@dataclass(frozen=True)
class Stream:
    """A Kinesis data stream."""

    name: str
    shards: int = 1
    retention_hours: int = 24


@dataclass(frozen=True)
class Table:
    """A DynamoDB table (on-demand). Keys are strings."""

    name: str
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None


@dataclass(frozen=True)
class Bucket:
    """An S3 bucket."""

    name: str
    # Objects are tagged with a retention class (novacron.retention.archive): one lifecycle rule per class.
    retention_classes: bool = False


@dataclass(frozen=True)
class Queue:
    """An SQS queue, used as a dead-letter / on-failure destination."""

    name: str


@dataclass(frozen=True)
class Secret:
    """A secret value generated at deployment (Secrets Manager); functions only ever read it."""

    name: str
    description: str = ""


@dataclass(frozen=True)
class EventBus:
    """An EventBridge event bus that functions put events on."""

    name: str


@dataclass(frozen=True)
class Grant:
    """One permission of a function on one declared resource."""

    resource: str
    access: Access
    # Buckets only: the object key prefixes the grant is limited to (empty: the whole bucket).
    prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Function:
    """A Lambda function.

    ``code`` is the folder under the repository root holding the handler module; ``handler`` is
    ``module.function`` inside it, exactly as Lambda's runtime resolves it. ``environment`` maps an
    environment variable to the *name of a declared resource*; the CDK passes the physical name and
    the local runtime passes the local one.
    """

    name: str
    code: str
    handler: str
    memory_mb: int = 512
    timeout_s: int = 30
    grants: tuple[Grant, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    # Lambda layers: "core" is the novacron package with its dependencies (numpy included);
    # "science" adds the query-side extras (the PromQL parser).
    layers: tuple[str, ...] = ("core",)


@dataclass(frozen=True)
class StreamConsumer:
    """A Kinesis event source mapping, with Lambda's semantics."""

    function: str
    stream: str
    batch_size: int = 100
    batching_window_s: int = 1
    starting_position: str = "TRIM_HORIZON"
    report_batch_item_failures: bool = True
    bisect_on_error: bool = True
    max_retry_attempts: int = 5
    max_record_age_s: int = 3600
    parallelization_factor: int = 1
    on_failure: str | None = None  # a declared Queue


@dataclass(frozen=True)
class Route:
    """An HTTP API route (API Gateway HTTP API, payload format 2.0)."""

    method: str
    path: str
    function: str


@dataclass(frozen=True)
class Schedule:
    """A job invoked on a schedule (EventBridge Scheduler in AWS, a timer locally)."""

    name: str
    function: str
    every_s: int
    # The local runtime's period and first run, when they differ from AWS's (None: ``every_s``, and one
    # period after start): a job a laptop should see soon, such as training on a demo's backfilled history.
    local_every_s: int | None = None
    local_first_run_s: int | None = None


@dataclass(frozen=True)
class Topic:
    """An SNS topic (KMS-encrypted, TLS-only). A function granted WRITE may publish to it; the function's
    environment names it by ARN, which is what Publish takes."""

    name: str


@dataclass(frozen=True)
class TopicSubscription:
    """A function subscribed to a topic: SNS invokes it asynchronously with one message per event.

    Lambda retries a failed invocation ``max_retry_attempts`` times; then (and for messages SNS could
    not deliver at all) the message goes to ``on_failure``, a declared Queue the function may write.
    """

    function: str
    topic: str
    on_failure: str | None = None
    max_retry_attempts: int = 2


@dataclass(frozen=True)
class TimestreamSink:
    """The optional Amazon Timestream for LiveAnalytics sink of a function (off unless turned on).

    Timestream for LiveAnalytics is closed to new customers (since 2025-06-20), so this is not a
    declared resource: it exists only when a deployment asks for it (CDK context
    ``novacron:timestream``, ``novacron local --timestream``). Then ``function`` receives the
    database and table names in ``database_env`` / ``table_env`` and may write that table only.
    """

    function: str
    database: str  # logical names: the CDK and the local runtime derive physical names from them
    table: str
    database_env: str = "NOVACRON_TIMESTREAM_DATABASE"
    table_env: str = "NOVACRON_TIMESTREAM_TABLE"


@dataclass(frozen=True)
class Wiring:
    """The whole declaration, with lookups used by both derivations."""

    streams: tuple[Stream, ...]
    tables: tuple[Table, ...]
    buckets: tuple[Bucket, ...]
    queues: tuple[Queue, ...]
    functions: tuple[Function, ...]
    consumers: tuple[StreamConsumer, ...]
    routes: tuple[Route, ...]
    schedules: tuple[Schedule, ...] = ()
    secrets: tuple[Secret, ...] = ()
    timestream: TimestreamSink | None = None
    buses: tuple[EventBus, ...] = ()
    topics: tuple[Topic, ...] = ()
    subscriptions: tuple[TopicSubscription, ...] = ()

    def function(self, name: str) -> Function:
        """The declared function called ``name``."""
        for fn in self.functions:
            if fn.name == name:
                return fn
        raise KeyError(f"no function named {name!r} in the wiring")

    def resource_names(self) -> set[str]:
        """Every declared resource name (streams, tables, buckets, queues, secrets, event buses, topics)."""
        groups: tuple[tuple[Stream | Table | Bucket | Queue | Secret | EventBus | Topic, ...], ...] = (
            self.streams,
            self.tables,
            self.buckets,
            self.queues,
            self.secrets,
            self.buses,
            self.topics,
        )
        return {r.name for group in groups for r in group}

    def routes_of(self, function: str) -> list[Route]:
        """The routes served by ``function``."""
        return [r for r in self.routes if r.function == function]


# --- The declaration --------------------------------------------------------------------------

METRICS_STREAM = "metrics"
SPANS_STREAM = "spans"
BLOCKS_TABLE = "blocks"
INDEX_TABLE = "series-index"
KEYS_TABLE = "api-keys"
# Per-tenant ingest policy: label defaults and their policy, cardinality limits and approvals, PII rules.
SETTINGS_TABLE = "tenant-settings"
RESULTS_TABLE = "query-cache"
ARCHIVE_BUCKET = "archive"
WRITER_DLQ = "metrics-writer-failures"
SPANS_DLQ = "spans-archiver-failures"
# The deployment secret that per-tenant PII-scrubbing keys are derived from (docs/pii.md).
PII_SECRET = "pii-key"  # noqa: S105 (the name of a declared resource, not a secret value)
# The streaming anomaly detector: per-series detector state, anomaly episodes, and the bus its events go to.
DETECTOR_STATE_TABLE = "detector-state"
ANOMALIES_TABLE = "anomalies"
EVENT_BUS = "events"
DETECT_DLQ = "detector-failures"
# Per-service multivariate models (novacron.detect.registry): versioned objects under models/.
MODELS_BUCKET = "models"
MODELS_PREFIX = "models/"
# The trainer's period is also how long a new model runs in shadow before it is judged.
TRAINING_EVERY_S = 6 * 3600
SERVICE_SCORING_EVERY_S = 60
# Incidents: correlated alerts with their timeline, origin and priority (novacron.alert.incidents).
INCIDENTS_TABLE = "incidents"
# Alerting: rule files, rule groups' states, the Alertmanager-style configuration, silences (novacron.alert.state).
ALERTING_TABLE = "alerting"
# What the alert function asks the notifier to tell receivers (novacron.alert.state.NotificationRequest).
NOTIFICATIONS_TOPIC = "notifications"
# The notifier's state (delivery log, Slack message refs, rate limits, receivers told, the local inbox),
# its dead letters, and the topic e-mail integrations publish to (addresses subscribe with filter policies).
NOTIFY_STATE_TABLE = "notify-state"
NOTIFY_DLQ = "notify-failures"
EMAIL_TOPIC = "email"
ALERT_EVERY_S = 60

INGEST = "ingest"
WRITER = "metrics-writer"
QUERY = "query"
ADMIN = "admin"
OTLP = "otlp"
FIREHOSE = "firehose"
SPANS_ARCHIVER = "spans-archiver"
ARCHIVER = "parquet-archiver"
COMPACTOR = "compactor"
DETECT = "detect"
DETECT_TRAINER = "detect-trainer"
SERVICE_DETECT = "service-detect"
ALERT = "alert"
NOTIFIER = "notifier"

R, W, RW = Access.READ, Access.WRITE, Access.READ_WRITE

_AUTH_ENV = {"NOVACRON_KEYS_TABLE": KEYS_TABLE}
# Every function that accepts metrics applies the tenant's ingest policy: it reads the settings table,
# and the index's per-day cardinality summary for the cardinality limits.
_INGEST_GRANTS = (
    Grant(METRICS_STREAM, W),
    Grant(KEYS_TABLE, R),
    Grant(SETTINGS_TABLE, R),
    Grant(INDEX_TABLE, R),
    Grant(PII_SECRET, R),
)
_INGEST_ENV = {
    **_AUTH_ENV,
    "NOVACRON_METRICS_STREAM": METRICS_STREAM,
    "NOVACRON_SETTINGS_TABLE": SETTINGS_TABLE,
    "NOVACRON_INDEX_TABLE": INDEX_TABLE,
    "NOVACRON_PII_SECRET": PII_SECRET,
}


def _ingest_function(
    name: str, code: str, extra_grants: tuple[Grant, ...] = (), extra_environment: dict[str, str] | None = None
) -> Function:
    """A function that takes data in: API-Gateway-bound, and applying the tenant's ingest policy."""
    return Function(
        name,
        code=code,
        handler="handler.lambda_handler",
        memory_mb=1024,
        timeout_s=29,
        grants=(*_INGEST_GRANTS, *extra_grants),
        environment={**_INGEST_ENV, **(extra_environment or {})},
    )


WIRING = Wiring(
    streams=(
        Stream(METRICS_STREAM, shards=2, retention_hours=24),
        Stream(SPANS_STREAM, shards=1, retention_hours=24),
    ),
    tables=(
        Table(BLOCKS_TABLE, partition_key="pk", sort_key="sk", ttl_attribute="expires_at"),
        Table(INDEX_TABLE, partition_key="pk", sort_key="sk"),
        Table(KEYS_TABLE, partition_key="key_id"),
        Table(SETTINGS_TABLE, partition_key="pk", sort_key="sk"),
        # Range-query results by aligned chunk, shared by every instance of the query function.
        Table(RESULTS_TABLE, partition_key="pk", sort_key="sk", ttl_attribute="expires_at"),
        Table(DETECTOR_STATE_TABLE, partition_key="pk", ttl_attribute="expires_at"),
        Table(ANOMALIES_TABLE, partition_key="pk", sort_key="sk", ttl_attribute="expires_at"),
        Table(INCIDENTS_TABLE, partition_key="pk", sort_key="sk", ttl_attribute="expires_at"),
        Table(ALERTING_TABLE, partition_key="pk", sort_key="sk"),
        Table(NOTIFY_STATE_TABLE, partition_key="pk", sort_key="sk", ttl_attribute="expires_at"),
    ),
    buckets=(Bucket(ARCHIVE_BUCKET, retention_classes=True), Bucket(MODELS_BUCKET)),
    queues=(Queue(WRITER_DLQ), Queue(SPANS_DLQ), Queue(DETECT_DLQ), Queue(NOTIFY_DLQ)),
    functions=(
        _ingest_function(INGEST, "functions/ingest"),
        # OpenTelemetry OTLP/HTTP: metrics onto the metrics stream, spans onto the spans stream.
        _ingest_function(OTLP, "functions/otlp", (Grant(SPANS_STREAM, W),), {"NOVACRON_SPANS_STREAM": SPANS_STREAM}),
        # CloudWatch metric streams, delivered by Kinesis Data Firehose's HTTP endpoint destination.
        _ingest_function(FIREHOSE, "functions/firehose"),
        # Spans are kept in the archive until the tracing features read them.
        Function(
            SPANS_ARCHIVER,
            code="functions/spans",
            handler="handler.lambda_handler",
            memory_mb=512,
            timeout_s=60,
            grants=(Grant(SPANS_STREAM, R), Grant(ARCHIVE_BUCKET, W), Grant(SPANS_DLQ, W)),
            environment={"NOVACRON_ARCHIVE_BUCKET": ARCHIVE_BUCKET},
        ),
        Function(
            WRITER,
            code="functions/writer",
            handler="handler.lambda_handler",
            memory_mb=1024,
            timeout_s=120,
            grants=(
                Grant(METRICS_STREAM, R),
                Grant(BLOCKS_TABLE, W),
                Grant(INDEX_TABLE, RW),
                Grant(ARCHIVE_BUCKET, W),
                Grant(WRITER_DLQ, W),
                Grant(SETTINGS_TABLE, R),  # retention policies: block TTLs
            ),
            environment={
                "NOVACRON_BLOCKS_TABLE": BLOCKS_TABLE,
                "NOVACRON_INDEX_TABLE": INDEX_TABLE,
                "NOVACRON_ARCHIVE_BUCKET": ARCHIVE_BUCKET,
                "NOVACRON_SETTINGS_TABLE": SETTINGS_TABLE,
            },
            layers=("core", "science"),
        ),
        Function(
            QUERY,
            code="functions/query",
            handler="handler.lambda_handler",
            memory_mb=2048,
            timeout_s=29,
            grants=(
                Grant(BLOCKS_TABLE, R),
                Grant(INDEX_TABLE, R),
                Grant(KEYS_TABLE, R),
                Grant(RESULTS_TABLE, RW),
                Grant(SETTINGS_TABLE, R),  # retention policies: raw reads stop at each series' retention
                # Raw samples older than the hot tier keeps come from the Parquet archive.
                Grant(ARCHIVE_BUCKET, R, prefixes=("parquet/",)),
                Grant(ANOMALIES_TABLE, R),  # /api/v1/anomalies
                Grant(ALERTING_TABLE, R),  # /api/v1/rules, /api/v1/alerts, /api/v2/silences
                Grant(INCIDENTS_TABLE, R),  # /api/v1/incidents
                Grant(NOTIFY_STATE_TABLE, R),  # the local inbox: /api/v1/notifications
            ),
            environment={
                **_AUTH_ENV,
                "NOVACRON_BLOCKS_TABLE": BLOCKS_TABLE,
                "NOVACRON_INDEX_TABLE": INDEX_TABLE,
                "NOVACRON_RESULTS_TABLE": RESULTS_TABLE,
                "NOVACRON_SETTINGS_TABLE": SETTINGS_TABLE,
                "NOVACRON_ARCHIVE_BUCKET": ARCHIVE_BUCKET,
                "NOVACRON_ANOMALIES_TABLE": ANOMALIES_TABLE,
                "NOVACRON_ALERTING_TABLE": ALERTING_TABLE,
                "NOVACRON_INCIDENTS_TABLE": INCIDENTS_TABLE,
                "NOVACRON_NOTIFY_STATE_TABLE": NOTIFY_STATE_TABLE,
            },
            # pyarrow (the arrow layer) is imported only when a query reaches back into the archive.
            layers=("arrow", "core", "science"),
        ),
        # Key administration is its own function so that only it may write the keys table.
        Function(
            ADMIN,
            code="functions/admin",
            handler="handler.lambda_handler",
            memory_mb=256,
            timeout_s=10,
            grants=(
                Grant(KEYS_TABLE, RW),
                Grant(SETTINGS_TABLE, RW),
                Grant(INDEX_TABLE, R),
                Grant(ANOMALIES_TABLE, RW),  # feedback: the episode must exist (R), the verdict is stored (W)
                Grant(MODELS_BUCKET, R, prefixes=(MODELS_PREFIX,)),  # /api/v1/admin/models
                Grant(ALERTING_TABLE, RW),  # rule files, the Alertmanager configuration, silences
                Grant(INCIDENTS_TABLE, RW),  # incident actions (acknowledge, resolve, ...)
                Grant(EVENT_BUS, W),  # ... which put incident events on the bus
                Grant(NOTIFICATIONS_TOPIC, W),  # ... and tell the receivers already notified
            ),
            environment={
                **_AUTH_ENV,
                "NOVACRON_SETTINGS_TABLE": SETTINGS_TABLE,
                "NOVACRON_INDEX_TABLE": INDEX_TABLE,
                "NOVACRON_ANOMALIES_TABLE": ANOMALIES_TABLE,
                "NOVACRON_MODELS_BUCKET": MODELS_BUCKET,
                "NOVACRON_ALERTING_TABLE": ALERTING_TABLE,
                "NOVACRON_INCIDENTS_TABLE": INCIDENTS_TABLE,
                "NOVACRON_EVENT_BUS": EVENT_BUS,
                "NOVACRON_NOTIFICATIONS_TOPIC": NOTIFICATIONS_TOPIC,
            },
            # Retention overrides match series with PromQL selectors: validating them needs the parser.
            layers=("core", "science"),
        ),
        # Raw archive objects → Parquet (novacron.archive): reads raw/, writes parquet/, keeps its manifests.
        Function(
            ARCHIVER,
            code="functions/archiver",
            handler="handler.lambda_handler",
            memory_mb=2048,
            timeout_s=900,
            grants=(
                Grant(ARCHIVE_BUCKET, R, prefixes=("raw/", "parquet-manifests/")),
                Grant(ARCHIVE_BUCKET, W, prefixes=("parquet/", "parquet-manifests/")),
                Grant(SETTINGS_TABLE, R),  # tenants' retention: the archive class each file is tagged with
            ),
            environment={"NOVACRON_ARCHIVE_BUCKET": ARCHIVE_BUCKET, "NOVACRON_SETTINGS_TABLE": SETTINGS_TABLE},
            # pyarrow (~130 MB) fits beside core and the small science layer (retention selectors need
            # the PromQL parser) only: no other function takes the arrow layer.
            layers=("arrow", "core", "science"),
        ),
        # The writer's small blocks → per-window compacted blocks and 1m/5m/1h rollups (storage/compaction.py).
        Function(
            COMPACTOR,
            code="functions/compactor",
            handler="handler.lambda_handler",
            memory_mb=1769,  # one full vCPU: the work is numpy over whole windows
            timeout_s=900,
            grants=(Grant(BLOCKS_TABLE, RW), Grant(KEYS_TABLE, R), Grant(SETTINGS_TABLE, R)),
            environment={
                **_AUTH_ENV,
                "NOVACRON_BLOCKS_TABLE": BLOCKS_TABLE,
                "NOVACRON_SETTINGS_TABLE": SETTINGS_TABLE,
            },
            # Retention overrides match series with PromQL selectors: reading them needs the parser.
            layers=("core", "science"),
        ),
        # The streaming anomaly detector (novacron.detect.service): scores every sample of watched series.
        Function(
            DETECT,
            code="functions/detect",
            handler="handler.lambda_handler",
            memory_mb=1024,
            timeout_s=60,
            grants=(
                Grant(METRICS_STREAM, R),
                Grant(DETECTOR_STATE_TABLE, RW),
                Grant(ANOMALIES_TABLE, W),
                Grant(EVENT_BUS, W),
                Grant(DETECT_DLQ, W),
                Grant(SETTINGS_TABLE, R),  # tenants' detection policies
            ),
            environment={
                "NOVACRON_DETECTOR_STATE_TABLE": DETECTOR_STATE_TABLE,
                "NOVACRON_ANOMALIES_TABLE": ANOMALIES_TABLE,
                "NOVACRON_EVENT_BUS": EVENT_BUS,
                "NOVACRON_SETTINGS_TABLE": SETTINGS_TABLE,
            },
            # Detection policies match series with PromQL selectors: reading them needs the parser.
            layers=("core", "science"),
        ),
        # Per-service Isolation Forests (novacron.detect.trainer): history through the query engine, users'
        # feedback from the anomalies table, models and their registries in the models bucket.
        Function(
            DETECT_TRAINER,
            code="functions/detect_trainer",
            handler="handler.lambda_handler",
            memory_mb=1769,  # one full vCPU: numpy over a week of minutes per service
            timeout_s=900,
            grants=(
                Grant(BLOCKS_TABLE, R),
                Grant(INDEX_TABLE, R),
                Grant(KEYS_TABLE, R),  # the tenants
                Grant(SETTINGS_TABLE, R),  # retention (raw reads) and detection policies (sensitivity)
                Grant(ANOMALIES_TABLE, R),  # episodes and users' feedback on them
                Grant(MODELS_BUCKET, RW, prefixes=(MODELS_PREFIX,)),
            ),
            environment={
                **_AUTH_ENV,
                "NOVACRON_BLOCKS_TABLE": BLOCKS_TABLE,
                "NOVACRON_INDEX_TABLE": INDEX_TABLE,
                "NOVACRON_SETTINGS_TABLE": SETTINGS_TABLE,
                "NOVACRON_ANOMALIES_TABLE": ANOMALIES_TABLE,
                "NOVACRON_MODELS_BUCKET": MODELS_BUCKET,
            },
            layers=("core", "science"),  # the PromQL parser
        ),
        # Every minute, each service with a model (novacron.detect.service_scorer): service-level episodes
        # and events; the shadow model's record goes into the registry (models bucket, W). The tenants
        # are those with models (the bucket's listing), not the keys table's.
        Function(
            SERVICE_DETECT,
            code="functions/service_detect",
            handler="handler.lambda_handler",
            memory_mb=1024,
            timeout_s=55,  # less than the period: runs do not pile up
            grants=(
                Grant(BLOCKS_TABLE, R),
                Grant(INDEX_TABLE, R),
                Grant(SETTINGS_TABLE, R),
                Grant(DETECTOR_STATE_TABLE, RW),
                Grant(ANOMALIES_TABLE, W),
                Grant(EVENT_BUS, W),
                Grant(MODELS_BUCKET, RW, prefixes=(MODELS_PREFIX,)),
            ),
            environment={
                "NOVACRON_BLOCKS_TABLE": BLOCKS_TABLE,
                "NOVACRON_INDEX_TABLE": INDEX_TABLE,
                "NOVACRON_SETTINGS_TABLE": SETTINGS_TABLE,
                "NOVACRON_DETECTOR_STATE_TABLE": DETECTOR_STATE_TABLE,
                "NOVACRON_ANOMALIES_TABLE": ANOMALIES_TABLE,
                "NOVACRON_EVENT_BUS": EVENT_BUS,
                "NOVACRON_MODELS_BUCKET": MODELS_BUCKET,
            },
            layers=("core", "science"),
        ),
        # Every minute (novacron.alert.service): rule groups evaluated, rule alerts and anomaly episodes
        # correlated into incidents, incidents routed into notification requests.
        Function(
            ALERT,
            code="functions/alert",
            handler="handler.lambda_handler",
            memory_mb=1024,
            timeout_s=60,
            grants=(
                Grant(BLOCKS_TABLE, R),
                Grant(INDEX_TABLE, R),
                Grant(KEYS_TABLE, R),  # the tenants
                Grant(SETTINGS_TABLE, R),  # retention (raw reads)
                Grant(METRICS_STREAM, W),  # recording rules' series, ALERTS and ALERTS_FOR_STATE
                Grant(ANOMALIES_TABLE, R),
                Grant(INCIDENTS_TABLE, RW),
                Grant(ALERTING_TABLE, RW),  # rule groups' and the dispatcher's states
                Grant(EVENT_BUS, W),
                Grant(NOTIFICATIONS_TOPIC, W),
            ),
            environment={
                **_AUTH_ENV,
                "NOVACRON_BLOCKS_TABLE": BLOCKS_TABLE,
                "NOVACRON_INDEX_TABLE": INDEX_TABLE,
                "NOVACRON_SETTINGS_TABLE": SETTINGS_TABLE,
                "NOVACRON_METRICS_STREAM": METRICS_STREAM,
                "NOVACRON_ANOMALIES_TABLE": ANOMALIES_TABLE,
                "NOVACRON_INCIDENTS_TABLE": INCIDENTS_TABLE,
                "NOVACRON_ALERTING_TABLE": ALERTING_TABLE,
                "NOVACRON_EVENT_BUS": EVENT_BUS,
                "NOVACRON_NOTIFICATIONS_TOPIC": NOTIFICATIONS_TOPIC,
            },
            layers=("core", "science"),  # the PromQL engine
        ),
        # Notification requests (the notifications topic) → the tenant's receivers (novacron.notify.service):
        # Slack, PagerDuty, Opsgenie, signed webhooks, e-mail through the email topic, the local inbox.
        Function(
            NOTIFIER,
            code="functions/notifier",
            handler="handler.lambda_handler",
            memory_mb=512,
            timeout_s=60,  # above the per-receiver delivery deadline (NotifierConfig.deadline_s)
            grants=(
                Grant(ALERTING_TABLE, R),  # tenants' Alertmanager-style configurations
                Grant(NOTIFY_STATE_TABLE, RW),
                Grant(NOTIFY_DLQ, W),
                Grant(EMAIL_TOPIC, W),
            ),
            environment={
                "NOVACRON_ALERTING_TABLE": ALERTING_TABLE,
                "NOVACRON_NOTIFY_STATE_TABLE": NOTIFY_STATE_TABLE,
                "NOVACRON_NOTIFY_FAILURES_QUEUE": NOTIFY_DLQ,
                "NOVACRON_EMAIL_TOPIC": EMAIL_TOPIC,
            },
            # No PromQL parser: the alerting store's rule-group states are kept apart from the evaluator
            # (novacron.alert.rule_state), and novacron.promql imports its engine on first use.
            layers=("core",),
        ),
    ),
    consumers=(
        StreamConsumer(
            WRITER,
            METRICS_STREAM,
            batch_size=500,
            # Lambda polls each shard about once a second anyway; waiting longer would only delay
            # data on its way to queries (freshness target: p95 <= 1 s).
            batching_window_s=0,
            report_batch_item_failures=True,
            bisect_on_error=True,
            max_retry_attempts=10,
            max_record_age_s=6 * 3600,
            on_failure=WRITER_DLQ,
        ),
        StreamConsumer(
            SPANS_ARCHIVER,
            SPANS_STREAM,
            batch_size=1000,
            # Archive objects are billed per PUT: gather a few seconds of spans into each.
            batching_window_s=5,
            report_batch_item_failures=True,
            bisect_on_error=True,
            max_retry_attempts=10,
            max_record_age_s=24 * 3600,
            on_failure=SPANS_DLQ,
        ),
        StreamConsumer(
            DETECT,
            METRICS_STREAM,
            batch_size=500,
            # Anomaly events within seconds of ingest (issue 6: p95 <= 5 s): no batching window.
            batching_window_s=0,
            report_batch_item_failures=True,
            bisect_on_error=True,
            max_retry_attempts=5,
            # An anomaly found an hour late is not worth a page; the writer keeps the data regardless.
            max_record_age_s=3600,
            on_failure=DETECT_DLQ,
        ),
    ),
    routes=(
        Route("POST", "/api/v1/write", INGEST),
        Route("POST", "/api/v1/ingest", INGEST),
        Route("POST", "/otlp/v1/metrics", OTLP),
        Route("POST", "/otlp/v1/traces", OTLP),
        Route("POST", "/aws/firehose", FIREHOSE),
        Route("GET", "/api/v1/query", QUERY),
        Route("POST", "/api/v1/query", QUERY),
        Route("GET", "/api/v1/query_range", QUERY),
        Route("POST", "/api/v1/query_range", QUERY),
        Route("GET", "/api/v1/series", QUERY),
        Route("POST", "/api/v1/series", QUERY),
        Route("GET", "/api/v1/labels", QUERY),
        Route("POST", "/api/v1/labels", QUERY),
        Route("GET", "/api/v1/label/{name}/values", QUERY),
        Route("GET", "/api/v1/status/buildinfo", QUERY),
        Route("GET", "/api/v1/status/tsdb", QUERY),
        Route("GET", "/api/v1/metadata", QUERY),
        Route("GET", "/api/v1/query_exemplars", QUERY),
        Route("POST", "/api/v1/query_exemplars", QUERY),
        Route("GET", "/api/v1/format_query", QUERY),
        Route("POST", "/api/v1/format_query", QUERY),
        Route("GET", "/api/v1/rules", QUERY),
        Route("GET", "/api/v1/alerts", QUERY),
        Route("GET", "/api/v1/forecast", QUERY),
        Route("POST", "/api/v1/forecast", QUERY),
        Route("GET", "/api/v1/anomalies", QUERY),
        Route("GET", "/api/v1/admin/keys", ADMIN),
        Route("POST", "/api/v1/admin/keys", ADMIN),
        Route("DELETE", "/api/v1/admin/keys/{key_id}", ADMIN),
        Route("GET", "/api/v1/admin/ingest-policy", ADMIN),
        Route("PUT", "/api/v1/admin/ingest-policy", ADMIN),
        Route("GET", "/api/v1/admin/cardinality", ADMIN),
        Route("GET", "/api/v1/admin/cardinality/approvals", ADMIN),
        Route("PUT", "/api/v1/admin/cardinality/approvals/{metric}", ADMIN),
        Route("DELETE", "/api/v1/admin/cardinality/approvals/{metric}", ADMIN),
        Route("GET", "/api/v1/admin/retention", ADMIN),
        Route("PUT", "/api/v1/admin/retention", ADMIN),
        Route("GET", "/api/v1/admin/retention/history", ADMIN),
        Route("GET", "/api/v1/admin/detection", ADMIN),
        Route("PUT", "/api/v1/admin/detection", ADMIN),
        Route("GET", "/api/v1/admin/detection/history", ADMIN),
        Route("POST", "/api/v1/anomalies/{id}/feedback", ADMIN),
        Route("GET", "/api/v1/admin/models", ADMIN),
        # Alerting (docs/alerting.md): reads by the query function, changes by the admin function.
        Route("GET", "/api/v1/incidents", QUERY),
        Route("GET", "/api/v1/incidents/{id}", QUERY),
        Route("GET", "/api/v1/notifications", QUERY),  # the local inbox
        Route("POST", "/api/v1/incidents/{id}/acknowledge", ADMIN),
        Route("POST", "/api/v1/incidents/{id}/resolve", ADMIN),
        Route("POST", "/api/v1/incidents/{id}/reopen", ADMIN),
        Route("POST", "/api/v1/incidents/{id}/comment", ADMIN),
        Route("GET", "/api/v1/rules/files", ADMIN),
        Route("GET", "/api/v1/rules/files/{name}", ADMIN),
        Route("PUT", "/api/v1/rules/files/{name}", ADMIN),
        Route("DELETE", "/api/v1/rules/files/{name}", ADMIN),
        Route("GET", "/api/v1/admin/alertmanager", ADMIN),
        Route("PUT", "/api/v1/admin/alertmanager", ADMIN),
        Route("GET", "/api/v1/admin/correlation", ADMIN),
        Route("PUT", "/api/v1/admin/correlation", ADMIN),
        Route("GET", "/api/v2/silences", QUERY),
        Route("GET", "/api/v2/silence/{id}", QUERY),
        Route("POST", "/api/v2/silences", ADMIN),
        Route("DELETE", "/api/v2/silence/{id}", ADMIN),
    ),
    schedules=(
        Schedule("parquet-archive", ARCHIVER, every_s=900),
        Schedule("compaction", COMPACTOR, every_s=900),
        # Locally: a first model soon after start (on the history a demo backfills), then every half hour.
        Schedule("model-training", DETECT_TRAINER, every_s=TRAINING_EVERY_S, local_every_s=1800, local_first_run_s=90),
        Schedule("service-scoring", SERVICE_DETECT, every_s=SERVICE_SCORING_EVERY_S),
        # Locally every 15 s (rule groups still evaluate at their own interval): alerts show within a minute.
        Schedule("alert-evaluation", ALERT, every_s=ALERT_EVERY_S, local_every_s=15, local_first_run_s=10),
    ),
    secrets=(Secret(PII_SECRET, "NovaCron: the key per-tenant PII-scrubbing HMAC keys are derived from"),),
    # Every sample the writer stores is also written to Timestream when a deployment turns this on.
    timestream=TimestreamSink(WRITER, database="timestream", table="metrics"),
    buses=(EventBus(EVENT_BUS),),
    topics=(Topic(NOTIFICATIONS_TOPIC), Topic(EMAIL_TOPIC)),
    # SNS invokes the notifier asynchronously; a message whose retries run out lands in notify-failures.
    subscriptions=(TopicSubscription(NOTIFIER, NOTIFICATIONS_TOPIC, on_failure=NOTIFY_DLQ),),
)
