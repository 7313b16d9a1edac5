"""The producer's path to Redis: pre-packed commands out, their replies back, in one exchange.

redis-py's pipeline packs every argument in Python and reads each reply under its own timer,
and its blocking pool takes a lock and a timer per checkout. The producer lays its commands
out as RESP bytes itself (``producer.py``), writes them in one go and reads the replies under
one timeout. It keeps one connection of the client's pool for itself, so back-to-back enqueues
skip the checkout; calls that overlap one in flight take a connection from the pool as before.
The kept connection is closed with the client (the pool disconnects in-use connections too).
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

__all__ = ["Lane", "lane"]

_DRAIN_ABOVE = 4 * 1024 * 1024
"""Bytes buffered for the socket beyond which a write waits for them to drain."""


class Lane:
    """Exchanges of pre-packed commands over one client's connections."""

    def __init__(self, client: Redis) -> None:
        self._pool = client.connection_pool
        self._conn: AbstractConnection | None = None
        self._busy = False

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
                return await _with_retry(conn, payload, replies)
            finally:
                await self._pool.release(conn)
        self._busy = True
        try:
            if self._conn is None:
                self._conn = await self._pool.get_connection()  # type: ignore[no-untyped-call]
            return await _with_retry(self._conn, payload, replies)
        finally:
            self._busy = False


_lanes: WeakKeyDictionary[Redis, Lane] = WeakKeyDictionary()


def lane(client: Redis) -> Lane:
    """The lane of ``client`` (one per client, made on first use)."""
    found = _lanes.get(client)
    if found is None:
        found = _lanes.setdefault(client, Lane(client))
    return found


async def _with_retry(conn: AbstractConnection, payload: bytes, replies: int) -> list[Any]:
    async def attempt() -> list[Any]:
        return await _exchange(conn, payload, replies)

    async def failed(_: Exception) -> None:
        await conn.disconnect()

    result: list[Any] = await conn.retry.call_with_retry(attempt, failed)
    return result


async def _exchange(conn: AbstractConnection, payload: bytes, count: int) -> list[Any]:
    """One write, then ``count`` replies. ``socket_timeout`` bounds the wait for each next
    reply as redis-py's own reads do, but with one timer for the whole exchange, moved on
    as replies arrive, instead of one timer per reply."""
    stream: asyncio.StreamWriter | None = getattr(conn, "_writer", None)
    limit: float | None = conn.socket_timeout
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout_at(None if limit is None else loop.time() + limit) as deadline:
            if conn.is_connected and stream is not None and not stream.is_closing():
                stream.write(payload)
                if stream.transport.get_write_buffer_size() > _DRAIN_ABOVE:
                    await stream.drain()
            else:  # (re)connects first
                await conn.send_packed_command(payload, check_health=False)
            renew_at = math.inf if limit is None else loop.time() + limit / 2
            found: list[Any] = []
            for _ in range(count):
                try:
                    found.append(await conn.read_response(timeout=math.inf))
                except ResponseError as exc:
                    found.append(exc)
                if limit is not None and (now := loop.time()) > renew_at:
                    deadline.reschedule(now + limit)
                    renew_at = now + limit / 2
            return found
    except TimeoutError:
        await conn.disconnect(nowait=True)
        raise RedisTimeoutError(f"Redis gave no reply for {limit} s") from None
    except BaseException:
        await conn.disconnect(nowait=True)
        raise
