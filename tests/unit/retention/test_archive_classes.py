"""Archive retention classes: the ladder, the rounding up, the object tag."""

from __future__ import annotations

import pytest

from novacron.retention import ARCHIVE_CLASSES, archive_class_days, archive_retention_tag
from novacron.retention.policy import RetentionPolicy
from novacron.storage.writer import WriteStats, archive_stored_records
from tests.fakes import MemoryArchive


@pytest.mark.parametrize(
    ("days", "class_days"),
    [(1, 7), (7, 7), (8, 14), (31, 60), (365, 365), (366, 400), (400, 400), (401, 730), (3000, 3650), (3650, 3650)],
)
def test_archive_days_round_up_to_the_next_class(days: int, class_days: int) -> None:
    # Data is never deleted before the policy says: a class is at least as long as the days asked
    assert archive_class_days(days) == class_days
    assert archive_retention_tag(days) == {"novacron-retention": f"{class_days}d"}


def test_zero_is_forever() -> None:
    assert archive_class_days(0) == 0
    assert archive_retention_tag(0) == {"novacron-retention": "forever"}


@pytest.mark.parametrize("days", [-1, 3651])
def test_days_outside_the_ladder_are_refused(days: int) -> None:
    with pytest.raises(ValueError, match=r"0 \(forever\) or 1\.\.3650"):
        archive_retention_tag(days)


def test_the_ladder_is_strictly_increasing() -> None:
    assert list(ARCHIVE_CLASSES) == sorted(set(ARCHIVE_CLASSES))


def test_raw_archive_objects_carry_their_tenants_class() -> None:
    # Given a batch of two tenants, one keeping one metric's archive forever
    policies = {
        "acme": RetentionPolicy.model_validate({"overrides": [{"metric": "audit", "archive_days": 0}]}),
        "globex": RetentionPolicy.model_validate({"defaults": {"archive_days": 45}}),
    }
    archive = MemoryArchive()
    stored = [(str(i), b"record", WriteStats(tenant=t, received_ms=1_790_000_000_000)) for i, t in enumerate(policies)]
    # When the writer archives them
    keys = archive_stored_records(archive, "shard-0", stored, lambda tenant: policies[tenant].archive_tag())
    # Then each tenant's object is tagged with the class of its longest archive retention
    assert [archive.tags[k] for k in keys] == [{"novacron-retention": "forever"}, {"novacron-retention": "60d"}]
