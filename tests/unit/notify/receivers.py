"""Local receivers: threaded HTTP servers that check each request against a provider's documented contract.

Each receiver records every request with the contract problems found in it (``problems``), answers
an invalid request the way the provider does (PagerDuty 400 "invalid event", Opsgenie 422, Slack
``ok: false`` or a 400 ``invalid_payload`` on a webhook, 401 for a bad webhook signature), and
otherwise answers like the provider's success. ``script`` queues answers (400, 429 with Retry-After,
500, …) that are given, in order, before the receiver returns to its own answers.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from novacron.notify.model import IncidentNotification, InvalidNotification
from novacron.notify.webhook import DELIVERY_HEADER, SignatureError, verify_signature


@dataclass
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    problems: list[str] = field(default_factory=list)

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True)
class Reply:
    """An answer: a dict body is sent as JSON, a str as text."""

    status: int
    body: dict[str, Any] | str = ""
    headers: dict[str, str] = field(default_factory=dict)


class LocalReceiver:
    """Base: the server, the request log and scripted answers; providers define check/success/invalid."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        self._script.extend(replies)

    def problems(self) -> list[str]:
        """Every contract problem seen so far."""
        return [problem for request in self.requests for problem in request.problems]

    def handle(self, request: Received) -> Reply:
        with self._lock:
            request.problems = self.check(request)
            self.requests.append(request)
            if self._script:
                return self._script.popleft()
            if request.problems:
                return self.invalid(request)
            return self.success(request)

    def check(self, request: Received) -> list[str]:
        raise NotImplementedError

    def success(self, request: Received) -> Reply:
        raise NotImplementedError

    def invalid(self, request: Received) -> Reply:
        raise NotImplementedError


