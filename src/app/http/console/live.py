"""Live updates of the console over Server-Sent Events: queue summaries when the queues'
events say something changed (at most once a second), and the live tail of an outbox stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from portside.app.admin import AdminService
from portside.app.http.admin_schemas import QueueBody
from portside.ports import QueueEvent

__all__ = ["MIN_INTERVAL", "ChangeSignal", "queue_frames"]

MIN_INTERVAL = 1.0
"""Seconds between two updates of one page, at least."""
IDLE_REFRESH = 15.0
"""Seconds after which a page gets fresh numbers even with no event (counts of other
producers' queues, throughput windows moving on)."""


class ChangeSignal:
    """Counts queue events; open feeds wait for the count to move."""

    def __init__(self) -> None:
        self.version = 0
        self._changed = asyncio.Event()

    async def on_event(self, event: QueueEvent) -> None:
        """A ``QueueWatcher`` listener."""
        self.version += 1
        self._changed.set()

    async def wait(self, seen: int, seconds: float, closing: asyncio.Event) -> None:
        """Return once the version differs from ``seen``, ``closing`` is set, or after
        ``seconds``."""
        if self.version != seen:
            return
        self._changed.clear()
        await _first(self._changed, closing, seconds)


async def _first(one: asyncio.Event, other: asyncio.Event, seconds: float) -> None:
    """Wait until either event is set, at most ``seconds``."""
    waits = {asyncio.ensure_future(one.wait()), asyncio.ensure_future(other.wait())}
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


async def queue_frames(
    admin: AdminService, signal: ChangeSignal, closing: asyncio.Event
) -> AsyncIterator[bytes]:
    """``event: queues`` frames with every queue's summary: at once, then after changes."""
    while not closing.is_set():
        seen = signal.version
        summaries = await admin.queues()
        bodies = [QueueBody.of(one).model_dump(mode="json", by_alias=True) for one in summaries]
        yield f"event: queues\ndata: {json.dumps(bodies, separators=(',', ':'))}\n\n".encode()
        await _first(closing, closing, MIN_INTERVAL)
        await signal.wait(seen, IDLE_REFRESH, closing)
