"""The NovaCron stack: composes one construct per capability, all derived from the wiring."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from infra.constructs.alarms import Alarms
from infra.constructs.analytics import DEFAULT_SCAN_CUTOFF_GB, Analytics
from infra.constructs.consumers import StreamConsumers
from infra.constructs.encryption import Encryption
from infra.constructs.events import EventBuses
from infra.constructs.functions import Functions
from infra.constructs.http_api import HttpApi
from infra.constructs.metric_stream import add_metric_stream
from infra.constructs.queues import Queues
from infra.constructs.schedules import Schedules
from infra.constructs.secrets import Secrets
from infra.constructs.storage import Storage
from infra.constructs.streams import Streams
from infra.constructs.timestream import add_timestream_sink
from infra.constructs.topics import Topics
from infra.permissions import ResourceCatalog, check_wiring
from infra.settings import Settings
from novacron.wiring import ARCHIVE_BUCKET, WIRING, Wiring


class NovaCronStack(Stack):
    """Streams, storage, queues, functions, consumers, HTTP API, schedules and alarms."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        wiring: Wiring = WIRING,
        settings: Settings | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        settings = settings or Settings.from_context(self.node)
        check_wiring(wiring)
        data_policy = settings.data_removal_policy

        key = Encryption(self, "Encryption", removal_policy=data_policy).key
        streams = Streams(self, "Streams", streams=wiring.streams, key=key, removal_policy=data_policy)
        storage = Storage(
            self,
            "Storage",
            tables=wiring.tables,
            buckets=wiring.buckets,
            key=key,
            removal_policy=data_policy,
            glacier_after_days=settings.archive_glacier_after_days,
        )
        queues = Queues(self, "Queues", queues=wiring.queues, key=key, removal_policy=data_policy)
        secrets = Secrets(self, "Secrets", secrets=wiring.secrets, key=key, removal_policy=data_policy)
        buses = EventBuses(self, "Events", buses=wiring.buses, key=key)
        topics = Topics(self, "Topics", topics=wiring.topics, key=key)
        self.resources = ResourceCatalog(
            key=key,
            streams=streams.by_name,
            tables=storage.tables,
            buckets=storage.buckets,
            queues=queues.by_name,
            secrets=secrets.by_name,
            buses=buses.by_name,
            topics=topics.by_name,
        )
        self.functions = Functions(
            self, "Functions", functions=wiring.functions, resources=self.resources, settings=settings
        )
        StreamConsumers(
            self,
            "Consumers",
            consumers=wiring.consumers,
            functions=self.functions.by_name,
            resources=self.resources,
        )
        self.http_api = (
            HttpApi(
                self,
                "Http",
                routes=wiring.routes,
                functions=self.functions.by_name,
                key=key,
                settings=settings,
            )
            if wiring.routes
            else None
        )
        Schedules(self, "Schedules", schedules=wiring.schedules, functions=self.functions.by_name)
        topics.subscribe(wiring.subscriptions, self.functions.by_name, queues.by_name)
        # SQL over the Parquet archive (docs/archive.md): Glue table, Athena workgroup, results bucket.
        self.analytics = (
            Analytics(
                self,
                "Analytics",
                archive_bucket=storage.buckets[ARCHIVE_BUCKET],
                key=key,
                access_logs=storage.access_logs,
                removal_policy=data_policy,
                scan_cutoff_gb=int(self.node.try_get_context("novacron:athenaScanCutoffGb") or DEFAULT_SCAN_CUTOFF_GB),
            )
            if ARCHIVE_BUCKET in storage.buckets
            else None
        )
        # Off unless novacron:metricStream is set (it is billed per metric update): docs/cloudwatch.md.
        self.metric_stream = add_metric_stream(
            self,
            routes=wiring.routes,
            api=self.http_api.api if self.http_api else None,
            buckets=storage.buckets,
            key=key,
            log_retention=settings.log_retention,
        )
        # Off unless novacron:timestream is set (Timestream for LiveAnalytics is closed to new customers).
        self.timestream = add_timestream_sink(
            self,
            settings=settings,
            sink=wiring.timestream,
            functions=self.functions.by_name,
            buckets=storage.buckets,
            key=key,
            removal_policy=data_policy,
        )
        self.alarms = Alarms(
            self,
            "Alarms",
            consumers=wiring.consumers,
            functions=self.functions.by_name,
            queues=queues.by_name,
            api=self.http_api.api if self.http_api else None,
            key=key,
            iterator_age_alarm_s=settings.iterator_age_alarm_s,
            email=settings.alarm_email,
        )