def _handler_for(receiver: LocalReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = receiver.handle(Received("POST", parts.path, parse_qs(parts.query), headers, body))
            if isinstance(reply.body, dict):
                payload, content_type = json.dumps(reply.body).encode(), "application/json"
            else:
                payload, content_type = reply.body.encode(), "text/plain"
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    return Handler


# --- shared checks ---------------------------------------------------------------------------------


def _json_object(request: Received, problems: list[str]) -> dict[str, Any]:
    if not request.headers.get("content-type", "").startswith("application/json"):
        problems.append("Content-Type must be application/json")
    body = request.json
    if not isinstance(body, dict):
        problems.append("body must be a JSON object")
        return {}
    return body


def _string(body: dict[str, Any], key: str, problems: list[str], max_len: int, required: bool = False) -> None:
    value = body.get(key)
    if value is None:
        if required:
            problems.append(f"{key} is required")
        return
    if not isinstance(value, str) or not value:
        problems.append(f"{key} must be a non-empty string")
    elif len(value) > max_len:
        problems.append(f"{key} longer than {max_len}")


def _unknown_keys(body: dict[str, Any], allowed: set[str], problems: list[str], where: str = "") -> None:
    problems.extend(f"unknown field {where}{key}" for key in sorted(set(body) - allowed))


# --- PagerDuty Events API v2 -------------------------------------------------------------------------

PD_SEVERITIES = {"critical", "error", "warning", "info"}
PD_ACTIONS = {"trigger", "acknowledge", "resolve"}


class PagerDutyEvents(LocalReceiver):
    """POST /v2/enqueue; tracks each dedup_key's alert state as PagerDuty would."""

    def __init__(self, routing_key: str) -> None:
        super().__init__()
        self.routing_key = routing_key
        self.alerts: dict[str, str] = {}  # dedup_key → triggered | acknowledged | resolved
        self.triggers = 0  # triggers that opened an alert (a page)

    def check(self, request: Received) -> list[str]:
        problems: list[str] = []
        if request.path != "/v2/enqueue":
            problems.append(f"unknown path {request.path}")
        event = _json_object(request, problems)
        if not event:
            return problems
        allowed = {"routing_key", "event_action", "dedup_key", "payload", "client", "client_url", "links", "images"}
        _unknown_keys(event, allowed, problems)
        if event.get("routing_key") != self.routing_key:
            problems.append("routing_key is missing or not this integration's key")
        action = event.get("event_action")
        if action not in PD_ACTIONS:
            problems.append(f"event_action must be one of {sorted(PD_ACTIONS)}")
        _string(event, "dedup_key", problems, 255, required=action in ("acknowledge", "resolve"))
        if action == "trigger":
            self._check_payload(event.get("payload"), problems)
        for link in event.get("links", []):
            if not isinstance(link, dict) or not isinstance(link.get("href"), str):
                problems.append("links[] need an href")
        return problems

    @staticmethod
    def _check_payload(payload: Any, problems: list[str]) -> None:
        if not isinstance(payload, dict):
            problems.append("payload is required for a trigger")
            return
        allowed = {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}
        _unknown_keys(payload, allowed, problems, "payload.")
        _string(payload, "summary", problems, 1024, required=True)
        _string(payload, "source", problems, 255, required=True)
        if payload.get("severity") not in PD_SEVERITIES:
            problems.append(f"payload.severity must be one of {sorted(PD_SEVERITIES)}")
        if "timestamp" in payload:
            try:
                datetime.fromisoformat(payload["timestamp"])
            except (TypeError, ValueError):
                problems.append("payload.timestamp must be ISO 8601")
        for key in ("component", "group", "class"):
            _string(payload, key, problems, 255)
        if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
            problems.append("payload.custom_details must be an object")

    def success(self, request: Received) -> Reply:
        event = request.json
        key = event.get("dedup_key") or f"generated-{len(self.requests)}"
        action = event["event_action"]
        if action == "trigger":
            if self.alerts.get(key) in (None, "resolved"):
                self.triggers += 1
            self.alerts[key] = "triggered"
        elif key in self.alerts and self.alerts[key] != "resolved":
            self.alerts[key] = "acknowledged" if action == "acknowledge" else "resolved"
        return Reply(202, {"status": "success", "message": "Event processed", "dedup_key": key})

    def invalid(self, request: Received) -> Reply:
        return Reply(400, {"status": "invalid event", "message": "Event object is invalid", "errors": request.problems})


# --- Opsgenie Alert API ------------------------------------------------------------------------------

OG_PRIORITIES = {"P1", "P2", "P3", "P4", "P5"}
OG_ACTION_PATH = "/v2/alerts/"


class OpsgenieApi(LocalReceiver):
    """POST /v2/alerts and /v2/alerts/{identifier}/{acknowledge|close}; tracks alerts by alias."""

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.alerts: dict[str, str] = {}  # alias → open | acknowledged | closed
        self.request_ids = (f"req-{i}" for i in itertools.count(1))

    def check(self, request: Received) -> list[str]:
        problems: list[str] = []
        if request.headers.get("authorization") != f"GenieKey {self.api_key}":
            problems.append("Authorization must be 'GenieKey <integration key>'")
        body = _json_object(request, problems)
        if request.path == "/v2/alerts":
            self._check_create(body, problems)
        elif request.path.startswith(OG_ACTION_PATH) and request.path.rsplit("/", 1)[-1] in ("acknowledge", "close"):
            if request.query.get("identifierType") not in (["id"], ["tiny"], ["alias"]):
                problems.append("identifierType must be id, tiny or alias")
            _unknown_keys(body, {"user", "source", "note"}, problems)
            _string(body, "user", problems, 100)
            _string(body, "source", problems, 100)
            _string(body, "note", problems, 25000)
        else:
            problems.append(f"unknown path {request.path}")
        return problems

    @staticmethod
    def _check_create(body: dict[str, Any], problems: list[str]) -> None:
        allowed = {"message", "alias", "description", "responders", "visibleTo", "actions", "tags", "details",
                   "entity", "source", "priority", "user", "note"}  # fmt: skip
        _unknown_keys(body, allowed, problems)
        _string(body, "message", problems, 130, required=True)
        _string(body, "alias", problems, 512)
        _string(body, "description", problems, 15000)
        _string(body, "entity", problems, 512)
        _string(body, "source", problems, 100)
        if "priority" in body and body["priority"] not in OG_PRIORITIES:
            problems.append("priority must be P1..P5")
        tags = body.get("tags", [])
        if not isinstance(tags, list) or len(tags) > 20 or not all(isinstance(t, str) and len(t) <= 50 for t in tags):
            problems.append("tags must be at most 20 strings of at most 50 characters")
        details = body.get("details", {})
        if not isinstance(details, dict) or not all(isinstance(v, str) for v in details.values()):
            problems.append("details must be an object of strings")
        elif sum(len(k) + len(v) for k, v in details.items()) > 8000:
            problems.append("details longer than 8000 characters")

    def success(self, request: Received) -> Reply:
        if request.path == "/v2/alerts":
            self.alerts[request.json.get("alias") or request.json["message"]] = "open"
        else:
            alias, verb = request.path[len(OG_ACTION_PATH) :].rsplit("/", 1)
            if alias in self.alerts:
                self.alerts[alias] = "acknowledged" if verb == "acknowledge" else "closed"
        return Reply(202, {"result": "Request will be processed", "took": 0.01, "requestId": next(self.request_ids)})

    def invalid(self, request: Received) -> Reply:
        status = 401 if any("Authorization" in p for p in request.problems) else 422
        return Reply(status, {"message": "; ".join(request.problems), "took": 0.0, "requestId": "invalid"})


# --- Slack: incoming webhooks and the Web API ---------------------------------------------------------

BLOCK_TYPES = {"header", "section", "actions", "context", "divider"}
TEXT_TYPES = {"plain_text", "mrkdwn"}


def check_blocks(blocks: Any) -> list[str]:
    """Block Kit layout rules for the block types NovaCron uses."""
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= 50:
        return ["blocks must be a list of 1-50 blocks"]
    problems: list[str] = []
    for i, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            problems.append(f"blocks[{i}]: unknown type {kind!r}")
        elif kind == "header":
            problems += _text_object(block.get("text"), f"blocks[{i}].text", 150, {"plain_text"})
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"blocks[{i}]: a section needs text or fields")
            if "text" in block:
                problems += _text_object(block["text"], f"blocks[{i}].text", 3000, TEXT_TYPES)
            fields = block.get("fields", [])
            if len(fields) > 10:
                problems.append(f"blocks[{i}]: more than 10 fields")
            for j, item in enumerate(fields):
                problems += _text_object(item, f"blocks[{i}].fields[{j}]", 2000, TEXT_TYPES)
        elif kind == "actions":
            for j, element in enumerate(block.get("elements", [])):
                where = f"blocks[{i}].elements[{j}]"
                if element.get("type") != "button":
                    problems.append(f"{where}: only buttons are expected")
                problems += _text_object(element.get("text"), f"{where}.text", 75, {"plain_text"})
                if len(element.get("url", "")) > 3000 or len(element.get("action_id", "")) > 255:
                    problems.append(f"{where}: url or action_id too long")
        elif kind == "context":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= 10:
                problems.append(f"blocks[{i}]: a context needs 1-10 elements")
            for j, element in enumerate(elements):
                problems += _text_object(element, f"blocks[{i}].elements[{j}]", 3000, TEXT_TYPES)
    return problems


