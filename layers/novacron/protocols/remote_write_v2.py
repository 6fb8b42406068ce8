"""Remote write 2.0 → the 1.0 ``TimeSeries`` encodings the rest of the ingest path works on.

A 2.0 ``Request`` interns every string in a ``symbols`` table and refers to labels by index. Each
series is rewritten here as the 1.0 ``TimeSeries`` bytes an equivalent 1.0 sender would have sent
(labels, then samples), so validation, the accepted window, partitioning and stream records are the
1.0 path's, unchanged. Samples are copied byte for byte: a 2.0 ``Sample`` is wire-identical to a 1.0
one, so no Python object is built per sample.

What does not map onto 1.0 is handled here: label references are checked, series of native
histograms are handed on as ``NativeSeries`` (``novacron.protocols.histograms`` stores them as
classic ``_bucket``/``_count``/``_sum`` series), exemplars and metadata are parsed but not stored,
and a counter's ``created_timestamp`` becomes a zero sample (see ``V2Decoder``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from novacron.protocols import remote_write_v2_pb as pb
from novacron.protocols import wire
from novacron.protocols.wire import WireFormatError

# Name suffixes of series that count up (Prometheus's conventions for counters, histogram and
# summary parts); used when metadata does not say the type.
COUNTER_SUFFIXES = (b"_total", b"_count", b"_sum", b"_bucket")
# Metadata types that say a series is not a counter, whatever its name.
_NOT_COUNTER_TYPES = frozenset(
    {pb.METRIC_TYPE_GAUGE, pb.METRIC_TYPE_GAUGEHISTOGRAM, pb.METRIC_TYPE_INFO, pb.METRIC_TYPE_STATESET}
)
RESET_HINT_GAUGE = 3  # Histogram.ResetHint GAUGE: the sender says the histogram is a gauge histogram
_NAME = b"__name__"
_LABEL_TAG = b"\x0a"  # 1.0 TimeSeries.labels and Label.name: field 1, length-delimited
_VALUE_TAG = b"\x12"  # Label.value: field 2, length-delimited
_SAMPLE_TAG = b"\x12"  # 1.0 TimeSeries.samples: field 2, length-delimited
_TIMESTAMP_TAG = b"\x10"  # Sample.timestamp: field 2, varint


class V2RequestError(ValueError):
    """The whole 2.0 request is unusable (as opposed to one bad series)."""


@dataclass
class NativeSeries:
    """One series of native histogram samples as received (1.0 or 2.0), before conversion."""

    labels: list[tuple[bytes, bytes]]  # name/value pairs, in the order sent
    histograms: Sequence[Any]  # ``remote_write_v2_pb.Histogram`` messages (1.0's are wire-identical)
    created_ms: int = 0  # > 0: the histogram counted from zero at this time (a checked created timestamp)
    where: str = ""  # prefix naming the series in messages, e.g. "timeseries[3]: "
    floats: bytes = b""  # 1.0 only: the series' float samples as a TimeSeries encoding, if it had any


@dataclass
class V2Series:
    """A 2.0 request rewritten as 1.0 series, with what could not be rewritten."""

    contents: list[bytes]  # 1.0 TimeSeries encodings of the series that survive this stage
    created_samples: npt.NDArray[np.int64]  # per content: zero samples added from created_timestamp (0/1)
    rejected: list[str] = field(default_factory=list)  # one message per refused series
    native: list[NativeSeries] = field(default_factory=list)  # series of native histograms, to convert
    samples_received: int = 0
    histograms_received: int = 0
    exemplars_received: int = 0


def uvarint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative integer."""
    if value < 0x80:
        return _ONE_BYTE_VARINTS[value]
    # Callers encode the same timestamps and lengths over and over (a scrape's samples share one).
    known = _varints.get(value)
    if known is None:
        if len(_varints) >= _VARINT_CACHE_LIMIT:
            _varints.clear()
        out = bytearray()
        rest = value
        while rest >= 0x80:
            out.append((rest & 0x7F) | 0x80)
            rest >>= 7
        out.append(rest)
        known = _varints[value] = bytes(out)
    return known


_ONE_BYTE_VARINTS = [bytes((i,)) for i in range(0x80)]
_VARINT_CACHE_LIMIT = 4096
_varints: dict[int, bytes] = {}


