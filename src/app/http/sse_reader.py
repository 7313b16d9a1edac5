"""The read side of an SSE stream: encoded frames read ahead of the socket, and a frame cache.

``ReadAhead`` reads a ``subscribe`` iterator in a task of its own while the response writes,
so every frame that is ready by the time the socket is free goes out in one write, and no
task is created per event. It holds at most ``limit`` frames: a client that reads slowly
stops it, and the outbox's own bound then applies (its subscription falls back to reading
on its own). ``FrameCache`` encodes an event once however many clients stream it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection

from portside.ports import OutboxEvent

__all__ = ["FrameCache", "ReadAhead"]


class FrameCache:
    """The encoded frames of the last ``size`` events, keyed by event id.

    An event never changes once committed and its id is unique, so its frame is the same for
    every client.

    Args:
        encode: Turns an event into its frame.
        size: How many frames to keep (oldest dropped first).
    """

    def __init__(self, encode: Callable[[OutboxEvent], bytes], size: int = 4096) -> None:
        self._encode = encode
        self._size = size
        self._frames: dict[str, bytes] = {}

    def __call__(self, event: OutboxEvent) -> bytes:
        data = self._frames.get(event.id)
        if data is None:
            data = self._encode(event)
            self._frames[event.id] = data
            if len(self._frames) > self._size:
                del self._frames[next(iter(self._frames))]
        return data


class ReadAhead:
    """Reads ``events`` into encoded frames until a terminal event, the end, or an error.

    Events older than the last one taken are skipped, so a redelivery is never a duplicate.

    Args:
        events: A ``subscribe`` iterator starting at ``first_seq``.
        encode: Event -> frame.
        first_seq: The first seq to send.
        terminal: Event types after which the stream ends.
        limit: Most frames held before the writer takes them.
    """

    def __init__(
        self,
        events: AsyncIterator[OutboxEvent],
        *,
        encode: Callable[[OutboxEvent], bytes],
        first_seq: int,
        terminal: Collection[str],
        limit: int = 256,
    ) -> None:
        self._events = events
        self._encode = encode
        self._expected = first_seq
        self._terminal = terminal
        self._limit = limit
        self._frames: list[bytes] = []
        self._writer: asyncio.Future[None] | None = None
        self._room: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.finished = False
        self.error: Exception | None = None

    def start(self) -> None:
        """Start reading in a task of its own."""
        self._task = asyncio.get_running_loop().create_task(self._read(), name="portside-sse")

    @property
    def ready(self) -> bool:
        """Whether frames wait to be taken."""
        return bool(self._frames)

    def take(self) -> tuple[bytes, int]:
        """Every frame read so far, as one chunk, and how many events it holds."""
        chunk, count = b"".join(self._frames), len(self._frames)
        self._frames.clear()
        _resolve(self._room)
        return chunk, count

    def wake(self) -> None:
        """End the writer's current ``wait`` (new frames, the end, or the server closing)."""
        _resolve(self._writer)

    async def wait(self) -> None:
        """Wait for frames, the end or ``wake`` (the caller bounds it, e.g. to send a ping)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writer = waiter
        try:
            await waiter
        finally:
            self._writer = None

    async def close(self) -> None:
        """Stop reading and close ``events``."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # asyncio.wait, not a suppressed ``await task``: a cancellation of the caller
            # itself must propagate.
            await asyncio.wait({task})
        closer = getattr(self._events, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()

    async def _read(self) -> None:
        try:
            async for event in self._events:
                if event.seq < self._expected:
                    continue
                self._expected = event.seq + 1
                self._frames.append(self._encode(event))
                self.wake()
                if event.type in self._terminal:
                    return
                if len(self._frames) >= self._limit:
                    self._room = asyncio.get_running_loop().create_future()
                    await self._room
        except Exception as error:
            self.error = error
        finally:
            self.finished = True
            self.wake()


def _resolve(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
