"""Alerting: Prometheus rule files (parse, validate, evaluate, template) and Alertmanager-style routing."""
