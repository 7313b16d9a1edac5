"""Pooled sessions terminated under concurrent appends: every unit of work either commits
(and is delivered) or raises BackendUnavailableError; no asyncpg error escapes (O1, O5).

Why asyncpg said ``cannot switch to state 12; another operation (2) is in progress``: no two
operations of the adapter met on one connection. ``pg_terminate_backend`` makes the server
send a FATAL ErrorResponse and close the socket. When that message reaches a connection that
is idle (in the pool, or between two statements of a transaction), asyncpg has no handler for
an ErrorResponse in its idle state: it parks the protocol in ``ERROR_CONSUME`` (state 2) to
wait for a ReadyForQuery that never comes. Until it reads the socket's end of file, the
connection still looks open, and the next statement (an append's ``fetchrow``: state 12) is
refused with that ``InternalClientError``; the pool's reset on release met it too, and its
error, raised from ``begin()``'s ``finally``, replaced the unit of work's outcome (fixed in
``connections.release``). The last test here reproduces the first part deterministically by
holding the end of file back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from portside.adapters.postgres import PostgresOutbox
from portside.adapters.postgres.errors import connection_gone
from portside.ports import BackendUnavailableError, OutboxEvent

from .support import DEADLINE, Deliveries, wait_until

pytestmark = pytest.mark.integration

APPENDERS = 20
UNITS_PER_APPENDER = 25
TERMINATE_EVERY = 10
"""Units of work committed (across appenders) between two rounds of terminations."""


@dataclass
class Outcomes:
    """What each unit of work ended with, by token of its events."""

    committed: set[str] = field(default_factory=set)
    unavailable: set[str] = field(default_factory=set)
    causes: dict[str, int] = field(default_factory=dict)
    unexpected: list[BaseException] = field(default_factory=list)
    commits: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)


async def _appender(outbox: PostgresOutbox, number: int, outcomes: Outcomes) -> None:
    serial = itertools.count()
    for unit in range(UNITS_PER_APPENDER):
        tokens = [f"a{number}-u{unit}-e{next(serial)}" for _ in range(1 + unit % 3)]
        try:
            async with outbox.transaction() as tx:
                for token in tokens:
                    await outbox.append(tx, f"stream-{number % 4}", "load", {"token": token})
        except BackendUnavailableError as exc:
            outcomes.unavailable.update(tokens)
            cause = type(exc.__cause__).__name__
            outcomes.causes[cause] = outcomes.causes.get(cause, 0) + 1
            continue
        except Exception as exc:  # anything else is the bug this test is about
            outcomes.unexpected.append(exc)
            continue
        outcomes.committed.update(tokens)
        outcomes.commits += 1
        if outcomes.commits % TERMINATE_EVERY == 0:
            outcomes.progress.set()


async def _terminate_pooled_sessions(db: asyncpg.Connection) -> int:
    """End every other session of this test's database (the pool's and the LISTEN one)."""
    terminated: int = await db.fetchval(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    return terminated


async def _terminator(db: asyncpg.Connection, outcomes: Outcomes, rounds: list[int]) -> None:
    while True:
        await outcomes.progress.wait()
        outcomes.progress.clear()
        rounds.append(await _terminate_pooled_sessions(db))


def _tokens(events: list[OutboxEvent]) -> set[str]:
    return {str(event.payload["token"]) for event in events}


@pytest.fixture
async def started(outbox: PostgresOutbox) -> AsyncIterator[Deliveries]:
    """The outbox's publisher, delivering into a recorder."""
    deliveries = Deliveries()
    outbox.add_handler(deliveries.handler())
    await outbox.start()
    yield deliveries
    await outbox.stop()


