"""Builders of protocol payloads for tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import cramjam

from novacron.protocols.remote_write_pb import Label, Sample, TimeSeries, WriteRequest

# The fixed "now" of ingest tests (2026-09-21): samples near it are inside the accepted window.
NOW = 1_790_000_000_000

RW_HEADERS = {
    "content-type": "application/x-protobuf",
    "content-encoding": "snappy",
    "x-prometheus-remote-write-version": "0.1.0",
}


def timeseries(
    labels: Mapping[str, str] | Sequence[tuple[str, str]],
    samples: Iterable[tuple[int, float]],
    sort: bool = True,
) -> TimeSeries:
    """A TimeSeries message; ``sort=False`` keeps the label order given (to build bad input)."""
    pairs = list(labels.items()) if isinstance(labels, Mapping) else list(labels)
    if sort:
        pairs.sort()
    return TimeSeries(
        labels=[Label(name=k, value=v) for k, v in pairs],
        samples=[Sample(timestamp=t, value=v) for t, v in samples],
    )


def write_request(series: Iterable[TimeSeries]) -> bytes:
    """A snappy-compressed (block format) remote write 1.0 body."""
    return bytes(cramjam.snappy.compress_raw(WriteRequest(timeseries=list(series)).SerializeToString()))


def raw_body(series: Iterable[TimeSeries]) -> bytes:
    """The uncompressed WriteRequest bytes."""
    return bytes(WriteRequest(timeseries=list(series)).SerializeToString())


def histogram_series(labels: Mapping[str, str], histograms: Iterable[Any]) -> TimeSeries:
    """A 1.0 TimeSeries carrying native histograms (``remote_write_v2_pb.Histogram``, wire-identical in 1.0)."""
    series = timeseries(labels, [])
    series.histograms.extend(h.SerializeToString() for h in histograms)
    return series
