"""``PostgresOutbox``: the OutboxPort on asyncpg with a LISTEN/NOTIFY publisher (O1-O6)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg
import asyncpg.pool

from portside.adapters.postgres.connections import begin, run
from portside.adapters.postgres.errors import backend_errors
from portside.adapters.postgres.listener import Listener
from portside.adapters.postgres.publisher import Publisher
from portside.adapters.postgres.queries import query
from portside.adapters.postgres.settings import OutboxSettings
from portside.adapters.postgres.subscriptions import StreamWatch
from portside.adapters.reconnect import ReconnectBackoff
from portside.ports import (
    ConfigurationError,
    OutboxErrorCallback,
    OutboxEvent,
    OutboxHandler,
    OutboxPort,
    OutboxStream,
    ValidationError,
)
from portside.ports.inputs import check_append, check_from_seq, check_seconds
from portside.ports.validation import check_stream_name

__all__ = ["PostgresOutbox"]

_log = logging.getLogger("portside.outbox")


class PostgresOutbox:
    """Transactional outbox on Postgres: append in your transaction, publish by NOTIFY.

    Connections are opened lazily on first use: a pool for appends, claims and reads, and
    one dedicated session connection for LISTEN while the publisher runs or a subscription
    is open. The schema must be migrated first (``portside migrate`` or
    ``portside.adapters.postgres.migrations.migrate``).

    Args:
        dsn: libpq-style URL of the database, e.g. ``postgresql://app@db:5432/app``.
        **tuning: Knobs of ``OutboxSettings`` (pool sizes, batch sizes, back-off).

    Raises:
        ValidationError: ``dsn`` is not a Postgres URL or a tuning knob is invalid.
    """

    def __init__(self, dsn: str, **tuning: Any) -> None:
        if not isinstance(dsn, str) or not dsn.startswith(("postgresql://", "postgres://")):
            raise ValidationError(
                f"dsn must be a postgresql:// URL, got {dsn!r}",
                fix="pass e.g. 'postgresql://user@localhost:5432/dbname'",
                field="dsn",
            )
        self._dsn = dsn
        self._settings = OutboxSettings.from_tuning(tuning)
        self._pool: asyncpg.Pool[Any] | None = None
        self._pool_lock = asyncio.Lock()
        self._closed = False
        self._handlers: list[OutboxHandler] = []
        self._on_error: OutboxErrorCallback | None = None
        self._listener = Listener(
            self._connect,
            self._settings.channel,
            ReconnectBackoff(self._settings.reconnect_initial, self._settings.reconnect_max),
            self._report,
            connect_timeout=self._settings.connect_timeout,
        )
        self._publisher = Publisher(self._get_pool, self._handlers, self._settings, self._report)
        self._remove_publisher_waker: Callable[[], None] | None = None
        self._watch = StreamWatch(self._get_pool, self._listener, self._settings)

    @property
    def settings(self) -> OutboxSettings:
        """The validated tuning knobs."""
        return self._settings

    @property
    def listener_pid(self) -> int | None:
        """Backend pid of the LISTEN connection while connected, else ``None``."""
        return self._listener.server_pid

    def transaction(self) -> AbstractAsyncContextManager[asyncpg.pool.PoolConnectionProxy[Any]]:
        """A pooled connection inside an open transaction; commits on success (O1).

        Your own writes on the yielded connection and the events appended to it commit or
        roll back together.

        Raises:
            BackendUnavailableError: Postgres is unreachable, or the connection was lost in
                the block (nothing committed) or during ``COMMIT`` (outcome unknown, as the
                error's fix says). The asyncpg error is the ``__cause__``.
        """
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy[Any]]:
        async with begin(await self._get_pool(), "an outbox transaction") as conn:
            yield conn

    async def append(
        self,
        tx: Any,
        stream: str,
        type: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
        trace_context: str | None = None,
    ) -> OutboxEvent:
        """Insert an event in ``tx``'s transaction with the stream's next gap-free ``seq``.

        Args:
            tx: An asyncpg connection inside a transaction (yours, or ``transaction()``'s).
            stream: The ordered stream, e.g. a run id.
            type: The event type, e.g. ``run.step.completed``.
            payload: A JSON object (dict or pydantic model).
            key: Optional business key (e.g. for consumer-side routing).
            trace_context: Trace propagation headers as JSON (OBS1), stored with the event.

        Returns:
            The event as stored (``published_at`` is ``None``).

        Raises:
            ValidationError: Bad input, or ``tx`` is not in a transaction; nothing is written.
            BackendUnavailableError: ``tx``'s connection was lost (the session was terminated
                or the server restarted): its transaction is gone; retry the whole unit of
                work. The asyncpg error is the ``__cause__``.
        """
        name, kind, data, text, event_key, carried = check_append(
            stream, type, payload, key, trace_context
        )
        with backend_errors("outbox append", tx):
            _check_transaction(tx)
            row = await tx.fetchrow(query("append"), name, kind, text, event_key, carried)
        return OutboxEvent(
            id=row["id"],
            stream=name,
            seq=row["seq"],
            type=kind,
            payload=data,
            key=event_key,
            created_at=row["created_at"],
            trace_context=carried,
        )

    def add_handler(self, handler: OutboxHandler) -> Callable[[], None]:
        """Deliver published events to ``handler`` (in seq order per stream).

        Returns:
            A function that removes the handler again.
        """
        if not callable(handler):
            raise ValidationError(
                f"handler must be an async callable, got {type(handler).__name__}",
                fix="pass `async def handler(event: OutboxEvent) -> None`",
                field="handler",
            )
        self._handlers.append(handler)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._handlers.remove(handler)

        return remove

    @property
    def running(self) -> bool:
        """Whether the publisher was started and not stopped since."""
        return self._remove_publisher_waker is not None

    async def start(self, *, on_error: OutboxErrorCallback | None = None) -> None:
        """Start the publisher: LISTEN, a catch-up scan, then one scan per wake-up (O2, O5).

        Returns once LISTEN is active, so every commit from now on wakes the publisher.

        Args:
            on_error: Told about lost connections, failed reconnects and handler errors.

        Raises:
            BackendUnavailableError: LISTEN was not established within ``connect_timeout``;
                the publisher is stopped again.
        """
        self._ensure_open()
        if self._publisher.running:
            return
        self._on_error = on_error
        self._publisher.start()
        self._remove_publisher_waker = self._listener.add_waker(self._publisher.wake)
        self._listener.acquire()
        try:
            await self._listener.wait_connected()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the publisher after its in-flight batch; events left stay pending."""
        if self._remove_publisher_waker is None:
            return
        self._remove_publisher_waker()
        self._remove_publisher_waker = None
        await self._publisher.stop()
        await self._listener.release()

    async def wait_idle(self) -> None:
        """Return once the publisher has no batch in hand and no wake-up pending.

        Returns at once when the publisher is not running. Meant for tests and diagnostics:
        a commit after this returns is picked up only through its NOTIFY.
        """
        await self._publisher.wait_idle()

    async def drain_once(self, stream: str | None = None) -> int:
        """Deliver every event committed before the call (of ``stream``, or of all streams).

        Safe while publishers run: streams being delivered elsewhere are waited for, not
        delivered twice. Do not call it from a handler (it would wait for its own batch).

        Returns:
            How many events this call published.

        Raises:
            Exception: The first handler error, once the other streams were delivered; the
                failed event and the rest of its stream stay pending.
        """
        self._ensure_open()
        name = None if stream is None else check_stream_name(stream)
        return await self._publisher.drain(name)

    def subscribe(self, stream: str, from_seq: int = 1) -> AsyncGenerator[OutboxEvent, None]:
        """Events of ``stream`` with ``seq >= from_seq``: stored first, then live (O4).

        Independent of any publisher: it reads the table and follows NOTIFY, so it works in
        any process connected to the database. The iterator ends when the outbox closes;
        ``aclose()`` it when done to release its share of the LISTEN connection.
        """
        name = check_stream_name(stream)
        first = check_from_seq(from_seq)
        self._ensure_open()
        return self._watch.subscribe(name, first)

    async def pending(self) -> int:
        """How many committed events are not yet published."""
        count: int = await run(
            await self._get_pool(), _fetchval(query("pending_count")), "outbox pending()"
        )
        return count

    async def streams(self) -> list[OutboxStream]:
        """Every stream that has had an event, by name, with its last seq and pending count."""
        rows: list[Any] = await run(
            await self._get_pool(), _fetch(query("streams")), "outbox streams()"
        )
        return [OutboxStream(**dict(row)) for row in rows]

    async def lag(self) -> float:
        """Seconds since the oldest unpublished event was appended (0.0 when none)."""
        seconds: float = await run(await self._get_pool(), _fetchval(query("lag")), "outbox lag()")
        return seconds

    async def purge_published(self, older_than: float) -> int:
        """Delete events published more than ``older_than`` seconds ago, in batches (O6).

        Returns:
            How many events were deleted.
        """
        seconds = check_seconds(older_than, "older_than")
        pool = await self._get_pool()
        total = 0
        while True:
            status = await run(
                pool,
                _execute(query("purge_published"), seconds, self._settings.purge_batch),
                "outbox purge_published()",
            )
            deleted = int(status.rsplit(" ", 1)[-1])
            total += deleted
            if deleted < self._settings.purge_batch:
                return total

    async def close(self) -> None:
        """Stop the publisher, end subscriptions and close every connection."""
        if self._closed:
            return
        self._closed = True
        await self.stop()
        await self._watch.close()
        await self._listener.close()
        async with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _get_pool(self) -> asyncpg.Pool[Any]:
        if self._pool is not None:
            return self._pool
        self._ensure_open()
        async with self._pool_lock:
            if self._pool is None:
                with backend_errors("opening the outbox connection pool", connecting=True):
                    self._pool = await self._create_pool()
            return self._pool

    async def _create_pool(self) -> asyncpg.Pool[Any]:
        return await asyncpg.create_pool(
            self._dsn,
            min_size=self._settings.pool_min_size,
            max_size=self._settings.pool_max_size,
            timeout=self._settings.connect_timeout,
            statement_cache_size=self._settings.statement_cache_size,
        )

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self._dsn, timeout=self._settings.connect_timeout)

    def _ensure_open(self) -> None:
        if self._closed:
            raise ConfigurationError(
                "this PostgresOutbox is closed", fix="create a new PostgresOutbox"
            )

    def _report(self, error: BaseException) -> None:
        callback = self._on_error
        if callback is None:
            return
        try:
            callback(error)
        except Exception:
            _log.exception("the outbox on_error callback raised")


