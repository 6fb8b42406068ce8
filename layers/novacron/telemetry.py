"""Business metrics of the handlers (CloudWatch EMF through Powertools)."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

# Requests refused before any business metric is recorded (401s, 415s) are normal here, and Powertools
# would warn about each such invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def add_metrics(metrics: Metrics, counts: dict[str, float], unit: MetricUnit = MetricUnit.Count) -> None:
    """Add metrics unless metrics are disabled (the local runtime disables them).

    Powertools keeps collecting while disabled and prints a blob once 100 values pile up; skipping
    the add keeps a long local run quiet and its memory flat.
    """
    if is_metrics_disabled():
        return
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=unit, value=value)
