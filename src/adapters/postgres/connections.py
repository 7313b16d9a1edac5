"""Pooled work that survives stale connections: a pool may hold connections the server ended."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import asyncpg.exceptions
import asyncpg.pool

from portside.ports import BackendUnavailableError

__all__ = ["STALE_CONNECTION_ERRORS", "begin", "run"]

T = TypeVar("T")

STALE_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    # Raised when the server's goodbye on an idle pooled connection is still unprocessed.
    asyncpg.exceptions.InternalClientError,
)
"""Errors meaning "this connection is gone", as opposed to errors of the statement itself."""


def _unavailable(exc: BaseException) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"Postgres connections keep failing ({type(exc).__name__}: {exc})",
        fix="check that the database at the outbox DSN is up and reachable",
    )


@asynccontextmanager
async def begin(pool: asyncpg.Pool[Any]) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy[Any]]:
    """A pooled connection inside a transaction that commits on success.

    A connection that turns out dead at ``BEGIN`` (nothing has run on it yet) is dropped and
    another one tried, so a database restart costs the caller nothing.

    Raises:
        BackendUnavailableError: Every attempt met a dead connection.
    """
    attempts = pool.get_max_size() + 1
    for attempt in range(attempts):
        async with pool.acquire() as conn:
            transaction = conn.transaction()
            try:
                await transaction.start()
            except STALE_CONNECTION_ERRORS as exc:
                _discard(conn)
                if attempt + 1 == attempts:
                    raise _unavailable(exc) from exc
                continue
            try:
                yield conn
            except BaseException:
                # Keep the caller's error. A connection that died has already been detached
                # from its proxy by the pool, and then there is nothing to roll back.
                with contextlib.suppress(Exception):
                    if not conn.is_closed():
                        await transaction.rollback()
                raise
            await transaction.commit()
            return


def _discard(conn: Any) -> None:
    """Never hand ``conn`` out again (it may already be detached if the pool saw it die)."""
    with contextlib.suppress(Exception):
        conn.terminate()


async def run(pool: asyncpg.Pool[Any], work: Callable[[Any], Awaitable[T]]) -> T:
    """Run one read-only or idempotent ``work(conn)``, retrying it on a dead connection.

    Raises:
        BackendUnavailableError: Every attempt met a dead connection.
    """
    attempts = pool.get_max_size() + 1
    for attempt in range(attempts):
        async with pool.acquire() as conn:
            try:
                return await work(conn)
            except STALE_CONNECTION_ERRORS as exc:
                _discard(conn)
                if attempt + 1 == attempts:
                    raise _unavailable(exc) from exc
    raise AssertionError("unreachable")  # pragma: no cover
