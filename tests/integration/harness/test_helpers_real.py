"""The harness helpers and fixtures on the real adapters: the scenarios of the fakes give the
same outcomes on BullMQ and the Postgres outbox (H2, H3)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis

from portside import Infra, get_infra
from portside.testing.harness import Harness
from portside.testing.keyspace import PREFIX_PATTERN
from tests.unit.harness.helper_scenarios import (
    SCENARIOS,
)

pytestmark = pytest.mark.integration

Scenario = Callable[[Infra], Awaitable[None]]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_h3_helpers_on_real_adapters(infra: Infra, scenario: Scenario) -> None:
    await scenario(infra)


async def test_h2_infra_is_real_and_installed_for_the_test(infra: Infra) -> None:
    assert get_infra() is infra
    assert infra.name == "real"
    assert type(infra.queue).__name__ == "BullMQQueue"
    assert type(infra.outbox).__name__ == "PostgresOutbox"
    assert infra.history is not None
    assert infra.cache is not None


async def test_h1_each_test_database_has_every_migration(postgres_dsn: str) -> None:
    conn = await asyncpg.connect(postgres_dsn)
    try:
        rows = await conn.fetch("SELECT source, version FROM portside_schema_version")
        name = await conn.fetchval("SELECT current_database()")
    finally:
        await conn.close()
    versions = [r["version"] for r in rows if r["source"] == "portside"]
    assert "0001" in versions
    assert versions == sorted(versions)
    # and the examples' own, from pyproject's portside_migrations
    assert [r["version"] for r in rows if r["source"] == "portside.examples"] == [
        "0001",
        "0002",
        "0003",
    ]
    assert name == urlsplit(postgres_dsn).path.lstrip("/")
    assert name.startswith("pt_")


def test_h1_prefix_is_a_valid_bullmq_prefix_and_its_keys_go_away(
    redis_url: str, redis_prefix: str, portside_harness: Harness
) -> None:
    """A sync test can use the fixtures too; the prefix holds no ':' (BullMQ splits on it)."""
    assert PREFIX_PATTERN.fullmatch(redis_prefix)
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(f"{redis_prefix}:a", 1)
        client.set(f"{redis_prefix}:b", 2)
    finally:
        client.close()
    keyspace = portside_harness.keyspace()
    assert keyspace.count_keys(redis_prefix) == 2
    assert keyspace.cleanup(redis_prefix) == 2
    assert keyspace.count_keys(redis_prefix) == 0
