"""S3: the outbox over Postgres TLS (``sslmode=verify-full``) with a client certificate."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from portside.adapters.postgres import PostgresOutbox
from portside.adapters.postgres.migrations import migrate
from portside.ports import ConfigurationError, OutboxEvent
from tests.availability.conftest import TlsPostgres


async def test_s3_the_outbox_runs_over_tls_with_a_client_certificate(
    tls_postgres: TlsPostgres,
) -> None:
    """S3: migrations, appends, the publisher's LISTEN connection and a subscription all run
    over `sslmode=verify-full` with a client certificate, and no TCP session of the server
    is without TLS."""
    dsn = tls_postgres.dsn()
    await migrate(dsn)
    outbox = PostgresOutbox(dsn, connect_timeout=5.0)
    delivered: list[OutboxEvent] = []

    async def handler(event: OutboxEvent) -> None:
        delivered.append(event)

    outbox.add_handler(handler)
    await outbox.start()
    try:
        async with outbox.transaction() as tx:
            for n in range(5):
                await outbox.append(tx, "run-1", "step", {"n": n})
        await outbox.drain_once("run-1")
        assert [event.payload["n"] for event in delivered] == [0, 1, 2, 3, 4]
        replayed = [event async for event in _first(outbox.subscribe("run-1"), 5)]
        assert [event.seq for event in replayed] == [1, 2, 3, 4, 5]
        conn = await asyncpg.connect(dsn)
        try:
            plain = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
                "WHERE backend_type = 'client backend' AND client_addr IS NOT NULL AND NOT ssl"
            )
            sessions = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
                "WHERE backend_type = 'client backend' AND ssl"
            )
        finally:
            await conn.close()
        assert plain == 0
        assert sessions >= 2  # the outbox's pool and its LISTEN connection, and this one
    finally:
        await outbox.close()


async def _first(events: AsyncIterator[OutboxEvent], count: int) -> AsyncIterator[OutboxEvent]:
    taken = 0
    async for event in events:
        yield event
        taken += 1
        if taken == count:
            return


async def test_s3_a_connection_without_tls_is_refused_with_a_clear_error(
    tls_postgres: TlsPostgres,
) -> None:
    """S3: with `sslmode=disable` the server refuses the session; the outbox raises a
    ConfigurationError naming the refusal and the `dsn` field, at once (no retry)."""
    outbox = PostgresOutbox(tls_postgres.dsn(sslmode="disable"), connect_timeout=5.0)
    try:
        with pytest.raises(ConfigurationError, match="pg_hba") as caught:
            async with outbox.transaction() as tx:
                await outbox.append(tx, "run-1", "step", {})
        assert caught.value.field == "dsn"
    finally:
        await outbox.close()
