"""Pooled work that survives stale connections: a pool may hold connections the server ended.

A connection that is lost for good surfaces as ``BackendUnavailableError`` (see
``errors.py``); errors of the statements themselves pass through unchanged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import asyncpg.pool

from portside.adapters.postgres.errors import (
    backend_errors,
    connection_gone,
    connection_lost,
    unavailable,
)

__all__ = ["UNKNOWN_COMMIT_FIX", "acquire", "begin", "connection", "release", "run"]

_log = logging.getLogger("portside.adapters.postgres")

T = TypeVar("T")

UNKNOWN_COMMIT_FIX = (
    "the connection died while COMMIT was under way, so the transaction may or may not have "
    "committed: check for its writes before retrying (outbox events carry stable ids)"
)


async def acquire(pool: asyncpg.Pool[Any], what: str) -> asyncpg.pool.PoolConnectionProxy[Any]:
    """A pooled connection; opening one that fails raises ``BackendUnavailableError``."""
    with backend_errors(what, connecting=True):
        return await pool.acquire()


@asynccontextmanager
async def connection(
    pool: asyncpg.Pool[Any], what: str
) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy[Any]]:
    """A pooled connection for one statement (or a transaction the block opens itself).

    Unlike ``pool.fetch`` and kin, giving the connection back never raises (see ``release``):
    a write that succeeded is reported as done even if the server ended the session right
    after it. A lost connection in the block raises ``BackendUnavailableError``.
    """
    conn = await acquire(pool, what)
    try:
        with backend_errors(what):
            yield conn
    finally:
        await release(pool, conn)


@asynccontextmanager
async def begin(
    pool: asyncpg.Pool[Any], what: str = "a Postgres transaction"
) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy[Any]]:
    """A pooled connection inside a transaction that commits on success.

    A connection that turns out dead at ``BEGIN`` (nothing has run on it yet) is dropped and
    another one tried, so a database restart costs the caller nothing. A connection lost
    later, in the block or at ``COMMIT``, is reported as ``BackendUnavailableError`` with the
    asyncpg error as ``__cause__``.

    Args:
        pool: Where the connection comes from.
        what: The operation, for error messages.

    Raises:
        BackendUnavailableError: Every attempt met a dead connection, or the connection was
            lost during the block (nothing committed) or during ``COMMIT`` (outcome unknown,
            says the error's fix).
    """
    attempts = pool.get_max_size() + 1
    for attempt in range(attempts):
        conn = await acquire(pool, what)
        try:
            transaction = conn.transaction()
            try:
                await transaction.start()
            except Exception as exc:
                if not connection_lost(exc, conn):
                    raise
                _discard(conn)
                if attempt + 1 == attempts:
                    raise unavailable(exc, what) from exc
                continue
            try:
                yield conn
            except BaseException as exc:
                # Keep the caller's error. A lost connection has nothing to roll back: it is
                # dropped (it may already be detached from its proxy by the pool).
                if isinstance(exc, Exception) and connection_lost(exc, conn):
                    _discard(conn)
                    raise unavailable(exc, what) from exc
                if not connection_gone(conn):
                    with contextlib.suppress(Exception):
                        await transaction.rollback()
                raise
            await _commit(conn, transaction, what)
            return
        finally:
            await release(pool, conn)


async def _commit(conn: Any, transaction: Any, what: str) -> None:
    # Gone before COMMIT was sent means rolled back; gone during it means unknown.
    gone_before = connection_gone(conn)
    try:
        await transaction.commit()
    except Exception as exc:
        if not connection_lost(exc, conn):
            raise
        if gone_before:
            raise unavailable(exc, what) from exc
        raise unavailable(exc, f"COMMIT of {what}", fix=UNKNOWN_COMMIT_FIX) from exc


async def release(pool: asyncpg.Pool[Any], conn: asyncpg.pool.PoolConnectionProxy[Any]) -> None:
    """Give ``conn`` back to ``pool``; a failure to do so never replaces the work's outcome.

    asyncpg resets a connection as the pool takes it back (``RESET ALL`` and friends) and
    raises when that fails, after terminating the connection itself. It fails when the server
    ended the session after the work was done: ``pg_terminate_backend`` right after
    ``COMMIT``, for example, whose FATAL message leaves asyncpg's protocol waiting for a
    ReadyForQuery that never comes (the reset then meets ``InternalClientError: cannot switch
    to state 15; another operation (2) is in progress``, or the closed socket). Raised from a
    ``finally``, that error replaced the caller's result: a unit of work that had committed
    surfaced as a raw asyncpg error, and one that had failed lost its
    ``BackendUnavailableError``. The work's outcome is what the caller must see, and the pool
    is already rid of the connection, so the error is logged and dropped.
    """
    try:
        await pool.release(conn)
    except Exception as exc:
        _log.debug("a pooled Postgres connection was dropped on release: %r", exc)


def _discard(conn: Any) -> None:
    """Never hand ``conn`` out again (it may already be detached if the pool saw it die)."""
    with contextlib.suppress(Exception):
        conn.terminate()


async def run(
    pool: asyncpg.Pool[Any], work: Callable[[Any], Awaitable[T]], what: str = "a Postgres query"
) -> T:
    """Run one read-only or idempotent ``work(conn)``, retrying it on a dead connection.

    Raises:
        BackendUnavailableError: Every attempt met a dead connection.
    """
    attempts = pool.get_max_size() + 1
    for attempt in range(attempts):
        conn = await acquire(pool, what)
        try:
            return await work(conn)
        except Exception as exc:
            if not connection_lost(exc, conn):
                raise
            _discard(conn)
            if attempt + 1 == attempts:
                raise unavailable(exc, what) from exc
        finally:
            await release(pool, conn)
    raise AssertionError("unreachable")  # pragma: no cover