def _delimited(tag: bytes, data: bytes) -> bytes:
    return tag + uvarint(len(data)) + data


def zero_sample(timestamp_ms: int) -> bytes:
    """A 1.0 ``TimeSeries.samples`` entry of value 0.0 (proto3 leaves the zero value out)."""
    return _delimited(_SAMPLE_TAG, _TIMESTAMP_TAG + uvarint(timestamp_ms & 0xFFFFFFFFFFFFFFFF))


def is_counter(metric_name: bytes, metric_type: int) -> bool:
    """Whether a series counts up: metadata says COUNTER, or its name says so and metadata does not deny it."""
    if metric_type == pb.METRIC_TYPE_COUNTER:
        return True
    return metric_type not in _NOT_COUNTER_TYPES and metric_name.endswith(COUNTER_SUFFIXES)


def describe(labels: Sequence[tuple[bytes, bytes]]) -> str:
    """Prometheus-style text of a series' labels, for rejection messages."""
    name = ""
    rest = []
    for raw_key, raw_value in labels:
        key, value = raw_key.decode(errors="replace"), raw_value.decode(errors="replace")
        if key == "__name__" and not name:
            name = value
        else:
            rest.append(f'{key}="{value}"')
    return f"{name}{{{', '.join(rest)}}}"


class V2Decoder:
    """Decodes (decompressed) 2.0 ``Request`` bodies.

    ``created_window`` is the accepted sample window ``(low, high)`` in ms: a counter's
    ``created_timestamp`` is stored as a 0.0 sample only when it lies inside it, is positive and is
    older than the series' first sample. That zero is what lets ``rate()``/``increase()`` count the
    increase from the counter's start up to its first sample; outside the window it would only get
    the whole series refused, so it is left out instead.
    """

    def __init__(self, created_window: tuple[int, int]) -> None:
        self.low, self.high = created_window

    def decode(self, raw: bytes | bytearray | memoryview) -> V2Series:
        """Rewrite a 2.0 request; raise ``V2RequestError`` when the body as a whole is unusable."""
        try:
            request = pb.RawRequest.FromString(raw)
        except Exception as exc:  # the protobuf runtime's DecodeError
            raise WireFormatError(f"body is not a valid remote write 2.0 Request protobuf: {exc}") from None
        if len(request.v1_timeseries):
            raise V2RequestError(
                "body is a remote write 1.0 WriteRequest, sent with Content-Type "
                "proto=io.prometheus.write.v2.Request; send it without proto= (or with proto=prometheus.WriteRequest)"
            )
        symbols = request.symbols
        if len(request.timeseries) and (not len(symbols) or symbols[0] != b""):
            raise V2RequestError("symbols[0] must be the empty string, as remote write 2.0 requires")
        out = V2Series([], np.zeros(0, dtype=np.int64))
        native = wire.native_module()
        rewritten = native.v2_series(raw, self.low, self.high) if native is not None else None
        if rewritten is None:  # no C extension (or it refused what upb read): the reference path
            rewrite = _Rewrite(self, symbols, out)
            for index, series in enumerate(request.timeseries):
                rewrite.series(index, series)
            out.created_samples = np.array(rewrite.created, dtype=np.int64)
            return out
        contents, created, slow, out.samples_received, out.histograms_received, out.exemplars_received = rewritten
        if not slow:  # the usual case: every series rewritten in C
            out.contents = contents  # no None left: every series was rewritten
            out.created_samples = np.frombuffer(created, dtype=np.uint8).astype(np.int64)
            return out
        # Series with histograms or bad references go the reference path, in their place.
        rewrite = _Rewrite(self, symbols, out)
        all_series = request.timeseries
        for index, content in enumerate(contents):
            if content is None:
                rewrite.series(index, all_series[index])
            else:
                out.contents.append(content)
                rewrite.created.append(created[index])
        out.created_samples = np.array(rewrite.created, dtype=np.int64)
        return out

    def _created_sample(self, series: Any, name: bytes) -> bytes:
        """The zero sample a counter's created timestamp stands for, or b"" (see the class docstring)."""
        created: int = series.created_timestamp
        if created <= 0 or not (self.low <= created <= self.high):
            return b""
        samples = series.samples
        if not samples or not is_counter(name, series.metadata.type):
            return b""
        try:
            first: int = pb.Sample.FromString(samples[0]).timestamp
        except Exception as exc:  # the protobuf runtime's DecodeError
            raise WireFormatError(f"series sample is not a valid Sample message: {exc}") from None
        return zero_sample(created) if created < first else b""

    def _created_histogram(self, series: Any) -> int:
        """When a counter histogram series counted from zero (its created timestamp), or 0 (see the class docstring).

        The same rule as for float counters; a gauge histogram (metadata ``GAUGEHISTOGRAM`` or reset
        hint ``GAUGE``) has no start to count from.
        """
        created: int = series.created_timestamp
        if created <= 0 or not (self.low <= created <= self.high):
            return 0
        first = series.histograms[0]
        gauge = series.metadata.type == pb.METRIC_TYPE_GAUGEHISTOGRAM or first.reset_hint == RESET_HINT_GAUGE
        return created if not gauge and created < first.timestamp else 0


