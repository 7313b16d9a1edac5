"""A dedicated Redis connection for one blocking command at a time (BZPOPMIN, XREAD)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio.connection import AbstractConnection, ConnectionPool

from portside.adapters.bullmq.transport.errors import CONNECTION_ERRORS
from portside.adapters.bullmq.transport.redis_internals import abort_connection

__all__ = ["BlockingConnection"]


class BlockingConnection:
    """A dedicated connection for one blocking command at a time, reconnected on demand."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._conn: AbstractConnection | None = None

    async def call(self, *args: Any, reply_timeout: float) -> Any:
        """Run one command, waiting at most ``reply_timeout`` seconds for its reply.

        A timeout or a failure drops the connection; the next call reconnects.
        """
        conn = self._conn or self._pool.make_connection()  # type: ignore[no-untyped-call]
        self._conn = conn
        try:
            await conn.send_command(*args, check_health=False)
            async with asyncio.timeout(reply_timeout):
                return await conn.read_response()
        except BaseException:
            abort_connection(conn)  # a TLS shutdown with a dead peer would linger
            with contextlib.suppress(*CONNECTION_ERRORS):
                await conn.disconnect(nowait=True)
            raise

    async def run(self, step: Callable[[AbstractConnection], Awaitable[Any]]) -> Any:
        """Run ``step`` with the connected connection (for short pipelined exchanges)."""
        conn = self._conn or self._pool.make_connection()  # type: ignore[no-untyped-call]
        self._conn = conn
        try:
            await conn.connect()
            return await step(conn)
        except BaseException:
            abort_connection(conn)  # a TLS shutdown with a dead peer would linger
            with contextlib.suppress(*CONNECTION_ERRORS):
                await conn.disconnect(nowait=True)
            raise

    def abort(self) -> None:
        """Drop the socket at once; a command waiting for its reply then fails."""
        if self._conn is not None:
            abort_connection(self._conn)

    async def close(self) -> None:
        """Disconnect, waiting (at most the connect timeout) for the socket to close: a TLS
        connection left closing would outlive its event loop."""
        if self._conn is not None:
            with contextlib.suppress(*CONNECTION_ERRORS):
                await self._conn.disconnect()
