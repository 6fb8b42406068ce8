"""The raw archive in S3."""

from __future__ import annotations

from typing import Any

from novacron.aws import client


class S3Archive:
    """ArchiveStore over one bucket."""

    def __init__(self, bucket: str, s3: Any = None) -> None:
        self.bucket = bucket
        self._s3 = s3

    def put(self, key: str, data: bytes) -> None:
        s3 = self._s3 or client("s3")
        s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/octet-stream")
