"""The one place that reads redis-py's private attributes, each with a fallback if it is gone.

redis-py offers no public way to reach a connection's ``asyncio.StreamWriter`` (the adapter
writes pre-packed command bytes on it directly, and aborts its transport when a server stops
answering) or to list a pool's connections (``close()`` aborts them all when closing hangs).
Those reads live here and nowhere else:

- ``AbstractConnection._writer``: the stream writer of a connected connection;
- ``AbstractConnection._close()``: forget the socket without waiting;
- ``ConnectionPool._available_connections`` and ``_in_use_connections``;
- ``AbstractConnection.connect_check_health(check_health[, retry_socket_connect])``: the one
  method every way of (re)connecting goes through (``connect()``, a command sent on a dropped
  connection, the pool's ``ensure_connection``). ``ReconnectingConnection`` overrides it so
  that the Sentinel and Cluster connections choose their server again on every connect.
  Checked against redis-py 8.2.0. This one has no fallback: a redis-py that renames it makes
  ``test_q10_installed_redis_py_has_every_private_attribute_the_seam_reads`` fail.

When a redis-py release renames or drops one of them, each function here falls back to
public calls (``send_packed_command``, ``disconnect(nowait=True)``,
``pool.disconnect(inuse_connections=True)``): slower or less immediate, never wrong.
``tests/unit/bullmq/test_redis_internals.py`` checks both paths, and that the redis-py
version installed still has every attribute (so an upgrade that loses one fails a test
instead of silently taking the slower path).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Coroutine
from typing import Any

from redis.asyncio.connection import AbstractConnection, Connection, ConnectionPool

__all__ = [
    "HOOK_PARAMETERS",
    "ReconnectingConnection",
    "abort_connection",
    "abort_pool",
    "pool_connections",
    "stream_writer",
]

_closing: set[asyncio.Task[Any]] = set()
"""Fallback disconnects in flight (kept referenced until they end)."""


def stream_writer(conn: AbstractConnection) -> asyncio.StreamWriter | None:
    """The stream writer of connected ``conn``; ``None`` when it is not connected or when
    redis-py keeps it elsewhere (then write through ``conn.send_packed_command``)."""
    writer = getattr(conn, "_writer", None)
    return writer if isinstance(writer, asyncio.StreamWriter) else None


def pool_connections(pool: ConnectionPool) -> list[AbstractConnection] | None:
    """Every connection of ``pool``, idle and in use; ``None`` if redis-py keeps them
    elsewhere."""
    idle = getattr(pool, "_available_connections", None)
    busy = getattr(pool, "_in_use_connections", None)
    if idle is None or busy is None:
        return None
    return [*idle, *busy]


def abort_connection(conn: AbstractConnection) -> None:
    """Drop ``conn``'s socket at once, unsent data included; a pending read then fails.

    For a server that stopped answering, where an orderly disconnect could wait. Without
    access to the socket, closes it through ``disconnect(nowait=True)`` in a task (which
    also ends a pending read, on the loop's next turns).
    """
    writer = stream_writer(conn)
    if writer is not None:
        writer.transport.abort()
        return
    _soon(conn.disconnect(nowait=True))


def abort_pool(pool: ConnectionPool) -> None:
    """Abort every connection of ``pool``, idle and in use, and mark them disconnected."""
    connections = pool_connections(pool)
    if connections is None:
        _soon(pool.disconnect(inuse_connections=True))
        return
    for conn in connections:
        abort_connection(conn)
        _forget_socket(conn)


def _forget_socket(conn: AbstractConnection) -> None:
    """Mark ``conn`` disconnected without waiting (the next command reconnects)."""
    close = getattr(conn, "_close", None)
    if callable(close):
        close()
    else:
        _soon(conn.disconnect(nowait=True))


def _soon(closing: Coroutine[Any, Any, None]) -> None:
    """Run ``closing`` in a task of the running loop, its failure ignored (the socket is being
    dropped because it is already failing)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        closing.close()
        return

    async def quietly() -> None:
        with contextlib.suppress(Exception):
            await closing

    task = loop.create_task(quietly())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


HOOK_PARAMETERS: tuple[str, ...] = tuple(
    name for name in inspect.signature(Connection.connect_check_health).parameters if name != "self"
)
"""What the installed redis-py's ``connect_check_health`` takes: ``check_health`` and, from
redis-py 7 on, ``retry_socket_connect`` (6.2 has only the first)."""


class ReconnectingConnection(Connection):
    """A TCP connection that chooses its server afresh on every (re)connect.

    Subclasses implement ``open``, which picks an address and connects there with
    ``open_at``. redis-py (checked against 8.2.0, and 6.2, the lowest version declared)
    funnels every connect through the private ``connect_check_health``; this class is the
    only place that overrides it. Its options are passed on as a dict, keeping only those
    the installed redis-py knows (``HOOK_PARAMETERS``).
    """

    async def open(self, options: dict[str, Any]) -> None:
        """Choose the server and connect to it (through ``open_at`` with ``options``)."""
        raise NotImplementedError

    async def open_at(self, address: tuple[str, int], options: dict[str, Any]) -> None:
        """Connect to ``address`` as redis-py's own connect would (handshake, AUTH, ...)."""
        self.host, self.port = address
        known = {name: value for name, value in options.items() if name in HOOK_PARAMETERS}
        await Connection.connect_check_health(self, **known)

    async def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        if self.is_connected:
            return
        await self.open({**dict(zip(HOOK_PARAMETERS, args, strict=False)), **kwargs})
