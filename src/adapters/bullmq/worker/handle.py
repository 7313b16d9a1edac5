"""``BullMQWorker``: the BullMQ adapter's ``WorkerHandle``, the lifecycle around a slot loop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from redis.exceptions import NoPermissionError

from portside.adapters.bullmq.jobs import BullMQJob
from portside.adapters.bullmq.names import QueueName
from portside.adapters.bullmq.settings import BullMQSettings
from portside.adapters.bullmq.transport.blocking import BlockingConnection
from portside.adapters.bullmq.transport.connector import RedisConnector
from portside.adapters.bullmq.transport.errors import CONNECTION_ERRORS, backend_error
from portside.adapters.bullmq.transport.pipelined import PipelinedConnection
from portside.adapters.bullmq.worker.commands import QueueCommands
from portside.adapters.bullmq.worker.maintenance import Maintenance
from portside.adapters.bullmq.worker.signal import WorkSignal
from portside.adapters.bullmq.worker.slots import SlotLoop
from portside.adapters.bullmq.worker.steps import OutcomeSink, SlotSteps
from portside.ports import AbandonedHandler, Classifier, JobHandler, WorkerStatus

__all__ = ["BullMQWorker"]

_START_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, NoPermissionError)


class BullMQWorker:
    """A consumer of one queue with its own two Redis connections.

    Created (not started) by ``BullMQQueue.consume``. ``start()`` connects and begins
    fetching; ``close(grace)`` stops fetching, waits up to ``grace`` seconds for in-flight
    jobs and puts the unfinished ones back to waiting (no attempt used).
    """

    def __init__(
        self,
        *,
        queue: QueueName,
        connector: RedisConnector,
        handler: JobHandler,
        concurrency: int,
        limiter: dict[str, int] | None,
        timeout: float | None,
        classify: Classifier,
        on_abandoned: AbandonedHandler | None,
        keep_completed: dict[str, Any] | None,
        keep_failed: dict[str, Any] | None,
        on_repeat: Callable[[BullMQJob], Awaitable[None]],
        on_close: Callable[[BullMQWorker], None],
        settle: Callable[[], Awaitable[None]],
    ) -> None:
        settings: BullMQSettings = connector.settings
        self.queue = queue
        self.id = uuid.uuid4().hex
        worker_name = settings.worker_name or f"portside-{self.id[:8]}"
        client_name = queue.client_name(f":w:{worker_name}")
        self._connector = connector
        self._on_close = on_close
        self._settle = settle
        commands = QueueCommands(
            queue,
            lock_duration_ms=round(settings.lock_duration * 1000),
            worker_name=worker_name,
            keep_completed=keep_completed,
            keep_failed=keep_failed,
        )
        self._connection = PipelinedConnection(
            connector.pool(client_name, keep_bytes=True),
            commands.scripts,
            command_timeout=settings.command_timeout,
            retry_backoff=settings.retry_backoff,
            max_backoff=settings.max_backoff,
        )
        self._blocking = BlockingConnection(connector.pool(client_name))
        signal = WorkSignal(self._blocking, commands.marker, settings.block_timeout)
        self._steps = SlotSteps(
            commands=commands,
            connection=self._connection,
            signal=signal,
            concurrency=concurrency,
            limiter=limiter,
            settings=settings,
            worker_id=self.id,
        )
        self.slots = SlotLoop(
            steps=self._steps,
            signal=signal,
            handler=handler,
            concurrency=concurrency,
            timeout=timeout,
            classify=classify,
            on_abandoned=on_abandoned,
            settings=settings,
            on_repeat=on_repeat,
        )
        self._maintenance = Maintenance(self._steps)
        self._connected = False
        self._started = False
        self._closed = False
        self._paused = False
        self._lock = asyncio.Lock()

    @property
    def started(self) -> bool:
        """Whether ``start()`` ran and ``close()`` did not."""
        return self._started and not self._closed

    async def _connect(self) -> None:
        if self._connected:
            return
        try:
            await self._connection.start(self._connector.settings.retries)
        except _START_ERRORS as exc:
            raise backend_error(exc, self._connector.safe_url, "starting a worker") from exc
        self._connected = True

    async def start(self) -> None:
        """Connect and begin fetching; returns once the worker is fetching.

        Raises:
            BackendUnavailableError: Redis could not be reached within the bounded retry.
        """
        async with self._lock:
            if self._closed:
                raise RuntimeError("this worker was closed; create a new one with consume()")
            if self._started:
                return
            await self._settle()
            await self._connect()
            self._started = True
            self.slots.start()
            if self._paused:
                await self.slots.close_intake()
            self._maintenance.start(stalled_check=True)

    async def close(self, grace: float = 30.0) -> None:
        """Stop fetching, wait up to ``grace`` seconds for in-flight jobs, release the rest."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                await self.slots.stop(grace)
            finally:
                await self._maintenance.stop()
                await self._connection.close()
                await self._blocking.close()
                self._on_close(self)

    def abort(self) -> None:
        """Drop both connections at once so a ``close()`` stuck on a hung Redis ends."""
        self._connection.abort()
        self._blocking.abort()

    async def pause(self) -> None:
        """Stop fetching new jobs in this worker; in-flight jobs finish."""
        self._paused = True
        if self._started:
            await self.slots.close_intake()

    async def resume(self) -> None:
        """Fetch again after ``pause``."""
        self._paused = False
        if self._started and not self._closed:
            self.slots.open_intake()

    def status(self) -> WorkerStatus:
        """Liveness and counters; ``last_fetch_at`` advances at least every block timeout."""
        steps = self._steps
        return WorkerStatus(
            queue=self.queue.portside,
            running=self.started and self.slots.running,
            paused=self._paused,
            concurrency=self.slots.concurrency,
            active=len(steps.active),
            processed=steps.processed,
            failed=steps.failed,
            last_fetch_at=steps.last_fetch_at,
        )

    async def drain(self, sink: OutcomeSink) -> None:
        """Run every due job with this worker's handler until nothing more is due."""
        if self._closed or self._paused:
            return
        self._steps.sinks.append(sink)
        try:
            if self._started:
                await self.slots.quiesce()
                return
            async with self._lock:
                await self._connect()
                self._maintenance.start(stalled_check=False)
                try:
                    await self.slots.run_until_idle()
                finally:
                    await self._maintenance.stop()
        finally:
            self._steps.sinks.remove(sink)

    async def __aenter__(self) -> BullMQWorker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
