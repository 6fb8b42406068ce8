"""Cardinality limits at ingest: per metric, per tenant, approvals, and existing series."""

from __future__ import annotations

import pytest

from novacron.ingest.policy import Approval, IngestPolicy
from novacron.ingest.service import IngestError, IngestService, IngestSettings
from novacron.ingest.validate import SeriesValidator
from novacron.protocols.remote_write_pb import RawTimeSeries
from novacron.storage.writer import SeriesEntry, day_of
from tests.builders import NOW, RW_HEADERS, timeseries, write_request
from tests.fakes import ListSink, MemoryIndexStore, MemoryPolicyStore

DAY = day_of(NOW)
KEY_LABELS = {"source": "prometheus", "environment": "prod", "owner": "team-a"}


class Clock:
    """A clock (milliseconds) the test moves."""

    def __init__(self) -> None:
        self.now = 0


@pytest.fixture
def index() -> MemoryIndexStore:
    return MemoryIndexStore()


@pytest.fixture
def policies() -> MemoryPolicyStore:
    store = MemoryPolicyStore()
    store.policies["acme"] = IngestPolicy(version=1, max_series_per_metric=3, max_series_per_tenant=10)
    return store


@pytest.fixture
def service(index: MemoryIndexStore, policies: MemoryPolicyStore) -> IngestService:
    settings = IngestSettings(cardinality_ttl_s=60)
    return IngestService(ListSink(), settings, clock_ms=lambda: NOW, policies=policies, cardinality=index)


def series_of(metric: str, n: int, start: int = 0) -> list[object]:
    return [timeseries({"__name__": metric, "i": str(i)}, [(NOW, 1.0)]) for i in range(start, start + n)]


def write(service: IngestService, series: list[object]) -> tuple[int, list[str], dict[str, int]]:
    result = service.remote_write(write_request(series), RW_HEADERS, "acme", KEY_LABELS)
    return result.series_accepted, result.rejected, result.rejected_by_reason


def index_series(index: MemoryIndexStore, series: list[object]) -> None:
    """Enter series (as the policy completes them) in today's index and summary, as the writer would."""
    validator = SeriesValidator(fill=IngestPolicy().label_fill(KEY_LABELS))
    for ts in series:
        raw = RawTimeSeries.FromString(ts.SerializeToString())  # type: ignore[attr-defined]
        verdict = validator.check(RawTimeSeries(labels=raw.labels).SerializeToString())
        index.put_series([SeriesEntry("acme", DAY, verdict.series_id, verdict.labels)], 0)
    for (tenant, day, metric, _), _entry in list(index.series.items()):
        index.summary.setdefault((tenant, day), {})[metric] = len(index.series_of_metric(tenant, day, metric))


def test_new_series_over_the_metric_limit_are_rejected_with_how_to_get_approval(service: IngestService) -> None:
    # Given a per-metric limit of 3
    # When 5 new series of one metric arrive
    accepted, rejected, reasons = write(service, series_of("http_requests_total", 5))
    # Then 3 are admitted and 2 rejected, naming the limit and the approval command
    assert accepted == 3
    assert reasons == {"cardinality_metric": 2}
    assert "metric 'http_requests_total' has 3 series today" in rejected[0]
    assert "max_series_per_metric: 3" in rejected[0]
    assert "novacron cardinality approve http_requests_total --limit N" in rejected[0]
    assert "PUT /api/v1/admin/cardinality/approvals/http_requests_total" in rejected[0]


def test_admitted_series_stay_admitted(service: IngestService) -> None:
    # Given a metric filled to its limit by one request
    write(service, series_of("m", 3))
    # When the same series come again with a new one
    accepted, _, reasons = write(service, series_of("m", 4))
    # Then the known three pass and only the new one is rejected
    assert (accepted, reasons) == (3, {"cardinality_metric": 1})


def test_series_already_in_the_index_are_never_rejected(index: MemoryIndexStore, policies: MemoryPolicyStore) -> None:
    # Given a metric with 3 series in today's index (its limit), and a function that has never seen them
    index_series(index, series_of("m", 3))
    fresh = IngestService(ListSink(), clock_ms=lambda: NOW, policies=policies, cardinality=index)
    # When those series and a new one arrive
    accepted, rejected, _ = write(fresh, series_of("m", 4))
    # Then the existing ones are admitted after one existence check; the new one is rejected
    assert accepted == 3
    assert len(rejected) == 1
    assert 'i="3"' in rejected[0]
    assert index.existence_checks == 1


