"""The archive bucket's lifecycle: one expiration rule per retention class, Glacier IR for the long tail."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from infra.constructs.storage import retention_class_rules
from infra.settings import Settings
from novacron.retention.archive import ARCHIVE_CLASSES
from novacron.wiring import ARCHIVE_BUCKET, WIRING

pytestmark = pytest.mark.infra


def rules_by_id(props: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["Id"]: rule for rule in props["LifecycleConfiguration"]["Rules"]}


def test_the_archive_bucket_expires_each_class_and_moves_the_long_tail(synthesized) -> None:
    # Given the default app (archiveGlacierAfterDays 90)
    bucket = synthesized.stack.resources.buckets[ARCHIVE_BUCKET]
    rules = rules_by_id(synthesized.resources[synthesized.logical_id(bucket)]["Properties"])
    # Then every class of the ladder expires objects tagged with it when the class ends
    for days in ARCHIVE_CLASSES:
        rule = rules[f"retention-{days}d"]
        assert rule["Status"] == "Enabled"
        assert rule["TagFilters"] == [{"Key": "novacron-retention", "Value": f"{days}d"}]
        assert rule["ExpirationInDays"] == days
        # And classes living at least 90 days in Glacier IR (its minimum) move there after 90 days
        moved = rule.get("Transitions", [])
        assert moved == ([{"StorageClass": "GLACIER_IR", "TransitionInDays": 90}] if days >= 180 else []), days
    # And objects kept forever only move
    forever = rules["retention-forever"]
    assert "ExpirationInDays" not in forever
    assert forever["Transitions"] == [{"StorageClass": "GLACIER_IR", "TransitionInDays": 90}]
    # And old versions and incomplete uploads are cleaned up, as before
    general = rules["noncurrent-and-incomplete"]
    assert general["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert general["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert general["ExpiredObjectDeleteMarker"] is True


def test_only_buckets_declared_with_retention_classes_get_class_rules(synthesized) -> None:
    for decl in WIRING.buckets:
        bucket = synthesized.stack.resources.buckets[decl.name]
        ids = set(rules_by_id(synthesized.resources[synthesized.logical_id(bucket)]["Properties"]))
        assert any(i.startswith("retention-") for i in ids) == decl.retention_classes


def synthesized_rules(glacier_after_days: int) -> dict[str, dict[str, Any]]:
    stack = Stack(App(), "Rules")
    s3.Bucket(stack, "Archive", lifecycle_rules=retention_class_rules(glacier_after_days))
    (props,) = [r["Properties"] for r in Template.from_stack(stack).to_json()["Resources"].values()]
    return rules_by_id(props)


def test_the_glacier_delay_comes_from_context_and_0_turns_it_off() -> None:
    # With archiveGlacierAfterDays 30, classes of 120 days or more move after 30 days
    rules = synthesized_rules(30)
    assert rules["retention-90d"].get("Transitions") is None
    assert rules["retention-180d"]["Transitions"] == [{"StorageClass": "GLACIER_IR", "TransitionInDays": 30}]
    # With 0 nothing moves, and "forever" needs no rule at all
    rules = synthesized_rules(0)
    assert all("Transitions" not in rule for rule in rules.values())
    assert "retention-forever" not in rules


def test_the_glacier_delay_is_validated() -> None:
    with pytest.raises(ValueError, match="archiveGlacierAfterDays must be 0"):
        Settings(archive_glacier_after_days=-1)
