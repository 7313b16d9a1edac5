"""A dedicated session connection that LISTENs for outbox notifications and reconnects."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from portside.adapters.reconnect import ReconnectBackoff
from portside.ports import BackendUnavailableError

__all__ = ["Listener"]

_log = logging.getLogger("portside.outbox.listener")

Connect = Callable[[], Awaitable[asyncpg.Connection]]
Report = Callable[[BaseException], None]


class Listener:
    """Fans NOTIFY wake-ups out to callbacks; reconnects with back-off when the link drops.

    LISTEN state lives in the server session, so this connection is opened directly and never
    comes from the pool (nor from a transaction-pooling proxy such as pgbouncer in
    ``transaction`` mode). Every (re)connect wakes all callbacks: notifications sent while
    the link was down are lost, so each user runs a catch-up scan on wake.

    The connection is held while at least one user has called ``acquire``.

    Args:
        connect: Opens a new session connection.
        channel: The channel to LISTEN on.
        backoff: Delays between reconnect attempts.
        report: Told about every lost connection and failed reconnect attempt.
        connect_timeout: Seconds ``wait_connected`` waits for LISTEN to become active.
    """

    def __init__(
        self,
        connect: Connect,
        channel: str,
        backoff: ReconnectBackoff,
        report: Report,
        *,
        connect_timeout: float,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._backoff = backoff
        self._report = report
        self._connect_timeout = connect_timeout
        self._wakers: list[Callable[[], None]] = []
        self._users = 0
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._stable_after = backoff.maximum
        self._conn: asyncpg.Connection | None = None

    @property
    def server_pid(self) -> int | None:
        """The backend pid of the LISTEN connection while connected (for tests and logs)."""
        conn = self._conn
        return conn.get_server_pid() if conn is not None and self._connected.is_set() else None

    def add_waker(self, waker: Callable[[], None]) -> Callable[[], None]:
        """Call ``waker`` on every notification and every (re)connect; returns its remover."""
        self._wakers.append(waker)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._wakers.remove(waker)

        return remove

    def acquire(self) -> None:
        """Count one more user, starting the connection task for the first one."""
        self._users += 1
        if self._task is None or self._task.done():
            self._connected.clear()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="portside-outbox-listener"
            )

    async def release(self) -> None:
        """Count one user less; the last one closes the connection."""
        self._users -= 1
        if self._users <= 0:
            self._users = 0
            await self.close()

    async def wait_connected(self) -> None:
        """Return once LISTEN is active, so no later commit can go unnoticed.

        Raises:
            BackendUnavailableError: Not connected within ``connect_timeout`` seconds.
        """
        try:
            await asyncio.wait_for(self._connected.wait(), self._connect_timeout)
        except TimeoutError as exc:
            raise BackendUnavailableError(
                "the outbox LISTEN connection was not established within "
                f"{self._connect_timeout} s",
                fix="check that Postgres is reachable at the outbox DSN",
            ) from exc

    async def close(self) -> None:
        """Close the connection and stop reconnecting."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._connected.clear()

    async def _run(self) -> None:
        while True:
            conn = await self._connect_with_backoff()
            started = asyncio.get_running_loop().time()
            try:
                await self._serve(conn)
            except Exception as exc:
                # Usually the connection dying during LISTEN; anything else must not end the
                # task either, or nobody would be woken again.
                _log.warning("outbox LISTEN connection failed (%s: %s)", type(exc).__name__, exc)
                self._report(exc)
            finally:
                self._connected.clear()
                self._conn = None
                if not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            # A link that keeps dropping right after connecting must not spin: only one that
            # stayed up for a while starts the back-off again from the shortest delay.
            if asyncio.get_running_loop().time() - started > self._stable_after:
                self._backoff.reset()
            await asyncio.sleep(self._backoff.next_delay())

    async def _serve(self, conn: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(self._channel, self._on_notify)
        self._conn = conn
        self._connected.set()
        pid = conn.get_server_pid()
        _log.debug("listening on %r (backend pid %s)", self._channel, pid)
        self._wake_all()
        await lost.wait()
        error = ConnectionError(f"the outbox LISTEN connection (backend pid {pid}) was lost")
        _log.warning("%s; reconnecting", error)
        self._report(error)

    async def _connect_with_backoff(self) -> asyncpg.Connection:
        while True:
            try:
                return await self._connect()
            except Exception as exc:
                delay = self._backoff.next_delay()
                _log.warning(
                    "outbox LISTEN connection attempt %d failed (%s: %s); retrying in %.2f s",
                    self._backoff.failures,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                self._report(exc)
                await asyncio.sleep(delay)

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        self._wake_all()

    def _wake_all(self) -> None:
        for waker in list(self._wakers):
            waker()
