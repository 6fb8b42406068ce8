"""Scraped Prometheus text (0.0.4) and OpenMetrics 1.0 exposition → remote write ``TimeSeries`` encodings.

The parser follows what a Prometheus server does with a scrape: every sample line becomes a series
with the target's labels added (a scraped label that collides with a target label is renamed
``exported_<name>``, as with ``honor_labels: false``), samples without a timestamp get the scrape
time, and OpenMetrics ``_created`` series of counters, histograms and summaries are dropped.
HELP/TYPE/UNIT lines are checked but not emitted; exemplars are skipped. Any malformed line fails
the whole scrape with an ``ExpositionError`` naming the line, as a Prometheus scrape fails.
Series are built with ``novacron.protocols.timeseries`` (no protobuf object per sample).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from novacron.ingest.validate import LABEL_NAME_RE, Limits
from novacron.protocols.timeseries import encode_labels, encode_sample
from novacron.series import METRIC_NAME

OPENMETRICS_TYPE = "application/openmetrics-text"
_LIMITS = Limits()
_MS_RANGE = 2**63

_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_BLANK = " \t"
# One `name="value"` pair, with the optional blanks the text format allows around its parts.
_LABEL_RE = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"([^"\\]*(?:\\.[^"\\]*)*)"[ \t]*')
_ESCAPE_RE = re.compile(r"\\(.)")
_UNESCAPE = {"n": "\n", "\\": "\\", '"': '"'}
_TEXT_TIMESTAMP_RE = re.compile(r"-?[0-9]+")
_TEXT_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})
_OM_TYPES = frozenset({"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"})
# OpenMetrics families whose `<name>_created` series Prometheus does not ingest as samples.
_CREATED_TYPES = frozenset({"counter", "histogram", "summary"})
_BUCKET_TYPES = frozenset({"histogram", "gaugehistogram"})


class ExpositionError(ValueError):
    """A scrape body that cannot be parsed; ``line`` is 1-based (0 when the body as a whole is at fault)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.reason = reason


def parse_exposition(body: bytes, content_type: str, scrape_ms: int, target_labels: Mapping[str, str]) -> list[bytes]:
    """Parse one scrape into ``TimeSeries`` encodings (labels sorted, one per label set).

    OpenMetrics is chosen by ``content_type`` (``application/openmetrics-text``); anything else is
    read as the Prometheus text format, as Prometheus falls back to it. ``target_labels`` must be
    valid label names (``job``, ``instance`` and configured labels); a bad one raises ``ValueError``.
    Raises ``ExpositionError`` for malformed input.
    """
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/vnd.google.protobuf":
        raise ExpositionError(0, "the protobuf exposition format is not supported; accept text or OpenMetrics")
    parser = _Parser(media == OPENMETRICS_TYPE, scrape_ms, _checked_targets(target_labels))
    text = _decode(body)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start an empty one
    for number, line in enumerate(lines, 1):
        parser.feed(number, line)
    parser.finish(len(lines))
    return [encode_labels(labels) + b"".join(samples) for labels, samples in parser.series_samples()]


def _checked_targets(target_labels: Mapping[str, str]) -> dict[str, str]:
    for name in target_labels:
        if not LABEL_NAME_RE.match(name) or name.startswith("__"):
            raise ValueError(f"invalid target label name {name!r}: must match [a-zA-Z_][a-zA-Z0-9_]*, not '__…'")
    # Prometheus treats an empty label value as an absent label.
    return {name: value for name, value in target_labels.items() if value}


def _decode(body: bytes) -> str:
    try:
        return body.decode()
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise ExpositionError(line, f"not valid UTF-8 (byte {exc.start})") from None


def _unescape(value: str) -> str:
    # Like Prometheus: \\, \" and \n are escapes; any other backslash pair is kept as written.
    return _ESCAPE_RE.sub(lambda m: _UNESCAPE.get(m.group(1), m.group(0)), value)


def _parse_value(token: str, number: int) -> float:
    # Python's float() also takes "1_000" and non-ASCII digits, which Go's ParseFloat does not.
    if token.isascii() and "_" not in token:
        try:
            return float(token)
        except ValueError:
            pass
    raise ExpositionError(number, f"invalid sample value {token[:40]!r}")


