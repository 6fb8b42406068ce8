"""The demo summary's anomaly lines: which series, and why."""

from __future__ import annotations

from typing import Any

from novacron.demo import anomaly_lines


def episode(labels: dict[str, str], **fields: Any) -> dict[str, Any]:
    """An episode as GET /api/v1/anomalies lists it (a spike of a rate, 0.73 against 0 expected)."""
    return {
        "labels": labels,
        "metric": labels.get("__name__", "novacron_service_anomaly_score"),
        "scored_as": "rate",
        "status": "resolved",
        "score": 0.99,
        "peak_ms": 1_795_838_100_000,
        "value": 0.7333,
        "expected": 0.0,
        "lower": 0.0,
        "upper": 0.5333,
        "methods": ["spike"],
        "severity": "warning",
        "confidence": 0.4,
        **fields,
    }


def test_two_pods_episodes_of_one_metric_are_told_apart_by_their_pod() -> None:
    # Given the same metric's episodes on two pods of frontend
    base = {"__name__": "rpc_client_errors_total", "service": "frontend", "target": "product-catalog"}
    anomalies = [episode({**base, "pod": "frontend-7b9-jcdnh"}), episode({**base, "pod": "frontend-7b9-vx482"})]

    # When the summary lists them
    lines = anomaly_lines(anomalies)[1:]

    # Then each line names its pod, and the two lines differ
    assert [line.split()[1] for line in lines] == ["frontend-7b9-jcdnh", "frontend-7b9-vx482"]
    assert lines[0] != lines[1]
    assert all('rpc_client_errors_total{target="product-catalog"} rate' in line for line in lines)


def test_a_service_anomaly_names_the_service_and_its_drivers() -> None:
    # Given a service-level episode with the features that drove it
    drivers = [{"feature": "latency mean", "value": 0.54, "expected": 0.144, "contribution": 0.97}]
    anomalies = [
        episode({"service": "payment"}, scored_as="service", methods=["isolation_forest"], drivers=drivers, value=1.0)
    ]

    # When the summary lists it, Then the line names the service and what drove the score
    (line,) = anomaly_lines(anomalies)[1:]
    assert line.split()[1] == "payment"
    assert "drivers latency mean 0.54 (usual 0.144, 97%)" in line
