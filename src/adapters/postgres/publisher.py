"""The push-driven publisher: claims streams, delivers their events in seq order, marks them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from portside.adapters.postgres.connections import begin, run
from portside.adapters.postgres.delivery import Delivery, HandlerFailure, deliver_rows
from portside.adapters.postgres.queries import query
from portside.adapters.postgres.settings import OutboxSettings
from portside.adapters.reconnect import ReconnectBackoff
from portside.ports import OutboxHandler

__all__ = ["STREAM_LOCK_NAMESPACE", "Publisher"]

_log = logging.getLogger("portside.outbox.publisher")

# First key of the two-int advisory locks that claim a stream (the second is hashtext(stream)).
# Two streams sharing a hash only make one publisher wait for or skip the other stream; the
# publisher holding it loops again after its commit, so nothing is left behind.
STREAM_LOCK_NAMESPACE = 0x706F7274  # "port"

_NO_LIMIT = 2**63 - 1

Pool = Callable[[], Awaitable["asyncpg.Pool[Any]"]]
Report = Callable[[BaseException], None]


@dataclass
class _Cooldown:
    backoff: ReconnectBackoff
    until: float


class Publisher:
    """Delivers committed events to ``handlers``; shared by the background loop and drain.

    Args:
        pool: Returns the (lazily created) connection pool.
        handlers: The live list of handlers (the outbox's ``add_handler`` edits it).
        settings: Batch sizes and handler-retry back-off.
        report: Told about handler failures and database errors of the background loop.
    """

    def __init__(
        self,
        pool: Pool,
        handlers: Sequence[OutboxHandler],
        settings: OutboxSettings,
        report: Report,
    ) -> None:
        self._pool = pool
        self._handlers = handlers
        self._settings = settings
        self._report = report
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._cursor = ""
        self._cooldowns: dict[str, _Cooldown] = {}
        self._retry_timer: asyncio.TimerHandle | None = None
        self._db_backoff = ReconnectBackoff(settings.reconnect_initial, settings.reconnect_max)

    @property
    def running(self) -> bool:
        """Whether the background loop is running."""
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Ask the background loop for another scan (NOTIFY, reconnect, retry timer)."""
        self._wake.set()

    def start(self) -> None:
        """Start the background loop; it waits for ``wake`` before its first scan."""
        if self.running:
            return
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="portside-outbox-publisher"
        )

    async def stop(self) -> None:
        """Let the in-flight batch finish, then end the loop."""
        self._stopping = True
        self._wake.set()
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
        task, self._task = self._task, None
        if task is not None:
            await task

    async def wait_idle(self) -> None:
        """Return once the background loop waits for a wake-up with nothing left to scan."""
        while self.running and not (self._idle.is_set() and not self._wake.is_set()):
            await self._idle.wait()
            if self._wake.is_set():
                await asyncio.sleep(0)  # let the loop take the pending wake-up first

    async def _run(self) -> None:
        try:
            while not self._stopping:
                if not self._wake.is_set():
                    self._idle.set()
                await self._wake.wait()
                self._idle.clear()
                self._wake.clear()
                await self._scan()
        finally:
            self._idle.set()

    async def _scan(self) -> None:
        try:
            while not self._stopping and await self.publish_batch():
                pass
            self._db_backoff.reset()
        except Exception as exc:
            # Database trouble (the pool reconnects on the next acquire) or a bug: report it
            # and scan again after a pause, as the NOTIFY that woke us is consumed.
            delay = self._db_backoff.next_delay()
            _log.warning("outbox publish batch failed (%s); retrying in %.2f s", exc, delay)
            self._report(exc)
            self._arm_timer(delay)

    async def publish_batch(self) -> int:
        """Claim free streams, deliver up to one batch, commit; return how many it claimed.

        Zero means nothing was claimable now: no pending event, or every pending stream is
        held by another publisher (which scans again after its commit) or is backing off.
        """
        settings = self._settings
        async with begin(await self._pool(), "an outbox publish batch") as conn:
            locked = [
                row["stream"]
                for row in await conn.fetch(
                    query("claim_streams"),
                    self._cursor,
                    self._cooling(),
                    settings.max_streams_per_batch,
                    STREAM_LOCK_NAMESPACE,
                )
            ]
            if not locked:
                return 0
            self._cursor = locked[-1]
            per_stream = max(1, settings.batch_size // len(locked))
            rows = await conn.fetch(query("claim_events"), locked, per_stream, _NO_LIMIT)
            delivery = await deliver_rows(conn, rows, list(self._handlers))
        self._settle(delivery)
        # A stream another publisher finished between the scan's snapshot and our lock comes
        # back empty; it has left the pending set, so counting it cannot make the loop spin.
        return len(locked)

    async def drain(self, stream: str | None) -> int:
        """Deliver every event committed before the call (of ``stream``, or all).

        Waits for streams another publisher is delivering instead of skipping them.

        Returns:
            How many events this call published.

        Raises:
            Exception: The first handler error, after everything else was delivered.
        """

        async def find(conn: Any) -> list[Any]:
            return list(await conn.fetch(query("drain_targets"), stream))

        targets = await run(await self._pool(), find, "outbox drain_once()")
        published = 0
        failures: list[HandlerFailure] = []
        for target in targets:
            count, failure = await self._drain_stream(target["stream"], target["upto"])
            published += count
            if failure is not None:
                failures.append(failure)
        if failures:
            raise failures[0].error
        return published

    async def _drain_stream(self, stream: str, upto: int) -> tuple[int, HandlerFailure | None]:
        pool = await self._pool()
        published = 0
        while True:
            async with begin(pool, "outbox drain_once()") as conn:
                await conn.execute(query("lock_stream"), STREAM_LOCK_NAMESPACE, stream)
                rows = await conn.fetch(
                    query("claim_events"), [stream], self._settings.batch_size, upto
                )
                delivery = await deliver_rows(conn, rows, list(self._handlers))
            self._settle(delivery, background=False)
            published += delivery.published
            if delivery.failures:
                return published, delivery.failures[0]
            if len(rows) < self._settings.batch_size:
                return published, None

    def _cooling(self) -> list[str]:
        now = asyncio.get_running_loop().time()
        return [stream for stream, cool in self._cooldowns.items() if cool.until > now]

    def _settle(self, delivery: Delivery, *, background: bool = True) -> None:
        for stream in delivery.delivered_streams:
            self._cooldowns.pop(stream, None)
        if not background:
            return
        for failure in delivery.failures:
            self._report(failure.error)
            stream = failure.event.stream
            cool = self._cooldowns.get(stream)
            if cool is None:
                settings = self._settings
                cool = _Cooldown(ReconnectBackoff(settings.retry_initial, settings.retry_max), 0.0)
                self._cooldowns[stream] = cool
            delay = cool.backoff.next_delay()
            cool.until = asyncio.get_running_loop().time() + delay
            self._arm_timer(delay)

    def _arm_timer(self, delay: float) -> None:
        # One timer for the earliest retry: armed only after a failure, never as a poll.
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        timer = self._retry_timer
        if timer is not None and not timer.cancelled() and timer.when() <= due:
            return
        if timer is not None:
            timer.cancel()
        self._retry_timer = loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._retry_timer = None
        now = asyncio.get_running_loop().time()
        pending = [cool.until for cool in self._cooldowns.values() if cool.until > now]
        if pending:
            self._arm_timer(min(pending) - now)
        self._wake.set()