async def test_o5_terminated_pooled_sessions_under_20_appenders_lose_or_leak_nothing(
    outbox: PostgresOutbox, db: asyncpg.Connection, started: Deliveries
) -> None:
    """O5, O1: 20 concurrent appenders while every session of the database is terminated
    again and again: each unit of work committed (and its events are delivered) or raised
    BackendUnavailableError; none raised anything else (a raw asyncpg error above all)."""
    outcomes = Outcomes()
    rounds: list[int] = []
    terminator = asyncio.create_task(_terminator(db, outcomes, rounds))
    try:
        async with asyncio.timeout(120):
            await asyncio.gather(*(_appender(outbox, n, outcomes) for n in range(APPENDERS)))
    finally:
        terminator.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await terminator

    assert not outcomes.unexpected, [repr(exc) for exc in outcomes.unexpected[:5]]
    assert sum(rounds) > 0, "no session was terminated: the test proved nothing"
    assert outcomes.committed, "nothing committed"
    assert outcomes.unavailable, "no unit of work met a terminated session"

    stored = {
        str(row["token"])
        for row in await db.fetch("SELECT payload->>'token' AS token FROM portside_outbox_events")
    }
    assert outcomes.committed <= stored, "a unit of work that returned did not commit"
    # A unit that failed at COMMIT may have committed (its fix says so); every stored event,
    # confirmed or not, is delivered.
    assert stored <= outcomes.committed | outcomes.unavailable

    async def delivered_everything() -> bool:
        await outbox.drain_once()
        return stored <= _tokens(started.events)

    await wait_until(delivered_everything, "every stored event to be delivered", DEADLINE * 3)
    print(  # the figures for the report (pytest -s)
        f"terminated {sum(rounds)} sessions in {len(rounds)} rounds; "
        f"{len(outcomes.committed)} events committed, {len(outcomes.unavailable)} in units "
        f"that raised BackendUnavailableError (causes: {outcomes.causes})"
    )


class FinHoldingProxy:
    """A TCP proxy that passes every byte on but, once the server closes a connection, keeps
    the client's side open until ``release()``: the server's last message arrives, its end of
    file does not (as when the two reach the client in separate reads)."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self.server_closed = asyncio.Event()
        self._release = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def release(self) -> None:
        self._release.set()

    async def close(self) -> None:
        self.release()
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self._target)
        upstream = asyncio.create_task(self._pipe(client_r, server_w))
        self._tasks.add(upstream)
        try:
            while data := await server_r.read(65536):
                client_w.write(data)
                await client_w.drain()
            self.server_closed.set()
            await self._release.wait()
        finally:
            client_w.close()
            server_w.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()


Proxied = tuple[PostgresOutbox, FinHoldingProxy]


@pytest.fixture
async def proxied_outbox(postgres_dsn: str) -> AsyncIterator[Proxied]:
    """An outbox with one pooled connection, through a ``FinHoldingProxy``."""
    parts = urlsplit(postgres_dsn)
    assert parts.hostname is not None
    assert parts.port is not None
    proxy = FinHoldingProxy(parts.hostname, parts.port)
    port = await proxy.start()
    user = f"{parts.username}@" if parts.username else ""
    dsn = urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))
    outbox = PostgresOutbox(dsn, pool_min_size=1, pool_max_size=1)
    try:
        yield outbox, proxy
    finally:
        proxy.release()
        await outbox.close()
        await proxy.close()


async def test_o5_a_termination_notice_read_before_the_socket_closes(
    proxied_outbox: Proxied, db: asyncpg.Connection
) -> None:
    """O5: the session is terminated between two appends and asyncpg reads the FATAL message
    but not yet the end of file: the next append meets asyncpg's "another operation (2) is in
    progress" (its protocol waits for a ReadyForQuery that never comes, no other operation
    runs) and raises BackendUnavailableError; nothing commits; the pool serves the next unit
    of work on a new connection."""
    outbox, proxy = proxied_outbox

    async def append_after_the_notice() -> None:
        async with outbox.transaction() as tx:
            await outbox.append(tx, "run", "step", {"i": 0})
            pid = tx.get_server_pid()
            assert await db.fetchval("SELECT pg_terminate_backend($1)", pid)
            await proxy.server_closed.wait()
            await wait_until(lambda: _gone_from_server(db, pid), "the terminated backend to exit")
            assert not connection_gone(tx), "asyncpg saw the end of file the proxy holds back"
            await outbox.append(tx, "run", "step", {"i": 1})

    with pytest.raises(BackendUnavailableError) as raised:
        await append_after_the_notice()
    cause = raised.value.__cause__
    assert isinstance(cause, asyncpg.exceptions.InternalClientError), repr(cause)
    assert "another operation (2)" in str(cause)
    assert not await db.fetchval("SELECT count(*) FROM portside_outbox_events")

    proxy.release()
    async with outbox.transaction() as tx:
        event = await outbox.append(tx, "run", "step", {"i": 2})
    assert event.seq == 1


async def _gone_from_server(db: asyncpg.Connection, pid: int) -> bool:
    count: int = await db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)
    return count == 0
