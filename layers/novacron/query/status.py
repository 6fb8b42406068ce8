"""``/api/v1/status/tsdb``: cardinality of a tenant's series, in Prometheus's shape.

Computed from the series index for one UTC day (today by default), so it answers "which metrics and
labels make up my series count" — the question behind every cardinality limit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from novacron.series import METRIC_NAME, Labels

Params = Mapping[str, Sequence[str]]
Response = tuple[int, dict[str, Any]]


class DaySeries(Protocol):
    """What the status endpoint reads: every series seen on a day."""

    def series_of_day(self, day_ms: int) -> list[Labels]:
        """Label sets of the series seen on the UTC day containing ``day_ms``."""
        ...


def _error(message: str) -> Response:
    return 400, {"status": "error", "errorType": "bad_data", "error": message}


def tsdb_status(reader: DaySeries, params: Params, now_ms: int) -> Response:
    """Top-N series counts by metric, label and label pair (``limit``, default 10; ``date``)."""
    try:
        limit = int((params.get("limit") or ["10"])[0])
    except ValueError:
        return _error("limit must be an integer")
    if not 1 <= limit <= 10_000:
        return _error("limit must be between 1 and 10000")
    day_ms = now_ms
    date = (params.get("date") or [""])[0]
    if date:
        try:
            day_ms = int(datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000)
        except ValueError:
            return _error(f"date must be YYYY-MM-DD, got {date!r}")
    series = reader.series_of_day(day_ms)
    by_metric: Counter[str] = Counter()
    by_pair: Counter[str] = Counter()
    values_by_name: dict[str, set[str]] = {}
    for labels in series:
        for name, value in labels:
            if name == METRIC_NAME:
                by_metric[value] += 1
            by_pair[f"{name}={value}"] += 1
            values_by_name.setdefault(name, set()).add(value)

    def top(counter: Mapping[str, int]) -> list[dict[str, Any]]:
        ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [{"name": name, "value": count} for name, count in ranked]

    return 200, {
        "status": "success",
        "data": {
            "headStats": {"numSeries": len(series), "numLabelPairs": len(by_pair), "chunkCount": 0},
            "seriesCountByMetricName": top(by_metric),
            "labelValueCountByLabelName": top({n: len(v) for n, v in values_by_name.items()}),
            "memoryInBytesByLabelName": [],
            "seriesCountByLabelValuePair": top(by_pair),
        },
    }