def _text_object(obj: Any, where: str, max_len: int, types: set[str]) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in types or not isinstance(obj.get("text"), str):
        return [f"{where}: must be a text object of type {sorted(types)}"]
    if not 1 <= len(obj["text"]) <= max_len:
        return [f"{where}: text must have 1-{max_len} characters"]
    return []


@dataclass
class SlackMessage:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    replies: list[dict[str, Any]] = field(default_factory=list)
    edits: int = 0


class SlackApi(LocalReceiver):
    """Incoming webhooks at /services/…, chat.postMessage and chat.update at /api/…."""

    WEBHOOK_PATH = "/services/T000/B000/hook"

    def __init__(self, bot_token: str) -> None:
        super().__init__()
        self.bot_token = bot_token
        self.messages: dict[tuple[str, str], SlackMessage] = {}
        self.webhook_posts: list[dict[str, Any]] = []
        self._ts = (f"1790000000.{i:06d}" for i in itertools.count(1))

    @property
    def webhook_url(self) -> str:
        return self.url + self.WEBHOOK_PATH

    @property
    def api_url(self) -> str:
        return self.url + "/api"

    def check(self, request: Received) -> list[str]:
        problems: list[str] = []
        body = _json_object(request, problems)
        if request.path == self.WEBHOOK_PATH:
            if not isinstance(body.get("text"), str) or not body.get("text"):
                problems.append("no_text: a text fallback is required")
            if "blocks" in body:
                problems += check_blocks(body["blocks"])
            return problems
        if request.headers.get("authorization") != f"Bearer {self.bot_token}":
            return ["invalid_auth"]
        method = request.path.removeprefix("/api/")
        if method not in ("chat.postMessage", "chat.update"):
            return [f"unknown_method {method}"]
        if not isinstance(body.get("channel"), str):
            problems.append("channel_not_found: channel is required")
        if not body.get("text") and not body.get("blocks"):
            problems.append("no_text")
        if "blocks" in body:
            problems += check_blocks(body["blocks"])
        channel_id = self._channel_id(body.get("channel", ""))
        if method == "chat.update" and (channel_id, body.get("ts")) not in self.messages:
            problems.append("message_not_found")
        if "thread_ts" in body and (channel_id, body["thread_ts"]) not in self.messages:
            problems.append("thread_not_found")
        return problems

    @staticmethod
    def _channel_id(channel: str) -> str:
        # Slack answers with the channel's id even when the request names it.
        return "C" + channel.lstrip("#").upper()[:10] if channel.startswith("#") else channel

    def success(self, request: Received) -> Reply:
        body = request.json
        if request.path == self.WEBHOOK_PATH:
            self.webhook_posts.append(body)
            return Reply(200, "ok")
        channel = self._channel_id(body["channel"])
        if request.path.endswith("chat.update"):
            message = self.messages[(channel, body["ts"])]
            message.text, message.blocks = body.get("text", ""), body.get("blocks", [])
            message.edits += 1
            return Reply(200, {"ok": True, "channel": channel, "ts": body["ts"], "text": message.text})
        ts = next(self._ts)
        if "thread_ts" in body:
            self.messages[(channel, body["thread_ts"])].replies.append(body)
        else:
            self.messages[(channel, ts)] = SlackMessage(channel, ts, body.get("text", ""), body.get("blocks", []))
        return Reply(200, {"ok": True, "channel": channel, "ts": ts})

    def invalid(self, request: Received) -> Reply:
        if request.path == self.WEBHOOK_PATH:
            return Reply(400, "invalid_payload")
        return Reply(200, {"ok": False, "error": request.problems[0].split(":")[0]})


