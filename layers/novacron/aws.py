"""The one factory for boto3 clients.

Every adapter gets its clients here, so one setting points the whole platform at moto locally:
``AWS_ENDPOINT_URL`` (which botocore and pynamodb honour as well). Clients are cached per
(service, region, endpoint) because creating one costs milliseconds and Lambda reuses containers.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

_RETRIES = Config(retries={"max_attempts": 5, "mode": "adaptive"}, connect_timeout=5, read_timeout=30)


def endpoint_override() -> str | None:
    """The endpoint all AWS calls go to instead of AWS (moto locally), or None."""
    return os.environ.get("AWS_ENDPOINT_URL") or None


def region() -> str:
    """The region of this function (Lambda sets AWS_REGION)."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@lru_cache(maxsize=32)
def _cached_client(service: str, region_name: str, endpoint_url: str | None) -> Any:
    # Typed as Any: the stubs only overload ``client`` for literal service names, and ours is a runtime string.
    session: Any = boto3.session.Session()
    return session.client(service, region_name=region_name, endpoint_url=endpoint_url, config=_RETRIES)


def client(service: str) -> Any:
    """A boto3 client for ``service`` honouring the endpoint override."""
    return _cached_client(service, region(), endpoint_override())


def reset_clients() -> None:
    """Forget cached clients (tests that switch endpoints call this)."""
    _cached_client.cache_clear()


class AdapterClient:
    """An adapter's client attribute: the one handed to the adapter (tests pass a stub as ``client=``), else
    this module's client for ``service``, looked up at use, so an adapter can be built before the endpoint
    is set (the cache above makes the lookup cheap)."""

    def __init__(self, service: str) -> None:
        self.service = service

    def __set_name__(self, owner: type, name: str) -> None:
        self.given = f"_{name}"

    def __get__(self, adapter: object, owner: type | None = None) -> Any:
        given = getattr(adapter, self.given, None)
        return given if given is not None else client(self.service)
