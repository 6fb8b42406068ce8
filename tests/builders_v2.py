"""Builders of Prometheus remote write 2.0 payloads for tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import cramjam

from novacron.ingest.service import IngestResult
from novacron.protocols import remote_write_v2_pb as pb

V2_HEADERS = {
    "content-type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
    "content-encoding": "snappy",
    "x-prometheus-remote-write-version": "2.0.0",
}


@dataclass
class V2Spec:
    """One 2.0 series to build; ``labels_refs`` overrides the refs built from ``labels`` (bad input)."""

    labels: Mapping[str, str]
    samples: Sequence[tuple[int, float]] = ()
    created: int = 0
    metric_type: int = pb.METRIC_TYPE_UNSPECIFIED
    help: str = ""
    unit: str = ""
    histograms: int = 0
    exemplars: Sequence[tuple[Mapping[str, str], float, int]] = ()
    labels_refs: Sequence[int] | None = None
    extra_symbols: Sequence[str] = field(default_factory=tuple)
    native: Sequence[pb.Histogram] = ()  # native histogram samples, after the ``histograms`` ones


class Symbols:
    """A request's symbol table: ``""`` first, then each string once."""

    def __init__(self) -> None:
        self.table: list[str] = [""]
        self._index: dict[str, int] = {"": 0}

    def ref(self, text: str) -> int:
        if text not in self._index:
            self._index[text] = len(self.table)
            self.table.append(text)
        return self._index[text]

    def refs(self, labels: Mapping[str, str]) -> list[int]:
        return [r for k, v in sorted(labels.items()) for r in (self.ref(k), self.ref(v))]


def v2_request(specs: Iterable[V2Spec], symbols: Symbols | None = None) -> pb.Request:
    """A 2.0 Request message for the given series."""
    table = symbols or Symbols()
    series = []
    for spec in specs:
        for extra in spec.extra_symbols:
            table.ref(extra)
        refs = list(spec.labels_refs) if spec.labels_refs is not None else table.refs(spec.labels)
        ts = pb.TimeSeries(
            labels_refs=refs,
            samples=[pb.Sample(timestamp=t, value=v) for t, v in spec.samples],
            created_timestamp=spec.created,
            metadata=pb.Metadata(type=spec.metric_type, help_ref=table.ref(spec.help), unit_ref=table.ref(spec.unit)),
        )
        for n in range(spec.histograms):
            # An integer native histogram: 3 observations in two positive buckets.
            ts.histograms.append(
                pb.Histogram(
                    count_int=3,
                    sum=4.5,
                    schema=0,
                    positive_spans=[pb.BucketSpan(offset=0, length=2)],
                    positive_deltas=[1, 1],
                    timestamp=(spec.samples[0][0] if spec.samples else 1) + n,
                )
            )
        ts.histograms.extend(spec.native)
        for labels, value, stamp in spec.exemplars:
            ts.exemplars.append(pb.Exemplar(labels_refs=table.refs(labels), value=value, timestamp=stamp))
        series.append(ts)
    return pb.Request(symbols=table.table, timeseries=series)


def v2_raw(specs: Iterable[V2Spec]) -> bytes:
    """The uncompressed 2.0 Request bytes."""
    return bytes(v2_request(specs).SerializeToString())


def v2_body(specs: Iterable[V2Spec]) -> bytes:
    """A snappy-compressed (block format) remote write 2.0 body."""
    return compress(v2_raw(specs))


def compress(raw: bytes) -> bytes:
    """Snappy block compression, as remote write uses."""
    return bytes(cramjam.snappy.compress_raw(raw))


def native_histogram(
    timestamp: int,
    positive: Mapping[int, float],
    *,
    schema: int = 0,
    negative: Mapping[int, float] | None = None,
    zero_count: float = 0,
    zero_threshold: float = 0.0,
    total: float = 0.0,
    count: float | None = None,
    float_counts: bool = False,
    custom_values: Sequence[float] = (),
    reset_hint: int = 0,
) -> pb.Histogram:
    """A native histogram from absolute bucket counts by Prometheus index, encoded as a sender does it.

    Runs of consecutive indexes become spans; integer histograms carry deltas (float ones counts).
    ``count`` defaults to the buckets' total; ``total`` is the sum of observations.
    """
    negative = negative or {}
    h = pb.Histogram(
        sum=total, schema=schema, zero_threshold=zero_threshold, reset_hint=reset_hint, timestamp=timestamp
    )
    h.custom_values.extend(custom_values)
    everything = zero_count + sum(positive.values()) + sum(negative.values())
    if float_counts:
        h.count_float = everything if count is None else count
        h.zero_count_float = zero_count
    else:
        h.count_int = int(everything if count is None else count)
        h.zero_count_int = int(zero_count)
    for side, buckets in (("positive", positive), ("negative", negative)):
        indexes = sorted(buckets)
        spans = getattr(h, f"{side}_spans")
        end = 0
        for i in indexes:
            if spans and i == end:
                spans[-1].length += 1
            else:
                spans.add(offset=i if not spans else i - end, length=1)
            end = i + 1
        values = [buckets[i] for i in indexes]
        if float_counts:
            getattr(h, f"{side}_counts").extend(values)
        else:
            getattr(h, f"{side}_deltas").extend(int(b - a) for a, b in zip([0, *values], values, strict=False))
    return h


def written(result: IngestResult) -> tuple[str, str, str]:
    """The samples, histograms and exemplars written, as a 2.0 response's headers say."""
    headers = result.response_headers()
    return (
        headers["X-Prometheus-Remote-Write-Samples-Written"],
        headers["X-Prometheus-Remote-Write-Histograms-Written"],
        headers["X-Prometheus-Remote-Write-Exemplars-Written"],
    )