# --- Signed generic webhooks ---------------------------------------------------------------------------


class WebhookEndpoint(LocalReceiver):
    """Verifies the signature with the documented recipe and the body against the notification schema."""

    PATH = "/hooks/novacron"

    def __init__(self, secret: str, now: Callable[[], float]) -> None:
        super().__init__()
        self.secret = secret
        self.now = now
        self.deliveries: list[str] = []
        self.notifications: list[IncidentNotification] = []

    @property
    def endpoint(self) -> str:
        return self.url + self.PATH

    def check(self, request: Received) -> list[str]:
        try:
            verify_signature(self.secret, request.headers, request.body, self.now())
        except SignatureError as exc:
            return [f"signature: {exc}"]
        problems: list[str] = []
        body = _json_object(request, problems)
        if body.get("version") != "1" or not str(body.get("event", "")).startswith("incident."):
            problems.append("version must be '1' and event 'incident.<action>'")
        try:
            IncidentNotification.from_dict(body.get("notification"))
        except InvalidNotification as exc:
            problems.append(f"notification: {exc}")
        if not request.headers.get(DELIVERY_HEADER.lower()):
            problems.append(f"{DELIVERY_HEADER} is required")
        return problems

    def success(self, request: Received) -> Reply:
        self.deliveries.append(request.headers[DELIVERY_HEADER.lower()])
        self.notifications.append(IncidentNotification.from_dict(request.json["notification"]))
        return Reply(204)

    def invalid(self, request: Received) -> Reply:
        status = 401 if request.problems[0].startswith("signature") else 400
        return Reply(status, {"error": request.problems[0]})
