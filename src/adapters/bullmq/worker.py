"""``WorkerHandle`` of the BullMQ adapter: lifecycle around the consume engine."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType

from portside.adapters.bullmq.commands import QueueCommands
from portside.adapters.bullmq.config import Tuning
from portside.adapters.bullmq.connections import Connector
from portside.adapters.bullmq.engine import Engine, OutcomeSink
from portside.adapters.bullmq.errors import CONNECTION_ERRORS, unavailable
from portside.adapters.bullmq.jobs import BullJob
from portside.adapters.bullmq.link import BlockingConnection, Link
from portside.adapters.bullmq.maintenance import Maintenance
from portside.adapters.bullmq.names import QueueName
from portside.ports import Classifier, JobHandler, WorkerStatus

__all__ = ["BullMQWorker"]


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
        connector: Connector,
        handler: JobHandler,
        concurrency: int,
        limiter: dict[str, int] | None,
        timeout: float | None,
        classify: Classifier,
        on_repeat: Callable[[BullJob], Awaitable[None]],
        on_close: Callable[[BullMQWorker], None],
        settle: Callable[[], Awaitable[None]],
    ) -> None:
        tuning: Tuning = connector.tuning
        self.queue = queue
        self.id = uuid.uuid4().hex
        worker_name = tuning.worker_name or f"portside-{self.id[:8]}"
        client_name = queue.client_name(f":w:{worker_name}")
        self._connector = connector
        self._on_close = on_close
        self._settle = settle
        commands = QueueCommands(
            queue, lock_duration_ms=round(tuning.lock_duration * 1000), worker_name=worker_name
        )
        self._link = Link(
            connector.pool(client_name, keep_bytes=True),
            commands.scripts,
            command_timeout=tuning.command_timeout,
            retry_backoff=tuning.retry_backoff,
            max_backoff=tuning.max_backoff,
        )
        self._blocking = BlockingConnection(connector.pool(client_name))
        self.engine = Engine(
            commands=commands,
            link=self._link,
            blocking=self._blocking,
            handler=handler,
            concurrency=concurrency,
            limiter=limiter,
            timeout=timeout,
            classify=classify,
            tuning=tuning,
            worker_id=self.id,
            on_repeat=on_repeat,
        )
        self._maintenance = Maintenance(self.engine)
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
            await self._link.start(self._connector.tuning.retries)
        except CONNECTION_ERRORS as exc:
            raise unavailable(exc, self._connector.safe_url, "starting a worker") from exc
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
            self.engine.start()
            if self._paused:
                await self.engine.close_intake()
            self._maintenance.start(stalled_check=True)

    async def close(self, grace: float = 30.0) -> None:
        """Stop fetching, wait up to ``grace`` seconds for in-flight jobs, release the rest."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                await self.engine.stop(grace)
            finally:
                await self._maintenance.stop()
                await self._link.close()
                await self._blocking.close()
                self._on_close(self)

    def abort(self) -> None:
        """Drop both connections at once so a ``close()`` stuck on a hung Redis ends."""
        self._link.abort()
        self._blocking.abort()

    async def pause(self) -> None:
        """Stop fetching new jobs in this worker; in-flight jobs finish."""
        self._paused = True
        if self._started:
            await self.engine.close_intake()

    async def resume(self) -> None:
        """Fetch again after ``pause``."""
        self._paused = False
        if self._started and not self._closed:
            self.engine.open_intake()

    def status(self) -> WorkerStatus:
        """Liveness and counters; ``last_fetch_at`` advances at least every block timeout."""
        engine = self.engine
        return WorkerStatus(
            queue=self.queue.portside,
            running=self.started and engine.running,
            paused=self._paused,
            concurrency=engine.concurrency,
            active=len(engine.active),
            processed=engine.processed,
            failed=engine.failed,
            last_fetch_at=engine.last_fetch_at,
        )

    async def drain(self, sink: OutcomeSink) -> None:
        """Run every due job with this worker's handler until nothing more is due."""
        if self._closed or self._paused:
            return
        self.engine.sinks.append(sink)
        try:
            if self._started:
                await self.engine.quiesce()
                return
            async with self._lock:
                await self._connect()
                self._maintenance.start(stalled_check=False)
                try:
                    await self.engine.run_until_idle()
                finally:
                    await self._maintenance.stop()
        finally:
            self.engine.sinks.remove(sink)

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
