"""A project's own schema in every test database through ``portside_migrations`` (H1)."""

from __future__ import annotations

import pytest

from portside.servers.clusters import cache_root

pytestmark = pytest.mark.integration

SCHEMA = """
import asyncpg


async def create_widgets(dsn):
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE widgets (id int PRIMARY KEY)")
    finally:
        await conn.close()


def seed_widgets(dsn):
    import asyncio

    async def seed():
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("INSERT INTO widgets VALUES (1), (2)")
        finally:
            await conn.close()

    asyncio.run(seed())
"""

TESTS = """
import asyncpg


async def test_schema_and_seed(postgres_dsn):
    conn = await asyncpg.connect(postgres_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM widgets") == 2
        assert await conn.fetchval("SELECT count(*) FROM portside_schema_version") > 0
        await conn.execute("DELETE FROM widgets")
    finally:
        await conn.close()


async def test_next_test_gets_the_template_again(postgres_dsn):
    conn = await asyncpg.connect(postgres_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM widgets") == 2
    finally:
        await conn.close()
"""


def test_h1_project_migrations_run_once_on_the_template(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTSIDE_CACHE_DIR", str(cache_root()))
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
        "portside_migrations =\n    schema:create_widgets\n    schema:seed_widgets\n"
    )
    pytester.makepyfile(schema=SCHEMA, test_widgets=TESTS)
    result = pytester.runpytest_subprocess("--portside-servers=local", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
