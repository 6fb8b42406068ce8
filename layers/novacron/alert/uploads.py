"""What the alerting APIs' uploaded documents (rule files, the Alertmanager configuration) share.

Both are YAML sent as the request body, at most :data:`MAX_DOCUMENT_BYTES`, and both are versioned: a
write may name the version it replaces (``?version=N``, 0 for "there is none yet"), and is refused with
409 when the stored version moved on, so that two people editing at once do not overwrite each other.
Errors use the Prometheus envelope (``status``, ``errorType``, ``error``) with, for documents that have
several problems, ``details``: one ``line:column: message`` per problem.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from novacron.alert.state import StoredText
from novacron.query.prom_api import Params, Response, _param

MAX_DOCUMENT_BYTES = 1024 * 1024
# "" is a client that sends no Content-Type; application/x-yaml is what many tools still send.
YAML_CONTENT_TYPES = ("", "text/yaml", "application/yaml", "application/x-yaml", "text/plain")


def api_error(status: int, error_type: str, message: str, details: Sequence[str] = ()) -> Response:
    """An error in the Prometheus envelope with any status, and the problems one by one in ``details``."""
    body: dict[str, Any] = {"status": "error", "errorType": error_type, "error": message}
    if details:
        body["details"] = list(details)
    return status, body


def yaml_text(
    body: bytes,
    content_type: str,
    *,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    content_types: Sequence[str] = YAML_CONTENT_TYPES,
) -> str | Response:
    """The uploaded YAML document, or the 4xx answer: 415 for a media type not in ``content_types``, 413
    when larger than ``max_bytes``, 400 when it is not UTF-8 or empty."""
    if content_type not in content_types:
        accepted = ", ".join(t for t in content_types if t)
        return api_error(415, "bad_data", f"Content-Type {content_type!r} is not accepted; send one of {accepted}")
    if len(body) > max_bytes:
        return api_error(413, "bad_data", f"the document is {len(body)} bytes; at most {max_bytes} allowed")
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        return api_error(400, "bad_data", f"the document is not UTF-8 (byte {exc.start})")
    if not text.strip():
        return api_error(400, "bad_data", "the document is empty")
    return text


def expected_version(params: Params, stored: int) -> int | Response:
    """The version a write replaces: ``?version=N`` when given (409 unless it is ``stored``), else ``stored``."""
    raw = _param(params, "version")
    if raw == "":
        return stored
    if not raw.isdigit():
        return api_error(400, "bad_data", f'invalid parameter "version": a whole number, not {raw!r}')
    if int(raw) != stored:
        return api_error(
            409, "conflict", f"the stored version is {stored}, not {raw}: read it again and reapply the change"
        )
    return stored


def write_versioned(
    params: Params, stored: StoredText | None, write: Callable[[int], bool], what: str
) -> int | Response:
    """Write a document over the version the request names (``?version=N``; default the stored one) with
    ``write(expected_version)``, which is False when another write won; the new version, or the 4xx."""
    version = expected_version(params, stored.version if stored else 0)
    if not isinstance(version, int):
        return version
    if not write(version):
        return api_error(409, "conflict", f"{what} changed while this change was made: read it again and reapply it")
    return version + 1