class _Parser:
    """Line-by-line state of one scrape: declared types, EOF, and the series collected so far."""

    def __init__(self, openmetrics: bool, scrape_ms: int, targets: dict[str, str]) -> None:
        self.openmetrics = openmetrics
        self.scrape_ms = scrape_ms
        self.targets = targets
        self.types: dict[str, str] = {}
        self.helped: set[str] = set()
        self.eof_line = 0
        # label set → {timestamp: sample field}; the first sample of a timestamp wins, as in Prometheus.
        self.series: dict[tuple[tuple[str, str], ...], dict[int, bytes]] = {}

    def feed(self, number: int, line: str) -> None:
        if self.eof_line:
            raise ExpositionError(number, "content after '# EOF'")
        if self.openmetrics:
            if not line:
                raise ExpositionError(number, "empty line (OpenMetrics does not allow them)")
            if line.startswith("#"):
                self._om_comment(number, line)
            else:
                self._sample(number, line)
            return
        stripped = line.lstrip(_BLANK)
        if not stripped:
            return
        if stripped.startswith("#"):
            self._text_comment(number, stripped)
        else:
            self._sample(number, stripped)

    def finish(self, last_line: int) -> None:
        if self.openmetrics and not self.eof_line:
            raise ExpositionError(last_line, "OpenMetrics exposition does not end with '# EOF'")

    def series_samples(self) -> list[tuple[tuple[tuple[str, str], ...], list[bytes]]]:
        return [(labels, [by_ts[t] for t in sorted(by_ts)]) for labels, by_ts in self.series.items()]

    def _text_comment(self, number: int, line: str) -> None:
        parts = line[1:].split(None, 2)
        if len(parts) < 2 or parts[0] not in ("HELP", "TYPE"):
            return  # any other comment is just a comment in the text format
        self._metadata(number, parts, _TEXT_TYPES)

    def _om_comment(self, number: int, line: str) -> None:
        if line == "# EOF":
            self.eof_line = number
            return
        parts = line[2:].split(" ", 2) if line.startswith("# ") else []
        if len(parts) < 2 or parts[0] not in ("HELP", "TYPE", "UNIT"):
            raise ExpositionError(
                number, f"invalid OpenMetrics comment {line[:60]!r}: expected HELP, TYPE, UNIT or EOF"
            )
        if parts[0] == "UNIT":
            if not _NAME_RE.fullmatch(parts[1]):
                raise ExpositionError(number, f"invalid metric name {parts[1][:60]!r} in UNIT")
            return
        self._metadata(number, parts, _OM_TYPES)

    def _metadata(self, number: int, parts: list[str], types: frozenset[str]) -> None:
        keyword, name = parts[0], parts[1]
        if not _NAME_RE.fullmatch(name):
            raise ExpositionError(number, f"invalid metric name {name[:60]!r} in {keyword}")
        if keyword == "HELP":
            if name in self.helped:
                raise ExpositionError(number, f"second HELP line for metric {name!r}")
            self.helped.add(name)
            return
        kind = parts[2].strip() if len(parts) > 2 else ""
        if kind not in types:
            raise ExpositionError(number, f"unknown metric type {kind[:30]!r} for {name!r}: one of {sorted(types)}")
        if name in self.types:
            raise ExpositionError(number, f"second TYPE line for metric {name!r}")
        self.types[name] = kind

    def _sample(self, number: int, line: str) -> None:
        match = _NAME_RE.match(line)
        if match is None:
            raise ExpositionError(number, f"expected a metric name at {line[:40]!r}")
        name = match.group()
        pos = match.end()
        labels: dict[str, str] = {}
        if line.startswith("{", pos):
            pos = self._labels(number, line, pos + 1, labels)
        elif pos < len(line) and line[pos] not in _BLANK:
            raise ExpositionError(number, f"invalid character {line[pos]!r} after metric name {name!r}")
        value, timestamp_ms = self._value_and_time(number, line[pos:])
        if self.openmetrics and name.endswith("_created") and self.types.get(name[:-8]) in _CREATED_TYPES:
            return
        self._check_family(number, name, labels)
        self._add(number, name, labels, value, timestamp_ms)

    def _labels(self, number: int, line: str, pos: int, labels: dict[str, str]) -> int:
        """Parse `a="b",c="d"}` from ``pos``; return the position after the closing brace."""
        while True:
            while pos < len(line) and line[pos] in _BLANK:
                pos += 1
            if line.startswith("}", pos):
                return pos + 1
            match = _LABEL_RE.match(line, pos)
            if match is None:
                raise ExpositionError(number, f"malformed label at {line[pos : pos + 40]!r}")
            label, raw = match.group(1), match.group(2)
            if label in labels:
                raise ExpositionError(number, f"duplicate label name {label!r}")
            labels[label] = _unescape(raw) if "\\" in raw else raw
            pos = match.end()
            if line.startswith(",", pos):
                pos += 1
            elif not line.startswith("}", pos):
                raise ExpositionError(number, f"expected ',' or '}}' at {line[pos : pos + 40]!r}")

    def _value_and_time(self, number: int, rest: str) -> tuple[float, int]:
        if self.openmetrics:
            rest = rest.split(" # ", 1)[0]  # an exemplar: not stored
        tokens = rest.split()
        if not tokens or len(tokens) > 2 or (rest and rest[0] not in _BLANK):
            raise ExpositionError(number, f"expected 'value [timestamp]' after the series, got {rest[:40]!r}")
        value = _parse_value(tokens[0], number)
        if len(tokens) == 1:
            return value, self.scrape_ms
        return value, self._timestamp(number, tokens[1])

    def _timestamp(self, number: int, token: str) -> int:
        if not self.openmetrics:
            if not _TEXT_TIMESTAMP_RE.fullmatch(token):
                raise ExpositionError(number, f"invalid timestamp {token[:40]!r}: expected integer milliseconds")
            # int() refuses very long digit strings (a ValueError of its own): those are out of range anyway.
            timestamp_ms = int(token) if len(token) <= 20 else _MS_RANGE
        else:
            seconds = _parse_value(token, number)
            if not math.isfinite(seconds):
                raise ExpositionError(number, f"invalid timestamp {token[:40]!r}: expected seconds")
            timestamp_ms = round(seconds * 1000) if abs(seconds) < _MS_RANGE / 1000 else _MS_RANGE
        if not -_MS_RANGE <= timestamp_ms < _MS_RANGE:
            raise ExpositionError(number, f"timestamp {token[:40]!r} is out of range")
        return timestamp_ms

    def _check_family(self, number: int, name: str, labels: dict[str, str]) -> None:
        """Histogram buckets need a numeric ``le``, summary quantiles a numeric ``quantile``."""
        if name.endswith("_bucket") and self.types.get(name[:-7]) in _BUCKET_TYPES:
            needed = "le"
        elif self.types.get(name) == "summary":
            needed = "quantile"
        else:
            return
        if needed not in labels:
            raise ExpositionError(number, f"{name!r} has no {needed!r} label")
        _parse_value(labels[needed], number)

    def _add(self, number: int, name: str, scraped: dict[str, str], value: float, timestamp_ms: int) -> None:
        final = dict(self.targets)
        for label, label_value in scraped.items():
            if not label_value:
                continue
            if label.startswith("__"):
                raise ExpositionError(
                    number, f"label name {label!r} is reserved: names starting with '__' are internal"
                )
            if label in self.targets:
                label = "exported_" + label
                while label in scraped or label in final:
                    label = "exported_" + label
            final[label] = label_value
        final[METRIC_NAME] = name
        if len(final) > _LIMITS.max_labels_per_series:
            raise ExpositionError(
                number, f"{name!r} has {len(final)} labels with the target's, more than {_LIMITS.max_labels_per_series}"
            )
        limit = _LIMITS.max_label_pair_bytes
        for label, label_value in final.items():
            # A character is at most 4 UTF-8 bytes: only long pairs need encoding to be measured.
            if (len(label) + 1 + len(label_value)) * 4 > limit and len(label) + 1 + len(label_value.encode()) > limit:
                raise ExpositionError(
                    number, f"label {label!r} of {name!r} is longer than {_LIMITS.max_label_pair_bytes} bytes"
                )
        key = tuple(sorted(final.items()))
        by_ts = self.series.get(key)
        if by_ts is None:
            by_ts = self.series[key] = {}
        if timestamp_ms not in by_ts:
            by_ts[timestamp_ms] = encode_sample(value, timestamp_ms)
