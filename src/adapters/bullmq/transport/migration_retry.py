"""The pooled client's retry: bounded for failures, patient for a slot being migrated (S1).

Producers and control commands (``pause``, ``counts``, ...) share one client whose
redis-py ``Retry`` gives up after ``retries`` attempts. A cluster slot that is being migrated
answers ``ASK``/``TRYAGAIN`` (``SlotMigratingError``) for as long as the migration takes,
which may be longer than those few back-offs. Here such a command is sent again, with the
back-off capped at ``max_backoff``, until the slot has moved or ``deadline`` seconds have
passed since the first attempt; then the last error is raised (and the caller turns it into
``BackendUnavailableError``), as a worker's reconnect loop does for its own commands.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from portside.adapters.bullmq.transport.cluster import SlotMigratingError

__all__ = ["MigrationAwareRetry"]

T = TypeVar("T")


class MigrationAwareRetry(Retry):
    """``Retry`` with exponential back-off that keeps retrying a ``SlotMigratingError``
    until ``deadline`` seconds after the first attempt."""

    def __init__(self, *, base: float, cap: float, retries: int, deadline: float) -> None:
        super().__init__(ExponentialBackoff(cap=cap, base=base), retries)
        self.cap = cap
        self.deadline = deadline

    async def call_with_retry(self, do: Callable[[], Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """``Retry.call_with_retry`` (its other arguments passed on as given: they differ
        between redis-py versions), again while the slot is migrating."""
        give_up = time.monotonic() + self.deadline
        delay = self.cap / 4
        while True:
            try:
                return await super().call_with_retry(do, *args, **kwargs)
            except SlotMigratingError:
                left = give_up - time.monotonic()
                if left <= 0:
                    raise
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 2, self.cap)
