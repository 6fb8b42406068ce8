"""Archive retention classes: how long S3 keeps an archive object, chosen by an object tag.

S3 lifecycle rules are static (part of the bucket's configuration), while retention is a per-tenant
setting that changes at run time. So the bucket carries one expiration rule per *class* of a fixed
ladder, each filtered on the tag ``novacron-retention=<days>d`` (or ``=forever``), and the archive
writers tag every object with the class of its tenant's ``archive_days``, rounded UP to the next
class: data is never deleted earlier than the policy says, at worst kept until its class ends.
An object keeps the class it was written with; a policy change applies to objects written after it.
"""

from __future__ import annotations

import bisect

RETENTION_TAG = "novacron-retention"
FOREVER = "forever"
# Days of each class; `archive_days` above the last class is not accepted (use 0, "forever").
ARCHIVE_CLASSES: tuple[int, ...] = (7, 14, 30, 60, 90, 180, 365, 400, 730, 1095, 1825, 2555, 3650)
MAX_ARCHIVE_DAYS = ARCHIVE_CLASSES[-1]


def archive_class_days(days: int) -> int:
    """The class ``days`` of archive retention rounds up to; 0 (forever) stays 0."""
    if days < 0 or days > MAX_ARCHIVE_DAYS:
        raise ValueError(f"archive retention must be 0 (forever) or 1..{MAX_ARCHIVE_DAYS} days, got {days}")
    if days == 0:
        return 0
    return ARCHIVE_CLASSES[bisect.bisect_left(ARCHIVE_CLASSES, days)]


def class_tag_value(class_days: int) -> str:
    """The tag value of one class: ``<days>d``, or ``forever`` for 0."""
    return FOREVER if class_days == 0 else f"{class_days}d"


def archive_retention_tag(days: int) -> dict[str, str]:
    """The S3 object tag an archive object of a tenant keeping its archive ``days`` days carries.

    ``{"novacron-retention": "400d"}``; S3Archive.put URL-encodes it into ``put_object``'s ``Tagging``.
    Raises ValueError for days outside 0..MAX_ARCHIVE_DAYS.
    """
    return {RETENTION_TAG: class_tag_value(archive_class_days(days))}
