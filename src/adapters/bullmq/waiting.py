"""Waiting for jobs to finish, from the queue's events stream (``wait_until_finished``).

One ``FinishWatch`` per queue reads the events stream with a blocking ``XREAD`` while any
wait is open, and hands ``completed``, ``failed`` and ``removed`` entries to the waits for
those jobs. A wait registers first, then makes sure the reader has fixed its stream
position, and only then reads the job: a job that finished before is answered from its
state, one that finishes later from its event, and none is missed in between. No polling:
the reader blocks until Redis has entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from portside.adapters.bullmq.control import get_job
from portside.adapters.bullmq.jobs import KIND_FIELD
from portside.adapters.bullmq.names import QueueName
from portside.adapters.bullmq.settings import BullMQSettings
from portside.adapters.bullmq.transport.blocking import BlockingConnection
from portside.adapters.bullmq.transport.errors import CONNECTION_ERRORS
from portside.adapters.bullmq.transport.scripts import execute
from portside.adapters.reconnect import reconnect_delay
from portside.ports import (
    ConfigurationError,
    JobFailedError,
    JobInfo,
    JobNotFoundError,
    PortsideError,
    WaitTimeoutError,
)

__all__ = ["FinishWatch"]

log = logging.getLogger("portside.adapters.bullmq")

Finish = tuple[str, dict[str, str]]
"""A finishing entry of the events stream: its event name and fields."""
"""Opens a dedicated connection for one reader's blocking reads."""

OpenConnection = Callable[[], BlockingConnection]
"""Opens a dedicated connection for one reader's blocking reads."""

_FINISHING = frozenset({"completed", "failed", "removed"})


