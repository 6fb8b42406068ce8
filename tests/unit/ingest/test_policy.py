"""The ingest policy: its model, and label completion on every ingest path."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from novacron.ingest.policy import (
    Approval,
    IngestPolicy,
    LabelMode,
    PolicyConflict,
    updated_policy,
    with_approval,
)
from novacron.ingest.service import IngestService
from novacron.protocols.remote_write_pb import Label, Sample, TimeSeries
from tests.builders import NOW, RW_HEADERS, timeseries, write_request
from tests.fakes import ListSink, MemoryPolicyStore

KEY_LABELS = {"source": "prometheus", "environment": "prod", "owner": "team-payments"}


@pytest.fixture
def service(sink: ListSink, policies: MemoryPolicyStore) -> IngestService:
    return IngestService(sink, clock_ms=lambda: NOW, policies=policies)


def stored_labels(sink: ListSink) -> list[dict[str, str]]:
    return [dict(labels) for labels in sink.stored_samples()]


# --- the model ---------------------------------------------------------------------------------


def test_the_default_policy_requires_source_environment_owner_and_defaults_them() -> None:
    # Given no stored policy
    policy = IngestPolicy()
    # Then every series must carry the three labels, filled with "unknown" when nothing supplies them
    assert policy.required_labels == ("source", "environment", "owner")
    assert policy.mode is LabelMode.DEFAULT
    assert (policy.max_series_per_tenant, policy.max_series_per_metric) == (1_000_000, 50_000)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"required_labels": ["bad-name"]}, "invalid label name 'bad-name'"),
        ({"required_labels": ["__x"]}, "reserved"),
        ({"required_labels": ["a", "a"]}, "distinct"),
        ({"defaults": {"team": ""}}, "non-empty string value"),
        ({"label_modes": {"team": "reject"}}, "not required: team"),
        ({"mode": "sometimes"}, "'default' or 'reject'"),
        ({"max_series_per_metric": 0}, "greater than 0"),
        ({"approvals": {"1bad": {"limit": 5, "reason": "x"}}}, "invalid metric name"),
        ({"colour": "blue"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_policies_are_refused_naming_the_field(fields: dict[str, object], message: str) -> None:
    # When an invalid policy is validated
    with pytest.raises(ValidationError) as caught:
        IngestPolicy.model_validate(fields)
    # Then the error says what is wrong
    assert message in str(caught.value)


def test_key_labels_win_over_policy_defaults_and_the_rest_follow_the_mode() -> None:
    # Given a policy with a default owner, rejecting a missing environment
    policy = IngestPolicy(defaults={"owner": "platform", "region": "eu"}, label_modes={"environment": LabelMode.REJECT})
    # When the fill for a key labelled with a source and an owner is made
    fill = policy.label_fill({"source": "agent", "owner": "team-a"})
    # Then the key's owner wins, the policy's extra default is kept, and environment rejects
    assert fill.add == (("owner", "team-a"), ("region", "eu"), ("source", "agent"))
    assert (fill.unknown, fill.reject) == ((), ("environment",))


def test_a_put_bumps_the_version_and_keeps_approvals() -> None:
    # Given a stored policy at version 3 with an approval
    approval = Approval(limit=200_000, reason="per-customer metric", approved_by="k1", approved_at=1)
    current = IngestPolicy(version=3, approvals={"http_requests_total": approval})
    # When an admin PUTs a change made to version 3 (approvals in the body are ignored)
    body = {**current.document(), "mode": "reject", "approvals": {}, "version": 3}
    changed = updated_policy(current, body, "k2", 100)
    # Then it is version 4, by k2, with the approval intact
    assert (changed.version, changed.mode, changed.updated_by, changed.updated_at) == (4, LabelMode.REJECT, "k2", 100)
    assert changed.approvals == {"http_requests_total": approval}


def test_a_put_against_an_older_version_conflicts() -> None:
    # Given a policy at version 2
    current = IngestPolicy(version=2)
    # When a change made to version 1 arrives, or one without a version
    # Then it is refused
    with pytest.raises(PolicyConflict, match="at version 2"):
        updated_policy(current, {"version": 1}, "k", 1)
    with pytest.raises(ValueError, match="version: required"):
        updated_policy(current, {"mode": "reject"}, "k", 1)


def test_approvals_set_and_remove_as_new_versions() -> None:
    # Given the default policy
    policy = IngestPolicy()
    # When a metric is approved, then revoked
    approved = with_approval(policy, "m", Approval(limit=9, reason="r"), "k", 5)
    revoked = with_approval(approved, "m", None, "k", 6)
    # Then the limit follows, and each change is a version
    assert (approved.metric_limit("m"), approved.metric_limit("other"), approved.version) == (9, 50_000, 1)
    assert (revoked.metric_limit("m"), revoked.version) == (50_000, 2)


# --- label completion at ingest ------------------------------------------------------------------


def test_key_labels_complete_series_and_samples_are_unchanged(service: IngestService, sink: ListSink) -> None:
    # Given a series without the required labels, sent with a labelled key
    series = timeseries({"__name__": "up", "job": "node"}, [(NOW - 1000, 0.0), (NOW, 1.5)])
    # When it is written
    result = service.remote_write(write_request([series]), RW_HEADERS, "acme", KEY_LABELS)
    # Then it is stored with the key's labels, sorted, and the same samples
    assert (result.series_accepted, result.rejected, result.labels_defaulted) == (1, [], 0)
    ((labels, samples),) = sink.stored_samples().items()
    assert labels == (
        ("__name__", "up"),
        ("environment", "prod"),
        ("job", "node"),
        ("owner", "team-payments"),
        ("source", "prometheus"),
    )
    assert samples == [(NOW - 1000, 0.0), (NOW, 1.5)]


def test_the_senders_own_label_wins(service: IngestService, sink: ListSink) -> None:
    # Given a series that names its own environment
    series = timeseries({"__name__": "up", "environment": "staging"}, [(NOW, 1.0)])
    # When written with a key saying prod
    service.remote_write(write_request([series]), RW_HEADERS, "acme", KEY_LABELS)
    # Then the sender's value is kept
    assert stored_labels(sink)[0]["environment"] == "staging"


def test_policy_defaults_fill_what_the_key_lacks(
    service: IngestService, sink: ListSink, policies: MemoryPolicyStore
) -> None:
    # Given a policy defaulting owner and environment, and a key with environment only
    policies.policies["acme"] = IngestPolicy(version=1, defaults={"owner": "platform", "environment": "dev"})
    series = timeseries({"__name__": "up"}, [(NOW, 1.0)])
    # When written
    result = service.remote_write(write_request([series]), RW_HEADERS, "acme", {"environment": "prod"})
    # Then the key's environment and the policy's owner are used, and source becomes "unknown" (counted)
    assert stored_labels(sink) == [{"__name__": "up", "environment": "prod", "owner": "platform", "source": "unknown"}]
    assert result.labels_defaulted == 1
    assert result.metric_counts()["SeriesLabelsDefaulted"] == 1


def test_reject_mode_rejects_a_series_missing_a_label_and_says_how_to_fix_it(
    service: IngestService, sink: ListSink, policies: MemoryPolicyStore
) -> None:
    # Given a policy rejecting series without an owner
    policies.policies["acme"] = IngestPolicy(version=1, mode=LabelMode.REJECT)
    ok = timeseries({"__name__": "up", "owner": "team-a"}, [(NOW, 1.0)])
    missing = timeseries({"__name__": "down"}, [(NOW, 1.0)])
    # When both are written with a key supplying source and environment only
    result = service.remote_write(
        write_request([ok, missing]), RW_HEADERS, "acme", {"source": "agent", "environment": "prod"}
    )
    # Then the complete one is stored and the other rejected, naming the label and the ways to set it
    assert result.series_accepted == 1
    (message,) = result.rejected
    assert "series has no 'owner' label" in message
    assert "novacron keys create --label owner=VALUE" in message
    assert message.endswith(": down{}")
    assert result.rejected_by_reason == {"missing_label": 1}
    assert result.metric_counts()["SeriesRejected_missing_label"] == 1
    assert [labels["__name__"] for labels in stored_labels(sink)] == ["up"]


def test_completion_applies_to_native_json_too(service: IngestService, sink: ListSink) -> None:
    # Given a native JSON body
    body = json.dumps({"series": [{"labels": {"__name__": "t", "room": "lab"}, "samples": [[NOW, 21.5]]}]})
    # When ingested with a labelled key
    service.ingest_json(body.encode(), "acme", KEY_LABELS)
    # Then the series carries the key's labels
    assert stored_labels(sink)[0]["owner"] == "team-payments"


def test_labels_encoded_after_the_samples_are_rewritten_through_protobuf(
    service: IngestService, sink: ListSink
) -> None:
    # Given a series whose label fields follow its samples on the wire (valid protobuf, unusual order)
    samples = TimeSeries(samples=[Sample(timestamp=NOW, value=2.5)]).SerializeToString()
    labels = TimeSeries(labels=[Label(name="__name__", value="odd"), Label(name="job", value="j")]).SerializeToString()
    # When it is ingested with a labelled key
    result = service.ingest_encoded([samples + labels], "acme", KEY_LABELS)
    # Then it is stored with its completed labels and its sample
    assert result.series_accepted == 1
    ((stored, values),) = sink.stored_samples().items()
    assert dict(stored) == {"__name__": "odd", "job": "j", **KEY_LABELS}
    assert values == [(NOW, 2.5)]


def test_too_many_labels_after_completion_is_an_invalid_series(service: IngestService) -> None:
    # Given a series with 62 labels of its own, two short of the limit
    labels = {"__name__": "wide", **{f"l{i:02d}": "x" for i in range(61)}}
    # When the policy would add three more
    result = service.ingest_encoded([timeseries(labels, [(NOW, 1.0)]).SerializeToString()], "acme")
    # Then it is rejected, saying the policy's labels count
    assert result.series_accepted == 0
    assert "with the labels the ingest policy adds" in result.rejected[0]
    assert result.rejected_by_reason == {"invalid_labels": 1}


def test_a_policy_change_applies_to_series_already_seen(
    service: IngestService, sink: ListSink, policies: MemoryPolicyStore
) -> None:
    # Given a series written under the default policy
    series = timeseries({"__name__": "up"}, [(NOW, 1.0)])
    service.remote_write(write_request([series]), RW_HEADERS, "acme")
    # When the policy (version 1) adds a default owner and the series is written again
    policies.policies["acme"] = IngestPolicy(version=1, defaults={"owner": "team-z"})
    service.remote_write(write_request([series]), RW_HEADERS, "acme")
    # Then the second copy carries the new owner
    owners = sorted(labels["owner"] for labels in stored_labels(sink))
    assert owners == ["team-z", "unknown"]


def test_each_rejection_is_counted_by_reason(service: IngestService) -> None:
    # Given an invalid series, one out of the window and a good one
    series = [
        timeseries({"__name__": "1bad"}, [(NOW, 1.0)]),
        timeseries({"__name__": "old"}, [(NOW - 10 * 3600 * 1000, 1.0)]),
        timeseries({"__name__": "ok"}, [(NOW, 1.0)]),
    ]
    # When written
    result = service.remote_write(write_request(series), RW_HEADERS, "acme", KEY_LABELS)
    # Then each rejection is counted under its reason, and the totals agree
    assert result.rejected_by_reason == {"invalid_labels": 1, "out_of_window": 1}
    counts = result.metric_counts()
    assert counts["SeriesRejected"] == 2
    assert (counts["SeriesRejected_invalid_labels"], counts["SeriesRejected_out_of_window"]) == (1, 1)


def test_complete_and_incomplete_series_mix_in_one_request(service: IngestService, sink: ListSink) -> None:
    # Given series of which every other one already carries all three labels
    series = [
        timeseries({"__name__": "up", "i": str(i), **(KEY_LABELS if i % 2 else {})}, [(NOW, float(i))])
        for i in range(6)
    ]
    # When written with a key of other values
    result = service.remote_write(write_request(series), RW_HEADERS, "acme", {"owner": "other"})
    # Then all are stored with their own samples; only the incomplete ones got labels added
    assert result.series_accepted == 6
    stored = {dict(labels)["i"]: (dict(labels), samples) for labels, samples in sink.stored_samples().items()}
    for i in range(6):
        labels, samples = stored[str(i)]
        assert samples == [(NOW, float(i))]
        assert labels["owner"] == ("team-payments" if i % 2 else "other")
        assert labels["source"] == ("prometheus" if i % 2 else "unknown")
