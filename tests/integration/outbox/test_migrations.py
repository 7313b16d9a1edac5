"""The migrator: ordered, recorded, idempotent and safe under concurrency; an application's
migration sources beside portside's, each with its own versions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from portside.adapters.postgres.migrations import (
    MigrationSource,
    available_migrations,
    migrate,
    migrate_connection,
)
from portside.examples import migrations as examples
from portside.ports import ConfigurationError
from portside.testing.dsn import with_database

pytestmark = pytest.mark.integration

ALL_VERSIONS = [migration.version for migration in available_migrations()]
EXAMPLE_LABELS = [migration.label for migration in examples.SOURCE.migrations()]


@pytest.fixture
async def empty_dsn(postgres_dsn: str, db: asyncpg.Connection) -> AsyncIterator[str]:
    """A brand-new database with no portside schema at all (dropped afterwards)."""
    name = f"outbox_migrate_{uuid.uuid4().hex[:12]}"
    await db.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(postgres_dsn, name)
    finally:
        await db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _recorded(dsn: str, source: str = "portside") -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT version FROM portside_schema_version WHERE source = $1 ORDER BY version",
            source,
        )
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
    # pyproject's portside_migrations adds the examples' tables to every test database.
    assert await examples.migrate(postgres_dsn) == []
    assert await _recorded(postgres_dsn, "portside.examples") == ["0001", "0002", "0003"]


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


def _source(root: Path, name: str, files: dict[str, str]) -> MigrationSource:
    directory = root / name
    directory.mkdir()
    for file, sql in files.items():
        (directory / file).write_text(sql)
    return MigrationSource(name, directory)


async def test_sources_apply_after_portside_each_with_its_own_versions(
    empty_dsn: str, tmp_path: Path
) -> None:
    """Two sources both start at 0001: each version is recorded under its source's name."""
    first = _source(
        tmp_path,
        "app-a",
        {
            "0001_widgets.sql": "CREATE TABLE widgets (id int PRIMARY KEY);",
            "0002_widget_names.sql": "ALTER TABLE widgets ADD COLUMN name text;",
        },
    )
    second = _source(tmp_path, "app-b", {"0001_gadgets.sql": "CREATE TABLE gadgets (id int);"})

    applied = await migrate(empty_dsn, [first, second])
    assert applied == [*ALL_VERSIONS, "app-a/0001", "app-a/0002", "app-b/0001"]
    assert await _recorded(empty_dsn) == ALL_VERSIONS
    assert await _recorded(empty_dsn, "app-a") == ["0001", "0002"]
    assert await _recorded(empty_dsn, "app-b") == ["0001"]
    assert await migrate(empty_dsn, [first, second]) == []

    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute("INSERT INTO widgets (id, name) VALUES (1, 'one')")
        await conn.execute("INSERT INTO gadgets (id) VALUES (1)")
    finally:
        await conn.close()


async def test_a_source_added_later_applies_only_its_own(empty_dsn: str, tmp_path: Path) -> None:
    assert await migrate(empty_dsn) == ALL_VERSIONS
    added = _source(tmp_path, "app-a", {"0001_widgets.sql": "CREATE TABLE widgets (id int);"})
    assert await migrate(empty_dsn, [added]) == ["app-a/0001"]
    assert await migrate(empty_dsn, [added]) == []


async def test_concurrent_migrators_apply_each_source_version_exactly_once(
    empty_dsn: str, tmp_path: Path
) -> None:
    source = _source(tmp_path, "app-a", {"0001_widgets.sql": "CREATE TABLE widgets (id int);"})
    results = await asyncio.gather(*(migrate(empty_dsn, [source]) for _ in range(6)))
    assert sorted(results, key=len) == [[]] * 5 + [[*ALL_VERSIONS, "app-a/0001"]]
    assert await _recorded(empty_dsn, "app-a") == ["0001"]


async def test_an_edited_applied_migration_is_refused_per_source(
    empty_dsn: str, tmp_path: Path
) -> None:
    """The same version and file name in two sources: only the edited one is refused."""
    sql = "CREATE TABLE {} (id int);"
    first = _source(tmp_path, "app-a", {"0001_things.sql": sql.format("a_things")})
    second = _source(tmp_path, "app-b", {"0001_things.sql": sql.format("b_things")})
    await migrate(empty_dsn, [first, second])

    (tmp_path / "app-b" / "0001_things.sql").write_text(sql.format("b_things_v2"))
    with pytest.raises(ConfigurationError, match="app-b/0001_things was applied with different"):
        await migrate(empty_dsn, [first, second])
    assert await migrate(empty_dsn, [first]) == []


async def test_a_database_migrated_before_sources_existed_keeps_working(
    empty_dsn: str,
) -> None:
    """portside <= 0.1 recorded versions alone, and applied the example tables as its own 0011
    and 0020. Those files moved to the examples' source: portside ignores the versions it no
    longer has, and the examples' migrations find their tables already there."""
    conn = await asyncpg.connect(empty_dsn)
    try:
        await conn.execute(
            "CREATE TABLE portside_schema_version (version text PRIMARY KEY, name text NOT NULL,"
            " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        # The two example migrations that existed then (later ones are applied as new).
        old = [*available_migrations(), *examples.SOURCE.migrations()[:2]]
        for migration, version in zip(old, [*ALL_VERSIONS, "0011", "0020"], strict=True):
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO portside_schema_version (version, name, checksum) VALUES ($1, $2, $3)",
                version,
                migration.name,
                f"checksum of the old {version}",
            )
        await conn.execute(
            "INSERT INTO example_daily_aggregates VALUES ('org-1', '2024-05-01', 3, 12.5)"
        )
        # Only portside's checksums were current back then: make them match the files.
        for migration in available_migrations():
            await conn.execute(
                "UPDATE portside_schema_version SET checksum = $2 WHERE version = $1",
                migration.version,
                migration.checksum,
            )
    finally:
        await conn.close()

    assert await migrate(empty_dsn, [examples.SOURCE]) == EXAMPLE_LABELS
    assert await migrate(empty_dsn, [examples.SOURCE]) == []
    assert await _recorded(empty_dsn) == sorted([*ALL_VERSIONS, "0011", "0020"])
    assert await _recorded(empty_dsn, "portside.examples") == ["0001", "0002", "0003"]
    conn = await asyncpg.connect(empty_dsn)
    try:
        assert await conn.fetchval("SELECT total FROM example_daily_aggregates") == 12.5
        key = await conn.fetchval(
            "SELECT array_agg(attname::text ORDER BY attname) FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = 'portside_schema_version'::regclass AND i.indisprimary"
        )
        assert key == ["source", "version"]
    finally:
        await conn.close()
