"""StatsD and DogStatsD datagrams → aggregated Prometheus series (remote write ``TimeSeries`` encodings).

A line is ``name:value[:value…]|type[|@rate][|#tag:v,tag2][|c:container][|T<ts>]``; a datagram holds
lines separated by ``\\n``. What each type becomes at ``flush``:

- ``c`` counter: ``<name>_total``, a cumulative Prometheus counter (value / rate added); or, with
  ``counters_as_rate``, a gauge ``<name>_per_second`` of the interval's increase per second.
- ``g`` gauge: ``<name>``, the last value, kept across flushes; ``+N``/``-N`` adjust it.
- ``ms`` timer: a summary in seconds, ``<name>_seconds{quantile=…}``, ``_sum`` and ``_count``.
- ``h`` histogram, ``d`` distribution: the same summary, unitless, named ``<name>``.
- ``s`` set: gauge ``<name>``, the number of distinct values seen in the interval.

Quantiles are over the interval's values; ``_sum``/``_count`` (and ``_bucket`` when buckets are set)
are cumulative, as a Prometheus summary/histogram is. DogStatsD events and service checks are counted
and ignored. Malformed lines are counted by reason and skipped; ``ingest`` never raises.

Speed: a line is split with ``str.partition`` and its ``(name, rest-after-value)`` looked up in a
cache that maps straight to the series' ``add``; only a cache miss parses the type, rate and tags.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from novacron.ingest.validate import LABEL_NAME_RE, Limits
from novacron.protocols.histograms import format_bound
from novacron.protocols.timeseries import encode_labels, encode_sample
from novacron.series import METRIC_NAME

_LIMITS = Limits()
_METRIC_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_LABEL_INVALID = re.compile(r"[^a-zA-Z0-9_]")
_TYPES = {"c": "counter", "g": "gauge", "ms": "timer", "h": "summary", "d": "summary", "s": "set"}
_SAMPLED = frozenset({"counter", "timer", "summary"})  # the types a sample rate applies to
_LONGEST_SUFFIX = len("_seconds_bucket")
_MAX_ERRORS = 20
_SHOWN = 120  # characters of a bad line kept in an error message


@dataclass(frozen=True)
class StatsdSettings:
    """How StatsD metrics are aggregated and named."""

    percentiles: tuple[float, ...] = (0.5, 0.9, 0.99)  # for timers/histograms
    histogram_buckets: tuple[float, ...] | None = (
        None  # optional: also emit classic _bucket series for timers/distributions
    )
    counters_as_rate: bool = False  # default: counters are cumulative Prometheus counters (_total)
    max_series: int = 100_000  # new series beyond this are dropped and counted
    prefix: str = ""  # optional metric name prefix

    def __post_init__(self) -> None:
        if any(not 0.0 <= q <= 1.0 for q in self.percentiles) or len(set(self.percentiles)) != len(self.percentiles):
            raise ValueError(f"percentiles must be distinct and lie in [0, 1], got {self.percentiles}")
        buckets = self.histogram_buckets
        if buckets is not None and (
            not buckets or list(buckets) != sorted(set(buckets)) or not all(math.isfinite(b) for b in buckets)
        ):
            raise ValueError(f"histogram_buckets must be finite, increasing and not empty, got {buckets}")
        if self.max_series < 0:
            raise ValueError("max_series must not be negative")


class _LineError(Exception):
    """A malformed line: ``reason`` is the stats key suffix, ``detail`` says what is wrong."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class _Ignored(Exception):
    """A well-formed line NovaCron does not store (an event or a service check); the arg is its stats key."""


class _OverLimit(Exception):
    """A line of a new series refused because ``max_series`` series exist already."""