class _Rewrite:
    """The reference path: one Python step per 2.0 series (and the C path's fallback for unusual ones)."""

    def __init__(self, decoder: V2Decoder, symbols: Sequence[bytes], out: V2Series) -> None:
        self.decoder = decoder
        self.symbols = list(symbols)
        self.out = out
        self.created: list[int] = []  # per content: zero samples added (0/1)
        # Label fields by symbol pair, shared across the request's series (names and values repeat).
        self.label_fields: dict[tuple[int, int], bytes] = {}

    def series(self, index: int, series: Any) -> None:
        """Rewrite one series into ``out`` (its 1.0 encoding, a rejection, or a native histogram series)."""
        out, symbols = self.out, self.symbols
        samples = series.samples
        n_hist = len(series.histograms)
        out.samples_received += len(samples)
        out.histograms_received += n_hist
        out.exemplars_received += len(series.exemplars)
        refs = series.labels_refs
        problem = _refs_problem(refs, series.metadata, len(symbols))
        if problem is not None:
            out.rejected.append(f"timeseries[{index}]: {problem}")
            return
        if n_hist:
            pairs = [(symbols[refs[k]], symbols[refs[k + 1]]) for k in range(0, len(refs), 2)]
            if len(samples):
                out.rejected.append(
                    f"timeseries[{index}]: a series carries both samples and histograms, which remote write "
                    f"2.0 forbids (send them as separate series): {describe(pairs)}"
                )
                return
            start = self.decoder._created_histogram(series)
            out.native.append(NativeSeries(pairs, series.histograms, start, f"timeseries[{index}]: "))
            return
        labels = []
        name = b""
        for k in range(0, len(refs), 2):
            pair = (refs[k], refs[k + 1])
            encoded = self.label_fields.get(pair)
            if encoded is None:
                encoded = self.label_fields[pair] = label_field(symbols[pair[0]], symbols[pair[1]])
            if symbols[pair[0]] == _NAME:
                name = symbols[pair[1]]
            labels.append(encoded)
        zero = self.decoder._created_sample(series, name)
        self.created.append(1 if zero else 0)
        out.contents.append(b"".join(labels) + zero + b"".join([_SAMPLE_TAG + uvarint(len(s)) + s for s in samples]))


def label_field(name: bytes, value: bytes) -> bytes:
    """A 1.0 ``TimeSeries.labels`` entry, canonical as a protobuf encoder writes it (empty strings omitted)."""
    inner = (_delimited(_LABEL_TAG, name) if name else b"") + (_delimited(_VALUE_TAG, value) if value else b"")
    return _delimited(_LABEL_TAG, inner)


def _refs_problem(refs: Sequence[int], metadata: Any, n_symbols: int) -> str | None:
    """Why a series' symbol references are unusable, or None."""
    if len(refs) % 2:
        return f"labels_refs has an odd length ({len(refs)}): references must come in name/value pairs"
    if refs and max(refs) >= n_symbols:
        bad = next(r for r in refs if r >= n_symbols)
        return f"label reference {bad} is out of range (the request has {n_symbols} symbols)"
    for what in ("help_ref", "unit_ref"):
        ref: int = getattr(metadata, what)
        if ref >= n_symbols:
            return f"metadata {what} {ref} is out of range (the request has {n_symbols} symbols)"
    return None
