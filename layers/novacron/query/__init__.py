"""The query side: Prometheus HTTP API logic and series readers."""