def _number(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # NaN or ±Inf
        raise _LineError("bad_value", f"value {text!r} is not a finite number")
    return value


class _Series(Protocol):
    def add(self, values: str, scale: float) -> None: ...

    def emit(self, out: list[bytes], now_ms: int, interval_s: float | None) -> None: ...


class _Counter:
    __slots__ = ("allow_negative", "interval", "labels", "live", "total")

    def __init__(self, labels: bytes, allow_negative: bool) -> None:
        self.labels = labels
        self.allow_negative = allow_negative
        self.total = 0.0
        self.interval = 0.0
        self.live = False

    def add(self, values: str, scale: float) -> None:
        value = sum(_number(v) for v in values.split(":")) if ":" in values else float(values)
        if value - value != 0.0:
            raise _LineError("bad_value", f"value {values[:40]!r} is not a finite number")
        if value < 0 and not self.allow_negative:
            raise _LineError("negative_counter", "a Prometheus counter cannot go down; send a gauge instead")
        interval = self.interval + value * scale
        total = interval + self.total
        if total - total != 0.0:  # the total would be infinite
            raise _LineError("bad_value", f"value {values[:40]!r} would overflow the counter")
        self.interval = interval
        self.live = True

    def emit(self, out: list[bytes], now_ms: int, interval_s: float | None) -> None:
        if not self.live:
            return
        if not self.allow_negative:
            self.total += self.interval
            self.interval = 0.0
            out.append(self.labels + encode_sample(self.total, now_ms))
        elif interval_s is not None:  # as a rate; with no interval known yet, keep counting
            out.append(self.labels + encode_sample(self.interval / interval_s, now_ms))
            self.interval = 0.0


class _Gauge:
    __slots__ = ("labels", "live", "value")

    def __init__(self, labels: bytes) -> None:
        self.labels = labels
        self.value = 0.0
        self.live = False

    def add(self, values: str, scale: float) -> None:
        if ":" not in values:
            value = _number(values)
            if values[0] in "+-":
                value += self.value
        else:
            value = self.value
            for part in values.split(":"):
                number = _number(part)
                value = value + number if part[0] in "+-" else number
        if value - value != 0.0:
            raise _LineError("bad_value", "the gauge's value would overflow")
        self.value = value
        self.live = True

    def emit(self, out: list[bytes], now_ms: int, interval_s: float | None) -> None:
        if self.live:
            out.append(self.labels + encode_sample(self.value, now_ms))


class _Set:
    __slots__ = ("labels", "live", "members")

    def __init__(self, labels: bytes) -> None:
        self.labels = labels
        self.members: set[str] = set()
        self.live = False

    def add(self, values: str, scale: float) -> None:
        if not values:
            raise _LineError("bad_value", "a set member is empty")
        self.members.add(values)
        self.live = True

    def emit(self, out: list[bytes], now_ms: int, interval_s: float | None) -> None:
        if self.live:
            out.append(self.labels + encode_sample(float(len(self.members)), now_ms))
            self.members.clear()


class _Summary:
    """Timers, histograms and distributions: interval quantiles, cumulative sum, count and buckets."""

    __slots__ = (
        "bounds",
        "bucket_counts",
        "bucket_labels",
        "count",
        "count_labels",
        "divisor",
        "quantile_labels",
        "quantiles",
        "sum",
        "sum_labels",
        "values",
    )

    def __init__(
        self,
        divisor: float,
        quantiles: list[tuple[float, bytes]],
        sum_labels: bytes,
        count_labels: bytes,
        buckets: list[tuple[float, bytes]],
    ) -> None:
        self.divisor = divisor
        self.quantiles = [q for q, _ in quantiles]
        self.quantile_labels = [labels for _, labels in quantiles]
        self.sum_labels = sum_labels
        self.count_labels = count_labels
        self.bounds = [b for b, _ in buckets[:-1]]  # the last is +Inf: every value is under it
        self.bucket_labels = [labels for _, labels in buckets]
        self.bucket_counts = [0.0] * len(buckets)
        self.values: list[float] = []
        self.sum = 0.0
        self.count = 0.0

    def add(self, values: str, scale: float) -> None:
        divisor = self.divisor
        if ":" not in values:  # the common case, kept free of lists
            value = _number(values) / divisor
            total = self.sum + value * scale
            if total - total != 0.0:
                raise _LineError("bad_value", f"value {values[:40]!r} would overflow the sum")
            self.values.append(value)
            self.sum = total
            self.count += scale
            if self.bucket_labels:
                self.bucket_counts[bisect_left(self.bounds, value)] += scale
            return
        parsed = [_number(v) / divisor for v in values.split(":")]
        total = self.sum + sum(parsed) * scale
        if total - total != 0.0:
            raise _LineError("bad_value", f"values {values[:40]!r} would overflow the sum")
        self.values.extend(parsed)
        self.sum = total
        self.count += len(parsed) * scale
        if self.bucket_labels:
            counts, bounds = self.bucket_counts, self.bounds
            for value in parsed:
                counts[bisect_left(bounds, value)] += scale

    def emit(self, out: list[bytes], now_ms: int, interval_s: float | None) -> None:
        if not self.count:
            return
        values = self.values
        if values:
            values.sort()
            last = len(values) - 1
            for q, labels in zip(self.quantiles, self.quantile_labels, strict=True):
                # Nearest rank, as StatsD computes its percentiles.
                rank = min(last, max(0, math.ceil(q * len(values)) - 1))
                out.append(labels + encode_sample(values[rank], now_ms))
            self.values = []
        out.append(self.sum_labels + encode_sample(self.sum, now_ms))
        out.append(self.count_labels + encode_sample(self.count, now_ms))
        running = 0.0
        for labels, count in zip(self.bucket_labels, self.bucket_counts, strict=True):
            running += count
            out.append(labels + encode_sample(running, now_ms))


class StatsdAggregator:
    """Aggregates StatsD/DogStatsD lines between flushes; not thread-safe (one receiving loop owns it)."""

    def __init__(self, settings: StatsdSettings = StatsdSettings(), extra_labels: Mapping[str, str] = {}) -> None:
        for name in extra_labels:
            if not LABEL_NAME_RE.match(name) or name.startswith("__"):
                raise ValueError(f"invalid extra label name {name!r}: must match [a-zA-Z_][a-zA-Z0-9_]*, not '__…'")
        self.settings = settings
        self._extra = {name: value for name, value in extra_labels.items() if value}
        self._prefix = settings.prefix
        self._quantiles = [(q, format_bound(q)) for q in settings.percentiles]
        buckets = settings.histogram_buckets
        self._buckets = [(b, format_bound(b)) for b in (*buckets, math.inf)] if buckets else []
        self._series: dict[tuple[str, str, tuple[tuple[str, str], ...]], _Series] = {}
        self._claimed: set[bytes] = set()  # label sets of every output series, so no two series share one
        # (name, rest of the line after the value) → (add, scale): the parse of a line minus its value.
        self._cache: dict[tuple[str, str], tuple[Callable[[str, float], None], float]] = {}
        self._cache_limit = max(4096, 2 * settings.max_series)
        self._last_flush_ms: int | None = None
        self._errors: deque[str] = deque(maxlen=_MAX_ERRORS)
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "lines_received",
                "lines_accepted",
                "lines_malformed",
                "series_dropped_limit",
                "events_ignored",
                "service_checks_ignored",
            ),
            0,
        )

    def ingest(self, datagram: bytes) -> int:
        """Parse one UDP datagram (lines separated by ``\\n``); return how many lines were accepted."""
        try:
            text = datagram.decode()
        except UnicodeDecodeError:
            text = datagram.decode(errors="replace")
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        cache = self._cache
        received = accepted = 0
        for line in text.split("\n"):
            if not line:
                continue
            received += 1
            head, _, tail = line.partition("|")
            name, _, values = head.partition(":")
            key = (name, tail)
            try:
                add, scale = cache.get(key) or self._resolve(key)
                add(values, scale)
            except _LineError as error:
                self._reject(error.reason, error.detail, line)
            except ValueError:  # float() of a value
                self._reject("bad_value", f"value {values[:40]!r} is not a number", line)
            except _OverLimit:
                self.stats["series_dropped_limit"] += 1
            except _Ignored as ignored:
                self.stats[str(ignored)] += 1
            else:
                accepted += 1
        self.stats["lines_received"] += received
        self.stats["lines_accepted"] += accepted
        return accepted

    def flush(self, now_ms: int) -> list[bytes]:
        """Everything aggregated since the last flush, as ``TimeSeries`` encodings stamped ``now_ms``."""
        interval_s: float | None = None
        if self._last_flush_ms is not None and now_ms > self._last_flush_ms:
            interval_s = (now_ms - self._last_flush_ms) / 1000
        if self._last_flush_ms is None or interval_s is not None:
            self._last_flush_ms = now_ms
        out: list[bytes] = []
        for series in self._series.values():
            series.emit(out, now_ms, interval_s)
        return out

    def last_errors(self) -> list[str]:
        """A few recent malformed-line messages, oldest first, for the agent's log."""
        return list(self._errors)

    def _reject(self, reason: str, detail: str, line: str) -> None:
        stats = self.stats
        stats["lines_malformed"] += 1
        key = "malformed_" + reason
        stats[key] = stats.get(key, 0) + 1
        shown = line if len(line) <= _SHOWN else line[: _SHOWN - 3] + "..."
        self._errors.append(f"{key}: {detail}: {shown!r}")

    def _resolve(self, key: tuple[str, str]) -> tuple[Callable[[str, float], None], float]:
        """Parse what a line says besides its value; remember the answer unless it carries a timestamp."""
        name, tail = key
        if name.startswith("_e{"):
            raise _Ignored("events_ignored")
        if name == "_sc":
            raise _Ignored("service_checks_ignored")
        fields = tail.split("|")
        kind = _TYPES.get(fields[0])
        if kind is None:
            raise _LineError("bad_type", f"type {fields[0][:20]!r} is not one of c, g, ms, h, d, s")
        scale, tags, stamped = self._options(fields[1:])
        series = self._series_for(kind, name, tags)
        entry = (series.add if series is not None else _over_limit, scale if kind in _SAMPLED else 1.0)
        if not stamped:
            if len(self._cache) >= self._cache_limit:
                self._cache.clear()  # rare: more distinct lines than twice the series limit
            self._cache[key] = entry
        return entry

    def _options(self, fields: list[str]) -> tuple[float, dict[str, str], bool]:
        """Sample rate (as the scale 1/rate), tags and whether a timestamp was given."""
        scale = 1.0
        tags: dict[str, str] = {}
        stamped = False
        for field in fields:
            if field.startswith("@"):
                try:
                    rate = float(field[1:])
                except ValueError:
                    rate = math.nan
                # Rates so small that 1/rate overflows are refused with the out-of-range ones.
                if not 1e-300 < rate <= 1.0:
                    raise _LineError("bad_sample_rate", f"sample rate {field[1:20]!r} is not in (0, 1]")
                scale = 1.0 / rate
            elif field.startswith("#"):
                _parse_tags(field[1:], tags)
            elif field.startswith("T"):
                if not field[1:].isdigit() or not field.isascii():
                    raise _LineError("bad_timestamp", f"timestamp {field[1:30]!r} is not unix seconds")
                stamped = True
            # Other fields (``c:`` container id, ``e:`` external data, ``card:``, later protocol
            # additions) carry no data NovaCron stores; DogStatsD servers skip unknown ones too.
        return scale, tags, stamped

    def _series_for(self, kind: str, name: str, tags: dict[str, str]) -> _Series | None:
        """The series a line adds to, created on first sight; None when the series limit is reached."""
        if not name:
            raise _LineError("empty_name", "the metric name is empty")
        metric = _METRIC_INVALID.sub("_", self._prefix + name)
        if metric[0].isdigit():
            metric = "_" + metric
        labels = self._labels(kind, tags)
        key = (kind, metric, tuple(sorted(labels.items())))
        series = self._series.get(key)
        if series is not None:
            return series
        if len(self._series) >= self.settings.max_series:
            return None
        if len(METRIC_NAME) + 1 + len(metric) + _LONGEST_SUFFIX > _LIMITS.max_label_pair_bytes:
            raise _LineError("name_too_long", f"metric name of {len(metric)} characters is too long")
        series, outputs = self._create(kind, metric, labels)
        clash = self._claimed.intersection(outputs)
        if clash:
            raise _LineError("name_conflict", f"{metric!r} ({kind}) would write a series another metric type writes")
        self._claimed.update(outputs)
        self._series[key] = series
        return series

    def _labels(self, kind: str, tags: dict[str, str]) -> dict[str, str]:
        """Extra labels as defaults, the line's tags over them; a tag named ``quantile``/``le`` on a
        summary becomes ``exported_…``, as those names are the summary's own."""
        labels = dict(self._extra)
        reserved = ("quantile", "le") if kind in ("timer", "summary") else ()
        for name, value in tags.items():
            label = name
            if label in reserved:
                label = "exported_" + label
                while label in tags:
                    label = "exported_" + label
            labels[label] = value
        limit = _LIMITS.max_labels_per_series - (2 if reserved else 1)
        if len(labels) > limit:
            raise _LineError("too_many_tags", f"{len(labels)} labels with the agent's, more than {limit}")
        for label, value in labels.items():
            if len(label) + 1 + len(value.encode()) > _LIMITS.max_label_pair_bytes:
                raise _LineError("tag_too_long", f"tag {label!r} is longer than {_LIMITS.max_label_pair_bytes} bytes")
        return labels

    def _create(self, kind: str, metric: str, labels: dict[str, str]) -> tuple[_Series, list[bytes]]:
        """A new series of one kind and the label-set encodings of everything it will emit."""

        def encoded(name: str, *more: tuple[str, str]) -> bytes:
            return encode_labels(sorted([*labels.items(), (METRIC_NAME, name), *more]))

        if kind == "counter":
            rate = self.settings.counters_as_rate
            out_name = metric + "_per_second" if rate else metric if metric.endswith("_total") else metric + "_total"
            counter = _Counter(encoded(out_name), allow_negative=rate)
            return counter, [counter.labels]
        if kind == "gauge":
            gauge = _Gauge(encoded(metric))
            return gauge, [gauge.labels]
        if kind == "set":
            members = _Set(encoded(metric))
            return members, [members.labels]
        base = metric
        divisor = 1.0
        if kind == "timer":  # StatsD timers are in milliseconds; Prometheus's base unit is the second
            divisor = 1000.0
            base = metric if metric.endswith("_seconds") else metric + "_seconds"
        quantiles = [(q, encoded(base, ("quantile", text))) for q, text in self._quantiles]
        buckets = [(b, encoded(base + "_bucket", ("le", text))) for b, text in self._buckets]
        summary = _Summary(divisor, quantiles, encoded(base + "_sum"), encoded(base + "_count"), buckets)
        outputs = [labels for _, labels in quantiles] + [summary.sum_labels, summary.count_labels]
        return summary, outputs + [labels for _, labels in buckets]


def _over_limit(values: str, scale: float) -> None:
    raise _OverLimit


def _parse_tags(text: str, tags: dict[str, str]) -> None:
    """DogStatsD tags ``k:v,k2`` into labels: names sanitised, a bare tag is ``"true"``, later ones win."""
    for tag in text.split(","):
        name, sep, value = tag.partition(":")
        if sep and not value:
            continue  # an empty value is an absent label in Prometheus
        label = _LABEL_INVALID.sub("_", name)
        if not label:
            continue
        if label[0].isdigit():
            label = "_" + label
        elif label.startswith("__"):
            label = "tag" + label  # "__" names are reserved for Prometheus's own labels
        tags[label] = value if sep else "true"
