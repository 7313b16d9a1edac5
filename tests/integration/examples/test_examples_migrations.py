"""The examples' tables come from their own migration source, applied by ``portside migrate
--app`` (and ``portside dev``) after portside's, recorded apart from portside's versions."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from portside.adapters.postgres.migrations import available_migrations
from portside.testing.dsn import with_database

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
DEV_APP = "portside.examples.dev:application"


@pytest.fixture
async def empty_dsn(postgres_dsn: str, db: asyncpg.Connection) -> AsyncIterator[str]:
    """A brand-new database with no schema at all (dropped afterwards)."""
    name = f"examples_migrate_{uuid.uuid4().hex[:12]}"
    await db.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(postgres_dsn, name)
    finally:
        await db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def migrate_cli(dsn: str, *args: str) -> tuple[int, str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PORTSIDE_APP"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "portside.app.cli", "migrate", "--postgres-dsn", dsn, *args,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_migrate_with_the_examples_applies_portside_then_theirs(empty_dsn: str) -> None:
    core = ", ".join(migration.version for migration in available_migrations())
    examples = "portside.examples/0001, portside.examples/0002, portside.examples/0003"

    assert await migrate_cli(empty_dsn, "--app", DEV_APP) == (
        0,
        f"applied migrations {core}, {examples}\n",
        "",
    )
    assert await migrate_cli(empty_dsn, "--app", DEV_APP) == (0, "schema is up to date\n", "")
    conn = await asyncpg.connect(empty_dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = {row["tablename"] for row in rows}
    finally:
        await conn.close()
    assert {"agent_runs", "example_ingested_records", "portside_outbox_events"} <= tables


async def test_migrate_without_an_app_makes_no_example_table(empty_dsn: str) -> None:
    code, out, _ = await migrate_cli(empty_dsn)
    assert code == 0
    assert "portside.examples" not in out
    conn = await asyncpg.connect(empty_dsn)
    try:
        assert await conn.fetchval("SELECT to_regclass('agent_runs')") is None
        assert await conn.fetchval("SELECT to_regclass('example_daily_aggregates')") is None
    finally:
        await conn.close()
