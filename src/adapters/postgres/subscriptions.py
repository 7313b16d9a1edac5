"""``subscribe``: replay a stream from the table, then follow it live through NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from portside.adapters.postgres.backoff import Backoff
from portside.adapters.postgres.connections import STALE_CONNECTION_ERRORS, run
from portside.adapters.postgres.events import event_from_row
from portside.adapters.postgres.listener import Listener
from portside.adapters.postgres.queries import query
from portside.adapters.postgres.settings import OutboxSettings
from portside.ports import BackendUnavailableError, OutboxEvent

__all__ = ["StreamWatch"]

_READ_ERRORS: tuple[type[BaseException], ...] = (*STALE_CONNECTION_ERRORS, BackendUnavailableError)

_log = logging.getLogger("portside.outbox.subscribe")

Pool = Callable[[], Awaitable["asyncpg.Pool[Any]"]]


@dataclass(eq=False)
class _Watcher:
    stream: str
    next_seq: int
    woken: asyncio.Event = field(default_factory=asyncio.Event)


class StreamWatch:
    """Serves every ``subscribe`` of one outbox instance with one LISTEN connection.

    On each notification it reads the committed head (``last_seq``) of all watched streams
    in one query and wakes only the subscribers that are behind, so a commit costs one
    query per process, not one per subscriber.

    Args:
        pool: Returns the connection pool used for reads.
        listener: The shared LISTEN connection.
        settings: Page size and back-off for reads.
    """

    def __init__(self, pool: Pool, listener: Listener, settings: OutboxSettings) -> None:
        self._pool = pool
        self._listener = listener
        self._settings = settings
        self._watchers: dict[str, set[_Watcher]] = {}
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._remove_waker: Callable[[], None] | None = None
        self._closed = False

    async def subscribe(self, stream: str, from_seq: int) -> AsyncGenerator[OutboxEvent, None]:
        """Events of ``stream`` from ``from_seq`` on: stored ones first, then live ones.

        ``seq`` is gap-free and a stream's commits are serialised by its counter row, so
        reading ``seq >= next`` after each wake-up yields every event exactly once. The
        LISTEN is active before the first read, so no commit can slip between the two.
        Events already deleted by retention are skipped: replay starts at the oldest one kept.
        """
        watcher = _Watcher(stream, from_seq)
        await self._add(watcher)
        try:
            await self._listener.wait_connected(self._settings.connect_timeout)
            while not self._closed:
                watcher.woken.clear()
                rows = await self._read(stream, watcher.next_seq)
                for row in rows:
                    # seq is gap-free, so a jump means retention deleted the events between.
                    yield event_from_row(row)
                    watcher.next_seq = row["seq"] + 1
                if len(rows) < self._settings.subscribe_page and not self._closed:
                    await watcher.woken.wait()
        finally:
            await self._remove(watcher)

    async def close(self) -> None:
        """End every subscription (their iterators finish) and release the listener."""
        self._closed = True
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.woken.set()
        await self._stop()

    async def _read(self, stream: str, from_seq: int) -> list[Any]:
        backoff = Backoff(self._settings.reconnect_initial, self._settings.reconnect_max)
        page = self._settings.subscribe_page

        async def read(conn: Any) -> list[Any]:
            return list(await conn.fetch(query("read_stream"), stream, from_seq, page))

        while True:
            try:
                return await run(await self._pool(), read)
            except _READ_ERRORS as exc:
                if self._closed:
                    return []
                delay = backoff.next_delay()
                _log.warning(
                    "reading outbox stream %r failed (%s); retry in %.2f s", stream, exc, delay
                )
                await asyncio.sleep(delay)

    async def _add(self, watcher: _Watcher) -> None:
        self._watchers.setdefault(watcher.stream, set()).add(watcher)
        if self._task is None:
            self._remove_waker = self._listener.add_waker(self._dirty.set)
            self._listener.acquire()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="portside-outbox-stream-watch"
            )

    async def _remove(self, watcher: _Watcher) -> None:
        watchers = self._watchers.get(watcher.stream)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[watcher.stream]
        if not self._watchers:
            await self._stop()

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        if self._remove_waker is not None:
            self._remove_waker()
            self._remove_waker = None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._listener.release()

    async def _run(self) -> None:
        backoff = Backoff(self._settings.reconnect_initial, self._settings.reconnect_max)
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            streams = list(self._watchers)
            try:
                rows = await run(await self._pool(), heads_of(streams))
                heads = {row["stream"]: row["last_seq"] for row in rows}
            except Exception as exc:
                delay = backoff.next_delay()
                _log.warning("outbox stream heads query failed (%s); retry in %.2f s", exc, delay)
                asyncio.get_running_loop().call_later(delay, self._dirty.set)
                continue
            backoff.reset()
            for stream, watchers in list(self._watchers.items()):
                head = heads.get(stream, 0)
                for watcher in watchers:
                    if head >= watcher.next_seq:
                        watcher.woken.set()


def heads_of(streams: list[str]) -> Callable[[Any], Awaitable[list[Any]]]:
    """The ``stream_heads`` query for ``streams``, as work for ``connections.run``."""

    async def work(conn: Any) -> list[Any]:
        return list(await conn.fetch(query("stream_heads"), streams))

    return work
