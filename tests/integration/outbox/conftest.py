"""Fixtures of the Postgres outbox integration tests (servers come from the harness)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from portside.adapters.postgres import PostgresOutbox
from portside.ports import OutboxPort


@pytest.fixture
def outbox(outbox_adapter: OutboxPort) -> PostgresOutbox:
    """The harness's outbox adapter, typed as the Postgres one."""
    assert isinstance(outbox_adapter, PostgresOutbox)
    return outbox_adapter


@pytest.fixture
async def db(postgres_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to this test's database, for checks behind the adapter's back."""
    conn = await asyncpg.connect(postgres_dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def second_outbox(postgres_dsn: str) -> AsyncIterator[PostgresOutbox]:
    """Another outbox on the same database, as another process would have."""
    other = PostgresOutbox(postgres_dsn)
    try:
        yield other
    finally:
        await other.close()
