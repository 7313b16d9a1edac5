"""The producer pipeline: pre-packed RESP command batches out, their replies back, in one go.

redis-py's pipeline packs every argument in Python and reads each reply under its own timer,
and its blocking pool takes a lock and a timer per checkout. The producer lays its commands
out as RESP bytes itself (``producer.py``), writes them in one go and reads the replies back.
It keeps one connection of the client's pool for itself, so back-to-back enqueues skip the
checkout; calls that overlap one in flight take a connection from the pool as before. The kept
connection is closed with the client (the pool disconnects in-use connections too).

Timeouts: ``command_timeout`` (the pool's ``socket_timeout``) bounds the wait for each next
reply, as redis-py's own reads do. One watchdog timer per pipeline checks the deadlines of the
exchanges in flight instead of a timer per exchange (a timer costs about as much as the rest
of a single enqueue's Python work); an exchange past its deadline has its socket aborted, so
its read fails at once, and it is reported and retried as a timeout.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any
from weakref import WeakKeyDictionary

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from portside.adapters.bullmq.transport.redis_internals import abort_connection, stream_writer

__all__ = ["ProducerPipeline", "producer_pipeline"]

_DRAIN_ABOVE = 4 * 1024 * 1024
"""Bytes buffered for the socket beyond which a write waits for them to drain."""


class _Watchdog:
    """Deadlines of the exchanges in flight, checked by one timer re-armed as it fires."""

    def __init__(self) -> None:
        self._deadlines: dict[AbstractConnection, float] = {}
        self._expired: set[AbstractConnection] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, conn: AbstractConnection, deadline: float) -> None:
        """Expect progress on ``conn`` by ``deadline`` (loop time); called again to move it."""
        self._deadlines[conn] = deadline
        loop = asyncio.get_running_loop()
        if self._timer is None or self._loop is not loop:
            self._loop = loop
            self._timer = loop.call_at(deadline, self._check)

    def release(self, conn: AbstractConnection) -> bool:
        """Stop watching ``conn``; whether its deadline had passed (and it was aborted)."""
        self._deadlines.pop(conn, None)
        if conn in self._expired:
            self._expired.discard(conn)
            return True
        return False

    def _check(self) -> None:
        self._timer = None
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        for conn, deadline in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[conn]
                self._expired.add(conn)
                abort_connection(conn)
        if self._deadlines:
            self._timer = loop.call_at(min(self._deadlines.values()), self._check)


class ProducerPipeline:
    """Exchanges of pre-packed commands over one client's connections (one kept for itself)."""

    def __init__(self, client: Redis) -> None:
        self._pool = client.connection_pool
        self._conn: AbstractConnection | None = None
        self._busy = False
        self._watchdog = _Watchdog()

    async def exchange(self, payload: bytes, replies: int) -> list[Any]:
        """Send ``payload`` and return its first ``replies`` replies; error replies are
        returned as ``ResponseError`` values, in place.

        A lost connection or a timeout is retried with the client's retry policy by sending
        the whole payload again, so it must be safe to repeat (adding a job with a given id
        is). Connection failures that outlast the retries are raised.
        """
        if self._busy:
            conn = await self._pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                return await self._with_retry(conn, payload, replies)
            finally:
                await self._pool.release(conn)
        self._busy = True
        try:
            if self._conn is None:
                self._conn = await self._pool.get_connection()  # type: ignore[no-untyped-call]
            return await self._with_retry(self._conn, payload, replies)
        finally:
            self._busy = False

    async def _with_retry(
        self, conn: AbstractConnection, payload: bytes, replies: int
    ) -> list[Any]:
        async def attempt() -> list[Any]:
            return await self._exchange(conn, payload, replies)

        async def failed(_: Exception) -> None:
            await conn.disconnect()

        result: list[Any] = await conn.retry.call_with_retry(attempt, failed)
        return result

    async def _exchange(self, conn: AbstractConnection, payload: bytes, count: int) -> list[Any]:
        limit: float | None = conn.socket_timeout
        watchdog = self._watchdog
        try:
            stream = stream_writer(conn)
            if conn.is_connected and stream is not None and not stream.is_closing():
                if limit is not None:
                    watchdog.watch(conn, asyncio.get_running_loop().time() + limit)
                stream.write(payload)
                if stream.transport.get_write_buffer_size() > _DRAIN_ABOVE:
                    await stream.drain()
            else:  # (re)connects first; connecting and writing have their own timeouts
                await conn.send_packed_command(payload, check_health=False)
            return await _read(conn, count, watchdog, limit)
        except BaseException as exc:
            expired = watchdog.release(conn)
            abort_connection(conn)  # a TLS shutdown with a dead peer would linger
            await conn.disconnect(nowait=True)
            if expired and isinstance(exc, Exception):
                raise RedisTimeoutError(f"Redis gave no reply for {limit} s") from None
            raise
        finally:
            watchdog.release(conn)


async def _read(
    conn: AbstractConnection, count: int, watchdog: _Watchdog, limit: float | None
) -> list[Any]:
    """``count`` replies, moving the deadline on as they arrive (checked every half limit)."""
    loop = asyncio.get_running_loop()
    renew_at = math.inf
    if limit is not None:
        now = loop.time()
        watchdog.watch(conn, now + limit)
        renew_at = now + limit / 2
    found: list[Any] = []
    for _ in range(count):
        try:
            found.append(await conn.read_response(timeout=math.inf))
        except ResponseError as exc:
            found.append(exc)
        if limit is not None and (now := loop.time()) > renew_at:
            watchdog.watch(conn, now + limit)
            renew_at = now + limit / 2
    return found


_pipelines: WeakKeyDictionary[Redis, ProducerPipeline] = WeakKeyDictionary()


def producer_pipeline(client: Redis) -> ProducerPipeline:
    """The producer pipeline of ``client`` (one per client, made on first use)."""
    found = _pipelines.get(client)
    if found is None:
        found = _pipelines.setdefault(client, ProducerPipeline(client))
    return found
