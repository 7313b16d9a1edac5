"""A Postgres session ended under the outbox surfaces as BackendUnavailableError, never as a
raw asyncpg error; SQL errors stay what they are (O1, O5; issue 10)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from portside.adapters.postgres import PostgresOutbox
from portside.adapters.postgres.errors import RETRY_FIX, connection_gone
from portside.ports import BackendUnavailableError, TransientError
from portside.testing import wait_for

from .support import DEADLINE, wait_until

pytestmark = pytest.mark.integration

ASYNCPG_LOSS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)


async def _terminate(db: asyncpg.Connection, pid: int) -> None:
    """End backend ``pid`` as pg_terminate_backend does, and wait until it is gone."""
    assert await db.fetchval("SELECT pg_terminate_backend($1)", pid)

    async def gone() -> bool:
        return not await db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)

    await wait_until(gone, f"backend {pid} to exit")


async def _stored(db: asyncpg.Connection) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM portside_outbox_events")
    return count


def _check_mapped(error: BaseException, what: str) -> None:
    assert isinstance(error, BackendUnavailableError)
    assert isinstance(error, TransientError)
    assert isinstance(error.__cause__, ASYNCPG_LOSS), repr(error.__cause__)
    assert what in str(error)
    assert error.fix


@pytest.mark.parametrize("noticed", [True, False], ids=["client-noticed", "client-unaware"])
async def test_o5_append_on_a_terminated_session_is_backend_unavailable(
    outbox: PostgresOutbox, db: asyncpg.Connection, noticed: bool
) -> None:
    """O5/issue 10: pg_terminate_backend between two appends of one transaction: the second
    append raises BackendUnavailableError (asyncpg's error as __cause__), nothing commits, and
    the next transaction works."""

    async def append_across_the_termination() -> None:
        async with outbox.transaction() as tx:
            await outbox.append(tx, "run", "step", {"i": 0})
            await _terminate(db, tx.get_server_pid())
            if noticed:
                await wait_for(
                    lambda: connection_gone(tx), timeout=DEADLINE, message="asyncpg to notice"
                )
            await outbox.append(tx, "run", "step", {"i": 1})

    with pytest.raises(BackendUnavailableError) as raised:
        await append_across_the_termination()
    _check_mapped(raised.value, "outbox append")
    assert raised.value.fix == RETRY_FIX
    assert await _stored(db) == 0
    async with outbox.transaction() as tx:
        event = await outbox.append(tx, "run", "step", {"i": 2})
    assert (event.seq, await _stored(db)) == (1, 1)


async def test_o5_session_terminated_during_a_statement_of_the_caller(
    outbox: PostgresOutbox, db: asyncpg.Connection
) -> None:
    """Issue 10: the caller's own statement in ``outbox.transaction()`` dies with the session:
    the block raises BackendUnavailableError, and the event appended before never commits."""

    async def sleeping(pid: int) -> bool:
        return bool(
            await db.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep%' "
                "AND state = 'active'",
                pid,
            )
        )

    async def terminate_during_a_statement() -> None:
        async with outbox.transaction() as tx:
            await outbox.append(tx, "run", "step", {})
            pid = tx.get_server_pid()
            running = asyncio.ensure_future(tx.execute("SELECT pg_sleep(60)"))
            await wait_until(lambda: sleeping(pid), "the caller's statement to run")
            await _terminate(db, pid)
            await running

    with pytest.raises(BackendUnavailableError) as raised:
        await terminate_during_a_statement()
    _check_mapped(raised.value, "outbox transaction")
    assert await _stored(db) == 0


async def test_o5_session_terminated_before_commit_rolls_back_and_says_so(
    outbox: PostgresOutbox, db: asyncpg.Connection
) -> None:
    """Issue 10: the session dies after the last append and before COMMIT was sent: the block
    exit raises BackendUnavailableError whose fix says the work did not happen."""

    async def terminate_before_commit() -> None:
        async with outbox.transaction() as tx:
            await outbox.append(tx, "run", "step", {})
            await _terminate(db, tx.get_server_pid())
            await wait_for(
                lambda: connection_gone(tx), timeout=DEADLINE, message="asyncpg to notice"
            )

    with pytest.raises(BackendUnavailableError) as raised:
        await terminate_before_commit()
    _check_mapped(raised.value, "outbox transaction")
    assert raised.value.fix == RETRY_FIX
    assert await _stored(db) == 0


async def test_o5_append_on_your_own_terminated_connection(
    outbox: PostgresOutbox, postgres_dsn: str, db: asyncpg.Connection
) -> None:
    """Issue 10: the same mapping for a plain asyncpg connection of the caller."""
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute("BEGIN")
        await outbox.append(conn, "run", "step", {})
        await _terminate(db, conn.get_server_pid())
        with pytest.raises(BackendUnavailableError) as raised:
            await outbox.append(conn, "run", "step", {})
    finally:
        conn.terminate()
    _check_mapped(raised.value, "outbox append")
    assert await _stored(db) == 0


async def test_o1_sql_errors_are_never_mapped(
    outbox: PostgresOutbox, db: asyncpg.Connection
) -> None:
    """Issue 10: a constraint violation or a failing expression is the caller's bug, not an
    outage: it keeps its asyncpg type and the transaction rolls back."""

    async def insert_a_duplicate_seq() -> None:
        async with outbox.transaction() as tx:
            await outbox.append(tx, "run", "step", {})
            await tx.execute(
                "INSERT INTO portside_outbox_events (stream, seq, type, payload) "
                "VALUES ('run', 1, 'dup', '{}')"
            )

    async def divide_by_zero() -> None:
        async with outbox.transaction() as tx:
            await outbox.append(tx, "run", "step", {})
            await tx.fetchval("SELECT 1 / 0")

    with pytest.raises(asyncpg.UniqueViolationError):
        await insert_a_duplicate_seq()
    with pytest.raises(asyncpg.DivisionByZeroError):
        await divide_by_zero()
    assert await _stored(db) == 0


@pytest.fixture
async def unreachable() -> AsyncIterator[PostgresOutbox]:
    """An outbox whose DSN points at a port nobody listens on."""
    outbox = PostgresOutbox("postgresql://postgres@127.0.0.1:1/nowhere", connect_timeout=0.5)
    try:
        yield outbox
    finally:
        await outbox.close()


async def test_o5_an_unreachable_database_is_backend_unavailable(
    unreachable: PostgresOutbox,
) -> None:
    """Issue 10: no server at the DSN: reads and transactions fail with BackendUnavailableError,
    the connection error kept as __cause__."""
    with pytest.raises(BackendUnavailableError) as raised:
        await unreachable.pending()
    _check_mapped(raised.value, "outbox connection pool")
    with pytest.raises(BackendUnavailableError):
        async with unreachable.transaction():
            pass
