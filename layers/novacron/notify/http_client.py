"""A tiny HTTP client for the notifiers, behind a protocol so tests inject a fake or a real local server.

Every answer, 4xx and 5xx included, comes back as an HttpResponse: deciding what a status means is
the delivery layer's job. Only a request that got no answer at all (refused, reset, timed out)
raises TransportError, which the delivery layer retries.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

USER_AGENT = "NovaCron-Notifier/1"


@dataclass(frozen=True)
class HttpRequest:
    """One request to a receiver."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json_post(cls, url: str, payload: Any, headers: Mapping[str, str] | None = None) -> HttpRequest:
        """A POST of ``payload`` as compact UTF-8 JSON."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        return cls("POST", url, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body)


@dataclass(frozen=True)
class HttpResponse:
    """A receiver's answer; header names are lower-case."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        """The body parsed as JSON, or None if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class TransportError(Exception):
    """The request got no answer (connection refused or reset, timeout)."""


class HttpClient(Protocol):
    """Sends one request and returns the answer, whatever its status."""

    def send(self, request: HttpRequest) -> HttpResponse: ...


class UrllibClient:
    """HttpClient over urllib with one timeout for connect and each read."""

    def __init__(self, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s

    def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request``; only http and https URLs are allowed (never file: or ftp:)."""
        if not request.url.startswith(("https://", "http://")):
            raise ValueError(f"refusing to send to a non-HTTP URL scheme: {request.url.split(':', 1)[0]!r}")
        headers = {"User-Agent": USER_AGENT, **request.headers}
        prepared = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            request.url, data=request.body or None, headers=headers, method=request.method
        )
        try:
            with urllib.request.urlopen(prepared, timeout=self.timeout_s) as answer:  # noqa: S310
                return HttpResponse(answer.status, _lower(answer.headers.items()), answer.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return HttpResponse(exc.code, _lower(exc.headers.items()), exc.read())
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransportError(f"no answer from {_host(request.url)}: {reason}") from exc


def _lower(items: Any) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in items}


def _host(url: str) -> str:
    # Only the host: webhook URLs carry secrets in their path (Slack's do) and must not reach logs.
    return url.split("://", 1)[-1].split("/", 1)[0]
