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


def service_samples(
    service: str,
    start_ms: int,
    end_ms: int,
    *,
    interval_ms: int = 30_000,
    seed: int = 0,
    fault: tuple[int, int] | None = None,
) -> list[tuple[dict[str, str], list[tuple[int, float]]]]:
    """A service's scraped series: requests by code (counters), latency sum/count, memory (gauge).

    Normal: ~50 requests/s with 1 % of 500s, 100 ms mean latency, 200 MB. Within ``fault`` (start, end ms):
    latency x6 and 30 % of 500s -- a multivariate anomaly that no single series shows as clearly.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    times = np.arange(start_ms, end_ms + 1, interval_ms)
    seconds = interval_ms / 1000
    faulty = np.zeros(times.size, dtype=bool) if fault is None else (times >= fault[0]) & (times < fault[1])
    requests = np.maximum(rng.normal(50.0, 3.0, times.size), 1.0) * seconds
    error_share = np.where(faulty, 0.30, 0.01)
    latency = np.where(faulty, 0.6, 0.1) * np.exp(rng.normal(0.0, 0.05, times.size))
    ok, errors = np.cumsum(requests * (1 - error_share)), np.cumsum(requests * error_share)
    count = np.cumsum(requests)
    total = np.cumsum(requests * latency)
    memory = 200e6 + rng.normal(0.0, 2e6, times.size)
    base = {"service": service, "job": service, "instance": f"{service}-0"}

    def series(name: str, values: Any, **labels: str) -> tuple[dict[str, str], list[tuple[int, float]]]:
        return {"__name__": name, **base, **labels}, list(zip(times.tolist(), np.asarray(values).tolist(), strict=True))

    return [
        series("http_requests_total", ok, code="200"),
        series("http_requests_total", errors, code="500"),
        series("http_request_duration_seconds_count", count),
        series("http_request_duration_seconds_sum", total),
        series("process_resident_memory_bytes", memory),
    ]


def service_reader(
    services: Mapping[str, tuple[int, int] | None], start_ms: int, end_ms: int, interval_ms: int = 30_000
) -> Any:
    """An InMemorySeriesReader holding :func:`service_samples` of each service (with its fault, if any)."""
    from novacron.query.memory_reader import InMemorySeriesReader

    reader = InMemorySeriesReader()
    for seed, (service, fault) in enumerate(sorted(services.items())):
        for labels, samples in service_samples(
            service, start_ms, end_ms, interval_ms=interval_ms, seed=seed, fault=fault
        ):
            reader.add(labels, [t for t, _ in samples], [v for _, v in samples])
    return reader
