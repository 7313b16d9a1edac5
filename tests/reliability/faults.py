"""Faults injected into private servers (CLIENT KILL, backend kills, crashes), counted."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from portside.servers import LocalPostgres, LocalRedis

__all__ = ["PostgresFaults", "RedisFaults"]


@dataclass
class RedisFaults:
    """Faults of one private Redis."""

    server: LocalRedis
    injected: Counter[str] = field(default_factory=Counter)
    connections_killed: int = 0

    async def answers(self) -> bool:
        """Whether Redis answers PING now (False while it restarts or loads its AOF)."""
        client = Redis.from_url(self.server.url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(await client.ping())
        except (RedisError, OSError):
            return False
        finally:
            await client.aclose()

    async def kill_clients(self) -> int:
        """``CLIENT KILL TYPE normal``: drop every client connection (workers', producers')."""
        client = Redis.from_url(self.server.url)
        try:
            reply = await client.execute_command(  # type: ignore[no-untyped-call]
                "CLIENT", "KILL", "TYPE", "normal"
            )
            killed = int(reply)
        finally:
            await client.aclose()
        self.injected["client_kill"] += 1
        self.connections_killed += killed
        return killed

    async def crash_and_restart(
        self, while_down: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """SIGKILL the server, await ``while_down()``, then start it again on the same port and
        append-only file."""
        self.server.kill()
        self.injected["redis_sigkill_restart"] += 1
        if while_down is not None:
            await while_down()
        # In a thread: the clients keep running (and failing) while the server comes back.
        await asyncio.to_thread(self.server.restart)

    async def restart(self) -> None:
        """Shut the server down gracefully and start it again."""
        self.injected["redis_restart"] += 1
        await asyncio.to_thread(self.server.restart)


@dataclass
class PostgresFaults:
    """Faults of one private Postgres."""

    server: LocalPostgres
    injected: Counter[str] = field(default_factory=Counter)
    backends_terminated: int = 0

    async def accepts_connections(self) -> bool:
        """Whether a new connection succeeds now."""
        try:
            conn = await asyncpg.connect(self.server.dsn, timeout=2)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return False
        await conn.close()
        return True

    async def terminate_backends(self) -> int:
        """``pg_terminate_backend`` on every other client session (LISTEN, pool, writers)."""
        conn = await asyncpg.connect(self.server.dsn)
        try:
            terminated: int = await conn.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()
        self.injected["pg_terminate_backend"] += 1
        self.backends_terminated += terminated
        return terminated

    async def crash_and_restart(
        self, while_down: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """SIGKILL the postmaster and its backends, await ``while_down()``, then restart
        (crash recovery)."""
        self.server.kill()
        self.injected["postgres_sigkill_restart"] += 1
        if while_down is not None:
            await while_down()
        await asyncio.to_thread(self.server.restart)

    async def restart(self) -> None:
        """Fast shutdown (clients disconnected) and start again."""
        self.injected["postgres_restart"] += 1
        await asyncio.to_thread(self.server.restart)
