"""What the DynamoDB adapters share."""

from __future__ import annotations

from typing import Any

from novacron.aws import endpoint_override, region


def bind_model(base: type[Any], table_name: str) -> Any:
    """A subclass of a pynamodb model bound to one table.

    pynamodb binds a table per model class, while table names come from configuration at run time.
    """
    meta = type("Meta", (), {"table_name": table_name, "region": region(), "host": endpoint_override()})
    return type(f"{base.__name__}_{table_name}", (base,), {"Meta": meta})
