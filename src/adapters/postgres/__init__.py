"""The Postgres adapter: a transactional outbox on asyncpg and versioned SQL migrations."""

from __future__ import annotations

from portside.adapters.postgres.migrations import MigrationSource, migrate, migrate_connection
from portside.adapters.postgres.outbox import PostgresOutbox
from portside.adapters.postgres.settings import OutboxSettings

__all__ = [
    "MigrationSource",
    "OutboxSettings",
    "PostgresOutbox",
    "migrate",
    "migrate_connection",
]
