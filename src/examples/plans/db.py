"""The plan examples' SQL: named statements run in the outbox's unit of work."""

from __future__ import annotations

from typing import Any

from portside.infra import get_infra
from portside.ports import ConfigurationError
from portside.sqlfiles import SqlFile

__all__ = ["fetch"]

_sql = SqlFile("portside.examples.plans", "sql", "plans.sql")


async def fetch(name: str, *args: Any) -> list[Any]:
    """Run statement ``name`` in its own transaction on ``get_infra().outbox``; its rows."""
    async with get_infra().outbox.transaction() as tx:
        if not callable(getattr(tx, "fetch", None)):
            raise ConfigurationError(
                f"the plan examples need SQL, but the outbox's transaction() yields a "
                f"{type(tx).__name__}",
                fix="run them on the Postgres outbox (PORTSIDE_POSTGRES_DSN)",
            )
        return list(await tx.fetch(_sql(name), *args))
