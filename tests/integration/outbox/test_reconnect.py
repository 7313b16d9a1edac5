"""Losing connections: reconnect with back-off and a catch-up scan, nothing lost (O5)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from portside.adapters.postgres import PostgresOutbox
from portside.ports import BackendUnavailableError

from .support import DEADLINE, Deliveries, append_many

pytestmark = pytest.mark.integration


class LossWatch:
    """An ``on_error`` callback that lets a test wait for the next lost connection."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self._lost = asyncio.Event()

    def __call__(self, error: BaseException) -> None:
        self.errors.append(error)
        if isinstance(error, ConnectionError):
            self._lost.set()

    async def wait(self) -> None:
        try:
            await asyncio.wait_for(self._lost.wait(), DEADLINE)
        except TimeoutError:
            raise AssertionError(
                f"on_error was not told about the lost connection: {self.errors}"
            ) from None
        self._lost.clear()


@pytest.fixture
async def slow_reconnect_outbox(postgres_dsn: str) -> AsyncIterator[PostgresOutbox]:
    """An outbox whose first reconnect waits 0.5-1 s, long enough to commit in between."""
    outbox = PostgresOutbox(postgres_dsn, reconnect_initial=1.0, reconnect_max=2.0)
    try:
        yield outbox
    finally:
        await outbox.close()


async def test_o5_killed_listener_backend_loses_nothing_committed_meanwhile(
    slow_reconnect_outbox: PostgresOutbox, db: asyncpg.Connection
) -> None:
    """O5: pg_terminate_backend on the LISTEN connection; commits made while it is down are
    delivered after the reconnect by the catch-up scan."""
    outbox = slow_reconnect_outbox
    deliveries = Deliveries()
    outbox.add_handler(deliveries.handler())
    watch = LossWatch()
    await outbox.start(on_error=watch)
    await append_many(outbox, "run", 2)
    await deliveries.wait_for(2)
    await outbox.wait_idle()

    pid = outbox.listener_pid
    assert pid is not None
    assert await db.fetchval("SELECT pg_terminate_backend($1)", pid)
    await watch.wait()
    await append_many(outbox, "run", 3)
    await append_many(outbox, "other", 2)
    # Still disconnected after those commits: their NOTIFYs reached no one.
    assert outbox.listener_pid is None

    await deliveries.wait_for(7)
    assert deliveries.seqs("run") == [1, 2, 3, 4, 5]
    assert deliveries.seqs("other") == [1, 2]
    assert outbox.listener_pid not in (None, pid)


async def test_o5_every_backend_killed_publisher_recovers(
    outbox: PostgresOutbox, db: asyncpg.Connection
) -> None:
    """O5: the pool's connections die too; the next commits are still delivered."""
    deliveries = Deliveries()
    outbox.add_handler(deliveries.handler())
    watch = LossWatch()
    await outbox.start(on_error=watch)
    await append_many(outbox, "run", 1)
    await deliveries.wait_for(1)
    await outbox.wait_idle()  # the batch has committed: killing it now is not a crash

    killed = await db.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    assert killed >= 2  # the LISTEN connection and at least one pooled connection
    await watch.wait()
    for _ in range(3):
        try:
            await append_many(outbox, "run", 2)
            break
        except BackendUnavailableError:
            continue  # a pooled connection killed above; the pool replaces it
    await deliveries.wait_for(3)
    assert deliveries.seqs("run") == [1, 2, 3]


async def test_o5_start_against_an_unreachable_database_fails_cleanly() -> None:
    """O5: start() reports each failed attempt, then gives up with a clear error."""
    outbox = PostgresOutbox(
        "postgresql://postgres@127.0.0.1:1/nowhere", connect_timeout=0.5, reconnect_initial=0.05
    )
    errors: list[BaseException] = []
    try:
        with pytest.raises(BackendUnavailableError, match=r"not established within 0\.5 s"):
            await outbox.start(on_error=errors.append)
        assert errors, "on_error heard nothing about the failed connection attempts"
        assert all(isinstance(error, OSError) for error in errors)
        assert outbox.listener_pid is None
    finally:
        await outbox.close()
