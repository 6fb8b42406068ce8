"""Retention: how long each tier keeps a tenant's data, per metric (docs/retention.md).

``policy`` holds the model (defaults, overrides, resolution per series), ``changes`` its versioned
audit records, ``archive`` the S3 retention classes archive objects are tagged with. The archive
module imports nothing heavy, so archive writers can tag objects without loading the PromQL parser.
"""

from novacron.retention.archive import ARCHIVE_CLASSES, RETENTION_TAG, archive_class_days, archive_retention_tag

__all__ = ["ARCHIVE_CLASSES", "RETENTION_TAG", "archive_class_days", "archive_retention_tag"]
