"""Q10: the seam over redis-py's private attributes (``redis_internals``) works with them
present, falls back to public calls when a redis-py release drops them, and the installed
redis-py still has every one (so an upgrade that loses one fails here, not in production).

No network: connections are given one end of a ``socket.socketpair()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio.connection import Connection, ConnectionPool

from portside.adapters.bullmq.transport import redis_internals
from portside.adapters.bullmq.transport.redis_internals import (
    abort_connection,
    abort_pool,
    pool_connections,
    stream_writer,
)
from portside.testing.waiting import wait_for


@dataclass
class Pair:
    """A redis-py connection wired, as redis-py wires it on connect, to one end of a pair."""

    conn: Connection
    writer: asyncio.StreamWriter
    peer: asyncio.StreamReader


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours)
    peer, peer_writer = await asyncio.open_connection(sock=theirs)
    conn = Connection()
    conn._reader, conn._writer = reader, writer  # what Connection.connect() sets
    yield Pair(conn, writer, peer)
    conn._reader = conn._writer = None
    for stream in (writer, peer_writer):  # closed sockets, not ResourceWarnings at a later GC
        stream.close()
        with contextlib.suppress(OSError):
            await stream.wait_closed()


@dataclass
class PublicOnlyConnection:
    """A connection of a redis-py that keeps its socket where the seam cannot see it."""

    disconnects: list[bool] = field(default_factory=list)

    async def disconnect(self, nowait: bool = False) -> None:
        self.disconnects.append(nowait)


@dataclass
class PublicOnlyPool:
    """A pool of a redis-py that keeps its connections where the seam cannot see them."""

    disconnects: list[bool] = field(default_factory=list)

    async def disconnect(self, inuse_connections: bool = True) -> None:
        self.disconnects.append(inuse_connections)


def test_q10_installed_redis_py_has_every_private_attribute_the_seam_reads() -> None:
    """Q10: the fast paths are the ones in use with the redis-py version installed."""
    conn = Connection()
    pool = ConnectionPool()
    assert hasattr(conn, "_writer")
    assert callable(getattr(conn, "_close", None))
    assert isinstance(vars(pool).get("_available_connections"), list)
    assert isinstance(vars(pool).get("_in_use_connections"), set)
    hook = inspect.signature(Connection.connect_check_health)
    assert "check_health" in hook.parameters
    assert redis_internals.HOOK_PARAMETERS[0] == "check_health"


async def test_q10_stream_writer_is_the_connections_writer_when_present(pair: Pair) -> None:
    """Q10: a connected connection's writer is found; an unconnected one has none."""
    assert stream_writer(pair.conn) is pair.writer
    assert stream_writer(Connection()) is None


async def test_q10_stream_writer_is_none_when_redis_py_keeps_it_elsewhere(pair: Pair) -> None:
    """Q10: without ``_writer`` (or with something else under that name) callers get None
    and write through redis-py's public ``send_packed_command``."""
    del pair.conn._writer
    assert stream_writer(pair.conn) is None
    pair.conn._writer = object()  # type: ignore[assignment]
    assert stream_writer(pair.conn) is None


async def test_q10_abort_connection_drops_the_socket_at_once(pair: Pair) -> None:
    """Q10: the socket closes without a round trip; the peer sees end of file."""
    abort_connection(pair.conn)
    assert pair.writer.transport.is_closing()
    async with asyncio.timeout(5):
        assert await pair.peer.read() == b""


async def test_q10_abort_connection_falls_back_to_disconnect_nowait() -> None:
    """Q10: without a stream writer, the connection is closed by ``disconnect(nowait=True)``."""
    conn = PublicOnlyConnection()
    abort_connection(conn)  # type: ignore[arg-type]
    await wait_for(lambda: conn.disconnects == [True], message="disconnect(nowait=True)")


async def test_q10_abort_pool_aborts_idle_and_busy_connections(pair: Pair) -> None:
    """Q10: every pooled connection, idle or handed out, is aborted and marked disconnected."""
    pool = ConnectionPool()
    idle = Connection()
    pool._available_connections.append(idle)
    pool._in_use_connections.add(pair.conn)
    assert set(pool_connections(pool) or ()) == {idle, pair.conn}
    abort_pool(pool)
    assert pair.writer.transport.is_closing()
    assert not pair.conn.is_connected
    async with asyncio.timeout(5):
        assert await pair.peer.read() == b""


async def test_q10_abort_pool_falls_back_to_the_pools_own_disconnect() -> None:
    """Q10: without access to the pool's lists, ``disconnect(inuse_connections=True)`` runs."""
    pool = PublicOnlyPool()
    assert pool_connections(pool) is None  # type: ignore[arg-type]
    abort_pool(pool)  # type: ignore[arg-type]
    await wait_for(lambda: pool.disconnects == [True], message="pool.disconnect(True)")


async def test_q10_a_connection_without_close_is_disconnected_instead(pair: Pair) -> None:
    """Q10: a connection class without ``_close`` is marked disconnected through
    ``disconnect(nowait=True)``."""
    seen: list[bool] = []

    class WithoutClose(Connection):
        _close = None  # type: ignore[assignment]

        async def disconnect(self, nowait: bool = False, **_: Any) -> None:  # type: ignore[override]
            seen.append(nowait)

    conn = WithoutClose()
    conn._reader, conn._writer = pair.conn._reader, pair.writer
    pool = ConnectionPool()
    pool._in_use_connections.add(conn)
    abort_pool(pool)
    assert pair.writer.transport.is_closing()
    await wait_for(lambda: seen == [True], message="disconnect(nowait=True)")
    conn._reader = conn._writer = None


def test_q10_outside_a_loop_the_fallback_closes_its_coroutine_unrun() -> None:
    """Q10: called with no running loop, the fallback leaves no un-awaited coroutine."""
    conn = PublicOnlyConnection()
    abort_connection(conn)  # type: ignore[arg-type]
    assert conn.disconnects == []
    assert not redis_internals._closing


class _Chooser(redis_internals.ReconnectingConnection):
    """Connects to a fixed address, recording what redis-py's hook was given."""

    async def open(self, options: dict[str, Any]) -> None:
        self.seen = options
        await self.open_at(("10.0.0.7", 6380), {**options, "from_a_newer_redis_py": True})


async def test_s1_s2_the_connect_hook_chooses_the_address_and_passes_only_known_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """S1/S2: every connect of a ``ReconnectingConnection`` asks ``open`` for the address;
    positional options get their names, and options this redis-py does not know are
    dropped before its ``connect_check_health`` runs."""
    given: list[dict[str, Any]] = []

    async def connect_check_health(self: Connection, **options: Any) -> None:
        given.append(options)

    monkeypatch.setattr(Connection, "connect_check_health", connect_check_health)
    conn = _Chooser()
    await conn.connect_check_health(False)
    assert conn.seen == {"check_health": False}
    assert (conn.host, conn.port) == ("10.0.0.7", 6380)
    assert given == [{"check_health": False}]
