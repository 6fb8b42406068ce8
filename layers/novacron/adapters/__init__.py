"""Adapters: the only modules that touch AWS. Everything else takes them as injected arguments."""
