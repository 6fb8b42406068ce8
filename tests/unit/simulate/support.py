"""Helpers of the simulator tests: selecting samples and decoding what the test server received."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import cramjam

from novacron.protocols.remote_write_pb import WriteRequest
from novacron.series import Labels
from novacron.simulate.estate import Scrape

# A Wednesday in January; the tests place scrapes relative to it.
WEDNESDAY = datetime(2026, 1, 7, tzinfo=UTC).timestamp()
HOUR = 3600.0


def by_series(scrapes: Sequence[Scrape]) -> dict[Labels, list[tuple[int, float]]]:
    """Every series' (timestamp, value) samples across scrapes."""
    found: dict[Labels, list[tuple[int, float]]] = {}
    for scrape in scrapes:
        for labels, value in scrape.samples:
            found.setdefault(labels, []).append((scrape.timestamp_ms, value))
    return found


def select(scrape: Scrape, **matchers: str) -> list[tuple[dict[str, str], float]]:
    """Samples of one scrape whose labels include all ``matchers`` (``name`` matches ``__name__``)."""
    wanted = {("__name__" if k == "name" else k): v for k, v in matchers.items()}
    out = []
    for labels, value in scrape.samples:
        as_dict = dict(labels)
        if all(as_dict.get(k) == v for k, v in wanted.items()):
            out.append((as_dict, value))
    return out


def total(scrape: Scrape, **matchers: str) -> float:
    """Sum of the matching samples of one scrape."""
    return sum(value for _, value in select(scrape, **matchers))


@dataclass
class Received:
    """One request the test server got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def decode(self) -> list[tuple[Labels, list[tuple[int, float]]]]:
        """The body as (labels in wire order, samples) per series: snappy block, then protobuf."""
        request = WriteRequest.FromString(cramjam.snappy.decompress_raw(self.body).read())
        return [
            (
                tuple((label.name, label.value) for label in ts.labels),
                [(sample.timestamp, sample.value) for sample in ts.samples],
            )
            for ts in request.timeseries
        ]
