"""Fixtures for every suite: the wiring's resources in an in-process mock AWS (moto) for adapter tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from novacron.aws import reset_clients
from novacron.local.resources import create_resources
from novacron.wiring import WIRING


class _Clients:
    def client(self, service: str) -> Any:
        return boto3.client(service, region_name="us-east-1")


@pytest.fixture
def moto_wiring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The wiring's streams, tables, buckets, queues and buses in moto (physical names: local.resources)."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    reset_clients()
    with mock_aws():
        create_resources(_Clients(), WIRING)
        yield
    reset_clients()
