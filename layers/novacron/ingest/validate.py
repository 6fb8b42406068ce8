"""Series validation: the rules a label set must meet before NovaCron accepts it.

Validation depends only on a series' labels, and senders repeat the same series every scrape, so
results are cached by the labels' wire bytes: a warm function validates each series once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from novacron.protocols.remote_write_pb import RawLabels
from novacron.series import METRIC_NAME, Labels, encoded_series_id, partition_bucket

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_V = TypeVar("_V")


@dataclass(frozen=True)
class Limits:
    """Per-series limits. Defaults follow what Prometheus-compatible backends commonly enforce."""

    max_label_name_length: int = 256
    # A label name, "=" and its value form a sort key of the series index, and DynamoDB limits sort
    # keys to 1024 bytes; the metric name's pair bounds the index's partition keys the same way.
    max_label_pair_bytes: int = 1024
    max_labels_per_series: int = 64


class RejectReason(StrEnum):
    """Why a series was not accepted: the dimension NovaCron counts its own rejections by."""

    INVALID_LABELS = "invalid_labels"
    OUT_OF_WINDOW = "out_of_window"
    OVERSIZED = "oversized"
    MISSING_LABEL = "missing_label"
    CARDINALITY_METRIC = "cardinality_metric"
    CARDINALITY_TENANT = "cardinality_tenant"
    NATIVE_HISTOGRAM = "native_histogram"


@dataclass(frozen=True)
class LabelFill:
    """How a sender's series are completed: labels added when absent, and required labels' fate.

    ``add`` (sorted by name) comes from the API key's labels and the policy's defaults; a required
    label with no value there is set to ``unknown`` (``unknown``) or rejects the series (``reject``).
    """

    add: tuple[tuple[str, str], ...] = ()
    unknown: tuple[str, ...] = ()
    reject: tuple[str, ...] = ()


UNKNOWN_VALUE = "unknown"


@dataclass(frozen=True)
class Verdict:
    """The outcome of validating one label set: a series with its partition bucket, or an error."""

    labels: Labels
    series_id: str = ""
    bucket: int = -1  # -1 when the series is invalid
    error: str = ""
    series_u64: int = 0  # the series id as a number, the form blocks store
    reason: RejectReason | None = None  # why it is invalid
    # The label fields of the series as stored when a LabelFill added labels (b"" when unchanged):
    # ``labels``, ``series_id`` and ``bucket`` are those of the completed label set.
    rewritten: bytes = b""
    filled_unknown: tuple[str, ...] = field(default=())  # required labels set to "unknown"

    @property
    def valid(self) -> bool:
        return self.bucket >= 0


def format_labels(labels: Labels | list[tuple[str, str]]) -> str:
    """Prometheus-style text of a label set, for messages: ``name{a="b"}``."""
    name = ""
    rest = []
    for key, value in labels:
        if key == METRIC_NAME and not name:
            name = value
        else:
            rest.append(f"{key}={_quote(value)}")
    return f"{name}{{{', '.join(rest)}}}"


def _quote(value: str) -> str:
    shown = value if len(value) <= 120 else value[:117] + "..."
    return '"' + shown.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def check_labels(pairs: list[tuple[str, str]], limits: Limits, known_names: set[str] | None = None) -> str | None:
    """Why a label set is unacceptable, or None. Pairs are in the order received.

    ``known_names`` holds label names already found valid, so that their checks are skipped.
    """
    if len(pairs) > limits.max_labels_per_series:
        return f"series has {len(pairs)} labels, more than the limit of {limits.max_labels_per_series}"
    known = known_names if known_names is not None else set()
    previous = ""
    has_name = False
    for name, value in pairs:
        if not name:
            return "series has a label with an empty name"
        if name <= previous:
            if name == previous:
                return f"duplicate label name {name!r}"
            return f"labels are not sorted by name ({name!r} comes after {previous!r})"
        previous = name
        if name == METRIC_NAME:
            has_name = True
            if not METRIC_NAME_RE.match(value):
                return f"invalid metric name {value!r}: must match [a-zA-Z_:][a-zA-Z0-9_:]*"
        elif name not in known:
            problem = _name_problem(name, limits)
            if problem is not None:
                return problem
            known.add(name)
        if (len(name) + len(value)) * 4 >= limits.max_label_pair_bytes:
            size = len(name.encode()) + 1 + len(value.encode())
            if size > limits.max_label_pair_bytes:
                return (
                    f"label {name!r} has a value of {len(value.encode())} bytes; a label name, '=' and value "
                    f"may be at most {limits.max_label_pair_bytes} bytes together (this one is {size})"
                )
    if not has_name:
        return "series has no metric name (__name__ label)"
    return None


def _name_problem(name: str, limits: Limits) -> str | None:
    if len(name) > limits.max_label_name_length:
        limit = limits.max_label_name_length
        return f"label name {name[:40]!r}... is {len(name)} bytes, more than the limit of {limit}"
    if not LABEL_NAME_RE.match(name):
        return f"invalid label name {name!r}: must match [a-zA-Z_][a-zA-Z0-9_]*"
    if name.startswith("__"):
        return f"label name {name!r} is reserved: names starting with '__' are for internal use"
    return None


def _utf8_problem(raw_pairs: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in raw_pairs:
        for what, data in (("name", name), ("value", value)):
            try:
                data.decode()
            except UnicodeDecodeError:
                shown = name.decode(errors="replace")
                return f"label {what} of {shown!r} is not valid UTF-8"
    return None


class _MemoDict(dict[bytes, _V]):
    """A bounded memo whose misses compute the value."""

    def __init__(self, compute: Callable[[bytes], _V], max_size: int) -> None:
        super().__init__()
        self._compute = compute
        self._max_size = max_size

    def __missing__(self, key: bytes) -> _V:
        if len(self) >= self._max_size:
            self.clear()  # full is rare (a million series in one function) and refills cheaply
        value = self[key] = self._compute(key)
        return value


class SeriesValidator:
    """Validates label sets given as wire bytes, remembering the answers.

    With a ``fill``, label sets are also completed (see LabelFill), and with a ``scrub`` their values
    are cleaned of personal data (novacron.ingest.pii): verdicts then describe the series as stored,
    and ``rewritten`` holds its new label fields.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        cache_size: int = 1_000_000,
        fill: LabelFill | None = None,
        scrub: Callable[[Sequence[tuple[str, str]]], Sequence[tuple[str, str]]] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.fill = fill
        self.scrub = scrub
        self._cache: _MemoDict[Verdict] = _MemoDict(self._check_uncached, cache_size)
        self._buckets: _MemoDict[int] = _MemoDict(lambda key: self.check(key).bucket, cache_size)
        self._valid_names: set[str] = set()
        # Plain dict lookups on a hit, so ``map(validator.check, ...)`` runs at C speed when warm.
        self.check: Callable[[bytes], Verdict] = self._cache.__getitem__
        self._series: _MemoDict[int] = _MemoDict(lambda key: self.check(key).series_u64, cache_size)
        # The partition bucket of a label set, or -1 if it is invalid: what the ingest hot path needs.
        self.bucket_of: Callable[[bytes], int] = self._buckets.__getitem__
        # The series id as a number (0 if invalid): what the writer's blocks store.
        self.series_of: Callable[[bytes], int] = self._series.__getitem__
        self._rewritten: _MemoDict[bytes] = _MemoDict(lambda key: self.check(key).rewritten, cache_size)
        # The completed label fields of a label set (b"" when the fill adds nothing): what ingest rewrites with.
        self.rewritten_of: Callable[[bytes], bytes] = self._rewritten.__getitem__

    def _check_uncached(self, label_bytes: bytes) -> Verdict:
        try:
            parsed = RawLabels.FromString(label_bytes)
        except Exception as exc:  # the protobuf runtime's DecodeError
            return Verdict((), error=f"series labels are not valid protobuf: {exc}")
        # Prometheus treats an empty label value as an absent label.
        raw_pairs = [(label.name, label.value) for label in parsed.labels if label.value]
        try:
            pairs = [(n.decode(), v.decode()) for n, v in raw_pairs]
            problem = check_labels(pairs, self.limits, self._valid_names)
        except UnicodeDecodeError:
            pairs = [(n.decode(errors="replace"), v.decode(errors="replace")) for n, v in raw_pairs]
            problem = _utf8_problem(raw_pairs)
        labels: Labels = tuple(pairs)
        if problem is not None:
            return Verdict(labels, error=f"{problem}: {format_labels(pairs)}", reason=RejectReason.INVALID_LABELS)
        if self.fill is not None or self.scrub is not None:
            return self._completed(pairs, raw_pairs, self.fill or LabelFill())
        sid = encoded_series_id(raw_pairs)
        return Verdict(labels, sid, partition_bucket(sid), series_u64=int(sid, 16))

    def _completed(
        self, pairs: list[tuple[str, str]], raw_pairs: list[tuple[bytes, bytes]], fill: LabelFill
    ) -> Verdict:
        """The verdict of a valid label set after scrubbing its values and adding the fill's labels."""
        scrubbed = False
        if self.scrub is not None:
            cleaned = list(self.scrub(pairs))
            scrubbed = cleaned != pairs
            pairs = cleaned
        present = {name for name, _ in pairs}
        added = [(name, value) for name, value in fill.add if name not in present]
        present.update(name for name, _ in added)
        missing = [name for name in fill.reject if name not in present]
        if missing:
            return Verdict(tuple(pairs), error=missing_label_message(missing, pairs), reason=RejectReason.MISSING_LABEL)
        unknown = tuple(name for name in fill.unknown if name not in present)
        added.extend((name, UNKNOWN_VALUE) for name in unknown)
        if not added and not scrubbed:
            sid = encoded_series_id(raw_pairs)
            return Verdict(tuple(pairs), sid, partition_bucket(sid), series_u64=int(sid, 16))
        merged = sorted([*pairs, *added])
        problem = check_labels(merged, self.limits, self._valid_names)
        if problem is not None:
            error = f"{problem} (with the labels the ingest policy adds or scrubs): {format_labels(merged)}"
            return Verdict(tuple(pairs), error=error, reason=RejectReason.INVALID_LABELS)
        raw_merged = [(n.encode(), v.encode()) for n, v in merged]
        message = RawLabels()
        for name, value in raw_merged:
            message.labels.add(name=name, value=value)
        rewritten: bytes = message.SerializeToString()
        sid = encoded_series_id(raw_merged)
        return Verdict(
            tuple(merged),
            sid,
            partition_bucket(sid),
            series_u64=int(sid, 16),
            rewritten=rewritten,
            filled_unknown=unknown,
        )


def missing_label_message(missing: list[str], pairs: list[tuple[str, str]]) -> str:
    """The rejection of a series lacking labels the policy requires (mode ``reject``)."""
    names = ", ".join(repr(name) for name in missing)
    first = missing[0]
    return (
        f"series has no {names} label, which the ingest policy requires (mode 'reject'); send it with the series "
        f"(Prometheus: external_labels), set it on the API key (novacron keys create --label {first}=VALUE) or as "
        f"a policy default (novacron policy set --default {first}=VALUE): {format_labels(pairs)}"
    )
