"""Anomaly detection: the streaming per-series detector, its offline scoring command and its corpus."""

from novacron.detect.stream import SeriesDetector, Verdict

__all__ = ["SeriesDetector", "Verdict"]