def test_a_refused_series_is_not_checked_again_until_the_counts_refresh(
    index: MemoryIndexStore, service: IngestService
) -> None:
    # Given a metric at its limit and a new series refused once
    index_series(index, series_of("m", 3))
    write(service, series_of("m", 1, start=10))
    checks = index.existence_checks
    # When it is sent again within the refresh interval
    accepted, _, reasons = write(service, series_of("m", 1, start=10))
    # Then it is refused without another index read
    assert (accepted, reasons, index.existence_checks) == (0, {"cardinality_metric": 1}, checks)


def test_an_approval_raises_the_limit_of_one_metric(service: IngestService, policies: MemoryPolicyStore) -> None:
    # Given a metric refused at its limit of 3
    write(service, series_of("m", 5))
    # When an admin approves 10 series for it (a new policy version)
    policies.policies["acme"] = policies.policies["acme"].model_copy(
        update={"version": 2, "approvals": {"m": Approval(limit=10, reason="tenants", approved_by="k1")}}
    )
    accepted, rejected, _ = write(service, series_of("m", 12))
    # Then the refused series get in, up to the approved limit, and the message names the approval
    assert accepted == 10
    assert "the limit approved for it (10, by k1)" in rejected[0]


def test_the_tenant_limit_applies_across_metrics(service: IngestService) -> None:
    # Given a tenant limit of 10 and metrics of 3 series each
    total = 0
    for metric in "abcd":
        accepted, rejected, reasons = write(service, series_of(metric, 3))
        total += accepted
    # Then the tenant stops at 10 series, with a message naming the tenant limit
    assert total == 10
    assert reasons == {"cardinality_tenant": 2}
    assert "tenant 'acme' has 10 series today, the limit per tenant (max_series_per_tenant: 10)" in rejected[0]


def test_counts_come_from_the_writers_summary(index: MemoryIndexStore, policies: MemoryPolicyStore) -> None:
    # Given a summary saying another function already admitted 3 series of the metric
    index.summary[("acme", DAY)] = {"m": 3}
    service = IngestService(ListSink(), clock_ms=lambda: NOW, policies=policies, cardinality=index)
    # When a new series arrives
    accepted, _, reasons = write(service, series_of("m", 1))
    # Then it is over the limit
    assert (accepted, reasons) == (0, {"cardinality_metric": 1})


def test_the_summary_is_read_again_after_the_ttl(index: MemoryIndexStore, policies: MemoryPolicyStore) -> None:
    # Given a function that read an empty summary, then a summary that fills up elsewhere
    clock = Clock()
    clock.now = NOW
    service = IngestService(
        ListSink(),
        IngestSettings(cardinality_ttl_s=60),
        clock_ms=lambda: int(clock.now),
        policies=policies,
        cardinality=index,
    )
    write(service, series_of("warmup", 1))
    index.summary[("acme", DAY)] = {"m": 3}
    # When the TTL has not passed, then has
    before, _, _ = write(service, series_of("m", 1))
    clock.now += 61_000
    after, _, _ = write(service, series_of("m", 1, start=5))
    # Then only the later request sees the limit
    assert (before, after) == (1, 0)


def test_without_a_cardinality_reader_there_are_no_limits(policies: MemoryPolicyStore) -> None:
    # Given a service with a policy but no index to count with
    service = IngestService(ListSink(), clock_ms=lambda: NOW, policies=policies)
    # When many series arrive
    accepted, rejected, _ = write(service, series_of("m", 20))
    # Then all are admitted
    assert (accepted, rejected) == (20, [])


def test_an_unreadable_index_is_a_retry_later(policies: MemoryPolicyStore) -> None:
    # Given an index that fails (DynamoDB throttling, say)
    class Failing(MemoryIndexStore):
        def cardinality(self, tenant: str, day: str) -> dict[str, int]:
            raise TimeoutError("throttled")

    service = IngestService(ListSink(), clock_ms=lambda: NOW, policies=policies, cardinality=Failing())
    # When a request arrives
    with pytest.raises(IngestError) as caught:
        write(service, series_of("m", 1))
    # Then it is refused as a whole with 503 and Retry-After, so the sender resends it
    assert caught.value.status == 503
    assert caught.value.headers == {"Retry-After": "1"}
