"""Declared secrets: created with a random value per stack, read by the adapter functions use."""

from __future__ import annotations

from novacron.adapters.secrets import read_secret
from novacron.local.resources import physical_name
from novacron.wiring import PII_SECRET, WIRING
from tests.integration.handlers.conftest import Stack


def test_every_declared_secret_exists_with_a_long_random_value(stack: Stack) -> None:
    # Given the stack's resources created from the wiring
    # When each declared secret is read the way a function reads it (by the id in its environment)
    values = {s.name: read_secret(stack.resources.secret_names[s.name]) for s in WIRING.secrets}
    # Then each exists under its local physical name and holds at least 256 bits of randomness
    assert stack.resources.secret_names[PII_SECRET] == physical_name(PII_SECRET)
    assert all(len(value) >= 48 for value in values.values())


def test_functions_reading_the_pii_secret_are_exactly_the_ingest_kind() -> None:
    # Given the wiring
    # When listing who may read the PII secret
    readers = {fn.name for fn in WIRING.functions if any(g.resource == PII_SECRET for g in fn.grants)}
    # Then only the functions that take data in do, and each is told where it is
    assert readers == {"ingest", "otlp", "firehose"}
    assert all(WIRING.function(name).environment["NOVACRON_PII_SECRET"] == PII_SECRET for name in readers)
