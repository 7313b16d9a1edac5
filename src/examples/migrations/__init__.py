"""The examples' own tables, as a migration source beside portside's (``NNNN_name.sql`` files).

``migrate(dsn)`` applies portside's migrations, then these; it is what ``portside dev`` runs
for the examples and what the test harness applies to its template database::

    [tool.pytest.ini_options]
    portside_migrations = ["portside.examples.migrations:migrate"]
"""

from __future__ import annotations

from portside.adapters.postgres.migrations import MigrationSource
from portside.adapters.postgres.migrations import migrate as migrate_sources

__all__ = ["SOURCE", "migrate"]

SOURCE = MigrationSource.from_package(__name__, name="portside.examples")
"""The example tables (``example_*``, ``agent_runs``), recorded as ``portside.examples``."""


async def migrate(dsn: str) -> list[str]:
    """Apply portside's pending migrations and the examples' to the database at ``dsn``.

    Returns:
        What was applied, e.g. ``["portside.examples/0001", "portside.examples/0002"]``.
    """
    return await migrate_sources(dsn, [SOURCE])