def _fetch(sql: str, *args: Any) -> Callable[[Any], Awaitable[Any]]:
    async def work(conn: Any) -> Any:
        return await conn.fetch(sql, *args)

    return work


def _fetchval(sql: str, *args: Any) -> Callable[[Any], Awaitable[Any]]:
    async def work(conn: Any) -> Any:
        return await conn.fetchval(sql, *args)

    return work


def _execute(sql: str, *args: Any) -> Callable[[Any], Awaitable[str]]:
    async def work(conn: Any) -> str:
        status: str = await conn.execute(sql, *args)
        return status

    return work


def _check_transaction(tx: object) -> None:
    if not isinstance(tx, (asyncpg.Connection, asyncpg.pool.PoolConnectionProxy)):
        raise ValidationError(
            f"tx must be an asyncpg connection inside a transaction, got {type(tx).__name__}",
            fix="use `async with outbox.transaction() as tx:` or pass your asyncpg connection "
            "inside `async with conn.transaction():`",
            field="tx",
        )
    if not tx.is_in_transaction():
        raise ValidationError(
            "tx is not inside a transaction, so the event would not commit atomically with "
            "your writes",
            fix="open one first: `async with conn.transaction(): await outbox.append(conn, ...)`",
            field="tx",
        )


_check: Callable[[str], OutboxPort] = PostgresOutbox
