"""Fixtures of the job-platform integration tests: real adapters from the harness."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from portside.adapters.postgres.history import PostgresHistory
from portside.adapters.redis import RedisCache
from portside.infra import Infra, use_infra
from portside.ports import OutboxPort, QueuePort


@pytest.fixture
async def platform_infra(
    queue_adapter: QueuePort,
    outbox_adapter: OutboxPort,
    postgres_dsn: str,
    redis_url: str,
    redis_prefix: str,
) -> AsyncIterator[Infra]:
    """BullMQ queue, Postgres outbox and history, Redis cache on this test's isolated servers."""
    history = PostgresHistory(postgres_dsn)
    cache = RedisCache(redis_url, prefix=f"{redis_prefix}:cache")
    infra = Infra(
        queue=queue_adapter, outbox=outbox_adapter, history=history, cache=cache, name="real"
    )
    try:
        with use_infra(infra):
            yield infra
    finally:
        await history.close()
        await cache.close()


@pytest.fixture
async def db(postgres_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to this test's database, to check tables behind the adapters."""
    conn = await asyncpg.connect(postgres_dsn)
    try:
        yield conn
    finally:
        await conn.close()
