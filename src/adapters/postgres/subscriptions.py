"""``subscribe``: replay a stream from the table, then follow it live through NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from itertools import groupby
from typing import Any

import asyncpg

from portside.adapters.postgres.connections import run
from portside.adapters.postgres.events import event_from_row
from portside.adapters.postgres.fanout import Fanout, Subscriber
from portside.adapters.postgres.listener import Listener
from portside.adapters.postgres.queries import query
from portside.adapters.postgres.settings import OutboxSettings
from portside.adapters.reconnect import ReconnectBackoff
from portside.ports import BackendUnavailableError, OutboxEvent

__all__ = ["StreamWatch"]

_log = logging.getLogger("portside.outbox.subscribe")

Pool = Callable[[], Awaitable["asyncpg.Pool[Any]"]]


class StreamWatch:
    """Serves every ``subscribe`` of one outbox instance with one LISTEN connection.

    Subscribers that are up to date share reads (see ``fanout.py``): on each notification
    one query reads every watched stream from its shared position, and each event read is
    handed to all of that stream's subscribers. A commit therefore costs one query per
    process, not one per subscriber. Subscribers that are behind read on their own.

    Args:
        pool: Returns the connection pool used for reads.
        listener: The shared LISTEN connection.
        settings: Page size, queue bound and back-off for reads.
    """

    def __init__(self, pool: Pool, listener: Listener, settings: OutboxSettings) -> None:
        self._pool = pool
        self._listener = listener
        self._settings = settings
        self._subscribers: set[Subscriber] = set()
        self._dirty = asyncio.Event()
        self._fanout = Fanout(self._dirty.set)
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
        sub = Subscriber(stream, from_seq, self._settings.subscriber_queue)
        await self._add(sub)
        try:
            await self._listener.wait_connected()
            while not self._closed:
                if sub.queue:
                    yield sub.queue.popleft()
                elif sub.group is not None:
                    sub.woken.clear()
                    await sub.woken.wait()
                else:
                    await self._catch_up(sub)
        finally:
            await self._remove(sub)

    async def _catch_up(self, sub: Subscriber) -> None:
        """One read of ``sub``'s own; join the shared read once it returns a short page."""
        before = self._fanout.committed(sub.stream)
        rows = await self._read(sub.stream, sub.want)
        if self._closed:
            return
        sub.add_own([event_from_row(row) for row in rows])
        if len(rows) < self._settings.subscribe_page:
            self._fanout.join(sub, before)

    async def close(self) -> None:
        """End every subscription (their iterators finish) and release the listener."""
        self._closed = True
        self._fanout.close()
        for sub in self._subscribers:
            sub.woken.set()
        await self._stop()

    async def _read(self, stream: str, from_seq: int) -> list[Any]:
        backoff = ReconnectBackoff(self._settings.reconnect_initial, self._settings.reconnect_max)
        page = self._settings.subscribe_page

        async def read(conn: Any) -> list[Any]:
            return list(await conn.fetch(query("read_stream"), stream, from_seq, page))

        while True:
            try:
                return await run(await self._pool(), read, "reading an outbox stream")
            except Exception as exc:
                if self._closed:
                    return []  # e.g. "pool is closing": the outbox closed during the read
                if not isinstance(exc, BackendUnavailableError):
                    raise
                delay = backoff.next_delay()
                _log.warning(
                    "reading outbox stream %r failed (%s); retry in %.2f s", stream, exc, delay
                )
                await asyncio.sleep(delay)

    async def _add(self, sub: Subscriber) -> None:
        self._subscribers.add(sub)
        if self._task is None:
            self._remove_waker = self._listener.add_waker(self._dirty.set)
            self._listener.acquire()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="portside-outbox-stream-watch"
            )

    async def _remove(self, sub: Subscriber) -> None:
        self._fanout.leave(sub)
        self._subscribers.discard(sub)
        if not self._subscribers:
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
        backoff = ReconnectBackoff(self._settings.reconnect_initial, self._settings.reconnect_max)
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._shared_reads()
            except Exception as exc:
                delay = backoff.next_delay()
                _log.warning("outbox shared stream read failed (%s); retry in %.2f s", exc, delay)
                asyncio.get_running_loop().call_later(delay, self._dirty.set)
                continue
            backoff.reset()

    async def _shared_reads(self) -> None:
        """Read every group from its position, fan out, and read again the full pages."""
        page = self._settings.subscribe_page
        due = self._fanout.reads()
        while due:
            streams = [group.stream for group, _ in due]
            starts = [start for _, start in due]
            rows = await run(
                await self._pool(), read_streams(streams, starts, page), "reading outbox streams"
            )
            by_stream = {
                stream: [event_from_row(row) for row in group]
                for stream, group in groupby(rows, key=lambda row: row["stream"])
            }
            again = []
            for group, start in due:
                events = by_stream.get(group.stream, [])
                if not self._fanout.current(group, start):
                    continue
                self._fanout.deliver(group, events)
                if len(events) == page and group.members:
                    again.append((group, group.next_seq))
            due = again


def read_streams(
    streams: list[str], starts: list[int], page: int
) -> Callable[[Any], Awaitable[list[Any]]]:
    """The ``read_streams`` query (``page`` events of each stream from its start), as work for
    ``connections.run``."""

    async def work(conn: Any) -> list[Any]:
        return list(await conn.fetch(query("read_streams"), streams, starts, page))

    return work
