"""The raw archive in S3."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from novacron.archive.objects import ObjectInfo
from novacron.aws import client

# Raw archive objects are small (one Kinesis batch each): reading them is latency-bound, so a few at a time.
GET_CONCURRENCY = 16


class S3Archive:
    """ArchiveStore (the raw archive) and ArchiveObjects (the Parquet archive) over one bucket."""

    def __init__(self, bucket: str, s3: Any = None) -> None:
        self.bucket = bucket
        self._s3 = s3

    def put(self, key: str, data: bytes, tags: Mapping[str, str] | None = None) -> None:
        s3 = self._s3 or client("s3")
        extra = {"Tagging": urlencode(dict(tags))} if tags else {}
        s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/octet-stream", **extra)

    # --- reading (the Parquet archive: novacron.archive.objects.ArchiveObjects) ---

    def get(self, key: str) -> bytes | None:
        """An object's bytes, or None when it does not exist."""
        s3 = self._s3 or client("s3")
        try:
            body: bytes = s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return body

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start``: one ranged GET."""
        s3 = self._s3 or client("s3")
        response = s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")
        data: bytes = response["Body"].read()
        return data

    def get_many(self, keys: Sequence[str]) -> Iterator[tuple[str, bytes]]:
        """Objects in the order given, fetched ``GET_CONCURRENCY`` at a time (small objects: latency-bound)."""
        with ThreadPoolExecutor(max_workers=GET_CONCURRENCY) as pool:
            for start in range(0, len(keys), GET_CONCURRENCY):
                window = keys[start : start + GET_CONCURRENCY]
                yield from zip(window, pool.map(self._must_get, window), strict=True)

    def _must_get(self, key: str) -> bytes:
        data = self.get(key)
        if data is None:
            raise KeyError(f"s3://{self.bucket}/{key} disappeared while being read")
        return data

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` (ListObjectsV2, all pages)."""
        s3 = self._s3 or client("s3")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"], int(item["Size"]))

    def list_prefixes(self, prefix: str) -> list[str]:
        """The common prefixes directly under ``prefix`` (delimiter ``/``)."""
        s3 = self._s3 or client("s3")
        found: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        return found
