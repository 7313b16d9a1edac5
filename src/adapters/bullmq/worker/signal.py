"""When may a worker find jobs again: BullMQ's marker key, delayed-job times, rate limits."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from portside.adapters.bullmq.transport.blocking import BlockingConnection

__all__ = ["WorkSignal"]


def _now_ms() -> int:
    return int(time.time() * 1000)


class WorkSignal:
    """Blocks an idle worker until work may be due, the way Node BullMQ's worker does.

    A fetch that finds nothing reports why: a rate-limit window (its remaining ms) or the time
    of the next delayed job. ``wait()`` then sleeps out the window, or blocks on the marker
    zset (``BZPOPMIN``, at most ``block_timeout``) that producers, retries and delayed-job
    promotion touch, on the worker's own blocking connection.
    """

    def __init__(self, blocking: BlockingConnection, marker: str, block_timeout: float) -> None:
        self._blocking = blocking
        self._marker = marker
        self._block_timeout = block_timeout
        self.limit_until = 0
        self.block_until = 0

    def note(self, reply: list[Any]) -> None:
        """Remember what a fetch without a job said (``[0, 0, limit ms, next delayed ms]``)."""
        if len(reply) >= 4:
            limit = int(reply[2] or 0)
            if limit > 0:
                self.limit_until = _now_ms() + limit
            self.block_until = int(float(reply[3] or 0))

    def reset(self) -> None:
        """Forget windows and delays (the clock was moved by ``advance``)."""
        self.limit_until = 0
        self.block_until = 0

    async def wait(self) -> bool:
        """Block until jobs may be due; False when the caller should call again first."""
        now = _now_ms()
        if self.limit_until > now:
            await asyncio.sleep((self.limit_until - now) / 1000)
            self.limit_until = 0
            return True
        if self.block_until and self.block_until <= now:
            self.block_until = 0
            return True
        timeout = self._block_timeout
        if self.block_until:
            timeout = max(0.001, min(timeout, (self.block_until - now) / 1000))
        reply = await self._blocking.call(
            "BZPOPMIN", self._marker, f"{timeout:.3f}", reply_timeout=timeout + 2.0
        )
        if reply:
            self.block_until = int(float(reply[2]))
            if self.block_until > _now_ms():
                return False
        self.block_until = 0
        return True
