"""The migrator: ordered, recorded, idempotent and safe under concurrency."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from portside.adapters.postgres.migrations import (
    available_migrations,
    migrate,
    migrate_connection,
)
from portside.ports import ConfigurationError
from portside.testing.dsn import with_database

pytestmark = pytest.mark.integration

ALL_VERSIONS = [migration.version for migration in available_migrations()]


@pytest.fixture
async def empty_dsn(postgres_dsn: str, db: asyncpg.Connection) -> AsyncIterator[str]:
    """A brand-new database with no portside schema at all (dropped afterwards)."""
    name = f"outbox_migrate_{uuid.uuid4().hex[:12]}"
    await db.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(postgres_dsn, name)
    finally:
        await db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _recorded(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT version FROM portside_schema_version ORDER BY version")
    finally:
        await conn.close()
    return [row["version"] for row in rows]


def test_migration_files_are_numbered_and_ordered() -> None:
    assert ALL_VERSIONS[0] == "0001"
    assert sorted(set(ALL_VERSIONS)) == ALL_VERSIONS


async def test_migrate_applies_everything_once_then_nothing(empty_dsn: str) -> None:
    """A fresh database gets every migration, recorded; a second run applies none."""
    assert await migrate(empty_dsn) == ALL_VERSIONS
    assert await _recorded(empty_dsn) == ALL_VERSIONS
    assert await migrate(empty_dsn) == []


async def test_the_harness_template_is_fully_migrated(postgres_dsn: str) -> None:
    assert await migrate(postgres_dsn) == []
    assert await _recorded(postgres_dsn) == ALL_VERSIONS


async def test_concurrent_migrators_apply_each_version_exactly_once(empty_dsn: str) -> None:
    """Six migrators racing on an empty database: one applies, the rest find nothing."""
    results = await asyncio.gather(*(migrate(empty_dsn) for _ in range(6)))
    assert sorted(results, key=len) == [[]] * 5 + [ALL_VERSIONS]
    assert await _recorded(empty_dsn) == ALL_VERSIONS


async def test_an_edited_applied_migration_is_refused(postgres_dsn: str) -> None:
    """A migration whose file changed after it was applied is an error, not a silent skip."""
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute(
            "UPDATE portside_schema_version SET checksum = 'stale' WHERE version = '0001'"
        )
        with pytest.raises(ConfigurationError, match="0001_outbox was applied with different"):
            await migrate_connection(conn)
        # The advisory lock was released: another migrator is not blocked.
        held = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        assert held == 0
    finally:
        await conn.close()


async def test_migrate_connection_refuses_an_open_transaction(
    db: asyncpg.Connection,
) -> None:
    async with db.transaction():
        with pytest.raises(ConfigurationError, match="inside a transaction"):
            await migrate_connection(db)
