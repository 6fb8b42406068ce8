"""Service models and their registries in S3: a ModelStore (novacron.detect.registry) over one bucket.

Writes are conditional, with S3's own preconditions: ``If-Match: <etag>`` replaces exactly the version
that was read, ``If-None-Match: *`` creates an object only if it does not exist. A failed precondition
(412, or 409 when a concurrent conditional write is in progress) is answered ``None``, never retried
here: the registry decides what a lost race means. The bucket keeps old object versions (versioning on).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from novacron.aws import client

_LOST_RACE = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
_MISSING = ("NoSuchKey", "404")


class S3ModelStore:
    """ModelStore over the models bucket."""

    def __init__(self, bucket: str, s3: Any = None) -> None:
        self.bucket = bucket
        self._s3 = s3

    def read(self, key: str) -> tuple[bytes, str] | None:
        """An object's bytes and ETag, or None when it does not exist."""
        s3 = self._s3 or client("s3")
        try:
            response = s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return None
            raise
        data: bytes = response["Body"].read()
        return data, str(response["ETag"])

    def write(self, key: str, data: bytes, *, etag: str | None = None, create_only: bool = False) -> str | None:
        """Store ``data`` if the object is still at ``etag`` (or, ``create_only``, does not exist yet): the
        new ETag, or None when that precondition failed."""
        s3 = self._s3 or client("s3")
        conditions: dict[str, str] = {}
        if etag is not None:
            conditions["IfMatch"] = etag
        elif create_only:
            conditions["IfNoneMatch"] = "*"
        try:
            response = s3.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType="application/octet-stream", **conditions
            )
        except ClientError as exc:
            error = exc.response.get("Error", {}).get("Code")
            status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if error in _LOST_RACE or status in ("412", "409"):
                return None
            if etag is not None and error in _MISSING:  # replaced something that was deleted meanwhile
                return None
            raise
        return str(response["ETag"])

    def list_prefixes(self, prefix: str) -> list[str]:
        """The names directly under ``prefix`` (delimiter ``/``), without the prefix or the trailing slash."""
        s3 = self._s3 or client("s3")
        found: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            found.extend(p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", []))
        return found