def _json(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class FinishWatch:
    """The waits for jobs of one queue to finish, and the reader serving them.

    Args:
        queue: The queue.
        client: The adapter's pooled client (job reads, the stream position).
        open_connection: Opens a dedicated connection for a reader's blocking reads.
        settings: The adapter's settings (``event_block``, reconnect backoff).
    """

    def __init__(
        self,
        queue: QueueName,
        client: Redis,
        open_connection: OpenConnection,
        settings: BullMQSettings,
    ) -> None:
        self._queue = queue
        self._key = queue.key("events")
        self._client = client
        self._open = open_connection
        self._connections: set[BlockingConnection] = set()
        self._settings = settings
        self._waits: dict[str, list[asyncio.Future[Finish]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._readers: set[asyncio.Task[None]] = set()
        self._starting: asyncio.Future[None] | None = None
        self._last_id = "$"
        self._closed = False
        self._looking = 0  # waits reading the job or the stream position now
        self._idle = asyncio.Event()
        self._idle.set()

    async def wait(self, job_id: str, limit: float) -> Any:
        """The result of ``job_id`` once it completed (see ``QueuePort.wait_until_finished``)."""
        if self._closed:
            raise _closed(self._queue, job_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        future: asyncio.Future[Finish] = loop.create_future()
        self._waits.setdefault(job_id, []).append(future)
        try:
            async with asyncio.timeout_at(deadline):
                info = await self._look(job_id)
                if info is None:
                    raise JobNotFoundError(self._queue.portside, job_id)
                if info.state == "completed":
                    return info.result
                if info.state == "failed":
                    reason = info.failed_reason or "failed"
                    raise JobFailedError(self._queue.portside, job_id, reason, info.failure_kind)
                event, fields = await future
        except TimeoutError:
            raise await self._timed_out(job_id, limit) from None
        finally:
            self._forget(job_id, future)
        return await self._outcome(job_id, event, fields)

    async def _look(self, job_id: str) -> JobInfo | None:
        """Fix the reader's position, then read the job; ``close`` lets this finish (on the
        still open client) rather than cut it off."""
        self._looking += 1
        self._idle.clear()
        try:
            await self._ensure_reader()
            info = await get_job(self._client, self._queue, job_id)
        finally:
            self._looking -= 1
            if not self._looking:
                self._idle.set()
        if self._closed:
            raise _closed(self._queue, job_id)
        return info

    async def _outcome(self, job_id: str, event: str, fields: dict[str, str]) -> Any:
        queue = self._queue.portside
        if event == "completed":
            return _json(fields.get("returnvalue"))
        if event == "failed":
            kind = await self._client.hget(self._queue.job_key(job_id), KIND_FIELD)
            known = kind if kind in ("transient", "permanent") else None
            raise JobFailedError(queue, job_id, fields.get("failedReason") or "failed", known)
        if event == "closed":
            raise _closed(self._queue, job_id)
        raise JobNotFoundError(
            queue, job_id, message=f"job {job_id!r} of queue {queue!r} was removed"
        )

    async def _timed_out(self, job_id: str, limit: float) -> PortsideError:
        try:
            info = await get_job(self._client, self._queue, job_id)
        except CONNECTION_ERRORS:
            info = None
        state = "unknown" if info is None else info.state
        return WaitTimeoutError(self._queue.portside, job_id, limit, state)

    def _forget(self, job_id: str, future: asyncio.Future[Finish]) -> None:
        waits = self._waits.get(job_id)
        if waits is not None and future in waits:
            waits.remove(future)
            if not waits:
                del self._waits[job_id]
        if not self._waits and self._reader is not None:
            self._reader.cancel()  # blocked in XREAD: dropping its connection ends it
            self._reader = None

    async def _ensure_reader(self) -> None:
        """Start the reader at the stream's current end (unless it runs already)."""
        if self._reader is not None and not self._reader.done():
            return
        if self._starting is not None:
            await asyncio.shield(self._starting)
            return
        starting = self._starting = asyncio.get_running_loop().create_future()
        try:
            entries = await execute(self._client, "XREVRANGE", self._key, "+", "-", "COUNT", 1)
            if self._closed:
                raise ConfigurationError(
                    f"the adapter closed: no more waits on queue {self._queue.portside!r}",
                    fix="wait again on a new adapter",
                )
            self._last_id = entries[0][0] if entries else "0-0"
            connection = self._open()
            self._connections.add(connection)
            reader = asyncio.get_running_loop().create_task(self._read(connection))
            self._reader = reader
            self._readers.add(reader)
            reader.add_done_callback(self._readers.discard)
            starting.set_result(None)
        except BaseException as exc:
            starting.set_exception(exc)
            starting.exception()  # retrieved: the waits that share it raise it themselves
            raise
        finally:
            self._starting = None

    async def _read(self, connection: BlockingConnection) -> None:
        try:
            await self._read_on(connection)
        finally:
            self._connections.discard(connection)
            await connection.close()

    async def _read_on(self, connection: BlockingConnection) -> None:
        failures = 0
        block_ms = round(self._settings.event_block * 1000)
        while self._waits and not self._closed:
            try:
                reply = await connection.call(
                    "XREAD",
                    "COUNT",
                    500,
                    "BLOCK",
                    block_ms,
                    "STREAMS",
                    self._key,
                    self._last_id,
                    reply_timeout=block_ms / 1000 + 5.0,
                )
                failures = 0
            except CONNECTION_ERRORS as exc:
                log.debug("finish watch of %s lost its connection: %s", self._queue.portside, exc)
                settings = self._settings
                await asyncio.sleep(
                    reconnect_delay(failures, settings.retry_backoff, settings.max_backoff)
                )
                failures += 1
                continue
            for _stream, items in reply or ():
                for entry_id, flat in items:
                    self._last_id = entry_id
                    self._deliver(dict(zip(flat[::2], flat[1::2], strict=True)))

    def _deliver(self, fields: dict[str, str]) -> None:
        event = fields.get("event")
        if event not in _FINISHING:
            return
        waits = self._waits.pop(fields.get("jobId") or "", None)
        for future in waits or ():
            if not future.done():
                future.set_result((event, fields))

    async def close(self) -> None:
        """End every open wait (they raise ``ConfigurationError``) and the reader; waits
        reading the job right now finish that read first."""
        self._closed = True
        for waits in self._waits.values():
            for future in waits:
                if not future.done():
                    future.set_result(("closed", {}))
        self._waits.clear()
        await self._idle.wait()
        self._reader = None
        for reader in list(self._readers):
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, *CONNECTION_ERRORS):
                await reader
        for connection in list(self._connections):
            await connection.close()

    def abort(self) -> None:
        """Drop the readers' sockets at once (``close`` on a hung server)."""
        for connection in self._connections:
            connection.abort()


def _closed(queue: QueueName, job_id: str) -> ConfigurationError:
    return ConfigurationError(
        f"the adapter closed while waiting for job {job_id!r} of queue {queue.portside!r}",
        fix="wait before closing the adapter, or wait again on a new adapter",
    )
