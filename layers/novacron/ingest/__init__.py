"""Ingest: decode what senders send, validate it, and pack it into stream records."""
