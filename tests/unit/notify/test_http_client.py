"""The urllib client: answers of every status come back, no answer is a TransportError."""

from __future__ import annotations

import socket

import pytest

from novacron.notify.http_client import HttpRequest, TransportError, UrllibClient
from tests.unit.notify.receivers import PagerDutyEvents, Reply


def test_error_statuses_come_back_as_responses_with_their_headers(pagerduty: PagerDutyEvents) -> None:
    pagerduty.script(Reply(429, {"status": "throttled"}, {"Retry-After": "5"}))
    response = UrllibClient(timeout_s=5).send(HttpRequest.json_post(pagerduty.url + "/v2/enqueue", {}))
    assert response.status == 429
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"status": "throttled"}


def test_a_closed_port_is_a_transport_error_naming_only_the_host() -> None:
    with socket.socket() as probe:  # find a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError, match=f"no answer from 127.0.0.1:{port}") as failed:
        UrllibClient(timeout_s=2).send(HttpRequest.json_post(f"http://127.0.0.1:{port}/secret-token-path", {}))
    assert "secret-token-path" not in str(failed.value)


def test_only_http_urls_are_sent_to() -> None:
    with pytest.raises(ValueError, match="non-HTTP URL scheme: 'file'"):
        UrllibClient().send(HttpRequest("GET", "file:///etc/passwd"))
