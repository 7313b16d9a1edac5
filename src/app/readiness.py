"""Readiness for orchestrators (OBS3): are the queue server and Postgres reachable, the
migrations applied, the workers fetching? Cheap to ask every second: one check at a time,
its answer kept for a moment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from portside.ports import HistoryPort, QueuePort, WorkerStatus

__all__ = [
    "CACHE_SECONDS",
    "CHECK_TIMEOUT",
    "Check",
    "Readiness",
    "ReadinessReport",
    "SchemaProbe",
]

CACHE_SECONDS = 1.0
"""How long one readiness answer is reused: a probe every second costs one check."""

CHECK_TIMEOUT = 2.0
"""Seconds one backend check may take before it counts as failed."""

CheckStatus = Literal["ok", "failed", "skipped"]


@runtime_checkable
class SchemaProbe(Protocol):
    """What a history store may offer to say whether its schema is current."""

    async def pending_migrations(self) -> list[str]:
        """Migrations the database lacks (empty when current); raises when unreachable."""
        ...


@dataclass(frozen=True)
class Check:
    """One readiness check: ``ok``, ``failed`` or ``skipped`` (not applicable here)."""

    name: str
    status: CheckStatus
    detail: str


@dataclass(frozen=True)
class ReadinessReport:
    """Every check; ready when none failed."""

    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        """No check failed."""
        return all(check.status != "failed" for check in self.checks)

    def body(self) -> dict[str, Any]:
        """The JSON body of ``/readyz``."""
        return {
            "status": "ready" if self.ready else "unready",
            "checks": {
                check.name: {"status": check.status, "detail": check.detail}
                for check in self.checks
            },
        }


async def _timed(name: str, probe: Callable[[], Awaitable[Check]], seconds: float) -> Check:
    try:
        async with asyncio.timeout(seconds):
            return await probe()
    except TimeoutError:
        return Check(name, "failed", f"no answer within {seconds:g} s")
    except Exception as error:
        return Check(name, "failed", f"{type(error).__name__}: {error}")


class Readiness:
    """Checks what a process needs to do its work.

    Args:
        queue: Its server is asked for its info (Redis reachable).
        history: Asked for pending migrations when it is a ``SchemaProbe`` (Postgres
            reachable, schema current).
        workers: This process's consumers, which must all be fetching; None when the process
            runs none (an API process: each worker answers its own ``/readyz``).
        cache_seconds: How long an answer is reused.
        timeout: Seconds each backend check may take.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        queue: QueuePort,
        history: HistoryPort | None,
        *,
        workers: Callable[[], Sequence[WorkerStatus]] | None = None,
        cache_seconds: float = CACHE_SECONDS,
        timeout: float = CHECK_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._history = history
        self._workers = workers
        self._cache_seconds = cache_seconds
        self._timeout = timeout
        self._clock = clock
        self._last: tuple[float, ReadinessReport] | None = None
        self._running: asyncio.Future[ReadinessReport] | None = None

    async def check(self) -> ReadinessReport:
        """The current answer: cached for ``cache_seconds``; concurrent callers share one
        check."""
        last = self._last
        if last is not None and self._clock() - last[0] < self._cache_seconds:
            return last[1]
        if self._running is None:
            self._running = asyncio.ensure_future(self._check_now())
        running = self._running
        try:
            report = await asyncio.shield(running)
        finally:
            if running.done() and self._running is running:
                self._running = None
        self._last = (self._clock(), report)
        return report

    async def _check_now(self) -> ReadinessReport:
        queue, postgres = await asyncio.gather(
            _timed("queue_server", self._queue_server, self._timeout),
            _timed("postgres", self._postgres, self._timeout),
        )
        return ReadinessReport((queue, postgres, self._fetching()))

    async def _queue_server(self) -> Check:
        info = await self._queue.server_info()
        return Check("queue_server", "ok", f"{info.backend} answers")

    async def _postgres(self) -> Check:
        history: object = self._history
        if not isinstance(history, SchemaProbe):
            return Check("postgres", "skipped", "no Postgres history store to check")
        pending = await history.pending_migrations()
        if pending:
            return Check(
                "postgres",
                "failed",
                f"migrations not applied: {', '.join(pending)}; run `portside migrate`",
            )
        return Check("postgres", "ok", "reachable, migrations applied")

    def _fetching(self) -> Check:
        if self._workers is None:
            return Check(
                "workers", "skipped", "this process runs no workers; each worker has a /readyz"
            )
        statuses = list(self._workers())
        fetching = [status for status in statuses if status.running]
        detail = f"{len(fetching)} of {len(statuses)} consumers fetching"
        ok = bool(statuses) and len(fetching) == len(statuses)
        return Check("workers", "ok" if ok else "failed", detail)
